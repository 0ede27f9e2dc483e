//! Engine tests over synthetic sources: rotation at each boundary, publication, both writers,
//! ring drops, stop and rotate requests, failed writes, salvage.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::ring::{Buffer, FreeBuffers};
use super::rotate::RotatePolicy;
use super::salvage::{salvage_dir, LeftoverPolicy, SalvageOutcome};
use super::source::{Batch, CaptureSource, Next, SourceError};
use super::writer::{Backend, Failure, IoMode};
use super::*;
use lander_spool::manifest::{manifest_path, Manifest};
use lander_spool::naming;
use lander_trace::format::TraceReader;
use lander_trace::record::{LinkType, OwnedRecord, Record};
use lander_trace::synth::{generate, Profile};

mod copy;
mod spool;

/// Packets from memory; `live` ones report `Idle` after the last packet until `until` says
/// to stop.
struct VecSource {
    recs: Vec<OwnedRecord>,
    at: usize,
    live: bool,
    link: LinkType,
    after: Box<dyn FnMut(usize) -> bool>,
}

impl VecSource {
    fn file(recs: Vec<OwnedRecord>) -> VecSource {
        VecSource {
            recs,
            at: 0,
            live: false,
            link: LinkType::ETHERNET,
            after: Box::new(|_| true),
        }
    }
}

impl CaptureSource for VecSource {
    fn next(&mut self) -> Result<Next<'_>, SourceError> {
        if !(self.after)(self.at) {
            return Ok(Next::Idle);
        }
        if self.at == self.recs.len() {
            return Ok(Next::End);
        }
        self.at += 1;
        Ok(Next::Packet(self.recs[self.at - 1].as_record()))
    }
    fn link_type(&self) -> LinkType {
        self.link
    }
    fn snaplen(&self) -> u32 {
        65535
    }
    fn is_live(&self) -> bool {
        self.live
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

fn seqs(dir: &Path) -> std::sync::Arc<lander_spool::seq::SeqAllocator> {
    let perms = lander_spool::perms::Perms::RAW;
    std::sync::Arc::new(lander_spool::seq::SeqAllocator::open(dir, "t", perms, false).unwrap())
}

fn synth(n: u64) -> Vec<OwnedRecord> {
    generate(Profile::SynFlood, 7, n).collect()
}

fn small_config(dir: &Path, io: IoMode) -> EngineConfig {
    let mut c = EngineConfig::new(dir.to_owned(), "t".into());
    c.io = io;
    c.format = Format::PcapNs;
    c.ring_bytes = 256 << 10;
    c.buffer_bytes = 64 << 10;
    c
}

fn published(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            !n.ends_with(".json") && !n.starts_with('.')
        })
        .collect();
    v.sort();
    v
}

fn read_all(path: &Path) -> Vec<OwnedRecord> {
    let mut r = TraceReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next().unwrap() {
        out.push(rec.to_owned_record());
    }
    out
}

/// Checks every published file against its manifest; returns the records of all, in order.
fn check_published(dir: &Path) -> Vec<Vec<OwnedRecord>> {
    published(dir)
        .iter()
        .map(|p| {
            let m = Manifest::read(&manifest_path(p)).unwrap();
            let bytes = std::fs::read(p).unwrap();
            assert_eq!(m.blake3, blake3::hash(&bytes).to_hex().to_string(), "{p:?}");
            assert_eq!(m.file_size, bytes.len() as u64);
            let recs = read_all(p);
            assert_eq!(m.packets, recs.len() as u64);
            assert_eq!(m.first_ts_ns, recs.first().map(|r| r.ts_ns));
            assert_eq!(m.last_ts_ns, recs.last().map(|r| r.ts_ns));
            recs
        })
        .collect()
}

#[test]
fn rotated_files_hold_every_packet_in_order_with_both_writers() {
    let input = synth(5000);
    let mut contents = Vec::new();
    for io in [IoMode::Sync, IoMode::Uring] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = small_config(dir.path(), io);
        c.rotate.size = Some(50_000);
        let s = run(&c, &mut VecSource::file(input.clone()), &Control::default()).unwrap();
        assert_eq!(s.error, None);
        assert_eq!(s.counters.packets, 5000);
        let files = check_published(dir.path());
        assert!(files.len() > 5, "{} files", files.len());
        for p in published(dir.path()) {
            assert!(std::fs::metadata(&p).unwrap().len() <= 50_000);
        }
        assert!(files.concat() == input);
        let bytes: Vec<Vec<u8>> = published(dir.path())
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        contents.push(bytes);
    }
    assert!(
        contents[0] == contents[1],
        "io_uring and sync wrote the same bytes"
    );
}

#[test]
fn rotate_packets_closes_at_exactly_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = small_config(dir.path(), IoMode::Auto);
    c.rotate.packets = Some(100);
    run(&c, &mut VecSource::file(synth(1050)), &Control::default()).unwrap();
    let files = check_published(dir.path());
    let counts: Vec<usize> = files.iter().map(Vec::len).collect();
    assert_eq!(counts, [vec![100; 10], vec![50]].concat());
    let names: Vec<String> = published(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for (i, n) in names.iter().enumerate() {
        assert!(n.ends_with(&format!("-{i:06}.pcap")), "{n}");
    }
}

