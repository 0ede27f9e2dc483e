//! Tests of the reader module.

use super::*;
use crate::format::TraceWriter;

/// Returns 1..=7 bytes per read, cycling.
struct Dribble {
    bytes: Vec<u8>,
    pos: usize,
    step: usize,
}

impl Read for Dribble {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = self.step.min(out.len()).min(self.bytes.len() - self.pos);
        out[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn trace(format: Format, n: usize) -> Vec<u8> {
    let mut w = TraceWriter::new(Vec::new(), format, LinkType::ETHERNET, 65535).unwrap();
    for i in 0..n {
        let data = vec![i as u8; 14 + i % 50];
        let r = Record {
            ts_ns: 1_600_000_000_000_000_000 + i as u64 * 1000,
            wire_len: data.len() as u32 + 3,
            link_type: LinkType::ETHERNET,
            interface: 0,
            drops: 0,
            data: &data,
        };
        w.write(&r).unwrap();
    }
    w.finish().unwrap()
}

fn drain(r: &mut TraceReader) -> Result<Vec<OwnedRecord>, ReadError> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        match r.next_owned()? {
            Some(rec) => out.push(rec),
            None => return Ok(out),
        }
    }
    panic!("reader made no end")
}

#[test]
fn stream_reader_matches_slice_reader() {
    for format in Format::ALL {
        let bytes = trace(format, 100);
        let mut a = TraceReader::from_bytes("a", bytes.clone(), Some(format)).unwrap();
        let dribble = Dribble {
            bytes,
            pos: 0,
            step: 0,
        };
        let mut b =
            TraceReader::from_stream_with("b", Box::new(dribble), Some(format), 64).unwrap();
        let (ra, rb) = (drain(&mut a).unwrap(), drain(&mut b).unwrap());
        assert_eq!(ra.len(), 100);
        assert_eq!(ra, rb, "{format}");
        assert_eq!(a.offset(), b.offset());
    }
}

/// Offsets at which a cut leaves a whole file (block and record boundaries).
fn boundaries(format: Format, n: usize) -> Vec<usize> {
    let enc = crate::format::RecordEncoder::new(format, LinkType::ETHERNET, 65535).unwrap();
    let mut at = enc.file_header().len();
    let mut v = match format {
        Format::Pcapng => vec![pcapng::emit::SECTION_HEADER_LEN, at],
        Format::Erf => vec![0],
        _ => vec![at],
    };
    for i in 0..n {
        at += enc.record_len(14 + i % 50);
        v.push(at);
    }
    v
}

#[test]
fn every_truncation_is_an_error_or_a_clean_end() {
    for format in Format::ALL {
        let bytes = trace(format, 3);
        let whole = boundaries(format, 3);
        for n in 0..bytes.len() {
            let cut = bytes[..n].to_vec();
            let outcome =
                TraceReader::from_bytes("cut", cut, Some(format)).and_then(|mut r| drain(&mut r));
            match outcome {
                Ok(recs) => assert!(whole.contains(&n), "{format} {n}: {recs:?}"),
                Err(e) => {
                    assert!(!whole.contains(&n), "{format} {n}: {e}");
                    assert!(e.is_truncated_at_end(), "{format} {n}: {e}");
                }
            }
        }
    }
}

/// Returns bytes up to the next of `stops` per read.
struct Stopping {
    bytes: Vec<u8>,
    pos: usize,
    stops: Vec<usize>,
}

