//! The replay fast path (runs of pcap records copied as they are) against the per-packet
//! path: the same files, bytes and manifests for any records, rotation, snaplen and limit.

use proptest::prelude::*;

use super::*;
use crate::engine::source::file::FileSource;
use lander_trace::format::TraceWriter;
use lander_trace::record::Record;

/// A file source that offers its records for copying through the ring only (`ring`), or
/// never (the per-packet path); never in blocks.
pub(super) struct Offering {
    source: FileSource,
    ring: bool,
}

/// `source` replayed packet by packet.
pub(super) fn per_packet(source: FileSource) -> Offering {
    Offering {
        source,
        ring: false,
    }
}

impl CaptureSource for Offering {
    fn next(&mut self) -> Result<Next<'_>, SourceError> {
        self.source.next()
    }
    fn link_type(&self) -> LinkType {
        self.source.link_type()
    }
    fn snaplen(&self) -> u32 {
        self.source.snaplen()
    }
    fn is_live(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        self.source.describe()
    }
    fn pcap_records(&mut self) -> Option<&mut lander_trace::format::TraceReader> {
        self.ring.then(|| self.source.pcap_records()).flatten()
    }
}

/// The three ways a file is replayed: in blocks on two threads, in copied runs through the
/// ring, and packet by packet.
fn three_ways(path: &Path) -> [(&'static str, Box<dyn CaptureSource>); 3] {
    let open = || FileSource::open(path).unwrap();
    [
        ("blocks", Box::new(open())),
        (
            "ringed",
            Box::new(Offering {
                source: open(),
                ring: true,
            }),
        ),
        ("per-packet", Box::new(per_packet(open()))),
    ]
}

/// A pcap file of `format` with records of these (gap before it in µs, caplen) pairs.
pub(super) fn input(dir: &Path, format: Format, recs: &[(u64, usize)]) -> PathBuf {
    let path = dir.join("in.pcap");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = TraceWriter::new(file, format, LinkType::ETHERNET, 65535).unwrap();
    let mut ts = 1_700_000_000_000_000_000u64;
    for (i, &(gap, caplen)) in recs.iter().enumerate() {
        ts += gap * 1_000;
        let data = vec![i as u8; caplen];
        let rec = Record {
            ts_ns: ts,
            wire_len: caplen as u32 + 4,
            link_type: LinkType::ETHERNET,
            interface: 0,
            drops: 0,
            data: &data,
        };
        w.write(&rec).unwrap();
    }
    w.finish().unwrap();
    path
}

/// Each published file's name, bytes and manifest (less what differs between runs).
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>, Manifest)> {
    published(dir)
        .iter()
        .map(|p| {
            let mut m = Manifest::read(&manifest_path(p)).unwrap();
            m.created_ns = 0;
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(p).unwrap();
            assert_eq!(
                m.blake3,
                blake3::hash(&bytes).to_hex().to_string(),
                "{name}"
            );
            (name, bytes, m)
        })
        .collect()
}

/// Each published file's name, bytes and manifest.
type Outputs = Vec<(String, Vec<u8>, Manifest)>;

fn capture(c: &EngineConfig, source: &mut dyn CaptureSource) -> Outputs {
    let (files, error) = capture_ending(c, source);
    assert_eq!(error, None);
    files
}

/// The files a capture published, and its error.
fn capture_ending(c: &EngineConfig, source: &mut dyn CaptureSource) -> (Outputs, Option<String>) {
    std::fs::create_dir_all(&c.out_dir).unwrap();
    let s = run(c, source, &Control::default()).unwrap();
    (outputs(&c.out_dir), s.error)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn copied_runs_write_what_the_per_packet_path_writes(
        recs in proptest::collection::vec(
            (0u64..3_000_000, prop_oneof![8 => 0usize..700, 1 => 0usize..4_000]),
            0..300,
        ),
        in_ns in any::<bool>(),
        out_ns in any::<bool>(),
        snaplen in prop_oneof![Just(None), Just(Some(64u32)), Just(Some(500u32))],
        size in proptest::option::of(1_000u64..40_000),
        packets in proptest::option::of(1u64..60),
        interval in proptest::option::of(1u64..5),
        max_packets in proptest::option::of(0u64..320),
        big_buffers in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let fmt = |ns| if ns { Format::PcapNs } else { Format::Pcap };
        let path = input(dir.path(), fmt(in_ns), &recs);
        let config = |sub: &str| {
            let mut c = small_config(&dir.path().join(sub), IoMode::Sync);
            c.format = fmt(out_ns);
            c.snaplen = snaplen;
            // ring buffers of 128 KiB take reads straight from the file
            c.buffer_bytes = if big_buffers { 128 << 10 } else { 4 << 10 };
            c.ring_bytes = 4 * c.buffer_bytes;
            c.rotate.size = size;
            c.rotate.packets = packets;
            c.rotate.interval_ns = interval.map(|s| s * 1_000_000_000);
            c.max_packets = max_packets;
            c
        };
        // 4 KiB buffers make 4 KiB blocks, which records of up to 4 KB straddle
        let [blocks, ringed, per_packet] = three_ways(&path)
            .map(|(sub, mut source)| capture(&config(sub), &mut *source));
        for copied in [blocks, ringed] {
            prop_assert_eq!(copied.len(), per_packet.len());
            for (a, b) in copied.iter().zip(&per_packet) {
                prop_assert_eq!(&a.0, &b.0);
                prop_assert!(a.1 == b.1, "{} differs", a.0);
                prop_assert_eq!(&a.2, &b.2);
            }
        }
    }
}

