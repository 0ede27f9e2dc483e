//! The committed trace fixtures in `fixtures/formats/`: how they are made, and what reading
//! them must give.
//!
//! `LANDER_REGEN_FIXTURES=1 cargo test -p lander-trace --test formats_fixtures` rewrites the
//! generated files (and, with tcpdump and editcap installed, the tool-written ones);
//! without it, `fixtures_are_current` checks that the committed files match the generator.

use std::path::{Path, PathBuf};
use std::process::Command;

use lander_trace::format::{ReadError, TraceReader};
use lander_trace::{Format, LinkType, OwnedRecord};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/formats")
}

/// Base timestamp of every fixture: 2024-03-01 12:00:00 UTC.
const T0: u64 = 1_709_294_400;

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn ipv4(proto: u8, src: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&[192, 0, 2, 1]);
    let sum = checksum(&v);
    v[10..12].copy_from_slice(&sum.to_be_bytes());
    v.extend_from_slice(l4);
    v
}

fn ipv6(next: u8, l4: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 64]);
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v.extend_from_slice(l4);
    v
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const TCP_SYN: [u8; 20] = [
    0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
];
const UDP_DNS: [u8; 12] = [0x30, 0x39, 0, 53, 0, 12, 0, 0, 0xab, 0xcd, 0x01, 0x00];
const ICMP_ECHO: [u8; 8] = [8, 0, 0xf7, 0xfe, 0, 1, 0, 1];
const ICMP6_ECHO: [u8; 8] = [128, 0, 0, 0, 0, 1, 0, 1];

/// The Ethernet frames of the pcap fixtures (the 5th is VLAN-tagged, the 4th ARP).
pub fn ethernet_frames() -> Vec<Vec<u8>> {
    let mut vlan = vec![0, 7, 0x08, 0x00];
    vlan.extend_from_slice(&ipv4(17, [10, 0, 0, 9], &UDP_DNS));
    vec![
        eth(0x0800, &ipv4(6, [10, 0, 0, 1], &TCP_SYN)),
        eth(0x0800, &ipv4(17, [10, 0, 0, 2], &UDP_DNS)),
        eth(0x86dd, &ipv6(58, &ICMP6_ECHO)),
        eth(
            0x0806,
            &[
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0,
                2,
            ],
        ),
        eth(0x8100, &vlan),
    ]
}

/// Timestamp of packet `i` in ns (sub-microsecond part present, so µs files truncate it).
pub fn ts(i: usize) -> u64 {
    (T0 + i as u64) * 1_000_000_000 + 123_456_789 + i as u64 * 1_001
}

struct Bytes {
    big: bool,
    v: Vec<u8>,
}

impl Bytes {
    fn new(big: bool) -> Bytes {
        Bytes { big, v: Vec::new() }
    }
    fn u16(&mut self, x: u16) -> &mut Self {
        let b = if self.big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.v.extend_from_slice(&b);
        self
    }
    fn u32(&mut self, x: u32) -> &mut Self {
        let b = if self.big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.v.extend_from_slice(&b);
        self
    }
    fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.v.extend_from_slice(b);
        self
    }
    fn pad4(&mut self) -> &mut Self {
        while !self.v.len().is_multiple_of(4) {
            self.v.push(0);
        }
        self
    }
}

fn pcap(big: bool, nanos: bool) -> Vec<u8> {
    let mut b = Bytes::new(big);
    let magic = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    b.u32(magic).u16(2).u16(4).u32(0).u32(0).u32(65535).u32(1);
    for (i, f) in ethernet_frames().iter().enumerate() {
        let t = ts(i);
        let frac = if nanos {
            t % 1_000_000_000
        } else {
            t % 1_000_000_000 / 1000
        };
        b.u32((t / 1_000_000_000) as u32).u32(frac as u32);
        b.u32(f.len() as u32).u32(f.len() as u32).raw(f);
    }
    b.v
}

fn block(b: &mut Bytes, block_type: u32, body: &[u8]) {
    let total = 12 + body.len().next_multiple_of(4);
    b.u32(block_type)
        .u32(total as u32)
        .raw(body)
        .pad4()
        .u32(total as u32);
}

fn body(big: bool, f: impl FnOnce(&mut Bytes)) -> Vec<u8> {
    let mut b = Bytes::new(big);
    f(&mut b);
    b.v
}

