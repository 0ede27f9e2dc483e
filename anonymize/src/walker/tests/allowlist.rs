//! The allow-list: known options keep their fields, everything else becomes padding, the
//! checksums stay right, and what was neutralised is counted.

use super::*;
use crate::wire::options::{Options, Style, Tlv};
use lander_trace::synth::build::{self, V4Opts};
use std::net::{Ipv4Addr, Ipv6Addr};

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn ipv4_udp(options: &[u8]) -> Vec<u8> {
    let udp = build::udp(SRC.into(), DST.into(), 5000, 9999, b"allow-list payload");
    let o = V4Opts {
        options,
        ..V4Opts::default()
    };
    build::ipv4(SRC, DST, proto::UDP, o, &udp)
}

fn header_checksum_ok(packet: &[u8]) -> bool {
    let hl = usize::from(packet[0] & 0x0f) * 4;
    ones_complement_ok(&packet[..hl], 0)
}

fn tcp_checksum_ok(packet: &[u8]) -> bool {
    let hl = usize::from(packet[0] & 0x0f) * 4;
    let seg = &packet[hl..];
    let pseudo = checksum::sum(&packet[12..20]) + u64::from(proto::TCP) + seg.len() as u64;
    ones_complement_ok(seg, pseudo)
}

fn walked(link: u32, raw: &[u8], payload: Payload) -> (Vec<u8>, WalkOutcome) {
    let mut packet = raw.to_vec();
    let policy = Policy {
        payload,
        ..Policy::default()
    };
    let out = walk(link, &mut packet, &policy, &mut anonymizer());
    (packet, out)
}

#[test]
fn known_ipv4_options_keep_their_fields() {
    let hop = Ipv4Addr::new(203, 0, 113, 1);
    let mut opts = vec![148u8, 4, 0, 0, 1]; // router alert, no-op
    opts.extend_from_slice(&[7, 7, 8]); // record route, one address
    opts.extend_from_slice(&hop.octets());
    opts.extend_from_slice(&[68, 12, 13, 1]); // timestamps with addresses, one pair
    opts.extend_from_slice(&hop.octets());
    opts.extend_from_slice(&[0, 0, 0x12, 0x34]);
    let raw = ipv4_udp(&opts);
    let (packet, out) = walked(link::IPV4, &raw, Payload::Zero);
    assert_eq!(
        (out.reason, out.neutralised),
        (None, Neutralised::default())
    );
    let want = anonymizer().anon_v4(u32::from(hop)).to_be_bytes();
    assert_eq!(packet[20..28], raw[20..28]);
    assert_eq!(packet[28..32], want);
    assert_eq!(packet[32..36], raw[32..36]);
    assert_eq!(packet[36..40], want);
    assert_eq!(packet[40..44], raw[40..44]);
    assert!(header_checksum_ok(&packet));
}

#[test]
fn malformed_ipv4_option_list_becomes_nops_and_is_counted() {
    for opts in [&[7u8, 40, 4, 1, 2, 3][..], &[7, 1], &[1, 1, 1, 82]] {
        let raw = ipv4_udp(opts);
        let (packet, out) = walked(link::IPV4, &raw, Payload::Drop);
        assert_eq!(out.reason, None);
        let hl = usize::from(raw[0] & 0x0f) * 4;
        let from = opts.iter().position(|&b| b != 1).unwrap();
        assert!(
            packet[20 + from..hl].iter().all(|&b| b == 1),
            "{packet:02x?}"
        );
        assert!(out.neutralised.contains(Neutral::Ipv4Option));
        assert!(header_checksum_ok(&packet));
    }
}

#[test]
fn known_tcp_options_kept_byte_for_byte_and_checksums_right() {
    let mut opts = vec![2u8, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10];
    opts.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    opts.extend_from_slice(&[5, 10, 0, 0, 0, 1, 0, 0, 0, 9]);
    opts.extend_from_slice(&[28, 4, 0, 9]); // user timeout: not on the list
    let seg = build::Tcp {
        sport: 1,
        dport: 2,
        seq: 3,
        ack: 4,
        flags: build::tcp_flags::ACK,
        window: 5,
        options: &opts,
        payload: b"tcp payload bytes",
    }
    .build(SRC.into(), DST.into());
    let raw = build::ipv4(SRC, DST, proto::TCP, V4Opts::default(), &seg);
    for payload in [Payload::Keep(usize::MAX), Payload::Zero, Payload::Keep(0)] {
        let (mut packet, out) = walked(link::IPV4, &raw, payload);
        assert_eq!(out.reason, None);
        assert_eq!(packet[40..70], raw[40..70]);
        assert_eq!(packet[70..74], [1; 4]);
        assert!(out.neutralised.contains(Neutral::TcpOption));
        // a cut payload is put back: the incrementally updated checksum must hold
        packet[out.caplen..].copy_from_slice(&raw[out.caplen..]);
        if payload != Payload::Zero {
            assert!(tcp_checksum_ok(&packet), "{payload:?}");
        }
        assert!(header_checksum_ok(&packet));
    }
}

