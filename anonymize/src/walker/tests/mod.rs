//! The walker's tests: profiles and checksums here; the regressions of issue 8, the
//! allow-list, tunnels, link layers and the leak property test in the modules below.

mod allowlist;
mod corpus;
mod leak;
mod links;
mod regressions;
mod simple;
mod tunnels;

use super::*;
use crate::key::{Key, Mapping};
use crate::mapping::{Anonymizer, MapOptions};
use crate::wire::proto;
use lander_trace::checksum;
use lander_trace::synth::{generate, Profile};
use std::collections::HashSet;

/// Records every address the walker shows it and returns it unchanged.
#[derive(Default)]
pub(super) struct Collect {
    pub(super) v4: Vec<[u8; 4]>,
    pub(super) v6: Vec<[u8; 16]>,
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

/// Replaces every address by one constant: nothing is a fixed point.
pub(super) struct Constant;

/// What [`Constant`] writes for IPv4.
pub(super) const CONSTANT_V4: [u8; 4] = [198, 18, 0, 1];
/// What [`Constant`] writes for IPv6.
pub(super) const CONSTANT_V6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
];

impl Rewriter for Constant {
    fn v4(&mut self, _: [u8; 4]) -> [u8; 4] {
        CONSTANT_V4
    }

    fn v6(&mut self, _: [u8; 16]) -> [u8; 16] {
        CONSTANT_V6
    }
}