fn shb(b: &mut Bytes) {
    let big = b.big;
    let v = body(big, |s| {
        s.u32(0x1a2b_3c4d).u16(1).u16(0).raw(&[0xff; 8]);
        // shb_userappl option
        s.u16(4).u16(6).raw(b"lander").pad4().u16(0).u16(0);
    });
    block(b, 0x0a0d_0d0a, &v);
}

fn idb(b: &mut Bytes, link: u16, snaplen: u32, tsresol: Option<u8>) {
    let v = body(b.big, |s| {
        s.u16(link).u16(0).u32(snaplen);
        if let Some(r) = tsresol {
            s.u16(9).u16(1).raw(&[r]).pad4();
        }
        s.u16(0).u16(0);
    });
    block(b, 1, &v);
}

fn epb(b: &mut Bytes, iface: u32, units: u64, data: &[u8], comment: bool) {
    let v = body(b.big, |s| {
        s.u32(iface).u32((units >> 32) as u32).u32(units as u32);
        s.u32(data.len() as u32)
            .u32(data.len() as u32)
            .raw(data)
            .pad4();
        if comment {
            s.u16(1).u16(5).raw(b"hello").pad4().u16(0).u16(0);
        }
    });
    block(b, 6, &v);
}

/// Two sections; the first has an Ethernet interface in µs and a raw-IP interface in ns, an
/// SPB and an unknown block; the second an Ethernet interface with 2^-20 s units.
fn pcapng(big: bool) -> Vec<u8> {
    let frames = ethernet_frames();
    let mut b = Bytes::new(big);
    shb(&mut b);
    idb(&mut b, 1, 65535, None);
    idb(&mut b, 101, 65535, Some(9));
    epb(&mut b, 0, ts(0) / 1000, &frames[0], true);
    let raw = ipv4(1, [10, 0, 0, 3], &ICMP_ECHO);
    epb(&mut b, 1, ts(1), &raw, false);
    block(&mut b, 0x0bad, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let spb = body(big, |s| {
        s.u32(frames[1].len() as u32).raw(&frames[1]).pad4();
    });
    block(&mut b, 3, &spb);
    shb(&mut b);
    idb(&mut b, 1, 65535, Some(0x80 | 20));
    let secs = ts(2) / 1_000_000_000;
    epb(&mut b, 0, secs << 20 | 1 << 19, &frames[2], false);
    b.v
}

fn erf_record(erf_type: u8, ts_ns: u64, lctr: u16, ext: &[[u8; 8]], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let secs = ts_ns / 1_000_000_000;
    let frac = ((ts_ns % 1_000_000_000) << 32).div_ceil(1_000_000_000);
    v.extend_from_slice(&(secs << 32 | frac).to_le_bytes());
    let ty = if ext.is_empty() {
        erf_type
    } else {
        erf_type | 0x80
    };
    let pad = if erf_type == 2 { 2 } else { 0 };
    let rlen = (16 + ext.len() * 8 + pad + payload.len()).next_multiple_of(8);
    let wlen = if erf_type == 48 {
        0
    } else {
        payload.len() as u16
    };
    v.extend_from_slice(&[ty, 0x04]);
    v.extend_from_slice(&(rlen as u16).to_be_bytes());
    v.extend_from_slice(&lctr.to_be_bytes());
    v.extend_from_slice(&wlen.to_be_bytes());
    for e in ext {
        v.extend_from_slice(e);
    }
    v.extend(std::iter::repeat_n(0, pad));
    v.extend_from_slice(payload);
    v.resize(rlen, 0);
    v
}

/// ETH, IPv4 (with two extension headers and a loss count), PAD, IPv6.
fn erf() -> Vec<u8> {
    let frames = ethernet_frames();
    let mut v = erf_record(2, ts(0), 0, &[], &frames[0]);
    let ext = [
        [0x80 | 0x05, 0, 0, 0, 0, 0, 0, 1],
        [0x05, 0, 0, 0, 0, 0, 0, 2],
    ];
    v.extend(erf_record(
        22,
        ts(1),
        3,
        &ext,
        &ipv4(6, [10, 0, 0, 4], &TCP_SYN),
    ));
    v.extend(erf_record(48, ts(2), 0, &[], &[0; 24]));
    v.extend(erf_record(23, ts(3), 0, &[], &ipv6(58, &ICMP6_ECHO)));
    v
}

/// Every generated fixture: (file name, bytes).
fn generated() -> Vec<(&'static str, Vec<u8>)> {
    let good = pcap(false, false);
    let mut truncated_record = good.clone();
    truncated_record.truncate(good.len() - 10);
    let mut over_snaplen = good.clone();
    over_snaplen[16..20].copy_from_slice(&128u32.to_le_bytes());
    over_snaplen[24 + 8..24 + 12].copy_from_slice(&300_000u32.to_le_bytes());
    let mut zero_rlen = erf();
    let second = 16 + 2 + ethernet_frames()[0].len();
    let second = second.next_multiple_of(8);
    zero_rlen[second + 10..second + 12].fill(0);
    let mut bad_magic = good.clone();
    bad_magic[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let garbage: Vec<u8> = (0..512u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut bad_trailer = pcapng(false);
    let n = bad_trailer.len();
    bad_trailer[n - 4] ^= 0x10;
    let mut truncated_block = pcapng(true);
    truncated_block.truncate(110);
    vec![
        ("pcap-le-us.pcap", good.clone()),
        ("pcap-be-us.pcap", pcap(true, false)),
        ("pcap-le-ns.pcap", pcap(false, true)),
        ("pcap-be-ns.pcap", pcap(true, true)),
        ("pcapng-le.pcapng", pcapng(false)),
        ("pcapng-be.pcapng", pcapng(true)),
        ("erf-mixed.erf", erf()),
        ("bad-truncated-header.pcap", good[..10].to_vec()),
        ("bad-truncated-record.pcap", truncated_record),
        ("bad-caplen-over-snaplen.pcap", over_snaplen),
        ("bad-zero-rlen.erf", zero_rlen),
        ("bad-magic.pcap", bad_magic),
        ("bad-garbage.bin", garbage),
        ("bad-trailer.pcapng", bad_trailer),
        ("bad-truncated-block.pcapng", truncated_block),
    ]
}

fn regen() -> bool {
    std::env::var_os("LANDER_REGEN_FIXTURES").is_some()
}

#[test]
fn fixtures_are_current() {
    for (name, bytes) in generated() {
        let path = dir().join(name);
        if regen() {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(committed, bytes, "{name} differs from its generator");
        assert!(bytes.len() < 20 << 10, "{name} is too large");
    }
    if regen() {
        tool_written();
    }
}

fn tool_written() {
    let d = dir();
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("tool is installed");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("tcpdump")
        .arg("-r")
        .arg(d.join("pcap-le-us.pcap"))
        .arg("-w")
        .arg(d.join("tcpdump.pcap")));
    run(Command::new("editcap")
        .args(["-F", "pcapng"])
        .arg(d.join("pcap-le-ns.pcap"))
        .arg(d.join("editcap.pcapng")));
}

fn read(path: &Path) -> Result<Vec<OwnedRecord>, ReadError> {
    let mut r = TraceReader::open(path)?;
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match r.next_owned()? {
            Some(rec) => out.push(rec),
            None => return Ok(out),
        }
    }
    panic!("{}: no end after 10000 records", path.display())
}

fn read_erf(path: &Path) -> Result<Vec<OwnedRecord>, ReadError> {
    let mut r = TraceReader::open_with_format(path, Format::Erf)?;
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match r.next_owned()? {
            Some(rec) => out.push(rec),
            None => return Ok(out),
        }
    }
    panic!("no end")
}

#[test]
fn pcap_fixtures_read_in_both_byte_orders() {
    let frames = ethernet_frames();
    for (name, format) in [
        ("pcap-le-us.pcap", Format::Pcap),
        ("pcap-be-us.pcap", Format::Pcap),
        ("pcap-le-ns.pcap", Format::PcapNs),
        ("pcap-be-ns.pcap", Format::PcapNs),
        ("tcpdump.pcap", Format::Pcap),
    ] {
        let path = dir().join(name);
        assert_eq!(TraceReader::open(&path).unwrap().format(), format, "{name}");
        let recs = read(&path).unwrap();
        assert_eq!(recs.len(), frames.len(), "{name}");
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.data, frames[i], "{name} #{i}");
            let res = format.resolution_ns();
            assert_eq!(r.ts_ns, ts(i) / res * res, "{name} #{i}");
            assert_eq!(r.link_type, LinkType::ETHERNET);
        }
    }
}

