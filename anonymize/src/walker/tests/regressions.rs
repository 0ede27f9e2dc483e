//! The findings of issue 8 (1 to 5), each a test that failed on the walker before the fix
//! (checked by running this file against it) and passes now.

use super::*;
use lander_trace::synth::build::{self, V4Opts};
use std::net::{Ipv4Addr, Ipv6Addr};

pub(super) const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
pub(super) const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 0xf0, 20);
pub(super) const SRC6: Ipv6Addr = Ipv6Addr::new(
    0x2001, 0xdb8, 0x1234, 0x5678, 0x9abc, 0xdef0, 0x1357, 0x2468,
);
pub(super) const DST6: Ipv6Addr = Ipv6Addr::new(
    0x2001, 0xdb8, 0xaaaa, 0xbbbb, 0xcccc, 0xdddd, 0xeeee, 0xf00d,
);

pub(super) fn udp4(payload: &[u8]) -> Vec<u8> {
    build::udp(SRC.into(), DST.into(), 5000, 9999, payload)
}

pub(super) fn ipv4_with_options(options: &[u8], l4: &[u8]) -> Vec<u8> {
    let o = V4Opts {
        options,
        ..V4Opts::default()
    };
    build::ipv4(SRC, DST, proto::UDP, o, l4)
}

pub(super) fn tcp(
    options: &[u8],
    payload: &[u8],
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
) -> Vec<u8> {
    build::Tcp {
        sport: 40000,
        dport: 443,
        seq: 7,
        ack: 0,
        flags: build::tcp_flags::SYN,
        window: 1000,
        options,
        payload,
    }
    .build(src, dst)
}

/// Finding 1: an IPv4 timestamp option (type 68) of length 4, 5 or 6 made `at + len - 7`
/// wrap: the option loop ran ~2^61 times in release builds (and panicked in debug ones).
#[test]
fn ipv4_timestamp_option_of_length_4_to_6_ends_the_walk() {
    for len in 4u8..=6 {
        let mut opt = vec![68, len, 5, 1];
        opt.resize(usize::from(len), 0xee);
        let raw = ipv4_with_options(&opt, &udp4(b"timestamp payload"));
        let hl = usize::from(raw[0] & 0x0f) * 4;
        let mut packet = raw.clone();
        let out = walk(
            link::IPV4,
            &mut packet,
            &Policy::default(),
            &mut anonymizer(),
        );
        assert_eq!(out.reason, None, "length {len}");
        assert_eq!(out.payload_at, hl + 8);
        assert!(
            !packet[20..hl].contains(&0xee),
            "length {len}: {packet:02x?}"
        );
        assert!(!contains(&packet[..out.caplen], &SRC.octets()));
    }
}

/// Ethernet over MPLS without a control word, the inner frame given its MACs.
pub(super) fn pseudowire(dst_mac: [u8; 6], src_mac: [u8; 6], ethertype: u16, ip: &[u8]) -> Vec<u8> {
    let inner = build::ethernet(dst_mac, src_mac, &[], ethertype, ip);
    let labelled = build::mpls(&[16_001], &inner);
    build::ethernet(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        &[],
        0x8847,
        &labelled,
    )
}

/// Finding 2 (IPv4): an Ethernet pseudowire whose destination MAC starts with `0x4_` was
/// taken for IPv4. These MACs make the old walker read a 60-byte "TCP header" over the inner
/// IP header, which left with its raw addresses.
#[test]
fn ethernet_pseudowire_whose_mac_looks_like_ipv4_is_walked_as_ethernet() {
    let payload = [0x5au8; 40];
    let seg = tcp(&[], &payload, SRC.into(), DST.into());
    let ip = build::ipv4(SRC, DST, proto::TCP, V4Opts::default(), &seg);
    let raw = pseudowire(
        [0x45, 0, 0, 0x60, 0, 0],
        [0, 0, 0x11, 6, 0x22, 0x33],
        0x0800,
        &ip,
    );
    let mut anon = anonymizer();
    let mut frame = raw.clone();
    let out = walk(link::ETHERNET, &mut frame, &Policy::default(), &mut anon);
    let kept = &frame[..out.caplen];
    for a in [SRC, DST] {
        assert!(!contains(kept, &a.octets()), "{a} left raw: {kept:02x?}");
    }
    let inner_ip = 14 + 4 + 14;
    let expected = anon.anon_v4(u32::from(SRC)).to_be_bytes();
    assert_eq!(frame[inner_ip + 12..inner_ip + 16], expected);
    assert_eq!(out.payload_at, inner_ip + 40);
}

