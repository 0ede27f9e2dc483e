//! Tunnels walked into: the inner packet anonymized like the outer one, the tunnel's own
//! checksum and the outer ones right, reserved bytes and options zeroed, and payloads whose
//! tunnel was only guessed from a port cut when they do not parse.

use super::*;
use lander_trace::synth::build::{self, V4Opts};
use std::net::Ipv4Addr;

const OUTER_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OUTER_DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const INNER_SRC: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
const INNER_DST: Ipv4Addr = Ipv4Addr::new(10, 4, 5, 6);
const PAYLOAD: &[u8] = b"inner payload, never to be kept";

fn inner_ip() -> Vec<u8> {
    let udp = build::udp(INNER_SRC.into(), INNER_DST.into(), 7000, 7001, PAYLOAD);
    build::ipv4(INNER_SRC, INNER_DST, proto::UDP, V4Opts::default(), &udp)
}

fn inner_ethernet() -> Vec<u8> {
    build::ethernet(
        [2, 0, 0, 0, 0, 0xa],
        [2, 0, 0, 0, 0, 0xb],
        &[],
        0x0800,
        &inner_ip(),
    )
}

fn outer(protocol: u8, payload: &[u8]) -> Vec<u8> {
    build::ipv4(OUTER_SRC, OUTER_DST, protocol, V4Opts::default(), payload)
}

fn outer_udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    let udp = build::udp(OUTER_SRC.into(), OUTER_DST.into(), 40000, dport, payload);
    outer(proto::UDP, &udp)
}

/// Whether the UDP checksum of the IPv4 packet at `ip` holds.
fn udp4_ok(packet: &[u8], ip: usize) -> bool {
    let total = usize::from(u16::from_be_bytes([packet[ip + 2], packet[ip + 3]]));
    let dgram = &packet[ip + 20..ip + total];
    let pseudo =
        checksum::sum(&packet[ip + 12..ip + 20]) + u64::from(proto::UDP) + dgram.len() as u64;
    ones_complement_ok(dgram, pseudo)
}

/// Walks `raw` (raw IPv4) keeping the payload, then dropping it; checks the inner packet at
/// `inner` (IPv4/UDP) is anonymized, nothing raw is left, and `checks` hold (with the cut
/// payload put back, for the incrementally updated checksums).
fn walk_tunnel(raw: &[u8], inner: usize, checks: impl Fn(&[u8]) -> bool) -> WalkOutcome {
    let mut anon = anonymizer();
    let mut last = None;
    for payload in [Payload::Keep(usize::MAX), Payload::Drop] {
        let policy = Policy {
            payload,
            mac: MacPolicy::Zero,
            ..Policy::default()
        };
        let mut packet = raw.to_vec();
        let out = walk(link::IPV4, &mut packet, &policy, &mut anon);
        assert_eq!(out.reason, None, "{payload:?}");
        let kept = &packet[..out.caplen];
        for a in [OUTER_SRC, OUTER_DST, INNER_SRC, INNER_DST] {
            assert!(!contains(kept, &a.octets()), "{a} raw in {kept:02x?}");
        }
        let want = anon.anon_v4(u32::from(INNER_SRC)).to_be_bytes();
        assert_eq!(packet[inner + 12..inner + 16], want);
        assert_eq!(out.payload_at, inner + 28);
        packet[out.caplen..].copy_from_slice(&raw[out.caplen..]);
        assert!(ones_complement_ok(&packet[..20], 0));
        assert!(ones_complement_ok(&packet[inner..inner + 20], 0));
        assert!(udp4_ok(&packet, inner), "{payload:?}");
        assert!(checks(&packet), "{payload:?}");
        last = Some(out);
    }
    last.unwrap()
}

#[test]
fn gre_with_checksum_key_and_sequence() {
    let mut gre = vec![
        0xb0, 0, 0x08, 0x00, 0, 0, 0xee, 0xee, 0, 0, 0, 42, 0, 0, 0, 7,
    ];
    gre.extend(inner_ip());
    let c = lander_trace::checksum::checksum(0, &gre);
    gre[4..6].copy_from_slice(&c.to_be_bytes());
    let raw = outer(proto::GRE, &gre);
    let out = walk_tunnel(&raw, 20 + 16, |p| {
        p[26..28] == [0, 0] && p[28..36] == raw[28..36] && ones_complement_ok(&p[20..], 0)
    });
    assert!(out.neutralised.contains(Neutral::TunnelReserved));
}