pub(super) fn anonymizer() -> CachedAnonymizer {
    let key = Key::Pan {
        mapping: Mapping::CryptoPan,
        bytes: *b"0123456789abcdef0123456789abcdef",
    };
    CachedAnonymizer::new(Anonymizer::new(&key, &MapOptions::default()).unwrap())
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub(super) fn ones_complement_ok(data: &[u8], extra: u64) -> bool {
    checksum::fold(checksum::sum(data) + extra) == 0xffff
}

/// Checks IPv4 header and TCP/UDP/ICMP checksums of an Ethernet/IPv4 frame with no options.
fn v4_checksums_ok(frame: &[u8]) -> bool {
    let ip = &frame[14..];
    let hl = usize::from(ip[0] & 0x0f) * 4;
    if !ones_complement_ok(&ip[..hl], 0) {
        return false;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip.len() < total {
        return true; // covered bytes cut: not checkable
    }
    let l4 = &ip[hl..total];
    let pseudo = checksum::sum(&ip[12..20]) + u64::from(ip[9]) + l4.len() as u64;
    match ip[9] {
        6 | 17 => ones_complement_ok(l4, pseudo),
        1 => ones_complement_ok(l4, 0),
        _ => true,
    }
}

#[test]
fn edge_profile_leaves_no_raw_address() {
    let mut anon = anonymizer();
    for policy in [Payload::Drop, Payload::Zero, Payload::Keep(16)] {
        let policy = Policy {
            payload: policy,
            ..Policy::default()
        };
        for rec in generate(Profile::Edge, 7, 200) {
            let mut seen = Collect::default();
            let mut raw = rec.data.clone();
            walk(link::ETHERNET, &mut raw, &Policy::default(), &mut seen);
            let mut frame = rec.data.clone();
            let out = walk(link::ETHERNET, &mut frame, &policy, &mut anon);
            assert!(out.caplen <= rec.data.len());
            let kept = &frame[..out.caplen];
            for a in &seen.v4 {
                assert!(!contains(kept, a), "{policy:?} {a:?} in {kept:02x?}");
            }
            for a in &seen.v6 {
                assert!(!contains(kept, a), "{policy:?} {a:02x?} in {kept:02x?}");
            }
        }
    }
}

#[test]
fn edge_profile_reasons_are_the_expected_ones() {
    let mut anon = anonymizer();
    let mut reasons = HashSet::new();
    for rec in generate(Profile::Edge, 1, 21) {
        let mut frame = rec.data.clone();
        if let Some(r) = walk(link::ETHERNET, &mut frame, &Policy::default(), &mut anon).reason {
            reasons.insert(r);
        }
    }
    let want: HashSet<_> = [Reason::TruncatedIpv4, Reason::TruncatedTcp].into();
    assert!(reasons.is_superset(&want), "{reasons:?}");
    // GRE is walked into now, not cut
    assert!(!reasons.contains(&Reason::UnknownTunnel), "{reasons:?}");
}

#[test]
fn syn_flood_cut_after_tcp_with_valid_checksums() {
    let mut anon = anonymizer();
    for rec in generate(Profile::SynFlood, 3, 100) {
        let mut frame = rec.data.clone();
        let out = walk(link::ETHERNET, &mut frame, &Policy::default(), &mut anon);
        assert_eq!(out.reason, None);
        let tcp_len = usize::from(frame[14 + 20 + 12] >> 4) * 4;
        assert_eq!(out.caplen, 14 + 20 + tcp_len);
        assert_ne!(frame[26..34], rec.data[26..34]);
        assert!(v4_checksums_ok(&frame[..out.caplen]));
    }
}

#[test]
fn mixed_checksums_valid_when_kept_and_zeroed() {
    let mut anon = anonymizer();
    for payload in [Payload::Zero, Payload::Keep(usize::MAX), Payload::Drop] {
        let policy = Policy {
            payload,
            ..Policy::default()
        };
        for rec in generate(Profile::Mixed, 5, 300) {
            let mut frame = rec.data.clone();
            let out = walk(link::ETHERNET, &mut frame, &policy, &mut anon);
            assert_eq!(out.reason, None);
            if u16::from_be_bytes([frame[12], frame[13]]) == 0x0800 {
                assert!(v4_checksums_ok(&frame[..out.caplen]), "{payload:?}");
            }
        }
    }
}

#[test]
fn incremental_update_matches_full_recompute() {
    // Keep(0) cuts the payload: the transport checksum is then updated incrementally;
    // restoring the original payload must give a valid checksum again.
    let mut anon = anonymizer();
    let keep0 = Policy {
        payload: Payload::Keep(0),
        ..Policy::default()
    };
    for rec in generate(Profile::Mixed, 9, 200) {
        if u16::from_be_bytes([rec.data[12], rec.data[13]]) != 0x0800 {
            continue;
        }
        let mut frame = rec.data.clone();
        let out = walk(link::ETHERNET, &mut frame, &keep0, &mut anon);
        frame[out.caplen..].copy_from_slice(&rec.data[out.caplen..]);
        assert!(v4_checksums_ok(&frame), "{:02x?}", &rec.data[..40]);
    }
}

#[test]
fn checksums_zero_and_keep() {
    let mut anon = anonymizer();
    let rec = generate(Profile::SynFlood, 3, 1).next().unwrap();
    let mut zeroed = rec.data.clone();
    let zero = Policy {
        checksums: Checksums::Zero,
        ..Policy::default()
    };
    walk(link::ETHERNET, &mut zeroed, &zero, &mut anon);
    assert_eq!(zeroed[24..26], [0, 0]);
    assert_eq!(zeroed[50..52], [0, 0]);
    let mut kept = rec.data.clone();
    let keep = Policy {
        checksums: Checksums::Keep,
        ..Policy::default()
    };
    walk(link::ETHERNET, &mut kept, &keep, &mut anon);
    assert_eq!(kept[24..26], rec.data[24..26]);
    assert_eq!(kept[50..52], rec.data[50..52]);
}

#[test]
fn mac_policies() {
    let mut anon = anonymizer();
    let rec = generate(Profile::SynFlood, 3, 1).next().unwrap();
    let mut f = rec.data.clone();
    let zero = Policy {
        mac: MacPolicy::Zero,
        ..Policy::default()
    };
    walk(link::ETHERNET, &mut f, &zero, &mut anon);
    assert_eq!(f[..12], [0; 12]);
    for (keep_oui, mac) in [
        (false, MacPolicy::Scramble(MacKey([3; 32]))),
        (true, MacPolicy::ScrambleKeepOui(MacKey([3; 32]))),
    ] {
        let mut f = rec.data.clone();
        let policy = Policy {
            mac,
            ..Policy::default()
        };
        walk(link::ETHERNET, &mut f, &policy, &mut anon);
        for at in [0, 6] {
            let old: [u8; 6] = rec.data[at..at + 6].try_into().unwrap();
            assert_eq!(f[at..at + 6], scramble_mac(&MacKey([3; 32]), old, keep_oui));
            assert_ne!(f[at..at + 6], old);
        }
    }
    // one walker, the policy changing between frames: the memo is not used for `zero`
    let mut walker = Walker::new();
    let scramble = Policy {
        mac: MacPolicy::Scramble(MacKey([3; 32])),
        ..Policy::default()
    };
    walker.walk(link::ETHERNET, &mut rec.data.clone(), &scramble, &mut anon);
    let mut f = rec.data.clone();
    walker.walk(link::ETHERNET, &mut f, &zero, &mut anon);
    assert_eq!(f[..12], [0; 12]);
}

#[test]
fn raw_ip_sll_and_loopback_links() {
    let mut anon = anonymizer();
    let rec = generate(Profile::SynFlood, 3, 1).next().unwrap();
    let ip = &rec.data[14..];
    let mut raw = ip.to_vec();
    let out = walk(link::RAW, &mut raw, &Policy::default(), &mut anon);
    assert_eq!((out.reason, out.caplen), (None, 40));
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(ip);
    let out = walk(link::LINUX_SLL, &mut sll, &Policy::default(), &mut anon);
    assert_eq!((out.reason, out.caplen), (None, 56));
    assert_eq!(sll[16 + 12..16 + 20], raw[12..20]);
    let mut lo = vec![2, 0, 0, 0];
    lo.extend_from_slice(ip);
    let out = walk(link::NULL, &mut lo, &Policy::default(), &mut anon);
    assert_eq!((out.reason, out.caplen), (None, 44));
    let mut unknown = ip.to_vec();
    let out = walk(9999, &mut unknown, &Policy::default(), &mut anon);
    assert_eq!((out.reason, out.caplen), (Some(Reason::UnknownLink), 0));
}

#[test]
fn every_truncation_of_edge_packets_is_safe() {
    let mut anon = anonymizer();
    for rec in generate(Profile::Edge, 11, 21) {
        let mut seen = Collect::default();
        walk(
            link::ETHERNET,
            &mut rec.data.clone(),
            &Policy::default(),
            &mut seen,
        );
        for cut in 0..rec.data.len() {
            let mut frame = rec.data[..cut].to_vec();
            let out = walk(link::ETHERNET, &mut frame, &Policy::default(), &mut anon);
            assert!(out.caplen <= cut);
            for a in &seen.v4 {
                assert!(!contains(&frame[..out.caplen], a));
            }
        }
    }
}

proptest::proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                                l in 0usize..8) {
        let links = [0, 1, 101, 108, 113, 228, 229, 276];
        let mut anon = anonymizer();
        let mut frame = data.clone();
        let out = walk(links[l], &mut frame, &Policy { payload: Payload::Zero, ..Policy::default() }, &mut anon);
        proptest::prop_assert!(out.caplen <= data.len());
        proptest::prop_assert!(out.work <= MAX_WORK);
    }
}

