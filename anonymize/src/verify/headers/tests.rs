use std::net::{Ipv4Addr, Ipv6Addr};

use lander_trace::synth::build::{self, ethertype, proto, Tcp, V4Opts};

use super::*;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const S4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const D4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const S6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const D6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

fn read(link: u32, data: &[u8]) -> Layout {
    let mut l = Layout::default();
    l.reset(data.len(), true);
    recognise(link, data, &mut l);
    l
}

fn v4s(data: &[u8], l: &Layout) -> Vec<Ipv4Addr> {
    l.v4.iter()
        .chain(&l.extra_v4)
        .map(|&at| Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3]))
        .collect()
}

fn v6s(data: &[u8], l: &Layout) -> Vec<Ipv6Addr> {
    l.v6.iter()
        .chain(&l.extra_v6)
        .map(|&at| {
            let b: [u8; 16] = data[at..at + 16].try_into().unwrap();
            Ipv6Addr::from(b)
        })
        .collect()
}

fn udp4(payload: &[u8], dport: u16) -> Vec<u8> {
    let udp = build::udp(S4.into(), D4.into(), 5000, dport, payload);
    build::ipv4(S4, D4, proto::UDP, V4Opts::default(), &udp)
}

fn tcp4(options: &[u8]) -> Vec<u8> {
    let seg = Tcp {
        sport: 1,
        dport: 2,
        seq: 3,
        ack: 4,
        flags: 0x10,
        window: 5,
        options,
        payload: b"payload!payload!",
    }
    .build(S4.into(), D4.into());
    build::ipv4(S4, D4, proto::TCP, V4Opts::default(), &seg)
}

#[test]
fn ethernet_ipv4_tcp_is_all_explained_up_to_the_payload() {
    let f = build::ethernet(MAC_A, MAC_B, &[7], ethertype::IPV4, &tcp4(&[2, 4, 5, 0xb4]));
    let l = read(link::ETHERNET, &f);
    assert_eq!(v4s(&f, &l), vec![S4, D4]);
    assert!(l.complete);
    assert_eq!(l.payload_at, 18 + 20 + 24);
    assert!(l.classes[..l.payload_at].iter().all(|c| c.explained()));
    assert!(l.unexplained(&f).is_empty());
}

#[test]
fn unknown_tcp_option_is_unexplained_and_its_address_collected() {
    let opts = [1, 1, 99, 6, 192, 0, 2, 77, 0, 0, 0, 0];
    let f = build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &tcp4(&opts));
    let l = read(link::ETHERNET, &f);
    assert!(v4s(&f, &l).contains(&Ipv4Addr::new(192, 0, 2, 77)));
    let at = 14 + 20 + 20 + 2;
    assert_eq!(l.unexplained(&f), vec![(at, 6 + 4)]); // with the EOL padding after it
}

#[test]
fn mptcp_add_addr_is_an_address() {
    let opts = [30, 8, 0x30, 1, 203, 0, 113, 9];
    let f = build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &tcp4(&opts));
    let l = read(link::ETHERNET, &f);
    assert!(l.v4.contains(&(14 + 20 + 20 + 4)));
    assert!(l.unexplained(&f).is_empty());
}

#[test]
fn ipv4_options_record_route_timestamp_and_traceroute() {
    let mut opts = vec![7, 11, 4, 10, 0, 0, 1, 10, 0, 0, 2]; // RR, two addresses
    opts.extend_from_slice(&[68, 12, 5, 0x01, 10, 0, 0, 3, 0, 0, 0, 9]); // TS flag 1
    opts.extend_from_slice(&[82, 12, 0, 1, 0, 2, 0, 3, 10, 0, 0, 4]); // traceroute
    let ip = build::ipv4(
        S4,
        D4,
        proto::UDP,
        V4Opts {
            options: &opts,
            ..V4Opts::default()
        },
        &[0; 8],
    );
    let l = read(link::RAW, &ip);
    let found = v4s(&ip, &l);
    for last in 1..=4 {
        assert!(found.contains(&Ipv4Addr::new(10, 0, 0, last)), "{found:?}");
    }
    // the traceroute option is collected but not allowed out
    assert_eq!(l.unexplained(&ip), vec![(20 + 23, 13)]);
}

#[test]
fn ipv6_home_address_srh_and_unknown_option() {
    let mut hbh = vec![0xc9, 16];
    hbh.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 9).octets());
    hbh.extend_from_slice(&[0x3e, 2, 0xab, 0xcd]); // unknown option
    let mut srh = vec![4, 0, 1, 0, 0, 0]; // type 4, segleft 1, last entry 1
    srh.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 7, 0, 0, 0, 0, 7).octets());
    srh.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 8, 0, 0, 0, 0, 8).octets());
    let udp = build::udp(S6.into(), D6.into(), 1, 2, b"x");
    let chain = [
        build::ipv6_ext(proto::ROUTING, &hbh),
        build::ipv6_ext(proto::UDP, &srh),
        udp,
    ]
    .concat();
    let ip = build::ipv6(S6, D6, proto::HOPOPT, 64, &chain);
    let l = read(link::RAW, &ip);
    let found = v6s(&ip, &l);
    assert_eq!(found.len(), 5, "{found:?}");
    assert_eq!(l.unexplained(&ip), vec![(40 + 20, 4)]);
    assert!(l.complete);
}