#[test]
fn rotate_interval_aligns_files_to_the_clock() {
    let s = 1_000_000_000u64;
    let base = 1_700_000_003 * s; // 3 s past a 10 s boundary
    let recs: Vec<OwnedRecord> = synth(60)
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.ts_ns = base + i as u64 * s / 2;
            r
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut c = small_config(dir.path(), IoMode::Sync);
    c.rotate.interval_ns = Some(10 * s);
    run(&c, &mut VecSource::file(recs), &Control::default()).unwrap();
    let files = check_published(dir.path());
    // 3.0 .. 32.5 s: intervals [0,10) [10,20) [20,30) [30,40)
    let counts: Vec<usize> = files.iter().map(Vec::len).collect();
    assert_eq!(counts, [14, 20, 20, 6]);
    for (f, p) in files.iter().zip(published(dir.path())) {
        let start = f[0].ts_ns - f[0].ts_ns % (10 * s);
        assert!(f
            .iter()
            .all(|r| r.ts_ns >= start && r.ts_ns < start + 10 * s));
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (_, secs, _) = naming::parse_trace_name(&name).unwrap();
        assert_eq!(secs * s, start, "named after the boundary: {name}");
    }
}

#[test]
fn interval_timer_closes_a_file_when_no_packet_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let now = lander_spool::manifest::now_ns();
    let recs: Vec<OwnedRecord> = synth(3)
        .into_iter()
        .map(|mut r| {
            r.ts_ns = now;
            r
        })
        .collect();
    let watch = dir.path().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut src = VecSource {
        recs,
        at: 0,
        live: true,
        link: LinkType::ETHERNET,
        // After the packets, stay idle until the file has been published by the timer.
        after: Box::new(move |at| {
            if at < 3 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
            !published(&watch).is_empty() || Instant::now() > deadline
        }),
    };
    let mut c = small_config(dir.path(), IoMode::Sync);
    c.rotate.interval_ns = Some(1_000_000_000);
    run(&c, &mut src, &Control::default()).unwrap();
    let files = check_published(dir.path());
    assert_eq!(
        files.len(),
        1,
        "the timer closed the file before the source ended"
    );
    assert_eq!(files[0].len(), 3);
}

#[test]
fn stop_and_rotate_requests_publish_the_current_file() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::default();
    let (stop, rotate) = (control.stop.clone(), control.rotate.clone());
    let mut src = VecSource::file(synth(10_000));
    src.after = Box::new(move |at| {
        // Flags are looked at every 1024 packets: these land just before packets 2048 and 4096.
        if at == 2047 {
            rotate.store(true, Relaxed);
        }
        if at == 4095 {
            stop.store(true, Relaxed);
        }
        true
    });
    let s = run(&small_config(dir.path(), IoMode::Uring), &mut src, &control).unwrap();
    assert_eq!(s.error, None);
    let files = check_published(dir.path());
    let counts: Vec<usize> = files.iter().map(Vec::len).collect();
    assert_eq!(counts, [2048, 2048]);
}

#[test]
fn a_live_source_drops_instead_of_waiting_for_buffers() {
    let free = FreeBuffers::allocate(2, 64 << 10, 2).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(64);
    let counters = std::sync::Arc::new(stats::Counters::default());
    let dir = tempfile::tempdir().unwrap();
    let producer = Producer::new(
        ProducerConfig {
            out_dir: dir.path().to_owned(),
            site: "t".into(),
            format: Format::PcapNs,
            snaplen: 65535,
            rotate: RotatePolicy::default(),
            seqs: seqs(dir.path()),
            max_packets: None,
            perms: Perms::RAW,
            blocks: None,
        },
        (LinkType::ETHERNET, true),
        free,
        tx,
        counters.clone(),
        Control::default(),
    )
    .unwrap();
    let mut src = VecSource::file(synth(5000));
    src.live = true;
    // No writer takes the buffers: two fill up, the rest of the packets are ring drops.
    producer.run(&mut src).unwrap();
    let kept = counters.packets.load(Relaxed);
    let dropped = counters.ring_drops.load(Relaxed);
    assert!(kept > 0 && dropped > 0);
    assert_eq!(kept + dropped, 5000);
    drop(rx);
}

/// Fails every write at or past `fail_at`.
struct FailingBackend {
    free: FreeBuffers,
    fail_at: u64,
    failures: Vec<Failure>,
    inner: writer::sync::SyncBackend,
}

