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
