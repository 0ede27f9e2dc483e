//! Property runs inside the normal test suite: every parser over random bytes and over
//! mutated valid files never panics and always ends (bounded steps, progress or an error).

use proptest::prelude::*;

use super::{detect, TraceReader, TraceWriter};
use crate::record::{Format, LinkType, Record};

fn valid(format: Format, n: usize) -> Vec<u8> {
    let mut w = TraceWriter::new(Vec::new(), format, LinkType::ETHERNET, 65535).unwrap();
    for i in 0..n {
        let data = vec![i as u8; 14 + i * 7 % 60];
        let rec = Record {
            ts_ns: 1_000_000_000 * i as u64,
            wire_len: data.len() as u32,
            link_type: LinkType::ETHERNET,
            interface: 0,
            drops: 0,
            data: &data,
        };
        w.write(&rec).unwrap();
    }
    w.finish().unwrap()
}

/// Reads to the end or the first error; panics if the reader neither ends nor progresses.
fn drain(bytes: Vec<u8>, format: Option<Format>) {
    let len = bytes.len() as u64;
    let Ok(mut r) = TraceReader::from_bytes("prop", bytes, format) else {
        return;
    };
    // every record takes at least 12 bytes, so a reader needs at most len/12 + 1 steps
    for _ in 0..=len / 12 + 1 {
        let before = r.offset();
        match r.next() {
            Ok(Some(_)) => assert!(r.offset() > before, "no progress at {before}"),
            Ok(None) | Err(_) => return,
        }
    }
    panic!("reader did not end within its bound");
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    for (at, v) in edits {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = *v;
        }
    }
    bytes.truncate(bytes.len().saturating_sub(cut % 8));
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = detect(&bytes);
        drain(bytes.clone(), None);
        for f in Format::ALL {
            drain(bytes.clone(), Some(f));
        }
    }

    #[test]
    fn mutated_files_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let format = Format::ALL[which];
        let bytes = mutate(valid(format, 6), &edits, cut);
        drain(bytes.clone(), Some(format));
        drain(bytes, None);
    }

    #[test]
    fn prefixed_magic_never_panics(
        which in 0usize..3,
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = valid(Format::ALL[which], 0);
        bytes.extend_from_slice(&tail);
        drain(bytes, None);
    }
}

/// Records and the first error as `next` gives them: (end offset, head) of each record.
fn oracle(bytes: &[u8]) -> (Vec<(u64, super::RecordHead)>, Option<String>) {
    let mut r = TraceReader::from_bytes("prop", bytes.to_vec(), None).unwrap();
    let mut seen = Vec::new();
    loop {
        match r.next() {
            Ok(Some(rec)) => {
                let head = super::RecordHead {
                    ts_ns: rec.ts_ns,
                    caplen: rec.data.len() as u32,
                    wire_len: rec.wire_len,
                };
                seen.push((r.offset(), head));
            }
            Ok(None) => return (seen, None),
            Err(e) => return (seen, Some(e.to_string())),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Copying records in runs, through a stream of any buffer size, into chunks of any size,
    /// with refusals anywhere, gives the file's record bytes and heads exactly as `next` reads
    /// them, and the same error at the same place.
    #[test]
    fn copied_records_are_the_records_next_reads(
        ns in any::<bool>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
        buffer in 16usize..400,
        chunks in proptest::collection::vec(0usize..300, 1..16),
        refuse in proptest::collection::vec(any::<bool>(), 1..16),
        caplen in proptest::option::of((0usize..8, 200_000u32..300_000)),
    ) {
        let format = if ns { Format::PcapNs } else { Format::Pcap };
        let mut bytes = valid(format, 8);
        if let Some((k, len)) = caplen {
            // record k's caplen, around the limit (262,144)
            let at = 24 + (0..k).map(|i| 16 + 14 + i * 7 % 60).sum::<usize>() + 8;
            bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
        let mut bytes = mutate(bytes, &edits, cut);
        bytes[..24].copy_from_slice(&valid(format, 0)[..24]);
        let (records, error) = oracle(&bytes);
        let stream = Box::new(std::io::Cursor::new(bytes.clone()));
        let mut r = TraceReader::from_stream_with("prop", stream, None, buffer).unwrap();
        let (mut out, mut heads, mut got_error) = (Vec::new(), Vec::new(), None);
        let mut at_least = 0;
        for step in 0..10_000usize {
            // a chunk too small for the next record is followed by one that fits it
            let mut chunk = vec![0u8; chunks[step % chunks.len()].max(at_least)];
            let mut n = 0usize;
            // refuses some record of every other call, so every call after a refusal moves on
            let refuse_at = (step % 2 == 0 && refuse[step / 2 % refuse.len()]).then_some(step % 3);
            let mut take = |h: super::RecordHead| {
                n += 1;
                if refuse_at == Some(n - 1) {
                    return false;
                }
                heads.push(h);
                true
            };
            match r.copy_pcap_records(&mut chunk, &mut take) {
                Ok((len, why)) => {
                    out.extend_from_slice(&chunk[..len]);
                    if why == super::CopyStop::End {
                        break;
                    }
                    at_least = 0;
                    if let super::CopyStop::Full(need) = why {
                        let left = chunk.len() - len;
                        prop_assert!(need > left || left < 64, "{} of {} left", need, left);
                        at_least = need;
                    }
                }
                Err(e) => {
                    got_error = Some(e.to_string());
                    break;
                }
            }
        }
        prop_assert_eq!(got_error, error);
        let end = records.last().map_or(24, |(o, _)| *o as usize);
        prop_assert_eq!(&out[..], &bytes[24..end]);
        let expected: Vec<_> = records.iter().map(|(_, h)| *h).collect();
        prop_assert_eq!(heads, expected);
    }
}