impl Backend for FailingBackend {
    fn name(&self) -> &'static str {
        "failing"
    }
    fn submit(&mut self, fd: std::os::fd::RawFd, offset: u64, buf: Buffer) {
        if offset + buf.len() as u64 > self.fail_at {
            self.failures.push(Failure {
                offset,
                error: std::io::Error::from_raw_os_error(libc::ENOSPC),
            });
            return self.free.put(buf);
        }
        self.inner.submit(fd, offset, buf);
    }
    fn progress(&mut self, _wait: bool) {}
    fn in_flight(&self) -> usize {
        0
    }
    fn take_failures(&mut self) -> Vec<Failure> {
        let mut f = std::mem::take(&mut self.failures);
        f.extend(self.inner.take_failures());
        f
    }
}

#[test]
fn a_failed_write_publishes_the_whole_records_before_it_as_partial() {
    let (file, _, input) = fail_a_write(4096, 10_000, false);
    let (size, reason, recs) = file.expect("a partial file");
    assert!(
        reason.contains(&format!("write error at byte {size}:")),
        "{reason}"
    );
    assert!(size <= 10_000 && size > 4096);
    assert!(!recs.is_empty() && recs.len() < 1000);
    assert!(recs[..] == input[..recs.len()]);
}

/// Written past the page cache, a failed write starts at a page boundary within a record
/// (a buffer's first page holds the end of the buffer before): the file is still cut back
/// to whole records, every one before the failed write. A failure in the file's first pages
/// leaves no whole record: nothing is published, and the error says so.
#[test]
fn a_failed_direct_write_publishes_the_whole_records_before_it_as_partial() {
    let (file, err, _) = fail_a_write(64 << 10, 9_000, true);
    assert!(file.is_none(), "nothing whole to publish");
    assert!(err.contains("nothing of it was published"), "{err}");
    for fail_at in [70_000, 130_000, 200_000] {
        let (file, _, input) = fail_a_write(64 << 10, fail_at, true);
        let (size, reason, recs) = file.expect("a partial file");
        let failed_at: u64 = reason
            .strip_prefix("write error at byte ")
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{reason}"));
        assert_eq!(
            failed_at % 4096,
            0,
            "a direct write starts on a page: {reason}"
        );
        assert!(failed_at < fail_at);
        // every whole record before the failed write, not only the buffers before it
        assert!(
            size <= failed_at && failed_at - size < 100,
            "{size} {failed_at}"
        );
        assert!(!recs.is_empty() && recs.len() < 20_000);
        assert!(recs[..] == input[..recs.len()], "fail at {fail_at}");
    }
}

/// A partial file: its size, the reason in its manifest, its records.
type Partial = (u64, String, Vec<OwnedRecord>);

/// Writes 20,000 synthetic records (1000 with 4 KiB buffers) through a writer whose writes fail
/// at and past `fail_at`; the published file's size, partial reason and records, if there
/// is one; the writer's error; and the input. Direct writes are only taken while half the ring is free, so with `direct` the
/// ring holds more than the input (the source then finishes before the failure is seen).
fn fail_a_write(
    buffer: usize,
    fail_at: u64,
    direct: bool,
) -> (Option<Partial>, String, Vec<OwnedRecord>) {
    let dir = tempfile::tempdir().unwrap();
    let count = if direct { 64 } else { 4 };
    let free = FreeBuffers::allocate(count, buffer, 4).unwrap();
    let backend = Box::new(FailingBackend {
        free: free.clone(),
        fail_at,
        failures: Vec::new(),
        inner: writer::sync::SyncBackend::new(free.clone()),
    });
    let template = Manifest::new("", Format::PcapNs, LinkType::ETHERNET, 65535);
    let w = writer::Writer::new(
        writer::WriterConfig {
            fsync: false,
            template,
            perms: lander_spool::perms::Perms::RAW,
            seqs: seqs(dir.path()),
            direct,
        },
        backend,
        free.clone(),
        Default::default(),
    );
    let (tx, rx) = crossbeam_channel::bounded(64);
    let control = Control::default();
    let producer = Producer::new(
        ProducerConfig {
            out_dir: dir.path().to_owned(),
            site: "t".into(),
            format: Format::PcapNs,
            snaplen: 65535,
            rotate: RotatePolicy::default(),
            seqs: seqs(dir.path()),
            max_packets: None,
            perms: Perms::RAW,
            blocks: None,
        },
        (LinkType::ETHERNET, false),
        free,
        tx,
        Default::default(),
        control.clone(),
    )
    .unwrap();
    let failed = control.writer_failed.clone();
    let t = std::thread::spawn(move || {
        let r = w.run(rx);
        failed.store(true, Relaxed);
        r
    });
    let input = synth(if buffer < 8192 { 1000 } else { 20_000 });
    let produced = producer.run(&mut VecSource::file(input.clone()));
    let report = t.join().unwrap();
    assert!(
        direct || produced.is_err(),
        "the source stops when the writer fails"
    );
    let err = report.error.expect("the failure is reported").to_string();
    assert!(err.contains("No space left"), "{err}");
    let files = published(dir.path());
    assert!(files.len() <= 1, "{files:?}");
    let temps: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "left behind: {temps:?}");
    let file = files.first().map(|f| {
        let m = Manifest::read(&manifest_path(f)).unwrap();
        let size = std::fs::metadata(f).unwrap().len();
        let reason = m.partial.unwrap();
        (size, reason, check_published(dir.path()).concat())
    });
    (file, err, input)
}