/// An IPv6/UDP packet (raw IPv6 link) whose routing header `routing` (type, segments left,
/// then the type's fixed bytes and its addresses) sends it on to `last`, with the UDP
/// checksum computed over `last` as RFC 8200 8.1 says.
fn routed_udp(routing: &[u8], next_hop: std::net::Ipv6Addr, last: std::net::Ipv6Addr) -> Vec<u8> {
    use lander_trace::synth::build;
    let src: std::net::Ipv6Addr = "2001:db8:1::1".parse().unwrap();
    let udp = build::udp(src.into(), last.into(), 5000, 9999, b"routed payload bytes");
    let rh = build::ipv6_ext(proto::UDP, routing);
    build::ipv6(src, next_hop, proto::ROUTING, 64, &[rh, udp].concat())
}

/// Whether the UDP checksum of `packet` (raw IPv6 with one routing header) holds with
/// `last_at` as the pseudo-header's destination.
fn routed_udp_checksum_ok(packet: &[u8], last_at: usize) -> bool {
    let rh_len = (usize::from(packet[41]) + 1) * 8;
    let udp = &packet[40 + rh_len..];
    let pseudo = checksum::sum(&packet[8..24])
        + checksum::sum(&packet[last_at..last_at + 16])
        + udp.len() as u64
        + u64::from(proto::UDP);
    ones_complement_ok(udp, pseudo)
}

#[test]
fn ipv6_routing_header_final_destination_is_the_pseudo_header_destination() {
    let hop: std::net::Ipv6Addr = "2001:db8:2::2".parse().unwrap();
    let last: std::net::Ipv6Addr = "2001:db8:3::3".parse().unwrap();
    // type 0, one segment left, the final destination last
    let mut type0 = vec![0u8, 1, 0, 0, 0, 0];
    type0.extend_from_slice(&last.octets());
    // segment routing: Segment List[0] is the final destination, [1] the next hop
    let mut srh = vec![4u8, 1, 1, 0, 0, 0];
    srh.extend_from_slice(&last.octets());
    srh.extend_from_slice(&hop.octets());
    for (routing, last_at) in [(type0, 48), (srh, 48)] {
        let raw = routed_udp(&routing, hop, last);
        assert!(routed_udp_checksum_ok(&raw, last_at));
        let payload_at = raw.len() - 20;
        for payload in [Payload::Keep(usize::MAX), Payload::Drop] {
            let mut anon = anonymizer();
            let mut packet = raw.clone();
            let policy = Policy {
                payload,
                ..Policy::default()
            };
            let out = walk(link::IPV6, &mut packet, &policy, &mut anon);
            assert_eq!(out.reason, None);
            assert_eq!(out.payload_at, payload_at);
            for a in [hop, last] {
                assert!(
                    !contains(&packet[..out.caplen], &a.octets()),
                    "{a} left raw"
                );
            }
            let expected = anon.anon_v6(u128::from(last)).to_be_bytes();
            assert_eq!(&packet[last_at..last_at + 16], &expected);
            // a cut payload is put back to check the incrementally updated checksum
            packet[out.caplen..].copy_from_slice(&raw[out.caplen..]);
            assert!(routed_udp_checksum_ok(&packet, last_at), "{payload:?}");
        }
    }
}
