//! Leak verification: proves that no raw address and no raw payload run survived scrubbing.
//!
//! Records of the scrubbed trace are matched to the raw trace by timestamp and wire length
//! (packets dropped by `--drop-unparsed` are skipped over). For each matched pair:
//! - every address the walker finds in the raw packet (IP headers at every depth, options,
//!   extension headers, ARP, quoted packets) must not occur as bytes anywhere in the scrubbed
//!   packet; addresses of one repeated byte (0.0.0.0, ::, broadcast) carry no information and
//!   are not searched;
//! - no 8-byte run of the raw payload (everything after the last header) may occur anywhere in
//!   the scrubbed packet. Low-information runs are not searched: fewer than 3 distinct byte
//!   values, or one value more than 4 times (padding next to a checksum byte would match by
//!   chance).

use std::collections::HashSet;

use lander_capture::format::{ReadError, TraceReader};

use crate::walker::{walk, Checksums, MacPolicy, Payload, Policy, Rewriter};

/// Length of the payload runs searched for.
pub const RUN: usize = 8;

/// One leak found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leak {
    /// Index of the packet in the scrubbed trace (0-based).
    pub index: u64,
    /// Its timestamp.
    pub ts_ns: u64,
    /// What leaked.
    pub what: String,
}

/// The result of a verification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Packets in the raw trace (read up to the last match).
    pub raw_packets: u64,
    /// Packets in the scrubbed trace.
    pub anon_packets: u64,
    /// Scrubbed packets with no raw packet to match.
    pub unmatched: u64,
    /// Leaks found (the first `limit` of them).
    pub leaks: Vec<Leak>,
    /// Packets with at least one leak.
    pub leaky_packets: u64,
}

impl Report {
    /// Whether nothing leaked and every packet matched.
    pub fn clean(&self) -> bool {
        self.leaky_packets == 0 && self.unmatched == 0
    }
}

#[derive(Default)]
struct Collect {
    v4: Vec<[u8; 4]>,
    v6: Vec<[u8; 16]>,
}

impl Rewriter for Collect {
    fn v4(&mut self, addr: [u8; 4]) -> [u8; 4] {
        self.v4.push(addr);
        addr
    }

    fn v6(&mut self, addr: [u8; 16]) -> [u8; 16] {
        self.v6.push(addr);
        addr
    }
}

const COLLECT: Policy = Policy {
    payload: Payload::Keep(usize::MAX),
    checksums: Checksums::Keep,
    mac: MacPolicy::Keep,
};

fn uniform(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == bytes[0])
}

/// Whether a payload run carries enough information to be searched for.
fn informative(run: &[u8]) -> bool {
    let mut counts = [0u8; 256];
    run.iter().for_each(|&b| counts[usize::from(b)] += 1);
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    distinct >= 3 && counts.iter().all(|&c| c <= 4)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The leaks of one pair of packets, as descriptions.
pub fn packet_leaks(link: u32, raw: &[u8], anon: &[u8]) -> Vec<String> {
    let mut copy = raw.to_vec();
    let mut seen = Collect::default();
    let outcome = walk(link, &mut copy, &COLLECT, &mut seen);
    let mut leaks = Vec::new();
    for a in seen.v4.iter().filter(|a| !uniform(&a[..])) {
        if contains(anon, a) {
            leaks.push(format!("IPv4 address {}", std::net::Ipv4Addr::from(*a)));
        }
    }
    for a in seen.v6.iter().filter(|a| !uniform(&a[..])) {
        if contains(anon, a) {
            leaks.push(format!("IPv6 address {}", std::net::Ipv6Addr::from(*a)));
        }
    }
    let payload = &raw[outcome.payload_at.min(raw.len())..];
    if payload.len() >= RUN && anon.len() >= RUN {
        let windows: HashSet<&[u8]> = anon.windows(RUN).collect();
        if let Some(at) = payload
            .windows(RUN)
            .position(|w| informative(w) && windows.contains(w))
        {
            leaks.push(format!(
                "payload run at byte {} of the raw packet",
                outcome.payload_at + at
            ));
        }
    }
    leaks
}

/// Compares a raw trace with its scrubbed form; at most `limit` leaks are kept in the report.
pub fn verify(
    mut raw: TraceReader,
    mut anon: TraceReader,
    limit: usize,
) -> Result<Report, ReadError> {
    let mut report = Report::default();
    while let Some(a) = anon.next()? {
        let index = report.anon_packets;
        report.anon_packets += 1;
        let (ts, wire) = (a.ts_ns, a.wire_len);
        let anon_data = a.data.to_vec();
        let link = a.link_type.0;
        let matched = loop {
            match raw.next()? {
                None => break None,
                Some(r) => {
                    report.raw_packets += 1;
                    if r.ts_ns == ts && r.wire_len == wire {
                        break Some(r.data.to_vec());
                    }
                }
            }
        };
        let Some(raw_data) = matched else {
            report.unmatched += 1;
            continue;
        };
        let leaks = packet_leaks(link, &raw_data, &anon_data);
        if !leaks.is_empty() {
            report.leaky_packets += 1;
        }
        for what in leaks {
            if report.leaks.len() < limit {
                report.leaks.push(Leak {
                    index,
                    ts_ns: ts,
                    what,
                });
            }
        }
    }
    while raw.next()?.is_some() {
        report.raw_packets += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lander_capture::synth::{generate, Profile};

    #[test]
    fn raw_against_itself_leaks() {
        let rec = generate(Profile::Mixed, 1, 1).next().unwrap();
        let leaks = packet_leaks(1, &rec.data, &rec.data);
        assert!(leaks.iter().any(|l| l.contains("address")), "{leaks:?}");
        assert!(leaks.iter().any(|l| l.contains("payload")), "{leaks:?}");
    }

    #[test]
    fn scrubbed_packet_is_clean() {
        let key = crate::Key::generate(crate::Mapping::CryptoPan).unwrap();
        let anon = crate::Anonymizer::new(&key, &crate::MapOptions::default()).unwrap();
        let mut cached = crate::CachedAnonymizer::new(anon);
        for rec in generate(Profile::Edge, 2, 42) {
            let mut frame = rec.data.clone();
            let out = walk(1, &mut frame, &Policy::default(), &mut cached);
            let leaks = packet_leaks(1, &rec.data, &frame[..out.caplen]);
            assert!(leaks.is_empty(), "{leaks:?}");
        }
    }
}