/// Finding 2 (IPv6): the same with a destination MAC starting with `0x6_`, taken for IPv6;
/// 6 bytes of the inner destination address left raw.
#[test]
fn ethernet_pseudowire_whose_mac_looks_like_ipv6_is_walked_as_ethernet() {
    let udp = build::udp(SRC6.into(), DST6.into(), 5000, 9999, &[0x6bu8; 30]);
    let ip = build::ipv6(SRC6, DST6, proto::UDP, 64, &udp);
    let raw = pseudowire(
        [0x60, 0x1d, 0x0f, 0xaa, 0xbb, 0xcc],
        [0x11, 0x40, 0x00, 0x5e, 0x00, 0x53],
        0x86dd,
        &ip,
    );
    let mut anon = anonymizer();
    let mut frame = raw.clone();
    let out = walk(link::ETHERNET, &mut frame, &Policy::default(), &mut anon);
    let kept = &frame[..out.caplen];
    for a in [SRC6, DST6] {
        for w in a.octets().windows(4) {
            assert!(!contains(kept, w), "{w:02x?} of {a} left raw: {kept:02x?}");
        }
    }
    let inner_ip = 14 + 4 + 14;
    let expected = anon.anon_v6(u128::from(DST6)).to_be_bytes();
    assert_eq!(frame[inner_ip + 24..inner_ip + 40], expected);
    assert_eq!(out.payload_at, inner_ip + 48);
}

/// Finding 3 (TCP): MPTCP ADD_ADDR carries an address, and its HMAC would confirm a guess
/// of it; both were copied.
#[test]
fn mptcp_add_addr_address_anonymized_and_hmac_zeroed() {
    let advertised = Ipv4Addr::new(203, 0, 113, 77);
    let advertised6: Ipv6Addr = "2001:db8:77::77".parse().unwrap();
    let hmac = [0xa1u8, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8];
    // ADD_ADDR, IPv4, address ID 1, port 8080, HMAC: 18 bytes
    let mut v4 = vec![30u8, 18, 0x30, 1];
    v4.extend_from_slice(&advertised.octets());
    v4.extend_from_slice(&8080u16.to_be_bytes());
    v4.extend_from_slice(&hmac);
    // ADD_ADDR, IPv6, echo (no HMAC): 20 bytes
    let mut v6 = vec![30u8, 20, 0x30, 2];
    v6.extend_from_slice(&advertised6.octets());
    for opts in [v4, v6] {
        let seg = tcp(&opts, b"", SRC.into(), DST.into());
        let raw = build::ipv4(SRC, DST, proto::TCP, V4Opts::default(), &seg);
        let mut anon = anonymizer();
        let mut packet = raw.clone();
        let out = walk(link::IPV4, &mut packet, &Policy::default(), &mut anon);
        assert_eq!(out.reason, None);
        let kept = &packet[..out.caplen];
        assert!(!contains(kept, &advertised.octets()));
        assert!(!contains(kept, &advertised6.octets()));
        assert!(!contains(kept, &hmac[..4]) && !contains(kept, &hmac[4..]));
        let option = &packet[40..40 + opts.len()];
        match opts[1] {
            18 => {
                let want = anon.anon_v4(u32::from(advertised)).to_be_bytes();
                assert_eq!(option[4..8], want);
                assert_eq!(option[8..10], 8080u16.to_be_bytes());
                assert_eq!(option[10..18], [0; 8]);
            }
            _ => {
                let want = anon.anon_v6(u128::from(advertised6)).to_be_bytes();
                assert_eq!(option[4..20], want);
            }
        }
    }
}

