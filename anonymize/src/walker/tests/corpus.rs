//! The regression frames as fuzz corpus entries (`fuzz/corpus/walker/regress-*`: a selector
//! byte naming the link type, as the `walker` fuzz target reads it, then the frame). The
//! test keeps the files equal to the frames built here; `LANDER_WRITE_CORPUS=1` rewrites
//! them.

use super::regressions::{ipv4_with_options, pseudowire, sll_v1, tcp, udp4, DST, DST6, SRC, SRC6};
use super::*;
use lander_trace::synth::build::{self, V4Opts};
use std::path::PathBuf;

/// Name, link type and frame of each regression case.
fn frames() -> Vec<(String, u32, Vec<u8>)> {
    let mut out = Vec::new();
    for len in 4u8..=6 {
        let mut opt = vec![68, len, 5, 1];
        opt.resize(usize::from(len), 0xee);
        let ip = ipv4_with_options(&opt, &udp4(b"timestamp payload"));
        out.push((format!("ts-option-len{len}"), link::IPV4, ip));
    }
    let seg = tcp(&[], &[0x5a; 40], SRC.into(), DST.into());
    let ip = build::ipv4(SRC, DST, proto::TCP, V4Opts::default(), &seg);
    let pw = pseudowire(
        [0x45, 0, 0, 0x60, 0, 0],
        [0, 0, 0x11, 6, 0x22, 0x33],
        0x0800,
        &ip,
    );
    out.push(("mpls-pw-mac-4x".into(), link::ETHERNET, pw));
    let udp = build::udp(SRC6.into(), DST6.into(), 5000, 9999, &[0x6b; 30]);
    let ip6 = build::ipv6(SRC6, DST6, proto::UDP, 64, &udp);
    let mac6 = [0x60, 0x1d, 0x0f, 0xaa, 0xbb, 0xcc];
    let pw6 = pseudowire(mac6, [0x11, 0x40, 0, 0x5e, 0, 0x53], 0x86dd, &ip6);
    out.push(("mpls-pw-mac-6x".into(), link::ETHERNET, pw6));
    let tagged = build::ethernet(
        [0, 0x1b, 0x21, 1, 2, 3],
        [0, 0x1b, 0x21, 4, 5, 6],
        &[10],
        0x0800,
        &ip,
    );
    let labelled = build::mpls(&[16_001], &tagged);
    let no_cw = build::ethernet([2; 6], [4; 6], &[], 0x8847, &labelled);
    out.push(("mpls-pw-no-cw-vlan".into(), link::ETHERNET, no_cw));
    let mut add_addr = vec![30u8, 18, 0x30, 1, 203, 0, 113, 77, 0x1f, 0x90];
    add_addr.extend_from_slice(&[0xa1; 8]);
    let unknown = [253u8, 6, 0xc0, 0, 2, 0x63, 34, 6, 1, 2, 3, 4, 0, 0xc0, 0, 2];
    for (name, opts) in [
        ("mptcp-add-addr", &add_addr[..]),
        ("tcp-unknown-options", &unknown[..]),
    ] {
        let seg = tcp(opts, b"", SRC.into(), DST.into());
        let ip = build::ipv4(SRC, DST, proto::TCP, V4Opts::default(), &seg);
        out.push((name.into(), link::IPV4, ip));
    }
    let traceroute = [82u8, 12, 0, 1, 0, 5, 0, 0, 100, 64, 7, 9];
    let ip = ipv4_with_options(&traceroute, &udp4(b"traceroute payload"));
    out.push(("ipv4-traceroute-option".into(), link::IPV4, ip));
    let hbh = build::ipv6_ext(
        proto::UDP,
        &[
            0x3e, 16, 0x20, 1, 0xd, 0xb8, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0x99,
        ],
    );
    let udp = build::udp(SRC6.into(), DST6.into(), 5000, 9999, b"options payload");
    let ip6 = build::ipv6(SRC6, DST6, proto::HOPOPT, 64, &[hbh, udp.clone()].concat());
    out.push(("ipv6-unknown-option".into(), link::IPV6, ip6));
    let mut srh = vec![4u8, 0, 0, 0, 0, 0];
    srh.extend_from_slice(&DST6.octets());
    srh.extend_from_slice(&[5, 6, 0, 0, 0xc6, 0x33, 0x64, 0x07]);
    let rh = build::ipv6_ext(proto::UDP, &srh);
    let ip6 = build::ipv6(SRC6, DST6, proto::ROUTING, 64, &[rh, udp].concat());
    out.push(("srh-tlv".into(), link::IPV6, ip6));
    let ip = ipv4_with_options(&[], &udp4(b"tunnelled payload"));
    out.push((
        "sll-ipgre".into(),
        link::LINUX_SLL,
        sll_v1(778, [203, 0, 113, 200], &ip),
    ));
    out.push((
        "mac-broadcast".into(),
        link::ETHERNET,
        build::ethernet(
            [0xff; 6],
            [0, 0x1b, 0x21, 0x3a, 0x4c, 0x5d],
            &[],
            0x0800,
            &ip,
        ),
    ));
    let redirect = build::icmp4(5, 1, [100, 64, 9, 9], &[0u8; 28]);
    let quoted = build::ipv4(DST, SRC, proto::ICMP, V4Opts::default(), &redirect);
    let error = build::icmp4(11, 0, [0; 4], &quoted[..28]);
    let ip = build::ipv4(SRC, DST, proto::ICMP, V4Opts::default(), &error);
    out.push(("quoted-redirect".into(), link::IPV4, ip));
    out
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/walker")
}

#[test]
fn fuzz_corpus_holds_every_regression_frame() {
    let write = std::env::var_os("LANDER_WRITE_CORPUS").is_some();
    for (name, l, frame) in frames() {
        let selector = link::ALL.iter().position(|&x| x == l).unwrap() as u8;
        let entry = [&[selector][..], &frame].concat();
        let path = corpus_dir().join(format!("regress-{name}"));
        if write {
            std::fs::write(&path, &entry).unwrap();
        }
        let stored = std::fs::read(&path).unwrap_or_default();
        assert_eq!(
            stored,
            entry,
            "{} is stale (LANDER_WRITE_CORPUS=1 rewrites it)",
            path.display()
        );
        let out = walk(l, &mut frame.clone(), &Policy::default(), &mut anonymizer());
        assert!(out.work <= MAX_WORK, "{name}");
    }
}
