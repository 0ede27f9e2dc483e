//! Deterministic synthetic traffic for tests, benches and the demo.
//!
//! The same profile, seed and packet count always give the same packets, byte for byte.
//! Profiles:
//! - `syn-flood`: minimum-size TCP SYNs from random spoofed IPv4 sources to one /24;
//! - `udp-amplification`: large UDP responses (DNS, NTP, memcached, chargen) from many
//!   reflectors to one victim;
//! - `mixed`: IMIX-like sizes (64/576/1500 in 7:4:1), IPv4 and IPv6, TCP, UDP, ICMP and
//!   ICMPv6 with payloads, among a few thousand hosts;
//! - `edge`: every case the anonymizer must handle: 802.1Q and QinQ tags, MPLS, IPv4 options,
//!   IPv6 extension headers, fragments, ICMP and ICMPv6 errors quoting inner packets, IP-in-IP,
//!   6in4, GRE, ARP, and snaplen-truncated packets.

pub mod build;
mod profiles;
mod rng;

use std::fmt;
use std::str::FromStr;

use crate::record::{LinkType, OwnedRecord};
pub use rng::Rng;

/// 2026-01-01T00:00:00Z, where generated traces start.
pub const START_NS: u64 = 1_767_225_600_000_000_000;

/// A traffic profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Minimum-size TCP SYNs from spoofed sources to one /24.
    SynFlood,
    /// Large UDP responses from many reflectors.
    UdpAmplification,
    /// IMIX-like mixed IPv4/IPv6 traffic.
    Mixed,
    /// Corner cases for parsers and the anonymizer.
    Edge,
}

impl Profile {
    /// All profiles.
    pub const ALL: [Profile; 4] = [
        Profile::SynFlood,
        Profile::UdpAmplification,
        Profile::Mixed,
        Profile::Edge,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::SynFlood => "syn-flood",
            Profile::UdpAmplification => "udp-amplification",
            Profile::Mixed => "mixed",
            Profile::Edge => "edge",
        }
    }

    /// The snapshot length a trace of this profile declares.
    pub fn snaplen(self) -> u32 {
        match self {
            Profile::Edge => 256,
            _ => 65535,
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name that is not known.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown traffic profile {0:?} (expected syn-flood, udp-amplification, mixed or edge)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProfile(s.to_string()))
    }
}

/// An endless, deterministic stream of packets of one profile; take as many as needed.
#[derive(Debug)]
pub struct Generator {
    profile: Profile,
    state: profiles::State,
    remaining: u64,
}

/// The first `packets` packets of `profile` from `seed`.
pub fn generate(profile: Profile, seed: u64, packets: u64) -> Generator {
    Generator {
        profile,
        state: profiles::State::new(seed),
        remaining: packets,
    }
}

impl Iterator for Generator {
    type Item = OwnedRecord;

    fn next(&mut self) -> Option<OwnedRecord> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (data, wire_len, gap_ns) = self.state.packet(self.profile);
        let ts_ns = self.state.advance(gap_ns);
        Some(OwnedRecord {
            ts_ns,
            wire_len,
            link_type: LinkType::ETHERNET,
            interface: 0,
            drops: 0,
            data,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

/// Writes `packets` packets of `profile` to `out` in `format`.
/// Returns the number of bytes written and `out` (not flushed).
pub fn write_to<W: std::io::Write>(
    profile: Profile,
    seed: u64,
    packets: u64,
    out: W,
    format: crate::Format,
) -> Result<(u64, W), crate::format::WriteError> {
    let mut writer =
        crate::format::TraceWriter::new(out, format, LinkType::ETHERNET, profile.snaplen())?;
    for rec in generate(profile, seed, packets) {
        writer.write(&rec.as_record())?;
    }
    let bytes = writer.bytes_written();
    let out = writer.finish()?;
    Ok((bytes, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_packets() {
        for p in Profile::ALL {
            let a: Vec<_> = generate(p, 7, 300).collect();
            let b: Vec<_> = generate(p, 7, 300).collect();
            assert_eq!(a, b, "{p}");
            let c: Vec<_> = generate(p, 8, 300).collect();
            assert_ne!(a, c, "{p}");
        }
    }

    #[test]
    fn timestamps_increase() {
        for p in Profile::ALL {
            let ts: Vec<u64> = generate(p, 1, 500).map(|r| r.ts_ns).collect();
            assert!(ts.windows(2).all(|w| w[0] < w[1]), "{p}");
            assert!(ts[0] >= START_NS);
        }
    }

    #[test]
    fn syn_flood_is_minimum_size_syns_to_one_slash_24() {
        for r in generate(Profile::SynFlood, 3, 1000) {
            assert_eq!(r.data.len(), 60);
            assert_eq!(&r.data[12..14], &[0x08, 0x00]);
            assert_eq!(r.data[23], build::proto::TCP);
            assert_eq!(r.data[47], build::tcp_flags::SYN);
            assert_eq!(&r.data[30..33], &[198, 51, 100]);
        }
    }

    #[test]
    fn caplen_never_exceeds_wire_len_or_snaplen() {
        for p in Profile::ALL {
            for r in generate(p, 5, 2000) {
                assert!(r.data.len() as u32 <= r.wire_len, "{p}");
                assert!(r.data.len() as u32 <= p.snaplen(), "{p}");
            }
        }
    }

    #[test]
    fn edge_covers_truncated_packets() {
        let cut = generate(Profile::Edge, 1, 200)
            .filter(|r| (r.data.len() as u32) < r.wire_len)
            .count();
        assert!(cut > 0);
    }

    #[test]
    fn mixed_has_both_ip_versions() {
        let v: Vec<_> = generate(Profile::Mixed, 2, 1000).collect();
        let v6 = v.iter().filter(|r| r.data[12..14] == [0x86, 0xdd]).count();
        let v4 = v.iter().filter(|r| r.data[12..14] == [0x08, 0x00]).count();
        assert!(v6 > 100 && v4 > 500, "v4 {v4} v6 {v6}");
    }

    #[test]
    fn profile_names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
        }
        assert!("flood".parse::<Profile>().is_err());
    }
}