/// Captures 300 synthetic records into `dir` and takes the published file and its manifest
/// away again: the input, the file's path and its bytes, for a leftover to be made of.
fn captured_then_unpublished(dir: &Path) -> (Vec<OwnedRecord>, PathBuf, Vec<u8>) {
    let input = synth(300);
    run(
        &small_config(dir, IoMode::Sync),
        &mut VecSource::file(input.clone()),
        &Control::default(),
    )
    .unwrap();
    let file = published(dir).remove(0);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_file(manifest_path(&file)).unwrap();
    (input, file, bytes)
}

/// Leaves `bytes` as the temporary file of `dest` of a writer that crashed (a pid that
/// cannot be alive); its path.
fn leftover(dest: &Path, bytes: &[u8]) -> PathBuf {
    let name = dest.file_name().unwrap().to_string_lossy().into_owned();
    let host = lander_spool::manifest::hostname();
    let tmp = dest.with_file_name(format!(".{name}.{host}.4000000000.0.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    tmp
}

#[test]
fn salvage_keeps_whole_records_of_a_leftover_and_marks_it_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (input, file, bytes) = captured_then_unpublished(dir.path());
    // A crash mid-record: a pid that cannot be alive, the last record cut short.
    let tmp = leftover(&file, &bytes[..bytes.len() - 7]);
    let host = lander_spool::manifest::hostname();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let stale_manifest = dir
        .path()
        .join(format!(".{name}.json.{host}.4000000000.1.tmp"));
    std::fs::write(&stale_manifest, b"{").unwrap();
    let out = salvage_dir(dir.path(), LeftoverPolicy::Recover, false).unwrap();
    assert!(out.contains(&SalvageOutcome::Recovered {
        path: file.clone(),
        packets: 299
    }));
    assert!(!tmp.exists() && !stale_manifest.exists());
    let m = Manifest::read(&manifest_path(&file)).unwrap();
    assert!(m.recovered);
    assert_eq!(m.seq, Some(0));
    assert!(check_published(dir.path()).concat() == input[..299]);
    // a second pass finds nothing to do
    assert!(salvage_dir(dir.path(), LeftoverPolicy::Recover, false)
        .unwrap()
        .is_empty());
}

/// A crash with writes in flight could leave a hole of zeros before bytes written later (a
/// file system that completes writes out of order): salvage keeps the whole records before
/// it and never reads the zeros as records, nor what follows them.
#[test]
fn salvage_stops_at_a_hole_of_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let (input, file, bytes) = captured_then_unpublished(dir.path());
    // the end of the 100th record
    let mut at = 24;
    for _ in 0..100 {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        at += 16 + caplen as usize;
    }
    let mut holed = bytes[..at].to_vec();
    holed.extend_from_slice(&[0; 4096]);
    holed.extend_from_slice(&bytes[at..]);
    leftover(&file, &holed);
    let out = salvage_dir(dir.path(), LeftoverPolicy::Recover, false).unwrap();
    assert!(
        out.contains(&SalvageOutcome::Recovered {
            path: file.clone(),
            packets: 100
        }),
        "{out:?}"
    );
    assert!(check_published(dir.path()).concat() == input[..100]);
    let m = Manifest::read(&manifest_path(&file)).unwrap();
    let reason = m.partial.unwrap();
    assert!(reason.contains(&format!("zeros at byte {at}")), "{reason}");
}

#[test]
fn discard_partial_removes_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let host = lander_spool::manifest::hostname();
    let tmp = dir.path().join(format!(
        ".t-20240101-000000-000000.pcap.{host}.4000000000.0.tmp"
    ));
    std::fs::write(&tmp, b"partial").unwrap();
    let out = salvage_dir(dir.path(), LeftoverPolicy::Discard, false).unwrap();
    assert_eq!(out.len(), 1);
    assert!(!tmp.exists());
    assert!(published(dir.path()).is_empty());
}

#[test]
fn a_link_type_change_starts_a_new_file_with_that_link_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = synth(10);
    // Ethernet x3, then raw IPv4 (the Ethernet header cut off) x4, then Ethernet x3.
    for rec in &mut input[3..7] {
        rec.link_type = LinkType::RAW;
        rec.data.drain(..14);
        rec.wire_len -= 14;
    }
    let s = run(
        &small_config(dir.path(), IoMode::Sync),
        &mut VecSource::file(input.clone()),
        &Control::default(),
    )
    .unwrap();
    assert_eq!(s.error, None);
    let files = published(dir.path());
    let links: Vec<u32> = files
        .iter()
        .map(|p| Manifest::read(&manifest_path(p)).unwrap().link_type)
        .collect();
    assert_eq!(links, [1, 101, 1]);
    let recs = check_published(dir.path());
    let counts: Vec<usize> = recs.iter().map(Vec::len).collect();
    assert_eq!(counts, [3, 4, 3]);
    assert!(recs.concat() == input, "every packet, in order, unchanged");
}