#[test]
fn pcapng_fixtures_read_two_sections_and_interfaces() {
    let frames = ethernet_frames();
    for name in ["pcapng-le.pcapng", "pcapng-be.pcapng"] {
        let recs = read(&dir().join(name)).unwrap();
        assert_eq!(recs.len(), 4, "{name}");
        assert_eq!(recs[0].data, frames[0]);
        assert_eq!(recs[0].ts_ns, ts(0) / 1000 * 1000);
        assert_eq!((recs[1].interface, recs[1].link_type), (1, LinkType::RAW));
        assert_eq!(recs[1].ts_ns, ts(1));
        assert_eq!(
            (recs[2].data.as_slice(), recs[2].ts_ns),
            (&frames[1][..], 0)
        );
        assert_eq!(recs[3].data, frames[2]);
        assert_eq!(
            recs[3].ts_ns,
            ts(2) / 1_000_000_000 * 1_000_000_000 + 500_000_000
        );
    }
    let r = TraceReader::open(&dir().join("pcapng-be.pcapng")).unwrap();
    assert_eq!((r.link_type(), r.snaplen()), (LinkType::ETHERNET, 65535));
}

#[test]
fn editcap_fixture_reads_like_its_source() {
    let ours = read(&dir().join("pcap-le-ns.pcap")).unwrap();
    let theirs = read(&dir().join("editcap.pcapng")).unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn erf_fixture_reads_eth_ip_and_skips_pad() {
    let path = dir().join("erf-mixed.erf");
    assert_eq!(TraceReader::open(&path).unwrap().format(), Format::Erf);
    let recs = read(&path).unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].data, ethernet_frames()[0]);
    assert_eq!(recs[0].link_type, LinkType::ETHERNET);
    assert_eq!((recs[1].link_type, recs[1].drops), (LinkType::RAW, 3));
    assert_eq!(recs[1].data[0] >> 4, 4);
    assert_eq!(recs[2].data[0] >> 4, 6);
    for (r, i) in recs.iter().zip([0, 1, 3]) {
        assert_eq!(r.ts_ns, ts(i));
    }
}