impl Read for Stopping {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let stop = self.stops.iter().copied().find(|&s| s > self.pos);
        let end = stop.unwrap_or(self.bytes.len()).min(self.bytes.len());
        let n = (end - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn a_stream_read_that_ends_on_a_record_before_a_cut_one_is_truncated() {
    // The read before the cut record's bytes ends exactly where that record starts: what the
    // next read finds is still a record cut short, not a clean end.
    for format in Format::ALL {
        let bytes = trace(format, 3);
        let whole = boundaries(format, 3);
        for n in 0..bytes.len() {
            let stream = Stopping {
                bytes: bytes[..n].to_vec(),
                pos: 0,
                stops: whole.clone(),
            };
            let outcome = TraceReader::from_stream_with("cut", Box::new(stream), Some(format), 64)
                .and_then(|mut r| drain(&mut r));
            if let Ok(recs) = outcome {
                assert!(whole.contains(&n), "{format} {n}: {recs:?}");
            }
        }
    }
    let bytes = trace(Format::Pcap, 3);
    let whole = boundaries(Format::Pcap, 3);
    for n in 24..bytes.len() {
        let open = || {
            let stream = Stopping {
                bytes: bytes[..n].to_vec(),
                pos: 0,
                stops: whole.clone(),
            };
            TraceReader::from_stream_with("cut", Box::new(stream), None, 64).unwrap()
        };
        let mut r = open();
        let mut out = vec![0; 1024];
        let mut copied = Ok(());
        for _ in 0..10 {
            match r.copy_pcap_records(&mut out, &mut |_| true) {
                Ok((_, CopyStop::End)) => break,
                Ok(_) => {}
                Err(e) => {
                    copied = Err(e);
                    break;
                }
            }
        }
        assert_eq!(copied.is_ok(), whole.contains(&n), "copy, cut at {n}");
        let mut r = open();
        let mut clean = false;
        for _ in 0..10 {
            match r.peek_pcap() {
                Ok(None) => clean = true,
                Ok(Some(_)) if r.next().is_ok() => continue,
                _ => {}
            }
            break;
        }
        assert_eq!(clean, whole.contains(&n), "peek, cut at {n}");
    }
}

#[test]
fn errors_name_file_offset_and_what() {
    let mut bytes = trace(Format::Pcap, 2);
    bytes[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut r = TraceReader::from_bytes("bad.pcap", bytes, None).unwrap();
    let e = r.next().unwrap_err();
    assert_eq!(e.offset(), Some(24));
    assert!(
        e.to_string().starts_with("bad.pcap: offset 24: caplen"),
        "{e}"
    );
    let e = TraceReader::from_bytes("x", b"hello world, no trace".to_vec(), None).unwrap_err();
    assert!(matches!(e, ReadError::UnknownFormat { .. }));
}

#[test]
fn unknown_input_says_what_it_is_not_and_how_it_starts() {
    let e = TraceReader::from_bytes("notes.txt", b"hello world".to_vec(), None).unwrap_err();
    let text = e.to_string();
    assert_eq!(
        text,
        "notes.txt: not a pcap, pcapng or ERF file (starts with \"hello wo\")"
    );
    let e = TraceReader::from_bytes("x.bin", vec![0, 1, 0xfe, 0xff, 9, 9, 9, 9], None).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("(starts with 00 01 fe ff 09 09 09 09)"),
        "{e}"
    );
}

#[test]
fn empty_input_is_unknown_format() {
    let e = TraceReader::from_bytes("empty", Vec::new(), None).unwrap_err();
    assert!(e.to_string().contains("empty input"), "{e}");
}

/// A mapped file truncated while it is read (to nothing, mid-page, on a page boundary, for
/// every format) gives an error saying it changed, never a crash and never a clean end; the
/// records read before are what the file held.
#[test]
fn a_mapped_file_truncated_while_read_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::Pcap, Format::PcapNs, Format::Pcapng, Format::Erf] {
        let bytes = trace(format, 3000);
        let expected =
            drain(&mut TraceReader::from_bytes("t", bytes.clone(), None).unwrap()).unwrap();
        for keep in [0u64, 100, 4096, 5000, 3 * 4096] {
            let path = dir.path().join(format!("t-{format}-{keep}"));
            std::fs::write(&path, &bytes).unwrap();
            let mut r = TraceReader::open(&path).unwrap();
            let mut before = Vec::new();
            for _ in 0..10 {
                before.push(r.next_owned().unwrap().unwrap());
            }
            assert_eq!(before[..], expected[..10], "{format}");
            truncate(&path, keep);
            let err = drain(&mut r).expect_err("a truncated file cannot end cleanly");
            let shown = err.to_string();
            assert!(
                shown.contains("changed while it was read"),
                "{format} {keep}: {shown}"
            );
            assert!(shown.contains(&path.display().to_string()), "{shown}");
        }
    }
}

/// A mapped file written to while it is read, in place (its length unchanged, so no page
/// faults) or at its end, gives an error saying it changed: what was read is a mix of the
/// file before and after, or not all of it.
#[test]
fn a_mapped_file_written_to_while_read_is_an_error() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::Pcap, Format::Pcapng, Format::Erf] {
        let bytes = trace(format, 3000);
        for append in [false, true] {
            let path = dir.path().join(format!("w-{format}-{append}"));
            std::fs::write(&path, &bytes).unwrap();
            if !append {
                // an old time: the write in place below, in the same clock tick as the
                // file's creation, still changes it (an append is seen by the length alone)
                let old =
                    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30);
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_modified(old)
                    .unwrap();
            }
            let mut r = TraceReader::open(&path).unwrap();
            for _ in 0..10 {
                r.next_owned().unwrap().unwrap();
            }
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            match append {
                false => {
                    f.seek(SeekFrom::Start(bytes.len() as u64 / 2)).unwrap();
                    f.write_all(&[0x5a; 8]).unwrap();
                }
                true => {
                    f.seek(SeekFrom::End(0)).unwrap();
                    f.write_all(&bytes[bytes.len() - 100..]).unwrap();
                }
            }
            drop(f);
            let err = drain(&mut r).expect_err("a file written to while read cannot end cleanly");
            assert!(
                err.to_string().contains("changed while it was read"),
                "{format} append {append}: {err}"
            );
        }
    }
}

/// Copying runs of records out of a mapped pcap file truncated under the copy is an error
/// too: the zeros put where the file's pages were are never handed out as records.
#[test]
fn copying_from_a_mapped_file_truncated_under_it_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = trace(Format::Pcap, 3000);
    for keep in [0u64, 100, 4096, 5000] {
        let path = dir.path().join(format!("t-{keep}.pcap"));
        std::fs::write(&path, &bytes).unwrap();
        let mut r = TraceReader::open(&path).unwrap();
        truncate(&path, keep);
        let mut out = vec![0u8; 1 << 20];
        let err = loop {
            match r.copy_pcap_records(&mut out, &mut |_| true) {
                Ok((_, CopyStop::End)) => panic!("{keep}: a truncated file cannot end cleanly"),
                Ok(_) => {}
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("changed while it was read"), "{keep}: {err}");
    }
}