#[test]
fn raw_ip_records_of_either_version_stay_in_a_raw_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = synth(4);
    for rec in &mut input {
        rec.link_type = LinkType::RAW;
        rec.data.drain(..14);
    }
    input[2].link_type = LinkType::IPV4;
    let mut src = VecSource::file(input);
    src.link = LinkType::RAW;
    run(
        &small_config(dir.path(), IoMode::Sync),
        &mut src,
        &Control::default(),
    )
    .unwrap();
    let counts: Vec<usize> = check_published(dir.path()).iter().map(Vec::len).collect();
    assert_eq!(counts, [4], "an IPV4 record fits a RAW file");
}

/// A source that hands over packets in batches of up to `max`, as a live interface does.
struct Batched {
    inner: VecSource,
    /// The largest `max` asked for.
    largest: usize,
    /// The most handed over in one call (a kernel block's worth).
    per_call: usize,
    /// Set this flag once this many packets are handed over.
    stop_at: Option<(usize, std::sync::Arc<std::sync::atomic::AtomicBool>)>,
}

impl Batched {
    fn new(recs: Vec<OwnedRecord>) -> Batched {
        Batched {
            inner: VecSource::file(recs),
            largest: 0,
            per_call: usize::MAX,
            stop_at: None,
        }
    }
}

impl CaptureSource for Batched {
    fn next(&mut self) -> Result<Next<'_>, SourceError> {
        self.inner.next()
    }
    fn batch(
        &mut self,
        max: usize,
        each: &mut dyn FnMut(&Record<'_>) -> bool,
    ) -> Result<Batch, SourceError> {
        assert!(max >= 1, "a batch of nothing was asked for");
        self.largest = self.largest.max(max);
        let v = &mut self.inner;
        if v.at == v.recs.len() {
            return Ok(Batch::End);
        }
        let end = (v.at + max.min(self.per_call)).min(v.recs.len());
        let mut taking = true;
        for (i, rec) in v.recs[v.at..end].iter().enumerate() {
            taking = taking && each(&rec.as_record());
            if let Some((n, flag)) = &self.stop_at {
                if v.at + i + 1 == *n {
                    flag.store(true, Relaxed);
                }
            }
        }
        let n = end - v.at;
        v.at = end;
        Ok(Batch::Read(n))
    }
    fn link_type(&self) -> LinkType {
        self.inner.link_type()
    }
    fn snaplen(&self) -> u32 {
        self.inner.snaplen()
    }
    fn is_live(&self) -> bool {
        self.inner.is_live()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[test]
fn batches_write_what_single_packets_write_and_end_at_the_packet_limit() {
    let input = synth(5000);
    for limit in [None, Some(1), Some(1024), Some(1500), Some(0)] {
        let mut written = Vec::new();
        for batched in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut c = small_config(dir.path(), IoMode::Auto);
            c.rotate.packets = Some(700);
            c.max_packets = limit;
            let s = if batched {
                let mut src = Batched::new(input.clone());
                let s = run(&c, &mut src, &Control::default()).unwrap();
                assert!(src.largest <= 1024, "batch of {}", src.largest);
                s
            } else {
                run(&c, &mut VecSource::file(input.clone()), &Control::default()).unwrap()
            };
            assert_eq!(s.error, None);
            let want = limit.unwrap_or(5000);
            assert_eq!(
                s.counters.packets, want,
                "limit {limit:?}, batched {batched}"
            );
            let files = check_published(dir.path());
            assert!(files.concat() == input[..want as usize], "limit {limit:?}");
            written.push(files);
        }
        assert!(written[0] == written[1], "limit {limit:?}");
    }
}

#[test]
fn a_stop_is_seen_within_1024_packets_whatever_the_batches() {
    for per_call in [1, 700, 1000, 1024, 5000] {
        let dir = tempfile::tempdir().unwrap();
        let c = small_config(dir.path(), IoMode::Auto);
        let control = Control::default();
        let mut src = Batched::new(synth(5000));
        src.per_call = per_call;
        src.stop_at = Some((100, control.stop.clone()));
        let s = run(&c, &mut src, &control).unwrap();
        assert_eq!(s.error, None);
        // the flags are looked at after every 1,024 packets: the first look sees the stop
        assert_eq!(s.counters.packets, 1024, "batches of {per_call}");
        assert_eq!(check_published(dir.path()).concat().len(), 1024);
    }
}

/// Counts the writes whose buffer is placed in the slow band of the kernel's copy for the
/// file offset it goes to (see `lander_trace::align`), then writes them.
struct WatchingBackend {
    slow: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    inner: writer::sync::SyncBackend,
}

impl Backend for WatchingBackend {
    fn name(&self) -> &'static str {
        "watching"
    }
    fn submit(&mut self, fd: std::os::fd::RawFd, offset: u64, buf: Buffer) {
        if lander_trace::align::slow_write(buf.filled().as_ptr(), offset) {
            self.slow.fetch_add(1, Relaxed);
        }
        self.writes.fetch_add(1, Relaxed);
        self.inner.submit(fd, offset, buf);
    }
    fn progress(&mut self, wait: bool) {
        self.inner.progress(wait)
    }
    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }
    fn take_failures(&mut self) -> Vec<Failure> {
        self.inner.take_failures()
    }
}