#[test]
fn malformed_fixtures_name_file_offset_and_what() {
    let cases: [(&str, u64, &str); 8] = [
        ("bad-truncated-header.pcap", 0, "truncated at end"),
        ("bad-truncated-record.pcap", 0, "truncated at end"),
        ("bad-caplen-over-snaplen.pcap", 24, "caplen of 300000"),
        ("bad-zero-rlen.erf", 0, "rlen 0"),
        ("bad-magic.pcap", 0, "not a pcap, pcapng or ERF file"),
        ("bad-garbage.bin", 0, "not a pcap, pcapng or ERF file"),
        ("bad-trailer.pcapng", 0, "trailing length"),
        ("bad-truncated-block.pcapng", 0, "truncated at end"),
    ];
    for (name, min_offset, what) in cases {
        let path = dir().join(name);
        let err = if name.ends_with(".erf") {
            read_erf(&path).unwrap_err()
        } else {
            read(&path).unwrap_err()
        };
        let text = err.to_string();
        let offset = err.offset().unwrap();
        assert!(offset >= min_offset, "{name}: {text}");
        // an unknown format is about the first bytes: "starts with" says where
        let at = match what.starts_with("not a pcap") {
            true => String::new(),
            false => format!("offset {offset}: "),
        };
        assert!(
            text.starts_with(&format!("{}: {at}", path.display())),
            "{text}"
        );
        assert!(text.contains(what), "{name}: {text}");
    }
}

#[test]
fn stream_reader_gives_what_the_mapped_reader_gives() {
    for (name, _) in generated()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("bad"))
    {
        let path = dir().join(name);
        let format = Some(Format::Erf).filter(|_| name.ends_with(".erf"));
        let mapped = match format {
            Some(_) => read_erf(&path).unwrap(),
            None => read(&path).unwrap(),
        };
        let file = std::fs::File::open(&path).unwrap();
        let mut s = TraceReader::from_stream_with(name, Box::new(file), format, 64).unwrap();
        let mut streamed = Vec::new();
        while let Some(r) = s.next_owned().unwrap() {
            streamed.push(r);
            assert!(streamed.len() <= mapped.len());
        }
        assert_eq!(streamed, mapped, "{name}");
    }
}