#[test]
fn gre_ethernet_and_erspan() {
    let teb = [&[0u8, 0, 0x65, 0x58][..], &inner_ethernet()].concat();
    walk_tunnel(&outer(proto::GRE, &teb), 20 + 4 + 14, |_| true);
    let type1 = [&[0u8, 0, 0x88, 0xbe][..], &inner_ethernet()].concat();
    walk_tunnel(&outer(proto::GRE, &type1), 20 + 4 + 14, |_| true);
    let mut ii = vec![0x10u8, 0, 0x88, 0xbe, 0, 0, 0, 1];
    ii.extend_from_slice(&[0x10, 0x05, 0x08, 0x01, 0xff, 0xf1, 0x23, 0x45]);
    ii.extend(inner_ethernet());
    let out = walk_tunnel(&outer(proto::GRE, &ii), 20 + 16 + 14, |p| {
        p[32..34] == [0, 1]
    });
    assert!(out.neutralised.contains(Neutral::TunnelReserved));
    let mut iii = vec![0u8, 0, 0x22, 0xeb];
    iii.extend_from_slice(&[0x20, 0x05, 0x08, 0x01, 1, 2, 3, 4, 0, 9, 0x00, 0x01]);
    iii.extend_from_slice(&[0x0c, 0xc0, 0, 2, 0xc0, 0, 2, 0x0a]);
    iii.extend(inner_ethernet());
    let out = walk_tunnel(&outer(proto::GRE, &iii), 20 + 24 + 14, |p| {
        p[36..44] == [0x0c, 0, 0, 0, 0, 0, 0, 0]
    });
    assert!(out.neutralised.contains(Neutral::ErspanPlatform));
}

#[test]
fn vxlan_geneve_gtp_and_l2tp() {
    let vxlan = [
        &[0x88u8, 0x12, 0x34, 0x56, 0, 0, 7, 0x99][..],
        &inner_ethernet(),
    ]
    .concat();
    walk_tunnel(&outer_udp(4789, &vxlan), 28 + 8 + 14, |p| {
        p[28..36] == [8, 0, 0, 0, 0, 0, 7, 0] && udp4_ok(p, 0)
    });
    let mut geneve = vec![0x01u8, 0x3f, 0x65, 0x58, 0, 0, 9, 0x77];
    geneve.extend_from_slice(&[0xc0, 0, 2, 0x0a]);
    geneve.extend(inner_ethernet());
    let out = walk_tunnel(&outer_udp(6081, &geneve), 28 + 12 + 14, |p| {
        p[28..40] == [0x01, 0, 0x65, 0x58, 0, 0, 9, 0, 0, 0, 0, 0] && udp4_ok(p, 0)
    });
    assert!(out.neutralised.contains(Neutral::GeneveOption));
    let inner = inner_ip();
    let mut gtp = vec![0x34u8, 255];
    gtp.extend_from_slice(&((8 + inner.len()) as u16).to_be_bytes());
    gtp.extend_from_slice(&[0, 0, 0, 5, 0, 1, 0, 0x85, 1, 0xc0, 0x02, 0]);
    gtp.extend_from_slice(&inner);
    let out = walk_tunnel(&outer_udp(2152, &gtp), 28 + 16, |p| {
        p[41..43] == [0, 0] && udp4_ok(p, 0)
    });
    assert!(out.neutralised.contains(Neutral::GtpExtension));
    let mut l2tp = vec![0x42u8, 0x02];
    l2tp.extend_from_slice(&((16 + inner.len()) as u16).to_be_bytes());
    l2tp.extend_from_slice(&[0, 1, 0, 2, 0, 2, 0xc0, 0x02, 0xff, 0x03, 0x00, 0x21]);
    l2tp.extend_from_slice(&inner);
    let out = walk_tunnel(&outer_udp(1701, &l2tp), 28 + 16, |p| {
        p[38..40] == [0, 0] && udp4_ok(p, 0)
    });
    assert!(out.neutralised.contains(Neutral::L2tpPadding));
}