/// Replays the pcap file `path` into `out` through `backend`, the ring `free` and rotation
/// `rotate`: by the copy path (`copy`) or packet by packet; whole pages past the page cache
/// where the disk takes them with `direct`.
fn replay(
    path: &Path,
    out: &Path,
    free: &FreeBuffers,
    rotate: RotatePolicy,
    backend: Box<dyn Backend>,
    (copy, direct): (bool, bool),
) {
    let template = Manifest::new("", Format::Pcap, LinkType::ETHERNET, 65535);
    let w = writer::Writer::new(
        writer::WriterConfig {
            fsync: false,
            template,
            perms: lander_spool::perms::Perms::RAW,
            seqs: seqs(out),
            direct,
        },
        backend,
        free.clone(),
        Default::default(),
    );
    let (tx, rx) = crossbeam_channel::bounded(64);
    let producer = Producer::new(
        ProducerConfig {
            out_dir: out.to_owned(),
            site: "t".into(),
            format: Format::Pcap,
            snaplen: 65535,
            rotate,
            seqs: seqs(out),
            max_packets: None,
            perms: Perms::RAW,
            blocks: None,
        },
        (LinkType::ETHERNET, false),
        free.clone(),
        tx,
        Default::default(),
        Control::default(),
    )
    .unwrap();
    let t = std::thread::spawn(move || w.run(rx));
    let source = source::file::FileSource::open(path).unwrap();
    match copy {
        true => producer.run(&mut { source }).unwrap(),
        false => producer.run(&mut copy::per_packet(source)).unwrap(),
    };
    assert!(t.join().unwrap().error.is_none());
}

/// Every buffer the producer hands to the writer is placed in step with the file offset it
/// is written at, on the per-packet path and on the replay's copy path, in every file of a
/// rotation by size (whose later files start at any offset of the input), so the kernel's
/// copy through the page cache never takes the slow band; and the files hold every packet.
#[test]
fn buffers_are_written_in_step_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let recs: Vec<(u64, usize)> = (0..20_000).map(|i| (1, 40 + i % 97)).collect();
    let path = copy::input(dir.path(), Format::Pcap, &recs);
    for copy in [false, true] {
        let out = dir.path().join(format!("out-{copy}"));
        std::fs::create_dir(&out).unwrap();
        // small buffers: many starts, at every offset a record boundary can fall on
        let free = FreeBuffers::allocate(8, 4096, 8).unwrap();
        let (slow, writes) = (std::sync::Arc::default(), std::sync::Arc::default());
        let backend = Box::new(WatchingBackend {
            slow: std::sync::Arc::clone(&slow),
            writes: std::sync::Arc::clone(&writes),
            inner: writer::sync::SyncBackend::new(free.clone()),
        });
        let rotate = RotatePolicy {
            size: Some(300_007),
            ..RotatePolicy::default()
        };
        replay(&path, &out, &free, rotate, backend, (copy, false));
        let files = check_published(&out);
        assert!(files.len() > 5, "{} files", files.len());
        assert!(files.concat() == read_all(&path));
        let (slow, writes) = (slow.load(Relaxed), writes.load(Relaxed));
        assert!(writes > 300, "{writes} writes");
        assert_eq!(
            slow, 0,
            "copy path {copy}: {slow} of {writes} writes in the slow band"
        );
    }
}

/// A buffer placed for the file offset it starts at has a little less room than an empty one
/// had: a record that no longer fits after it was placed (a file's first record, its header
/// before it, as large as the buffer allows) takes a fresh buffer, and the empty one goes
/// back to the ring instead of being lost (each loss shrank the ring by one, until a replay
/// waited forever for a buffer). Every record length near the buffer's size, one per file.
#[test]
fn no_buffer_is_lost_to_a_record_that_fills_it() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = 4096;
    for direct in [false, true] {
        for len in (buffer - 140..=buffer - 24).step_by(3) {
            let input = dir.path().join(format!("in-{len}-{direct}"));
            std::fs::create_dir(&input).unwrap();
            let path = copy::input(&input, Format::Pcap, &[(1, len - 16); 6]);
            let out = dir.path().join(format!("out-{len}-{direct}"));
            std::fs::create_dir(&out).unwrap();
            let free = FreeBuffers::allocate(8, buffer, 8).unwrap();
            let rotate = RotatePolicy {
                size: Some(24 + len as u64),
                ..RotatePolicy::default()
            };
            let backend = Box::new(writer::sync::SyncBackend::new(free.clone()));
            replay(&path, &out, &free, rotate, backend, (true, direct));
            assert_eq!(free.available(), 8, "record of {len} bytes: buffers lost");
            let files = check_published(&out);
            assert_eq!(files.len(), 6, "record of {len} bytes");
            assert!(files.concat() == read_all(&path));
        }
    }
}

