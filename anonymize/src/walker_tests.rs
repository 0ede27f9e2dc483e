use super::*;
use crate::key::{Key, Mapping};
use crate::mapping::{Anonymizer, MapOptions};
use lander_capture::synth::{generate, Profile};
use std::collections::HashSet;

/// Records every address it is shown and returns it unchanged.
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

fn anonymizer() -> CachedAnonymizer {
    let key = Key::Pan {
        mapping: Mapping::CryptoPan,
        bytes: *b"0123456789abcdef0123456789abcdef",
    };
    CachedAnonymizer::new(Anonymizer::new(&key, &MapOptions::default()).unwrap())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn ones_complement_ok(data: &[u8], extra: u64) -> bool {
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
    let want: HashSet<_> = [
        Reason::UnknownTunnel,
        Reason::TruncatedIpv4,
        Reason::TruncatedTcp,
    ]
    .into();
    assert!(reasons.is_superset(&want), "{reasons:?}");
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
    let mut f = rec.data.clone();
    let scramble = Policy {
        mac: MacPolicy::scramble([0xff; 6]),
        ..Policy::default()
    };
    walk(link::ETHERNET, &mut f, &scramble, &mut anon);
    assert_eq!(f[0], rec.data[0] ^ 0xfe);
    assert_eq!(f[0] & 1, rec.data[0] & 1);
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
    }
}