#[test]
fn tunnels_are_followed_to_the_inner_addresses() {
    let inner = tcp4(&[]);
    let gre_key = [&[0x20u8, 0, 0x08, 0, 0, 0, 0, 42][..], &inner].concat();
    let vxlan = [
        &[8u8, 0, 0, 0, 0, 0, 1, 0][..],
        &build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &inner),
    ]
    .concat();
    let gtp = [
        &[0x34u8, 255, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0, 9, 0][..],
        &inner,
    ]
    .concat();
    let geneve = [&[1u8, 0, 0x08, 0, 0, 0, 1, 0, 0, 0, 0, 0][..], &inner].concat();
    let l2tp = [&[0x00u8, 0x02, 0, 1, 0, 2, 0xff, 0x03, 0, 0x21][..], &inner].concat();
    let outer_s = Ipv4Addr::new(203, 0, 113, 1);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "ipip",
            build::ipv4(outer_s, D4, proto::IPIP, V4Opts::default(), &inner),
        ),
        (
            "gre",
            build::ipv4(outer_s, D4, proto::GRE, V4Opts::default(), &gre_key),
        ),
        ("vxlan", udp4(&vxlan, 4789)),
        ("gtp-u", udp4(&gtp, 2152)),
        ("geneve", udp4(&geneve, 6081)),
        ("l2tp", udp4(&l2tp, 1701)),
    ];
    for (name, ip) in cases {
        let l = read(link::RAW, &ip);
        let found = v4s(&ip, &l);
        assert!(
            found.iter().filter(|a| **a == S4).count() >= 1,
            "{name}: {found:?}"
        );
        assert!(l.complete, "{name}");
        assert!(
            l.unexplained(&ip).is_empty(),
            "{name}: {:?}",
            l.unexplained(&ip)
        );
        assert_eq!(&ip[l.payload_at..], b"payload!payload!", "{name}");
    }
}

#[test]
fn mpls_ethernet_pseudowire_whose_mac_looks_like_ipv4() {
    let inner = build::ethernet(
        [0x45, 0, 0, 0, 0, 1],
        MAC_B,
        &[],
        ethertype::IPV4,
        &tcp4(&[]),
    );
    let f = build::ethernet(
        MAC_A,
        MAC_B,
        &[],
        ethertype::MPLS,
        &build::mpls(&[16], &inner),
    );
    let l = read(link::ETHERNET, &f);
    assert_eq!(v4s(&f, &l), vec![S4, D4]);
    assert!(l.complete);
    // the output replays the raw packet's choice
    let mut out = Layout::default();
    out.replaying(f.len(), &l);
    recognise(link::ETHERNET, &f, &mut out);
    assert_eq!(out.v4, l.v4);
}

#[test]
fn icmp_error_quote_and_redirect_gateway() {
    let quoted = &udp4(b"12345678", 53)[..28];
    let icmp = build::icmp4(5, 1, [10, 9, 9, 9], quoted);
    let ip = build::ipv4(D4, S4, proto::ICMP, V4Opts::default(), &icmp);
    let l = read(link::RAW, &ip);
    let found = v4s(&ip, &l);
    assert_eq!(found.len(), 5, "{found:?}");
    assert!(found.contains(&Ipv4Addr::new(10, 9, 9, 9)));
}

#[test]
fn cooked_capture_on_a_gre_interface_holds_an_ipv4_address() {
    let mut sll = vec![0, 0, 0x03, 0x0a, 0, 4, 192, 0, 2, 99, 0, 0, 0, 0, 0x08, 0];
    sll.extend_from_slice(&tcp4(&[]));
    let l = read(link::LINUX_SLL, &sll);
    assert!(v4s(&sll, &l).contains(&Ipv4Addr::new(192, 0, 2, 99)));
}

#[test]
fn every_truncation_and_random_bytes_are_safe() {
    let inner = tcp4(&[2, 4, 5, 0xb4, 99, 3, 1]);
    let frames = [
        build::ethernet(MAC_A, MAC_B, &[1, 2], ethertype::IPV4, &inner),
        build::ethernet(
            MAC_A,
            MAC_B,
            &[],
            ethertype::MPLS,
            &build::mpls(&[1, 2], &inner),
        ),
        udp4(&[8, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3], 4789),
    ];
    for f in &frames {
        for cut in 0..f.len() {
            for link in [0, 1, 101, 108, 113, 228, 229, 276] {
                let l = read(link, &f[..cut]);
                assert!(l.payload_at <= cut);
            }
        }
    }
}

proptest::proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
                                l in 0usize..8) {
        let links = [0, 1, 101, 108, 113, 228, 229, 276];
        let layout = read(links[l], &data);
        proptest::prop_assert!(layout.payload_at <= data.len());
        proptest::prop_assert_eq!(layout.classes.len(), data.len());
    }
}
