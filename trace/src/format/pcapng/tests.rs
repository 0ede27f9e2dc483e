//! Tests of the pcapng module.

use super::emit::*;
use super::*;

fn file(packets: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![0u8; SECTION_HEADER_LEN + INTERFACE_LEN];
    emit_section_header(&mut v);
    emit_interface(&mut v[SECTION_HEADER_LEN..], LinkType::ETHERNET, 65535);
    for (i, p) in packets.iter().enumerate() {
        let at = v.len();
        v.resize(at + epb_len(p.len()), 0xee);
        emit_enhanced_packet(&mut v[at..], 0, 1_000 + i as u64, 99, p);
    }
    v
}

fn read_all(bytes: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, FormatError> {
    let mut s = Sections::new();
    let mut input = bytes;
    let mut out = Vec::new();
    for _ in 0..1000 {
        match s.step(input)? {
            Parsed::Done { item, rest } => {
                if let Some(r) = item {
                    out.push((r.ts_ns, r.data.to_vec()));
                }
                input = rest;
            }
            Parsed::Incomplete { .. } if input.is_empty() => return Ok(out),
            Parsed::Incomplete { more } => {
                return Err(FormatError::malformed(format!("truncated, {more} more")))
            }
        }
    }
    panic!("no progress")
}

#[test]
fn written_blocks_read_back() {
    let f = file(&[b"abc", b"defgh"]);
    let got = read_all(&f).unwrap();
    assert_eq!(
        got,
        vec![(1000, b"abc".to_vec()), (1001, b"defgh".to_vec())]
    );
}

#[test]
fn every_truncation_is_incomplete() {
    let f = file(&[b"abcdefg"]);
    for n in 0..f.len() {
        let mut s = Sections::new();
        let mut input = &f[..n];
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 10);
            match s.step(input).unwrap() {
                Parsed::Done { rest, .. } => input = rest,
                Parsed::Incomplete { more } => {
                    assert!(more > 0);
                    break;
                }
            }
        }
    }
}

#[test]
fn big_endian_section_and_pow2_resolution() {
    // SHB (BE), IDB (BE, tsresol 2^-10), EPB ts = 1024 units = 1 s.
    let mut v = Vec::new();
    v.extend_from_slice(&SECTION_HEADER.to_be_bytes());
    v.extend_from_slice(&28u32.to_be_bytes());
    v.extend_from_slice(&BYTE_ORDER_MAGIC.to_be_bytes());
    v.extend_from_slice(&[0, 1, 0, 0]);
    v.extend_from_slice(&(-1i64).to_be_bytes());
    v.extend_from_slice(&28u32.to_be_bytes());
    v.extend_from_slice(&1u32.to_be_bytes());
    v.extend_from_slice(&32u32.to_be_bytes());
    v.extend_from_slice(&[0, 101, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&[0, 9, 0, 1, 0x8a, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&32u32.to_be_bytes());
    v.extend_from_slice(&6u32.to_be_bytes());
    v.extend_from_slice(&36u32.to_be_bytes());
    for w in [0u32, 0, 1024, 2, 2] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    v.extend_from_slice(&[0x60, 0, 0, 0]);
    v.extend_from_slice(&36u32.to_be_bytes());
    let mut s = Sections::new();
    let mut input = &v[..];
    let mut recs = Vec::new();
    while let Parsed::Done { item, rest } = s.step(input).unwrap() {
        recs.extend(item.map(|r| r.to_owned_record()));
        input = rest;
    }
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].ts_ns, 1_000_000_000);
    assert_eq!(recs[0].link_type, LinkType::RAW);
    assert_eq!(recs[0].data, vec![0x60, 0]);
}

#[test]
fn bad_lengths_are_malformed() {
    let mut f = file(&[b"x"]);
    let n = f.len();
    f[n - 4] ^= 1; // trailing length differs
    assert!(read_all(&f).is_err());
    let mut f = file(&[]);
    f[4] = 13; // not a multiple of 4
    assert!(read_all(&f).is_err());
    let mut f = file(&[b"x"]);
    let at = SECTION_HEADER_LEN + INTERFACE_LEN + 20;
    f[at..at + 4].copy_from_slice(&1000u32.to_le_bytes()); // caplen beyond block
    assert!(read_all(&f).is_err());
}

#[test]
fn packet_without_interface_is_malformed() {
    let mut v = vec![0u8; SECTION_HEADER_LEN + epb_len(1)];
    emit_section_header(&mut v);
    emit_enhanced_packet(&mut v[SECTION_HEADER_LEN..], 0, 0, 1, b"x");
    assert!(read_all(&v).is_err());
}

#[test]
fn resolutions() {
    assert_eq!(TsResolution::Pow10(6).to_ns(5), 5_000);
    assert_eq!(TsResolution::Pow10(12).to_ns(5_000), 5);
    assert_eq!(TsResolution::Pow2(1).to_ns(3), 1_500_000_000);
    assert_eq!(TsResolution::Pow10(127).to_ns(u64::MAX), 0);
    assert_eq!(TsResolution::Pow10(0).to_ns(u64::MAX), u64::MAX);
}
