//! Link layers: Linux cooked headers by ARPHRD type, and what follows an MPLS label stack
//! under each policy.

use super::*;
use lander_trace::synth::build::{self, V4Opts};
use std::net::{Ipv4Addr, Ipv6Addr};

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn ip() -> Vec<u8> {
    let udp = build::udp(SRC.into(), DST.into(), 5000, 9999, b"link payload bytes");
    build::ipv4(SRC, DST, proto::UDP, V4Opts::default(), &udp)
}

/// A cooked header of ARPHRD type `hatype` whose address field is `field`, v1 or v2.
fn sll(v2: bool, hatype: u16, addr_len: u8, field: [u8; 8]) -> Vec<u8> {
    let mut h = Vec::new();
    if v2 {
        h.extend_from_slice(&[0x08, 0x00, 0xee, 0xee, 0, 0, 0, 3]);
        h.extend_from_slice(&hatype.to_be_bytes());
        h.extend_from_slice(&[0, addr_len]);
        h.extend_from_slice(&field);
    } else {
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&hatype.to_be_bytes());
        h.extend_from_slice(&u16::from(addr_len).to_be_bytes());
        h.extend_from_slice(&field);
        h.extend_from_slice(&[0x08, 0x00]);
    }
    h.extend(ip());
    h
}

/// ARPHRD type, address length, address field, MAC policy, expected field.
type SllCase = (u16, u8, [u8; 8], MacPolicy, [u8; 8]);

#[test]
fn cooked_address_field_by_arphrd_type() {
    let raw_mac = [0x00u8, 0x1b, 0x21, 0x3a, 0x4c, 0x5d];
    let field = [0x00u8, 0x1b, 0x21, 0x3a, 0x4c, 0x5d, 0xab, 0xcd];
    let ip6: Ipv6Addr = "2001:db8:77::1".parse().unwrap();
    let ip6_field: [u8; 8] = ip6.octets()[..8].try_into().unwrap();
    for v2 in [false, true] {
        let (link, at) = if v2 {
            (link::LINUX_SLL2, 12)
        } else {
            (link::LINUX_SLL, 6)
        };
        let cases: [SllCase; 6] = [
            (
                1,
                6,
                field,
                MacPolicy::Keep,
                [0, 0x1b, 0x21, 0x3a, 0x4c, 0x5d, 0, 0],
            ),
            (1, 6, field, MacPolicy::Zero, [0; 8]),
            (
                801,
                6,
                field,
                MacPolicy::Keep,
                [0, 0x1b, 0x21, 0x3a, 0x4c, 0x5d, 0, 0],
            ),
            (823, 16, ip6_field, MacPolicy::Keep, [0; 8]),
            (772, 6, field, MacPolicy::Keep, [0; 8]),
            (824, 0, field, MacPolicy::Keep, [0; 8]),
        ];
        for (hatype, len, field, mac, want) in cases {
            let mut frame = sll(v2, hatype, len, field);
            let policy = Policy {
                mac,
                ..Policy::default()
            };
            let out = walk(link, &mut frame, &policy, &mut anonymizer());
            assert_eq!(out.reason, None, "{hatype}");
            assert_eq!(frame[at..at + 8], want, "v2 {v2} type {hatype} {mac:?}");
            if v2 {
                assert_eq!(frame[2..4], [0, 0]);
            }
            assert!(!contains(&frame[..out.caplen], &raw_mac[1..]) || want[1] != 0);
        }
    }
}

fn mpls_frame(payload: &[u8]) -> Vec<u8> {
    let labelled = build::mpls(&[100, 200], payload);
    build::ethernet(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        &[],
        0x8847,
        &labelled,
    )
}

fn walk_mpls(frame: &[u8], mpls: MplsPolicy) -> WalkOutcome {
    let policy = Policy {
        mpls,
        ..Policy::default()
    };
    walk(
        link::ETHERNET,
        &mut frame.to_vec(),
        &policy,
        &mut anonymizer(),
    )
}