#[test]
fn a_file_cut_short_anywhere_ends_the_same_three_ways() {
    // Cut within the last records, within a header, at a block's end (4 KiB blocks) and
    // just around it: every path keeps the same whole records and reports the same error.
    let dir = tempfile::tempdir().unwrap();
    let recs: Vec<(u64, usize)> = (0..200).map(|i| (1, 30 + (i * 53) % 400)).collect();
    let path = input(dir.path(), Format::Pcap, &recs);
    let whole = std::fs::read(&path).unwrap();
    let mut cuts: Vec<usize> = (whole.len() - 500..whole.len()).collect();
    for k in 1..whole.len() / 4096 + 1 {
        cuts.extend(k * 4096 - 20..k * 4096 + 20);
    }
    cuts.extend([0, 10, 24, 30, 40]);
    for (i, cut) in cuts.into_iter().filter(|&c| c <= whole.len()).enumerate() {
        let cut_path = dir.path().join(format!("cut{i}.pcap"));
        std::fs::write(&cut_path, &whole[..cut]).unwrap();
        if FileSource::open(&cut_path).is_err() {
            assert!(cut < 24, "{cut}");
            continue;
        }
        let ends = three_ways(&cut_path).map(|(sub, mut source)| {
            let mut c = small_config(&dir.path().join(format!("{sub}{i}")), IoMode::Sync);
            c.format = Format::Pcap;
            c.buffer_bytes = 4 << 10;
            c.ring_bytes = 4 * c.buffer_bytes;
            c.rotate.size = Some(10_000);
            let (files, error) = capture_ending(&c, &mut *source);
            let files: Vec<_> = files
                .into_iter()
                .map(|(_, b, m)| (blake3::hash(&b).to_hex().to_string(), m.packets))
                .collect();
            (files, error.map(|e| e.replace(&format!("{sub}{i}"), "")))
        });
        assert_eq!(ends[0], ends[2], "cut at {cut}: blocks against per-packet");
        assert_eq!(ends[1], ends[2], "cut at {cut}: ringed against per-packet");
    }
}

#[test]
fn digests_hashed_partly_by_the_source_are_the_files_blake3() {
    // A replay hands half of each buffer's whole digest leaves to the source thread: files
    // of one leaf, of a few, and of many, over buffers that start anywhere in a leaf; runs
    // copied as they are, records cut to the snaplen between them, and every record encoded.
    let dir = tempfile::tempdir().unwrap();
    let recs: Vec<(u64, usize)> = (0..12_000).map(|i| (1, 40 + (i * 37) % 900)).collect();
    let path = input(dir.path(), Format::Pcap, &recs);
    for (sub, buffer, size, snaplen, packet_by_packet) in [
        ("one-leaf", 256 << 10, 60_000u64, None, false),
        ("few", 256 << 10, 300_000, None, false),
        ("many", 256 << 10, 3_000_000, None, false),
        ("odd-buffers", 200_000, 1_000_000, None, false),
        (
            "exact-leaf",
            128 << 10,
            crate::engine::ring::DIGEST_LEAF,
            None,
            false,
        ),
        ("cut", 256 << 10, 3_000_000, Some(500), false),
        ("per-packet", 512 << 10, 3_000_000, None, true),
    ] {
        let mut c = small_config(&dir.path().join(sub), IoMode::Sync);
        c.buffer_bytes = buffer;
        c.ring_bytes = 4 * buffer;
        c.rotate.size = Some(size);
        c.snaplen = snaplen;
        let source = FileSource::open(&path).unwrap();
        let files = match packet_by_packet {
            true => capture(&c, &mut per_packet(source)),
            false => capture(&c, &mut { source }),
        };
        assert!(files.len() > 1, "{sub}");
        let packets: u64 = files.iter().map(|f| f.2.packets).sum();
        assert_eq!(packets, recs.len() as u64, "{sub}");
    }
}

#[test]
fn a_bad_record_is_reported_with_its_offset_after_the_records_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = input(dir.path(), Format::Pcap, &[(1, 60); 10]);
    let mut bytes = std::fs::read(&path).unwrap();
    // the caplen of the 6th record (24-byte file header, 76-byte records)
    let at = 24 + 5 * 76;
    bytes[at + 8..at + 12].copy_from_slice(&1_000_000u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let c = small_config(&dir.path().join("out"), IoMode::Sync);
    std::fs::create_dir_all(&c.out_dir).unwrap();
    let s = run(
        &c,
        &mut FileSource::open(&path).unwrap(),
        &Control::default(),
    )
    .unwrap();
    let error = s.error.expect("the bad record is an error");
    assert!(error.contains(&format!("offset {at}")), "{error}");
    assert!(error.contains("caplen of 1000000 bytes"), "{error}");
    let files = check_published(&c.out_dir);
    assert_eq!(files.concat().len(), 5, "the records before it are kept");
}

