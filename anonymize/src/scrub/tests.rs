//! The in-place pcap path against the record path, and the input digest.

use std::path::Path;

use lander_trace::format::{ReadError, TraceReader, TraceWriter};
use lander_trace::synth::{generate, Profile};
use lander_trace::{Format, LinkType};

use super::*;
use lander_spool::manifest::{manifest_path, Manifest};

use crate::mapping::Anonymizer;
use crate::walker::Payload;
use crate::{Key, MapOptions, Mapping};

fn trace(profile: Profile, packets: u64, format: Format) -> Vec<u8> {
    let mut w = TraceWriter::new(Vec::new(), format, LinkType::ETHERNET, 65_535).unwrap();
    for rec in generate(profile, 5, packets) {
        w.write(&rec.as_record()).unwrap();
    }
    w.finish().unwrap()
}

/// The same file with every header field in big-endian order.
fn big_endian(le: &[u8]) -> Vec<u8> {
    let mut be = le.to_vec();
    let swap = |b: &mut [u8], at: usize, n: usize| b[at..at + n].reverse();
    swap(&mut be, 0, 4);
    swap(&mut be, 4, 2);
    swap(&mut be, 6, 2);
    for at in [8, 12, 16, 20] {
        swap(&mut be, at, 4);
    }
    let mut pos = 24;
    while pos < be.len() {
        let caplen = u32::from_le_bytes(le[pos + 8..pos + 12].try_into().unwrap()) as usize;
        for f in 0..4 {
            swap(&mut be, pos + 4 * f, 4);
        }
        pos += 16 + caplen;
    }
    be
}

fn anonymizer() -> Anonymizer {
    let key = Key::generate(Mapping::CryptoPan).unwrap();
    Anonymizer::new(&key, &MapOptions::default()).unwrap()
}

fn in_place(input: &[u8], anon: &Anonymizer, config: &ScrubConfig) -> (Vec<u8>, ReadSummary) {
    let mut out = Vec::new();
    let cursor = std::io::Cursor::new(input.to_vec());
    let s = scrub_read("in", cursor, &mut out, Path::new("out"), anon, config).unwrap();
    (out, s)
}

fn by_record(input: &[u8], anon: &Anonymizer, config: &ScrubConfig) -> (Vec<u8>, ScrubSummary) {
    let mut out = Vec::new();
    let reader = TraceReader::from_bytes("in", input.to_vec(), None).unwrap();
    let s = scrub_stream(reader, &mut out, Path::new("out"), anon, config).unwrap();
    (out, s)
}

#[test]
fn in_place_pcap_path_gives_the_record_paths_bytes() {
    let anon = anonymizer();
    for (profile, packets) in [
        (Profile::Mixed, 9_000),
        (Profile::Edge, 2_100),
        (Profile::SynFlood, 20_000),
    ] {
        let le = trace(profile, packets, Format::Pcap);
        for input in [le.clone(), big_endian(&le)] {
            for format in [None, Some(Format::PcapNs)] {
                for threads in [1, 3] {
                    let config = ScrubConfig {
                        threads,
                        format,
                        hash_source: true,
                        drop_unparsed: profile == Profile::Edge,
                        ..ScrubConfig::default()
                    };
                    let (fast, s) = in_place(&input, &anon, &config);
                    let (slow, summary) = by_record(&input, &anon, &config);
                    assert!(fast == slow, "{profile:?} {format:?} {threads}");
                    assert_eq!(s.summary, summary);
                    let digest = blake3::hash(&input).to_hex().to_string();
                    assert_eq!(s.source_blake3, Some(digest));
                }
            }
        }
    }
}

/// Sets the fraction of every record of a little-endian pcap file, cycling through `fracs`.
fn set_fractions(file: &mut [u8], fracs: &[u32]) {
    let mut pos = 24;
    for frac in fracs.iter().cycle() {
        if pos >= file.len() {
            break;
        }
        file[pos + 4..pos + 8].copy_from_slice(&frac.to_le_bytes());
        let caplen = u32::from_le_bytes(file[pos + 8..pos + 12].try_into().unwrap()) as usize;
        pos += 16 + caplen;
    }
}