/// A tmpfs of `size` mounted under `dir`, unmounted when dropped (tests run as root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let mnt = dir.join("small");
        std::fs::create_dir(&mnt).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mnt)
            .status()
            .expect("mount must be available (tests run as root)");
        assert!(st.success(), "cannot mount a tmpfs (tests need root)");
        Tmpfs(mnt)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Writes until the filesystem under `dir` is full.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join(".filler")).unwrap();
    let chunk = [0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
}

/// A file that was written whole gets its manifest even when the disk filled after it was
/// created (the next file, written by the other replay thread or by the writer while the
/// publisher works on this one, or anyone else's): the manifest's room is taken with the file.
#[test]
fn a_whole_file_is_published_after_the_disk_filled() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = Tmpfs::mount(dir.path(), "512k");
    publish_one_written(&mnt.0, || fill(&mnt.0));
}

/// A room taken away while its file was open (a cleaner removes temporaries older than an
/// hour, and the room is written only when its file is created) gives way to a new manifest.
#[test]
fn a_whole_file_is_published_after_its_manifest_room_was_removed() {
    let dir = tempfile::tempdir().unwrap();
    publish_one_written(dir.path(), || {
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.contains(".json.") && name.ends_with(".tmp") {
                std::fs::remove_file(&path).unwrap();
            }
        }
    });
}

/// Creates a file in `dir`, writes 100 records to it, calls `meanwhile`, then has the writer
/// close it: the file must be published whole.
fn publish_one_written(dir: &Path, meanwhile: impl FnOnce()) {
    let free = FreeBuffers::allocate(2, 4096, 2).unwrap();
    let template = Manifest::new("", Format::PcapNs, LinkType::ETHERNET, 65535);
    let seqs = seqs(dir);
    let w = writer::Writer::new(
        writer::WriterConfig {
            fsync: false,
            template,
            perms: Perms::RAW,
            seqs: seqs.clone(),
            direct: true,
        },
        Box::new(writer::sync::SyncBackend::new(free.clone())),
        free,
        Default::default(),
    );
    let open = writer::FileOpen {
        path: dir.join(naming::trace_name("t", 0, 0, Format::PcapNs)),
        seq: 0,
        link_type: LinkType::ETHERNET,
    };
    let mut file = writer::OpenFile::create(&open, &seqs, &Perms::RAW).unwrap();
    let input = synth(100);
    let mut enc = lander_trace::format::TraceWriter::new(
        Vec::new(),
        Format::PcapNs,
        LinkType::ETHERNET,
        65535,
    )
    .unwrap();
    let mut meta = ring::BufferMeta::default();
    for r in &input {
        enc.write(&r.as_record()).unwrap();
        meta.add(r.ts_ns, r.data.len(), r.wire_len, 0);
    }
    let bytes = enc.finish().unwrap();
    std::os::unix::fs::FileExt::write_all_at(file.file(), &bytes, 0).unwrap();
    file.take_written(&bytes, 0, &[], meta);
    meanwhile();
    let (tx, rx) = crossbeam_channel::bounded(4);
    let failure = None;
    tx.send(writer::Event::Adopt(Box::new(writer::Adopted {
        file,
        failure,
    })))
    .unwrap();
    let close = writer::FileClose {
        reason: rotate::CloseReason::Size,
        kernel_drops: None,
        interface_drops: None,
        ring_drops: 0,
    };
    tx.send(writer::Event::Close(close)).unwrap();
    drop(tx);
    let report = w.run(rx);
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(check_published(dir).concat(), input);
}

/// A file being written that an error path drops (the writer stopping on a failed
/// publication, a hand-over the writer no longer takes) is left for the next start to
/// salvage: what was written to it is never removed. The room for its manifest goes.
#[test]
fn a_file_dropped_on_an_error_path_is_left_for_salvage() {
    let dir = tempfile::tempdir().unwrap();
    let open = writer::FileOpen {
        path: dir
            .path()
            .join(naming::trace_name("t", 0, 0, Format::PcapNs)),
        seq: 0,
        link_type: LinkType::ETHERNET,
    };
    let file = writer::OpenFile::create(&open, &seqs(dir.path()), &Perms::RAW).unwrap();
    std::os::unix::fs::FileExt::write_all_at(file.file(), b"written", 0).unwrap();
    drop(file);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let name = left[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(".t-19700101-000000-000000.pcap."),
        "{name}"
    );
    assert_eq!(std::fs::read(&left[0]).unwrap(), b"written");
}