/// Finding 3 (TCP): unknown and experimental options were copied verbatim.
#[test]
fn unknown_tcp_options_become_nops() {
    let secret = [0xc0u8, 0x00, 0x02, 0x63];
    let mut opts = vec![2u8, 4, 5, 0xb4]; // MSS, kept
    opts.extend_from_slice(&[253, 6]); // experimental
    opts.extend_from_slice(&secret);
    opts.extend_from_slice(&[34, 6]); // fast open cookie
    opts.extend_from_slice(&secret);
    opts.extend_from_slice(&[0, 0xc0, 0, 2]); // end of list, then garbage
    let seg = tcp(&opts, b"", SRC.into(), DST.into());
    let raw = build::ipv4(SRC, DST, proto::TCP, V4Opts::default(), &seg);
    let mut packet = raw.clone();
    let out = walk(
        link::IPV4,
        &mut packet,
        &Policy::default(),
        &mut anonymizer(),
    );
    assert_eq!(out.reason, None);
    assert_eq!(packet[40..44], [2, 4, 5, 0xb4]);
    assert_eq!(packet[44..56], [1; 12]);
    assert_eq!(packet[56..60], [0; 4]);
    assert!(!contains(&packet[..out.caplen], &secret));
}

/// Finding 3 (IPv4): options other than RR/SRR/TS were copied; traceroute (82) carries
/// the originator's address.
#[test]
fn ipv4_traceroute_option_is_neutralised() {
    let originator = Ipv4Addr::new(100, 64, 7, 9);
    let mut opt = vec![82u8, 12, 0, 1, 0, 5, 0, 0];
    opt.extend_from_slice(&originator.octets());
    let raw = ipv4_with_options(&opt, &udp4(b"traceroute payload"));
    let mut packet = raw.clone();
    let out = walk(
        link::IPV4,
        &mut packet,
        &Policy::default(),
        &mut anonymizer(),
    );
    assert_eq!(out.reason, None);
    assert!(!contains(&packet[..out.caplen], &originator.octets()));
    assert_eq!(packet[20..32], [1; 12]);
}

/// Finding 3 (IPv6): hop-by-hop and destination options other than the home address were
/// copied verbatim.
#[test]
fn ipv6_unknown_options_become_padn() {
    let hidden: Ipv6Addr = "2001:db8:dead:beef::99".parse().unwrap();
    let mut unknown = vec![0x3eu8, 16];
    unknown.extend_from_slice(&hidden.octets());
    let hbh = build::ipv6_ext(proto::DSTOPTS, &unknown);
    let dst_opts = build::ipv6_ext(
        proto::UDP,
        &[&[0x1eu8, 4][..], &hidden.octets()[..4]].concat(),
    );
    let udp = build::udp(SRC6.into(), DST6.into(), 5000, 9999, b"options payload");
    let raw = build::ipv6(
        SRC6,
        DST6,
        proto::HOPOPT,
        64,
        &[hbh.clone(), dst_opts, udp].concat(),
    );
    let mut packet = raw.clone();
    let out = walk(
        link::IPV6,
        &mut packet,
        &Policy::default(),
        &mut anonymizer(),
    );
    assert_eq!(out.reason, None);
    let kept = &packet[..out.caplen];
    assert!(!contains(kept, &hidden.octets()[..4]), "{kept:02x?}");
    assert!(!contains(kept, &hidden.octets()[12..]));
    // the unknown option became one PadN of its length
    assert_eq!(packet[42..44], [1, 16]);
    assert_eq!(packet[44..60], [0; 16]);
}

