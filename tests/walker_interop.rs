//! The walker's rewrites checked by tshark: tunnels walked into (GRE with a checksum,
//! ERSPAN, VXLAN, Geneve, GTP-U, L2TP, PPPoE, MPLS), options neutralised (IPv4, IPv6, TCP)
//! and addresses in options anonymized must leave every checksum tshark can check valid,
//! and every packet dissected into the same protocol layers as before (payload kept).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use lander_trace::proto::{ethertype, ip as proto};
use lander_trace::synth::build::{self, V4Opts};

const KEY: &str = "lander-rs-walker-interop-key-32b";
const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
const C: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
const D: Ipv4Addr = Ipv4Addr::new(10, 4, 5, 6);
const MAC_A: [u8; 6] = [0x00, 0x1b, 0x21, 0x3a, 0x4c, 0x5d];
const MAC_B: [u8; 6] = [0x00, 0x25, 0x90, 0x01, 0x02, 0x03];

fn a6() -> Ipv6Addr {
    "2001:db8:1::10".parse().unwrap()
}

fn b6() -> Ipv6Addr {
    "2001:db8:2::20".parse().unwrap()
}

fn eth(et: u16, body: &[u8]) -> Vec<u8> {
    build::ethernet(MAC_A, MAC_B, &[], et, body)
}

fn tcp(src: IpAddr, dst: IpAddr, options: &[u8], payload: &[u8]) -> Vec<u8> {
    build::Tcp {
        sport: 40000,
        dport: 443,
        seq: 1000,
        ack: 2000,
        flags: build::tcp_flags::ACK | build::tcp_flags::PSH,
        window: 5000,
        options,
        payload,
    }
    .build(src, dst)
}

fn v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, options: &[u8], l4: &[u8]) -> Vec<u8> {
    let o = V4Opts {
        options,
        ..V4Opts::default()
    };
    build::ipv4(src, dst, protocol, o, l4)
}

fn inner_udp4() -> Vec<u8> {
    let udp = build::udp(C.into(), D.into(), 7000, 7001, b"inner udp payload bytes");
    v4(C, D, proto::UDP, &[], &udp)
}

fn inner_eth() -> Vec<u8> {
    let seg = tcp(C.into(), D.into(), &[2, 4, 5, 0xb4], b"inner tcp payload");
    build::ethernet(
        MAC_B,
        MAC_A,
        &[],
        ethertype::IPV4,
        &v4(C, D, proto::TCP, &[], &seg),
    )
}

fn udp_to(port: u16, body: &[u8]) -> Vec<u8> {
    let udp = build::udp(A.into(), B.into(), 40001, port, body);
    eth(ethertype::IPV4, &v4(A, B, proto::UDP, &[], &udp))
}