/// Written past the page cache, a buffer's last partial page waits for the next buffer only
/// while the source goes on at once (a full buffer); a buffer handed over for time (a quiet
/// link) is in the file whole before the file closes, so a pause never keeps packets in
/// this process only.
#[test]
fn a_direct_writer_keeps_back_a_partial_page_only_while_the_source_goes_on() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let free = FreeBuffers::allocate(4, 64 << 10, 4).unwrap();
    let backend = Box::new(writer::sync::SyncBackend::new(free.clone()));
    let (tx, t) = direct_writer(dir.path(), &free, backend);
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let wait_for = |want: u64| wait_for_temp(dir.path(), want);
    let send = |from: usize, to: usize, continued: bool| {
        let mut buf = free.take().unwrap();
        buf.begin_at(from as u64, to - from);
        buf.push(&bytes[from..to]);
        buf.continued = continued;
        tx.send(writer::Event::Data(buf)).unwrap();
    };
    // a full buffer: its whole pages are written, the rest waits for the next buffer
    send(0, 6000, true);
    wait_for(4096);
    // handed over for time: everything so far is in the file
    send(6000, 9000, false);
    wait_for(9000);
    send(9000, 10_000, true);
    wait_for(9000);
    published_whole(dir.path(), tx, t, &bytes);
}

/// A writer with direct writes on, over `backend` and the ring `free`, running on its own
/// thread, with a file open in `dir`: where to send its events, and its thread.
fn direct_writer(
    dir: &Path,
    free: &FreeBuffers,
    backend: Box<dyn Backend>,
) -> (
    crossbeam_channel::Sender<writer::Event>,
    std::thread::JoinHandle<writer::WriterReport>,
) {
    let w = writer::Writer::new(
        writer::WriterConfig {
            fsync: false,
            template: Manifest::new("", Format::PcapNs, LinkType::ETHERNET, 65535),
            perms: Perms::RAW,
            seqs: seqs(dir),
            direct: true,
        },
        backend,
        free.clone(),
        Default::default(),
    );
    let (tx, rx) = crossbeam_channel::bounded(4);
    let t = std::thread::spawn(move || w.run(rx));
    tx.send(writer::Event::Open(writer::FileOpen {
        path: dir.join(naming::trace_name("t", 0, 0, Format::PcapNs)),
        seq: 0,
        link_type: LinkType::ETHERNET,
    }))
    .unwrap();
    (tx, t)
}

/// Ends the writer of [`direct_writer`] and checks it published, in `dir`, a file of every
/// byte of `bytes` and had no error.
fn published_whole(
    dir: &Path,
    tx: crossbeam_channel::Sender<writer::Event>,
    t: std::thread::JoinHandle<writer::WriterReport>,
    bytes: &[u8],
) {
    drop(tx);
    let report = t.join().unwrap();
    assert!(report.error.is_none(), "{:?}", report.error);
    let file = published(dir).remove(0);
    assert!(
        std::fs::read(file).unwrap() == bytes,
        "the file is every byte"
    );
}

/// The size of the temporary trace file in `dir`, 0 before the writer created it.
fn temp_len(dir: &Path) -> u64 {
    let tmp = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".tmp") && !n.contains(".json")
        });
    tmp.map_or(0, |tmp| std::fs::metadata(tmp).unwrap().len())
}

/// Waits until the temporary trace file in `dir` is `want` bytes long.
fn wait_for_temp(dir: &Path, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while temp_len(dir) != want {
        assert!(Instant::now() < deadline, "{} != {want}", temp_len(dir));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// While less than half the ring is free (the device does not keep up), a direct writer
/// writes through the page cache, which takes the burst as it did before; once the ring has
/// drained it writes whole pages directly again, and the file is every byte.
#[test]
fn a_direct_writer_goes_through_the_page_cache_while_the_ring_is_backed_up() {
    use std::sync::Arc;
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let free = FreeBuffers::allocate(4, 64 << 10, 4).unwrap();
    let writes = Arc::<std::sync::atomic::AtomicUsize>::default();
    let backend = Box::new(WatchingBackend {
        slow: Arc::default(),
        writes: Arc::clone(&writes),
        inner: writer::sync::SyncBackend::new(free.clone()),
    });
    let (tx, t) = direct_writer(dir.path(), &free, backend);
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    let send = |from: usize, to: usize| {
        let mut buf = free.take().unwrap();
        buf.begin_at(from as u64, to - from);
        buf.push(&bytes[from..to]);
        buf.continued = true;
        tx.send(writer::Event::Data(buf)).unwrap();
    };
    // the source holds two buffers and hands over a third: one of four is free
    let held: Vec<Buffer> = (0..2).map(|_| free.take().unwrap()).collect();
    send(0, 20_000);
    wait_for_temp(dir.path(), 20_000);
    assert_eq!(writes.load(Relaxed), 0, "written through the page cache");
    for b in held {
        free.put(b);
    }
    send(20_000, 50_000);
    wait_for_temp(dir.path(), 49_152);
    assert_eq!(
        writes.load(Relaxed),
        1,
        "whole pages written directly again"
    );
    published_whole(dir.path(), tx, t, &bytes);
}
