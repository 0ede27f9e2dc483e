//! Leak verification: proves that no raw address and no raw payload run survived scrubbing.
//!
//! Records of the scrubbed trace are matched to the raw trace by timestamp and wire length
//! (packets dropped by `--drop-unparsed` are skipped over). For each matched pair:
//! - every address the walker finds in the raw packet (IP headers at every depth, options,
//!   extension headers, ARP, quoted packets) must not occur as bytes anywhere in the scrubbed
//!   packet; addresses of one repeated byte (0.0.0.0, ::, broadcast) carry no information and
//!   are not searched. Prefix-preserving mappings have fixed points (far more often than
//!   2^-32: consecutive bits whose AES inputs coincide flip together), so with the mapping at
//!   hand a raw address that the mapping maps to itself is its legitimate output, counted
//!   apart; without it, such a hit is reported with that hint;
//! - no 8-byte run of the raw payload (everything after the last header) may occur anywhere in
//!   the scrubbed packet. Low-information runs are not searched: fewer than 3 distinct byte
//!   values, or one value more than 4 times (padding next to a checksum byte would match by
//!   chance).

use std::collections::HashSet;

use lander_capture::format::{ReadError, TraceReader};

use crate::cache::CachedAnonymizer;
use crate::mapping::Anonymizer;
use crate::walker::{walk, Checksums, MacPolicy, MplsPolicy, Payload, Policy, Rewriter};

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
    /// Raw addresses found in their scrubbed packet that the mapping maps to themselves
    /// (counted only when the mapping was given).
    pub fixed_points: u64,
}

impl Report {
    /// Whether nothing leaked and every packet matched.
    pub fn clean(&self) -> bool {
        self.leaky_packets == 0 && self.unmatched == 0
    }
}

/// Records every address the walker shows it and returns it unchanged.
#[derive(Default)]
pub(crate) struct Collect {
    pub(crate) v4: Vec<[u8; 4]>,
    pub(crate) v6: Vec<[u8; 16]>,
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
    mpls: MplsPolicy::Auto,
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

/// Hint appended to an address hit when no mapping was given to check it.
pub const FIXED_POINT_HINT: &str = "(may be a fixed point of the mapping: pass --key to check)";

/// What [`packet_leaks`] found in one pair of packets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketLeaks {
    /// The leaks, as descriptions.
    pub leaks: Vec<String>,
    /// Raw addresses present in the scrubbed packet as their own legitimate output.
    pub fixed_points: u64,
}

/// The leaks of one pair of packets. With `mapping`, a raw address the mapping maps to
/// itself is no leak.
pub fn packet_leaks(
    link: u32,
    raw: &[u8],
    anon: &[u8],
    mut mapping: Option<&mut CachedAnonymizer>,
) -> PacketLeaks {
    let mut copy = raw.to_vec();
    let mut seen = Collect::default();
    let outcome = walk(link, &mut copy, &COLLECT, &mut seen);
    let mut found = PacketLeaks::default();
    let mut address = |text: String, fixed: Option<bool>| match fixed {
        Some(true) => found.fixed_points += 1,
        Some(false) => found.leaks.push(text),
        None => found.leaks.push(format!("{text} {FIXED_POINT_HINT}")),
    };
    for a in seen
        .v4
        .iter()
        .filter(|a| !uniform(&a[..]) && contains(anon, &a[..]))
    {
        let fixed = mapping.as_deref_mut().map(|m| m.v4(*a) == *a);
        address(
            format!("IPv4 address {}", std::net::Ipv4Addr::from(*a)),
            fixed,
        );
    }
    for a in seen
        .v6
        .iter()
        .filter(|a| !uniform(&a[..]) && contains(anon, &a[..]))
    {
        let fixed = mapping.as_deref_mut().map(|m| m.v6(*a) == *a);
        address(
            format!("IPv6 address {}", std::net::Ipv6Addr::from(*a)),
            fixed,
        );
    }
    let payload = &raw[outcome.payload_at.min(raw.len())..];
    if payload.len() >= RUN && anon.len() >= RUN {
        let windows: HashSet<&[u8]> = anon.windows(RUN).collect();
        if let Some(at) = payload
            .windows(RUN)
            .position(|w| informative(w) && windows.contains(w))
        {
            found.leaks.push(format!(
                "payload run at byte {} of the raw packet",
                outcome.payload_at + at
            ));
        }
    }
    found
}