/// Finding 3 (IPv6 routing): the bytes past the addresses (SRH TLVs, a type 0 header's odd
/// 8 bytes) were copied.
#[test]
fn routing_header_bytes_past_the_addresses_are_zeroed() {
    let segment: Ipv6Addr = "2001:db8:5e9::1".parse().unwrap();
    let hidden = [0xc6u8, 0x33, 0x64, 0x07];
    // segment routing: one segment, then an HMAC TLV (type 5) holding `hidden`
    let mut srh = vec![4u8, 0, 0, 0, 0, 0];
    srh.extend_from_slice(&segment.octets());
    srh.extend_from_slice(&[5, 6, 0, 0]);
    srh.extend_from_slice(&hidden);
    // type 0: one address and 8 more bytes
    let mut type0 = vec![0u8, 0, 0, 0, 0, 0];
    type0.extend_from_slice(&segment.octets());
    type0.extend_from_slice(&[&hidden[..], &hidden[..]].concat());
    for routing in [srh, type0] {
        let rh = build::ipv6_ext(proto::UDP, &routing);
        let udp = build::udp(SRC6.into(), DST6.into(), 5000, 9999, b"routed payload");
        let raw = build::ipv6(SRC6, DST6, proto::ROUTING, 64, &[rh, udp].concat());
        let mut packet = raw.clone();
        let out = walk(
            link::IPV6,
            &mut packet,
            &Policy::default(),
            &mut anonymizer(),
        );
        assert_eq!(out.reason, None);
        let kept = &packet[..out.caplen];
        assert!(!contains(kept, &hidden), "{kept:02x?}");
        assert!(!contains(kept, &segment.octets()));
    }
}

/// A Linux cooked (v1) frame of ARPHRD type `hatype` with the 4-byte address `addr`.
pub(super) fn sll_v1(hatype: u16, addr: [u8; 4], ip: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8, 0];
    h.extend_from_slice(&hatype.to_be_bytes());
    h.extend_from_slice(&4u16.to_be_bytes());
    h.extend_from_slice(&addr);
    h.extend_from_slice(&[0; 4]);
    h.extend_from_slice(&0x0800u16.to_be_bytes());
    h.extend_from_slice(ip);
    h
}

/// Finding 4: on GRE tunnel interfaces the cooked header's "link-layer address" is the
/// tunnel endpoint's IPv4 address; it was kept (under the default `--mac keep`).
#[test]
fn linux_cooked_gre_tunnel_address_is_anonymized() {
    let endpoint = Ipv4Addr::new(203, 0, 113, 200);
    let ip = ipv4_with_options(&[], &udp4(b"tunnelled payload"));
    for hatype in [778u16, 776, 768] {
        let raw = sll_v1(hatype, endpoint.octets(), &ip);
        let mut anon = anonymizer();
        let mut frame = raw.clone();
        let out = walk(link::LINUX_SLL, &mut frame, &Policy::default(), &mut anon);
        assert_eq!(out.reason, None);
        assert!(
            !contains(&frame[..out.caplen], &endpoint.octets()),
            "{hatype}"
        );
        let want = anon.anon_v4(u32::from(endpoint)).to_be_bytes();
        assert_eq!(frame[6..10], want, "{hatype}");
    }
}

/// Finding 5: `--mac scramble` XORed every address with one mask, so a single broadcast
/// frame gave the mask, hence every address, away. Now the broadcast address stays
/// broadcast, and two addresses one bit apart are not one XOR apart.
#[test]
fn mac_scramble_is_no_fixed_xor() {
    let policy = Policy {
        mac: MacPolicy::Scramble(MacKey(*b"scramble-key-scramble-key-scram!")),
        ..Policy::default()
    };
    let a = [0x00u8, 0x1b, 0x21, 0x3a, 0x4c, 0x5d];
    let mut b = a;
    b[5] ^= 0x01;
    let ip = ipv4_with_options(&[], &udp4(b"broadcast payload"));
    let mut outs = Vec::new();
    for src in [a, b] {
        let mut frame = build::ethernet([0xff; 6], src, &[], 0x0800, &ip);
        walk(link::ETHERNET, &mut frame, &policy, &mut anonymizer());
        assert_eq!(frame[..6], [0xff; 6]);
        let xor: Vec<u8> = frame[6..12].iter().zip(src).map(|(o, i)| o ^ i).collect();
        assert_ne!(xor, vec![0; 6]);
        outs.push(xor);
    }
    assert_ne!(outs[0], outs[1]);
}