/// Unknown IPv6 options of every length, and malformed tails, become padding that parses
/// as Pad1 and PadN only and covers the header exactly.
#[test]
fn ipv6_padding_of_every_length_is_pad1_and_padn() {
    let (src, dst): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    for n in (0..=255usize).chain([300, 600, 1000]) {
        let mut opts = vec![0x3eu8, n.min(255) as u8];
        opts.resize(2 + n, 0x77);
        let udp = build::udp(src.into(), dst.into(), 1, 2, b"padded payload");
        let hbh = build::ipv6_ext(proto::UDP, &opts);
        let raw = build::ipv6(src, dst, proto::HOPOPT, 64, &[hbh.clone(), udp].concat());
        let (packet, out) = walked(link::IPV6, &raw, Payload::Drop);
        assert_eq!(out.reason, None, "{n}");
        let hdr = &packet[42..40 + hbh.len()];
        let mut covered = 0;
        for item in Options::new(hdr, Style::Pad1) {
            match item {
                Tlv::Single { at } => covered = at + 1,
                Tlv::Option { at, kind: 1, len } => {
                    assert!(hdr[at + 2..at + len].iter().all(|&b| b == 0), "{n}");
                    covered = at + len;
                }
                other => panic!("{n}: {other:?} in {hdr:02x?}"),
            }
        }
        assert_eq!(covered, hdr.len(), "{n}");
    }
}

#[test]
fn ipv6_known_options_and_extension_fields() {
    let (src, dst): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    let home: Ipv6Addr = "2001:db8:40::40".parse().unwrap();
    let mut dst_opts = vec![
        5u8, 2, 0, 0, 0xc2, 4, 0, 1, 0, 0, 1, 2, 0xaa, 0xbb, 0xc9, 16,
    ];
    dst_opts.extend_from_slice(&home.octets());
    let udp = build::udp(src.into(), home.into(), 1, 2, b"home payload");
    let dest = build::ipv6_ext(proto::AH, &dst_opts);
    let mut ah = vec![proto::UDP, 4, 0xee, 0xee, 0, 0, 1, 0, 0, 0, 0, 1];
    ah.extend_from_slice(&[0xdd; 12]);
    let mut frag = build::ipv6_frag(proto::DSTOPTS, 0, true, 9);
    frag[1] = 0x99;
    let raw = build::ipv6(
        src,
        dst,
        proto::FRAGMENT,
        64,
        &[frag, dest, ah, udp].concat(),
    );
    let (packet, out) = walked(link::IPV6, &raw, Payload::Drop);
    assert_eq!(out.reason, None);
    assert_eq!(packet[41], 0, "fragment reserved byte");
    let d = 48;
    assert_eq!(
        packet[d + 2..d + 12],
        raw[d + 2..d + 12],
        "router alert, jumbo"
    );
    assert_eq!(packet[d + 12..d + 16], [1, 2, 0, 0], "PadN data zeroed");
    let want = anonymizer().anon_v6(u128::from(home)).to_be_bytes();
    assert_eq!(packet[d + 18..d + 34], want);
    let a = d + 40;
    assert_eq!(packet[a + 2..a + 4], [0, 0], "AH reserved");
    assert_eq!(packet[a + 4..a + 12], raw[a + 4..a + 12], "SPI, sequence");
    assert_eq!(packet[a + 12..a + 24], [0; 12], "ICV");
    for n in [Neutral::Ipv6Reserved, Neutral::AhIcv, Neutral::Ipv6Option] {
        assert!(out.neutralised.contains(n), "{n:?}");
    }
}

#[test]
fn icmp_rest_of_header_of_unknown_types_is_zeroed() {
    let icmp = build::icmp4(44, 0, [0xc0, 0, 2, 99], b"unknown icmp body");
    let raw = build::ipv4(SRC, DST, proto::ICMP, V4Opts::default(), &icmp);
    let (packet, out) = walked(link::IPV4, &raw, Payload::Zero);
    assert_eq!(packet[24..28], [0; 4]);
    assert!(out.neutralised.contains(Neutral::IcmpRest));
    assert!(ones_complement_ok(&packet[20..], 0));
    let echo = build::icmp4(8, 0, [0, 7, 0, 9], b"echo body bytes!");
    let raw = build::ipv4(SRC, DST, proto::ICMP, V4Opts::default(), &echo);
    let (packet, out) = walked(link::IPV4, &raw, Payload::Drop);
    assert_eq!(
        (packet[24..28].to_vec(), out.neutralised),
        (vec![0, 7, 0, 9], Neutralised::default())
    );
}

/// A quoted packet of a protocol the walker does not know keeps none of its bytes.
#[test]
fn quoted_unknown_protocol_keeps_nothing() {
    let inner = build::ipv4(
        DST,
        SRC,
        253,
        V4Opts::default(),
        &[0xc0, 0, 2, 1, 9, 9, 9, 9],
    );
    let icmp = build::icmp4(3, 1, [0; 4], &inner);
    let raw = build::ipv4(SRC, DST, proto::ICMP, V4Opts::default(), &icmp);
    let (_, out) = walked(link::IPV4, &raw, Payload::Drop);
    assert_eq!(out.payload_at, 20 + 8 + 20);
}

/// Found by the leak property test: the gateway of a redirect quoted in an ICMP error was
/// kept (only a redirect's own gateway was anonymized).
#[test]
fn quoted_redirect_gateway_is_anonymized() {
    let gateway = Ipv4Addr::new(100, 64, 9, 9);
    let redirect = build::icmp4(5, 1, gateway.octets(), &[0u8; 28]);
    let quoted = build::ipv4(DST, SRC, proto::ICMP, V4Opts::default(), &redirect);
    let error = build::icmp4(11, 0, [0; 4], &quoted[..28]);
    let raw = build::ipv4(SRC, DST, proto::ICMP, V4Opts::default(), &error);
    let (packet, out) = walked(link::IPV4, &raw, Payload::Drop);
    assert_eq!(out.payload_at, 20 + 8 + 28);
    assert!(!contains(&packet[..out.caplen], &gateway.octets()));
}