#[test]
fn the_packet_limit_at_a_file_cut_ends_the_same_three_ways() {
    // The limit falls on the record that fills a file: no file follows for a record left out.
    let dir = tempfile::tempdir().unwrap();
    let path = input(dir.path(), Format::Pcap, &[(1, 60); 10]);
    for (limit, packets) in [(0, 2), (2, 2), (4, 2), (4, 4), (3, 1), (10, 5)] {
        let ends = three_ways(&path).map(|(sub, mut source)| {
            let out = dir.path().join(format!("{sub}-{limit}-{packets}"));
            let mut c = small_config(&out, IoMode::Sync);
            c.format = Format::Pcap;
            c.max_packets = Some(limit);
            c.rotate.packets = Some(packets);
            let (files, error) = capture_ending(&c, &mut *source);
            (
                files.into_iter().map(|f| f.2.packets).collect::<Vec<_>>(),
                error,
            )
        });
        let want: Vec<u64> = (0..limit / packets).map(|_| packets).collect();
        assert_eq!(ends[2], (want, None), "limit {limit}, {packets} a file");
        assert_eq!(ends[0], ends[2], "limit {limit}, {packets} a file: blocks");
        assert_eq!(ends[1], ends[2], "limit {limit}, {packets} a file: ringed");
    }
}

#[test]
fn a_record_longer_than_a_ring_buffer_ends_the_same_three_ways() {
    // 4 KiB buffers make 4 KiB blocks: a 9 KB record lies over two whole blocks after it, and
    // the ring cannot hold it.
    let dir = tempfile::tempdir().unwrap();
    let mut recs = vec![(1, 100); 200];
    recs.insert(150, (1, 9_000));
    let path = input(dir.path(), Format::Pcap, &recs);
    let ends = three_ways(&path).map(|(sub, mut source)| {
        let mut c = small_config(&dir.path().join(sub), IoMode::Sync);
        c.format = Format::Pcap;
        c.buffer_bytes = 4 << 10;
        c.ring_bytes = 4 * c.buffer_bytes;
        let (files, error) = capture_ending(&c, &mut *source);
        let files: Vec<_> = files.into_iter().map(|f| (f.1, f.2.packets)).collect();
        (files, error)
    });
    let error = ends[2].1.as_deref().unwrap_or_default();
    assert!(error.contains("does not fit in a ring buffer"), "{error}");
    assert_eq!(ends[2].0.iter().map(|f| f.1).sum::<u64>(), 150);
    assert!(ends[0] == ends[2], "blocks against per-packet");
    assert!(ends[1] == ends[2], "ringed against per-packet");
}

/// Rotations asked for (SIGHUP) all through a replay in blocks: each closes the open file at
/// the first record of the next block walked. Every record lands once, in order, in files
/// whose manifests and digests hold.
#[test]
fn rotations_asked_for_during_a_replay_in_blocks_lose_and_repeat_nothing() {
    use std::sync::atomic::AtomicBool;
    let dir = tempfile::tempdir().unwrap();
    let recs: Vec<(u64, usize)> = (0..20_000).map(|i| (1, 40 + (i * 37) % 900)).collect();
    let path = input(dir.path(), Format::Pcap, &recs);
    let mut c = small_config(&dir.path().join("out"), IoMode::Sync);
    // records taken as they are: the blocks
    c.format = Format::Pcap;
    std::fs::create_dir_all(&c.out_dir).unwrap();
    let control = Control::default();
    let (done, asking) = (AtomicBool::new(false), AtomicBool::new(false));
    let summary = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Relaxed) {
                control.rotate.store(true, Relaxed);
                asking.store(true, Relaxed);
                std::thread::yield_now();
            }
        });
        // (on a busy machine the replay could be over before the other thread first ran)
        while !asking.load(Relaxed) {
            std::thread::yield_now();
        }
        let summary = run(&c, &mut FileSource::open(&path).unwrap(), &control);
        done.store(true, Relaxed);
        summary
    });
    assert_eq!(summary.unwrap().error, None);
    let files = outputs(&c.out_dir);
    assert!(files.len() > 1, "{} files", files.len());
    let mut written = Vec::new();
    for (name, bytes, m) in &files {
        let recs = read_all(&c.out_dir.join(name));
        assert_eq!(m.packets, recs.len() as u64, "{name}");
        assert_eq!(m.file_size, bytes.len() as u64, "{name}");
        written.extend(recs);
    }
    assert!(
        written == read_all(&path),
        "records lost, repeated or out of order"
    );
}