/// Reading a mapped file that did not change is unaffected by the guard, and a map that is
/// gone releases its place (more maps, one after another, than the guard has places).
#[test]
fn guarded_maps_of_unchanged_files_read_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = trace(Format::Pcap, 500);
    let path = dir.path().join("t.pcap");
    std::fs::write(&path, &bytes).unwrap();
    let expected = drain(&mut TraceReader::from_bytes("t", bytes, None).unwrap()).unwrap();
    for _ in 0..200 {
        let mut r = TraceReader::open(&path).unwrap();
        assert_eq!(drain(&mut r).unwrap(), expected);
    }
}

/// Cuts the file at `path` to `keep` bytes in place, as another process would.
fn truncate(path: &std::path::Path, keep: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(keep)
        .unwrap();
}

/// A stream that counts the reads landing in the slow band of the kernel's copy (see
/// [`crate::align`]), as a file read by the kernel would be copied, and hands out at most
/// `max` bytes per read.
struct Watched {
    bytes: Vec<u8>,
    pos: usize,
    max: usize,
    slow: Count,
    /// Where the reads landed.
    landed: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

type Count = std::sync::Arc<std::sync::atomic::AtomicUsize>;

impl Read for Watched {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.max.min(out.len()).min(self.bytes.len() - self.pos);
        self.landed.lock().unwrap().push(out.as_ptr() as usize);
        if n > 0 && crate::align::slow_read(out.as_ptr(), self.pos as u64) {
            self.slow.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        out[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn watched(bytes: Vec<u8>, max: usize) -> (Watched, Count) {
    let (w, slow, _) = watched_landing(bytes, max);
    (w, slow)
}

type Landed = std::sync::Arc<std::sync::Mutex<Vec<usize>>>;

/// [`watched`], with where every read landed.
fn watched_landing(bytes: Vec<u8>, max: usize) -> (Watched, Count, Landed) {
    let (slow, landed): (Count, Landed) = Default::default();
    let w = Watched {
        bytes,
        pos: 0,
        max,
        slow: std::sync::Arc::clone(&slow),
        landed: std::sync::Arc::clone(&landed),
    };
    (w, slow, landed)
}

/// Every read a stream reader makes lands where its bytes' address is in step with their
/// offset, whatever the buffer size, read sizes and record lengths (the buffer is compacted
/// and grown many times over), and the records are the ones the slice reader sees.
#[test]
fn a_stream_reader_reads_in_step_with_the_file() {
    for format in Format::ALL {
        let bytes = trace(format, 400);
        let expected = drain(&mut TraceReader::from_bytes("t", bytes.clone(), None).unwrap());
        for (buffer, max) in [(64, 7), (100, 4096), (1000, 333), (4096, 100_000)] {
            let (w, slow) = watched(bytes.clone(), max);
            let mut r = TraceReader::from_stream_with("t", Box::new(w), None, buffer).unwrap();
            assert_eq!(drain(&mut r).unwrap(), expected.as_ref().unwrap().clone());
            let slow = slow.load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(slow, 0, "{format:?} buffer {buffer} reads of {max}");
        }
    }
}

/// Copying runs of records from a stream: whatever the place of the caller's buffer in
/// memory, no read lands in the slow band (a read straight into the caller's buffer is made
/// only where it is out of the band; elsewhere the stream's own buffer, in step, takes it),
/// and the bytes copied are the file's records.
#[test]
fn copying_runs_from_a_stream_reads_in_step_with_the_file() {
    let bytes = trace(Format::Pcap, 3000);
    let records = &bytes[pcap::HEADER_LEN..];
    let mut big = vec![0u8; (64 << 10) + 4096];
    let mut direct = 0;
    for at in [0, 1, 8, 16, 24, 31, 32, 40, 63] {
        for room in [2000, 20_000, 64 << 10] {
            let (w, slow, landed) = watched_landing(bytes.clone(), 1 << 20);
            let mut r = TraceReader::from_stream_with("t", Box::new(w), None, 4096).unwrap();
            let mut copied = Vec::new();
            loop {
                let out = &mut big[at..at + room];
                let (n, stop) = r.copy_pcap_records(out, &mut |_| true).unwrap();
                copied.extend_from_slice(&out[..n]);
                match stop {
                    CopyStop::End => break,
                    CopyStop::Full(_) => {}
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(copied, records, "at {at} room {room}");
            let slow = slow.load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(slow, 0, "at {at} room {room}");
            let caller = big.as_ptr_range();
            let caller = caller.start as usize..caller.end as usize;
            direct += usize::from(landed.lock().unwrap().iter().any(|a| caller.contains(a)));
        }
    }
    // out of the band, which is most places, the big reads still go straight in
    assert!(
        direct >= 12,
        "{direct} of 27 copies read straight into the caller's buffer"
    );
}