/// A record's seconds and fraction are copied as they are only when the output counts in
/// the input's unit and the fraction is under a second; otherwise they are carried over as
/// the record path carries them.
#[test]
fn fractions_of_a_second_and_more_come_out_as_the_record_path_writes_them() {
    let anon = anonymizer();
    let fracs = [
        0,
        1,
        999_999,
        1_000_000,
        2_500_000,
        999_999_999,
        1_000_000_000,
        u32::MAX,
    ];
    for in_format in [Format::Pcap, Format::PcapNs] {
        let mut input = trace(Profile::Mixed, 300, in_format);
        set_fractions(&mut input, &fracs);
        for format in [None, Some(Format::Pcap), Some(Format::PcapNs)] {
            let config = ScrubConfig {
                format,
                ..ScrubConfig::default()
            };
            let (fast, s) = in_place(&input, &anon, &config);
            let (slow, summary) = by_record(&input, &anon, &config);
            assert!(fast == slow, "{in_format:?} -> {format:?}");
            assert_eq!(s.summary, summary);
        }
    }
}

#[test]
fn input_digest_is_right_across_block_and_leaf_boundaries() {
    let anon = anonymizer();
    let config = ScrubConfig {
        hash_source: true,
        ..ScrubConfig::default()
    };
    let full = trace(Profile::Mixed, 12_000, Format::Pcap);
    assert!(full.len() > 3 * PCAP_BLOCK);
    // cut after whole records near the boundaries
    let mut ends = vec![24];
    let mut pos = 24;
    while pos < full.len() {
        pos += 16 + u32::from_le_bytes(full[pos + 8..pos + 12].try_into().unwrap()) as usize;
        ends.push(pos);
    }
    let near = |x: usize| ends.iter().copied().filter(move |&e| e.abs_diff(x) < 1_600);
    let mut cuts: Vec<usize> = [1, 2, 3, 4, 5, 6]
        .iter()
        .flat_map(|k| near(k * digest::LEAF))
        .chain([24, ends[1], full.len()])
        .collect();
    cuts.sort();
    cuts.dedup();
    for cut in cuts {
        let (_, s) = in_place(&full[..cut], &anon, &config);
        let digest = blake3::hash(&full[..cut]).to_hex().to_string();
        assert_eq!(s.source_blake3, Some(digest), "{cut}");
    }
}

#[test]
fn truncated_and_oversized_records_name_their_offset() {
    let anon = anonymizer();
    let config = ScrubConfig::default();
    // 76-byte records: the bad ones sit in the first read piece, at the start of the second,
    // in later pieces, and in a later block (headers split across pieces are in the mixed
    // traces of in_place_pcap_path_gives_the_record_paths_bytes)
    let full = trace(Profile::SynFlood, 20_000, Format::Pcap);
    let mut out = Vec::new();
    let cut = std::io::Cursor::new(full[..full.len() - 5].to_vec());
    let err = scrub_read("in", cut, &mut out, Path::new("o"), &anon, &config).unwrap_err();
    let ScrubError::Read(ReadError::TruncatedAtEnd { offset, .. }) = err else {
        panic!("{err}");
    };
    assert_eq!(offset as usize, full.len() - 76);
    for record in [1, 862, 863, 2_000, 14_000, 19_999] {
        let at = 24 + 76 * record;
        let mut big = full.clone();
        big[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = scrub_read(
            "in",
            std::io::Cursor::new(big),
            &mut out,
            Path::new("o"),
            &anon,
            &config,
        )
        .unwrap_err();
        let ScrubError::Read(ReadError::RecordTooLarge { offset, .. }) = err else {
            panic!("{err}");
        };
        assert_eq!(offset, at as u64, "record {record}");
    }
}

#[test]
fn source_digest_comes_from_the_raw_manifest_and_must_match_a_computed_one() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.pcap");
    let bytes = trace(Profile::SynFlood, 500, Format::Pcap);
    std::fs::write(&raw, &bytes).unwrap();
    let anon = anonymizer();
    let out = dir.path().join("out.pcap");
    let no_manifest = ScrubConfig::default();
    let (_, m) = scrub_file(&raw, &out, &anon, &no_manifest, &Provenance::default()).unwrap();
    assert_eq!(m.anonymization.unwrap().source_blake3, None);

    let mut recorded = Manifest::new("raw.pcap", Format::Pcap, LinkType::ETHERNET, 65_535);
    recorded.blake3 = blake3::hash(b"another file").to_hex().to_string();
    recorded.publish(&manifest_path(&raw), false).unwrap();
    let (_, m) = scrub_file(&raw, &out, &anon, &no_manifest, &Provenance::default()).unwrap();
    assert_eq!(
        m.anonymization.unwrap().source_blake3,
        Some(recorded.blake3)
    );
    let hashing = ScrubConfig {
        hash_source: true,
        ..ScrubConfig::default()
    };
    let err = scrub_file(&raw, &out, &anon, &hashing, &Provenance::default()).unwrap_err();
    assert!(matches!(err, ScrubError::SourceDigest { .. }), "{err}");
}