/// A datagram to a tunnel's port that is no such tunnel: the guess is undone (the inner
/// MAC rewrites too, in the outer UDP checksum) and the frame cut after the UDP header.
#[test]
fn udp_tunnel_port_with_other_payload_is_cut_after_udp() {
    let payload = b"hello world, this is not a vxlan frame at all";
    for port in [4789u16, 6081, 2152, 1701] {
        let raw = outer_udp(port, payload);
        let policy = Policy {
            payload: Payload::Zero,
            mac: MacPolicy::Zero,
            ..Policy::default()
        };
        let mut packet = raw.clone();
        let out = walk(link::IPV4, &mut packet, &policy, &mut anonymizer());
        assert_eq!(
            (out.reason, out.caplen),
            (Some(Reason::UnparsedTunnel), 28),
            "{port}"
        );
        assert!(out.neutralised.is_empty());
        packet[28..].copy_from_slice(&raw[28..]);
        assert!(udp4_ok(&packet, 0), "{port}");
    }
}

/// A guessed tunnel cut by the capture after an inner IP header parsed whole keeps what
/// was walked.
#[test]
fn snaplen_cut_inside_a_guessed_tunnel_keeps_the_inner_ip_header() {
    let vxlan = [&[0x08u8, 0, 0, 0, 0, 0, 7, 0][..], &inner_ethernet()].concat();
    let raw = outer_udp(4789, &vxlan);
    let inner = 28 + 8 + 14;
    let mut packet = raw[..inner + 24].to_vec();
    let out = walk(
        link::IPV4,
        &mut packet,
        &Policy::default(),
        &mut anonymizer(),
    );
    assert_eq!(
        (out.reason, out.caplen),
        (Some(Reason::TruncatedUdp), inner + 20)
    );
    let mut packet = raw[..inner + 10].to_vec();
    let out = walk(
        link::IPV4,
        &mut packet,
        &Policy::default(),
        &mut anonymizer(),
    );
    assert_eq!((out.reason, out.caplen), (Some(Reason::UnparsedTunnel), 28));
}

#[test]
fn pppoe_sessions_walked_other_ppp_cut() {
    let ip = inner_ip();
    let mut session = vec![0x11u8, 0, 0x12, 0x34];
    session.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    session.extend_from_slice(&[0x00, 0x21]);
    session.extend_from_slice(&ip);
    let mut frame = build::ethernet([2; 6], [4; 6], &[], 0x8864, &session);
    let mut anon = anonymizer();
    let out = walk(link::ETHERNET, &mut frame, &Policy::default(), &mut anon);
    assert_eq!((out.reason, out.payload_at), (None, 14 + 8 + 28));
    assert_eq!(
        frame[22 + 12..22 + 16],
        anon.anon_v4(u32::from(INNER_SRC)).to_be_bytes()
    );
    session[6..8].copy_from_slice(&[0xc0, 0x21]);
    let mut lcp = build::ethernet([2; 6], [4; 6], &[], 0x8864, &session);
    let out = walk(link::ETHERNET, &mut lcp, &Policy::default(), &mut anon);
    assert_eq!((out.reason, out.caplen), (Some(Reason::UnknownPpp), 20));
    let mut discovery = build::ethernet([2; 6], [4; 6], &[], 0x8863, &session);
    let out = walk(
        link::ETHERNET,
        &mut discovery,
        &Policy::default(),
        &mut anon,
    );
    assert_eq!(
        (out.reason, out.caplen),
        (Some(Reason::UnknownEthertype), 14)
    );
}

#[test]
fn unknown_gre_and_deep_nesting_are_cut() {
    for gre in [[0u8, 0, 0x88, 0xb5], [0x40, 0, 8, 0], [0, 1, 0x88, 0x0b]] {
        let raw = outer(proto::GRE, &[&gre[..], &inner_ip()].concat());
        let mut packet = raw.clone();
        let out = walk(
            link::IPV4,
            &mut packet,
            &Policy::default(),
            &mut anonymizer(),
        );
        assert_eq!((out.reason, out.caplen), (Some(Reason::UnknownTunnel), 20));
    }
    let mut packet = inner_ip();
    for _ in 0..12 {
        packet = outer(proto::GRE, &[&[0u8, 0, 8, 0][..], &packet].concat());
    }
    let out = walk(
        link::IPV4,
        &mut packet,
        &Policy::default(),
        &mut anonymizer(),
    );
    assert_eq!(out.reason, Some(Reason::TooDeep));
    assert!(!contains(&packet[..out.caplen], &OUTER_SRC.octets()));
}