/// One frame of each kind the walker rewrites beyond plain IP.
fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // IPv4 options (traceroute, record route) and TCP options (MSS, experimental,
    // MPTCP ADD_ADDR with HMAC, timestamps)
    let mut v4_opts = vec![82u8, 12, 0, 1, 0, 5, 0, 0, 100, 64, 7, 9, 7, 7, 4];
    v4_opts.extend_from_slice(&B.octets());
    let mut tcp_opts = vec![2u8, 4, 5, 0xb4, 253, 6, 1, 2, 3, 4, 30, 18, 0x30, 1];
    tcp_opts.extend_from_slice(&C.octets());
    tcp_opts.extend_from_slice(&[0x1f, 0x90, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 8, 10]);
    tcp_opts.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    let seg = tcp(A.into(), B.into(), &tcp_opts, b"tcp payload with options");
    out.push(eth(ethertype::IPV4, &v4(A, B, proto::TCP, &v4_opts, &seg)));
    // IPv6 hop-by-hop (unknown option) and destination options (PadN with data)
    let hbh = build::ipv6_ext(proto::DSTOPTS, &[0x3e, 4, 9, 9, 9, 9]);
    let dst = build::ipv6_ext(proto::UDP, &[1, 4, 7, 7, 7, 7]);
    let udp = build::udp(
        a6().into(),
        b6().into(),
        5000,
        5001,
        b"ipv6 options payload",
    );
    let ip6 = build::ipv6(a6(), b6(), proto::HOPOPT, 64, &[hbh, dst, udp].concat());
    out.push(eth(ethertype::IPV6, &ip6));
    // ICMP error quoting a packet with options
    let quoted = v4(
        B,
        A,
        proto::UDP,
        &[148, 4, 0, 0],
        &build::udp(B.into(), A.into(), 53, 4000, b"q"),
    );
    let icmp = build::icmp4(11, 0, [0; 4], &quoted);
    out.push(eth(ethertype::IPV4, &v4(D, A, proto::ICMP, &[], &icmp)));
    // GRE with checksum, key and sequence number, carrying IPv4
    let mut gre = vec![0xb0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 7];
    gre.extend(inner_udp4());
    let c = lander_trace::checksum::checksum(0, &gre);
    gre[4..6].copy_from_slice(&c.to_be_bytes());
    out.push(eth(ethertype::IPV4, &v4(A, B, proto::GRE, &[], &gre)));
    // ERSPAN II
    let mut erspan = vec![0x10u8, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 5, 0, 1, 0, 0, 0, 3];
    erspan.extend(inner_eth());
    out.push(eth(ethertype::IPV4, &v4(A, B, proto::GRE, &[], &erspan)));
    // VXLAN, Geneve (one option), GTP-U (one extension header), L2TP with PPP
    out.push(udp_to(
        4789,
        &[&[8u8, 0, 0, 0, 0, 0, 9, 0][..], &inner_eth()].concat(),
    ));
    let geneve = [
        &[1u8, 0, 0x65, 0x58, 0, 0, 9, 0, 0, 0x80, 1, 0][..],
        &inner_eth(),
    ]
    .concat();
    out.push(udp_to(6081, &geneve));
    let inner = inner_udp4();
    let mut gtp = vec![0x34u8, 255];
    gtp.extend_from_slice(&((8 + inner.len()) as u16).to_be_bytes());
    gtp.extend_from_slice(&[0, 0, 0, 5, 0, 1, 0, 0x85, 1, 0x10, 0x09, 0]);
    gtp.extend_from_slice(&inner);
    out.push(udp_to(2152, &gtp));
    let mut l2tp = vec![0x40u8, 0x02];
    l2tp.extend_from_slice(&((12 + inner.len()) as u16).to_be_bytes());
    l2tp.extend_from_slice(&[0, 1, 0, 2, 0xff, 0x03, 0x00, 0x21]);
    l2tp.extend_from_slice(&inner);
    out.push(udp_to(1701, &l2tp));
    // PPPoE session, MPLS with IPv4, MPLS Ethernet pseudowire with a control word
    let mut pppoe = vec![0x11u8, 0, 0x12, 0x34];
    pppoe.extend_from_slice(&((inner.len() + 2) as u16).to_be_bytes());
    pppoe.extend_from_slice(&[0, 0x21]);
    pppoe.extend_from_slice(&inner);
    out.push(eth(ethertype::PPPOE_SESSION, &pppoe));
    out.push(eth(ethertype::MPLS, &build::mpls(&[100, 200], &inner)));
    let pw = [&[0u8, 0, 0, 1][..], &inner_eth()].concat();
    out.push(eth(ethertype::MPLS, &build::mpls(&[300], &pw)));
    out
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for (i, frame) in frames.iter().enumerate() {
        f.extend_from_slice(&(1_700_000_000 + i as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        let len = (frame.len() as u32).to_le_bytes();
        f.extend_from_slice(&len);
        f.extend_from_slice(&len);
        f.extend_from_slice(frame);
    }
    std::fs::write(path, f).unwrap();
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tshark(path: &Path, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(path);
    for pref in ["ip", "tcp", "udp"] {
        cmd.args(["-o", &format!("{pref}.check_checksum:TRUE")]);
    }
    cmd.args(["-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    run(&mut cmd).lines().map(str::to_owned).collect()
}

/// Bad and good checksum verdicts over all packets.
fn checksums(path: &Path) -> (usize, usize) {
    let fields = [
        "ip.checksum.status",
        "tcp.checksum.status",
        "udp.checksum.status",
        "icmp.checksum.status",
        "icmpv6.checksum.status",
        "gre.checksum.status",
    ];
    let lines = tshark(path, &fields);
    let all = lines.iter().flat_map(|l| l.split(['\t', ',']));
    let verdicts: Vec<&str> = all.map(str::trim).collect();
    let count = |v: &str| verdicts.iter().filter(|&&s| s == v).count();
    (count("0"), count("1"))
}

fn scrub(raw: &Path, out: &Path, key: &Path, payload: &str) {
    run(Command::new(env!("CARGO_BIN_EXE_lander-scrub"))
        .args(["-q", "--key"])
        .arg(key)
        .args(["--payload", payload, "--mac", "scramble"])
        .arg(raw)
        .arg(out));
}

#[test]
fn tshark_validates_checksums_and_layers_after_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, KEY).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let raw = dir.path().join("raw.pcap");
    let frames = frames();
    write_pcap(&raw, &frames);
    let (raw_bad, raw_good) = checksums(&raw);
    assert_eq!(raw_bad, 0, "the fixture itself has bad checksums");
    assert!(raw_good >= 30, "only {raw_good} checksums checked");
    let layers = tshark(&raw, &["frame.protocols"]);
    for payload in ["keep:100000", "zero", "drop"] {
        let out = dir
            .path()
            .join(format!("out-{}.pcap", payload.replace(':', "-")));
        scrub(&raw, &out, &key, payload);
        let (bad, good) = checksums(&out);
        assert_eq!(bad, 0, "{payload}: {bad} bad checksums ({good} good)");
        if payload != "drop" {
            assert_eq!(good, raw_good, "{payload}");
        }
        if payload.starts_with("keep") {
            assert_eq!(tshark(&out, &["frame.protocols"]), layers);
        }
    }
}