/// Compares a raw trace with its scrubbed form; at most `limit` leaks are kept in the report.
/// With `mapping` (the one the scrub used), fixed points of the mapping are told apart from
/// leaks.
///
/// Scrubbed records are matched to raw ones in order by timestamp and wire length, raw
/// records without a match (dropped by the scrub) skipped: one pass over each trace.
pub fn verify(
    mut raw: TraceReader,
    mut anon: TraceReader,
    limit: usize,
    mapping: Option<&Anonymizer>,
) -> Result<Report, ReadError> {
    let mut cached = mapping.map(|m| CachedAnonymizer::new(m.clone()));
    let mut report = Report::default();
    let mut raw_data = Vec::new();
    while let Some(a) = anon.next()? {
        let index = report.anon_packets;
        report.anon_packets += 1;
        let (ts, wire) = (a.ts_ns, a.wire_len);
        let anon_data = a.data.to_vec();
        let link = a.link_type.0;
        let matched = loop {
            match raw.next()? {
                None => break false,
                Some(r) => {
                    report.raw_packets += 1;
                    if r.ts_ns == ts && r.wire_len == wire {
                        raw_data.clear();
                        raw_data.extend_from_slice(r.data);
                        break true;
                    }
                }
            }
        };
        if !matched {
            report.unmatched += 1;
            continue;
        }
        let found = packet_leaks(link, &raw_data, &anon_data, cached.as_mut());
        report.fixed_points += found.fixed_points;
        if !found.leaks.is_empty() {
            report.leaky_packets += 1;
        }
        for what in found.leaks {
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
        let leaks = packet_leaks(1, &rec.data, &rec.data, None).leaks;
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
            let leaks = packet_leaks(1, &rec.data, &frame[..out.caplen], None).leaks;
            assert!(leaks.is_empty(), "{leaks:?}");
        }
    }

    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An address under `prefix` (its top `len` bits) that `anon` maps to itself: the flip
    /// of bit `len` depends only on the prefix, so a prefix whose flip is 1 has none, and
    /// one whose flip is 0 is searched on in both halves.
    fn search(anon: &Anonymizer, prefix: u32, len: u32) -> Option<u32> {
        if len == 32 {
            return Some(prefix);
        }
        let bit = 31 - len;
        if (anon.anon_v4(prefix) ^ prefix) >> bit & 1 == 1 {
            return None;
        }
        search(anon, prefix, len + 1).or_else(|| search(anon, prefix | 1 << bit, len + 1))
    }

    /// A key from a seeded generator with an IPv4 fixed point, and that point.
    pub(crate) fn fixed_point(mapping: crate::Mapping) -> (crate::Key, u32) {
        let mut state = 0x5eed;
        loop {
            let mut bytes = [0u8; 32];
            for b in bytes.chunks_mut(8) {
                b.copy_from_slice(&splitmix(&mut state).to_le_bytes());
            }
            let key = crate::Key::Pan { mapping, bytes };
            let anon = Anonymizer::new(&key, &crate::MapOptions::default()).unwrap();
            if let Some(addr) = search(&anon, 0, 0) {
                return (key, addr);
            }
        }
    }

    #[test]
    fn fixed_point_of_the_mapping_is_not_a_leak_with_the_key() {
        let (key, addr) = fixed_point(crate::Mapping::CryptoPan);
        let anon = Anonymizer::new(&key, &crate::MapOptions::default()).unwrap();
        assert_eq!(anon.anon_v4(addr), addr);
        let raw = generate(Profile::SynFlood, 1, 1).next().unwrap().data;
        let mut with_point = raw.clone();
        with_point[26..30].copy_from_slice(&addr.to_be_bytes());
        let mut cached = CachedAnonymizer::new(anon);
        let mut frame = with_point.clone();
        let out = walk(1, &mut frame, &Policy::default(), &mut cached);
        let scrubbed = &frame[..out.caplen];
        assert_eq!(&scrubbed[26..30], &addr.to_be_bytes());

        let unchecked = packet_leaks(1, &with_point, scrubbed, None);
        assert_eq!(unchecked.leaks.len(), 1, "{unchecked:?}");
        assert!(unchecked.leaks[0].contains(FIXED_POINT_HINT));
        let checked = packet_leaks(1, &with_point, scrubbed, Some(&mut cached));
        assert!(checked.leaks.is_empty(), "{checked:?}");
        assert_eq!(checked.fixed_points, 1);
        // an address that is no fixed point is still a leak with the mapping at hand
        let leaked = packet_leaks(1, &raw, &raw, Some(&mut cached));
        assert!(
            leaked.leaks.iter().any(|l| l.starts_with("IPv4 address")),
            "{leaked:?}"
        );
        assert!(!leaked.leaks.iter().any(|l| l.contains(FIXED_POINT_HINT)));
    }
}