/// A reader and a writer that count the calls landing in the slow band of the kernel's copy
/// (see `lander_trace::align`), as a file's would be copied.
#[derive(Clone, Default)]
struct Watch {
    slow: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Watch {
    fn note(&self, slow: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.calls.fetch_add(1, Relaxed);
        if slow {
            self.slow.fetch_add(1, Relaxed);
        }
    }

    fn counts(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.slow.load(Relaxed), self.calls.load(Relaxed))
    }
}

struct WatchedRead {
    bytes: Vec<u8>,
    pos: usize,
    watch: Watch,
}

impl std::io::Read for WatchedRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out.len().min(self.bytes.len() - self.pos);
        // the file header is read into a small buffer of the standard library's choosing
        if n > 64 {
            let slow = lander_trace::align::slow_read(out.as_ptr(), self.pos as u64);
            self.watch.note(slow);
        }
        out[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct WatchedWrite {
    out: Vec<u8>,
    watch: Watch,
}

impl std::io::Write for WatchedWrite {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if bytes.len() > 64 {
            let offset = self.out.len() as u64;
            self.watch
                .note(lander_trace::align::slow_write(bytes.as_ptr(), offset));
        }
        self.out.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The in-place path reads every block in step with the file and writes every chunk's
/// output out of the slow band, whatever the records' lengths leave over from one block to
/// the next, and gives the same bytes as the record path.
#[test]
fn the_in_place_path_reads_and_writes_in_step_with_the_files() {
    let anon = anonymizer();
    for profile in [Profile::SynFlood, Profile::Mixed] {
        let input = trace(profile, 60_000, Format::Pcap);
        let config = ScrubConfig {
            threads: 2,
            ..ScrubConfig::default()
        };
        let (reads, writes) = (Watch::default(), Watch::default());
        let source = WatchedRead {
            bytes: input.clone(),
            pos: 0,
            watch: reads.clone(),
        };
        let mut out = WatchedWrite {
            out: Vec::new(),
            watch: writes.clone(),
        };
        scrub_read("in", source, &mut out, Path::new("out"), &anon, &config).unwrap();
        assert!(
            out.out == by_record(&input, &anon, &config).0,
            "{profile:?}"
        );
        let (slow, calls) = reads.counts();
        assert!(calls > 40, "{profile:?}: {calls} reads");
        assert_eq!(
            slow, 0,
            "{profile:?}: {slow} of {calls} reads in the slow band"
        );
        assert_eq!(writes.counts().0, 0, "{profile:?}: writes in the slow band");
    }
}

/// Wherever the output of a chunk is to go in the file, it is handed over out of the slow
/// band of the kernel's copy, and it is the same bytes.
#[test]
fn a_chunks_output_is_placed_for_its_file_offset() {
    use super::pipeline::ChunkState;
    let mut chunk = super::pcap::PcapChunk::for_output((0..5000u32).map(|i| i as u8).collect());
    let expected = chunk.output().to_vec();
    for offset in (0..8192u64).chain([1 << 32, (1 << 32) + 17]) {
        let out = chunk.output_at(offset);
        assert!(
            !lander_trace::align::slow_write(out.as_ptr(), offset),
            "{offset}"
        );
        assert!(out == &expected[..], "{offset}");
        assert!(chunk.output() == &expected[..], "{offset}");
        if offset % 2 == 0 {
            // every other offset asks again from where the output was moved to
            chunk.reset_output(&expected);
        }
    }
}

/// A writer that takes `room` bytes, then fails like a full disk.
struct FullAfter {
    room: usize,
    taken: usize,
}

impl std::io::Write for FullAfter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.taken + bytes.len() > self.room {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.taken += bytes.len();
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A reader of `bytes` that fails after `good` of them.
struct FailingRead {
    bytes: Vec<u8>,
    pos: usize,
    good: usize,
}

impl std::io::Read for FailingRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.good {
            return Err(std::io::Error::from_raw_os_error(5)); // EIO
        }
        let n = out.len().min(self.good - self.pos);
        out[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Runs `f` on its own thread; fails the test (naming `case`) if it has not returned within
/// a minute (a pipeline whose workers wait for each other forever).
pub(super) fn ends<T: Send + 'static>(case: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(t) => t,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{case}: the scrub did not end: its workers wait for each other")
        }
        Err(e) => panic!("{case}: the scrub's thread failed: {e}"),
    }
}

/// A full disk in the middle of the output stops every worker, and the error names the
/// output; for each thread count and each path.
#[test]
fn a_failed_write_ends_the_scrub_with_the_error_whatever_the_threads() {
    let input = trace(Profile::Mixed, 40_000, Format::Pcap);
    let anon = anonymizer();
    for threads in [1, 2, 3, 8] {
        for record_path in [false, true] {
            let (input, anon) = (input.clone(), anon.clone());
            let err = ends(&format!("{threads} {record_path}"), move || {
                let config = ScrubConfig {
                    threads,
                    format: record_path.then_some(Format::PcapNs),
                    ..ScrubConfig::default()
                };
                let mut out = FullAfter {
                    room: 1 << 20,
                    taken: 0,
                };
                let cursor = std::io::Cursor::new(input);
                scrub_read("in", cursor, &mut out, Path::new("full"), &anon, &config).unwrap_err()
            });
            let text = err.to_string();
            assert!(
                text.starts_with("full: "),
                "{threads} {record_path}: {text}"
            );
            assert!(
                text.contains("No space left"),
                "{threads} {record_path}: {text}"
            );
        }
    }
}

/// A read error in the middle of the input stops every worker; the error names the input
/// and the offset where reading failed, and what was written is the start of the whole
/// scrub's output: the chunks read before the error, in order, nothing after.
#[test]
fn a_failed_read_ends_the_scrub_with_the_error_whatever_the_threads() {
    let input = trace(Profile::Mixed, 40_000, Format::Pcap);
    let anon = anonymizer();
    let good = 5 << 20;
    let (whole, _) = in_place(&input, &anon, &ScrubConfig::default());
    for threads in [1, 2, 3, 8] {
        let (input, anon) = (input.clone(), anon.clone());
        let (err, out) = ends(&threads.to_string(), move || {
            let config = ScrubConfig {
                threads,
                ..ScrubConfig::default()
            };
            let mut out = Vec::new();
            let source = FailingRead {
                bytes: input,
                pos: 0,
                good,
            };
            let err =
                scrub_read("in", source, &mut out, Path::new("o"), &anon, &config).unwrap_err();
            (err, out)
        });
        let ScrubError::Read(ReadError::Io { path, offset, .. }) = &err else {
            panic!("{threads}: {err}");
        };
        assert_eq!(
            (path.as_str(), *offset),
            ("in", Some(good as u64)),
            "{threads}"
        );
        // the first four 1 MiB blocks (some 10,000 records) were read whole before the error
        let mut reader = TraceReader::from_bytes("o", out.clone(), None).unwrap();
        let mut records = 0;
        while reader.next().unwrap().is_some() {
            records += 1;
        }
        assert!(records >= 10_000, "{threads}: {records} records written");
        assert!(
            whole.starts_with(&out),
            "{threads}: not the whole scrub's start"
        );
    }
}

/// Into a file, each chunk is written at its offset after the writing lock is let go, in
/// whatever order the workers get there: the file holds the very bytes a stream gets, with
/// the same counts, for each thread count and each path.
#[test]
fn a_file_gets_the_bytes_a_stream_gets_whatever_the_threads() {
    let input = trace(Profile::Mixed, 40_000, Format::Pcap);
    assert!(
        input.len() > 8 * PCAP_BLOCK,
        "chunks enough to come in any order"
    );
    let anon = anonymizer();
    let dir = tempfile::tempdir().unwrap();
    // payloads zeroed, the output outgrows the room allocated ahead of the writes, more than
    // once; dropped, it stays within the first: the file must end with its last byte either way
    assert!(
        input.len() as u64 > pipeline::ROOM_STEP,
        "outgrows the room"
    );
    for threads in [1, 2, 3, 8] {
        for (record_path, payload) in [
            (false, Payload::Drop),
            (true, Payload::Drop),
            (false, Payload::Zero),
            (true, Payload::Zero),
        ] {
            let case = format!("{threads} threads, record path {record_path}, {payload:?}");
            let mut config = ScrubConfig {
                threads,
                format: record_path.then_some(Format::PcapNs),
                ..ScrubConfig::default()
            };
            config.policy.payload = payload;
            let mut stream = Vec::new();
            let cursor = std::io::Cursor::new(input.clone());
            let s = scrub_read("in", cursor, &mut stream, Path::new("s"), &anon, &config).unwrap();
            let path = dir
                .path()
                .join(format!("{threads}-{record_path}-{payload:?}"));
            let file = std::fs::File::create(&path).unwrap();
            let cursor = std::io::Cursor::new(input.clone());
            let f = scrub_read_file("in", cursor, &file, &path, &anon, &config).unwrap();
            assert_eq!(f.summary, s.summary, "{case}");
            assert!(std::fs::read(&path).unwrap() == stream, "{case}");
        }
    }
}