#[test]
fn mpls_payload_by_policy() {
    let ip = ip();
    let after = 14 + 8;
    let pw_cw = [
        &[0u8, 0, 0, 1][..],
        &build::ethernet([2; 6], [4; 6], &[], 0x0800, &ip),
    ]
    .concat();
    let pw = build::ethernet([0x46, 0, 0, 0, 0, 1], [4; 6], &[], 0x0800, &ip);
    let mut bad_sum = ip.clone();
    bad_sum[10] ^= 0xff;
    let garbage = [0x45u8; 40];
    use MplsPolicy::*;
    let cases: [(&[u8], MplsPolicy, Option<Reason>, usize); 11] = [
        (&ip, Auto, None, after + 28),
        (&ip, Ip, None, after + 28),
        (&ip, Cut, Some(Reason::MplsCut), after),
        (&pw_cw, Auto, None, after + 4 + 14 + 28),
        (&pw_cw, Ethernet, None, after + 4 + 14 + 28),
        (&pw, Auto, None, after + 14 + 28),
        (&pw, Ethernet, None, after + 14 + 28),
        (&bad_sum, Auto, Some(Reason::UnknownMplsPayload), after),
        (&bad_sum, Ip, None, after + 28),
        (&garbage, Auto, Some(Reason::UnknownMplsPayload), after),
        (
            &[0x10, 0, 0, 0, 1, 2, 3, 4],
            Auto,
            Some(Reason::UnknownMplsPayload),
            after,
        ),
    ];
    for (i, (payload, policy, reason, payload_at)) in cases.into_iter().enumerate() {
        let out = walk_mpls(&mpls_frame(payload), policy);
        assert_eq!(
            (out.reason, out.payload_at),
            (reason, payload_at),
            "case {i}"
        );
    }
}

#[test]
fn mpls_ipv6_needs_a_length_that_accounts_for_the_bytes() {
    let (s, d): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    let udp = build::udp(s.into(), d.into(), 1, 2, b"ipv6 over mpls payload");
    let ip6 = build::ipv6(s, d, proto::UDP, 64, &udp);
    let out = walk_mpls(&mpls_frame(&ip6), MplsPolicy::Auto);
    assert_eq!((out.reason, out.payload_at), (None, 22 + 48));
    let with_fcs = [&ip6[..], &[1, 2, 3, 4]].concat();
    assert_eq!(
        walk_mpls(&mpls_frame(&with_fcs), MplsPolicy::Auto).reason,
        None
    );
    let trailing = [&ip6[..], &[9; 20]].concat();
    let out = walk_mpls(&mpls_frame(&trailing), MplsPolicy::Auto);
    assert_eq!(
        (out.reason, out.caplen),
        (Some(Reason::UnknownMplsPayload), 22)
    );
    // the capture cut it: no evidence, cut after the label stack
    let mut cut = mpls_frame(&ip6);
    cut.truncate(22 + 44);
    let out = walk_mpls(&cut, MplsPolicy::Auto);
    assert_eq!(
        (out.reason, out.caplen),
        (Some(Reason::UnknownMplsPayload), 22)
    );
}

/// Found by the leak property test: a VLAN-tagged pseudowire frame without a control word
/// whose destination MAC starts with the nibble 0 parses as a control word and an untagged
/// frame; the "control word" (4 bytes of the MAC) was kept. It follows the MAC policy now.
#[test]
fn pseudowire_control_word_follows_the_mac_policy() {
    let dst = [0x00u8, 0x1b, 0x21, 0x3a, 0x4c, 0x5d];
    let tagged = build::ethernet(
        dst,
        [0x00, 0x1b, 0x21, 0x99, 0x88, 0x77],
        &[10],
        0x0800,
        &ip(),
    );
    for (mac, kept) in [(MacPolicy::Keep, true), (MacPolicy::Zero, false)] {
        let mut frame = mpls_frame(&tagged);
        let policy = Policy {
            mac,
            ..Policy::default()
        };
        let out = walk(link::ETHERNET, &mut frame, &policy, &mut anonymizer());
        assert_eq!(out.reason, None);
        assert_eq!(contains(&frame[..out.caplen], &dst[..4]), kept, "{mac:?}");
    }
}
