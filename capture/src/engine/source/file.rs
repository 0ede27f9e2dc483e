//! Replay of a trace file (pcap, pcapng or ERF), as fast as possible or at recorded speed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{CaptureSource, Next, SourceError};
use lander_trace::format::TraceReader;
use lander_trace::record::LinkType;

/// Bytes read from the file at a time.
const READ_BUFFER: usize = 4 << 20;

/// Longest sleep between checks for a stop while pacing.
const PACE_SLICE: Duration = Duration::from_millis(50);

/// A trace file read through [`TraceReader`].
#[derive(Debug)]
pub struct FileSource {
    reader: TraceReader,
    /// The file again (one open file, so one position with the reader's), when it is a
    /// regular file.
    file: Option<std::fs::File>,
    name: String,
    pace: Option<Pace>,
}

#[derive(Debug)]
struct Pace {
    start: Option<(Instant, u64)>,
    stop: Arc<AtomicBool>,
}

impl FileSource {
    /// Opens `path`, detecting its format, to replay as fast as possible.
    ///
    /// The file is read through a bounded buffer rather than mapped, so the capture's memory
    /// stays the ring plus a few MiB whatever the size of the file.
    pub fn open(path: &Path) -> Result<FileSource, SourceError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| SourceError::Open {
            name: name.clone(),
            source,
        })?;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let again = regular.then(|| file.try_clone().ok()).flatten();
        let reader = TraceReader::from_stream_with(&name, Box::new(file), None, READ_BUFFER)?;
        Ok(FileSource {
            reader,
            file: again,
            name: path.display().to_string(),
            pace: None,
        })
    }

    /// Replays at recorded speed; a wait for the next packet ends early when `stop` is set.
    pub fn paced(mut self, stop: Arc<AtomicBool>) -> FileSource {
        self.pace = Some(Pace { start: None, stop });
        self
    }
}

impl Pace {
    /// Sleeps until a packet stamped `ts_ns` is due; false if a stop came first.
    fn wait(&mut self, ts_ns: u64) -> bool {
        let (t0, ts0) = *self.start.get_or_insert((Instant::now(), ts_ns));
        let due = t0 + Duration::from_nanos(ts_ns.saturating_sub(ts0));
        while let Some(left) = due.checked_duration_since(Instant::now()) {
            if self.stop.load(Relaxed) {
                return false;
            }
            std::thread::sleep(left.min(PACE_SLICE));
        }
        true
    }
}

impl CaptureSource for FileSource {
    fn next(&mut self) -> Result<Next<'_>, SourceError> {
        let Some(rec) = self.reader.next()? else {
            return Ok(Next::End);
        };
        if let Some(p) = self.pace.as_mut() {
            if !p.wait(rec.ts_ns) {
                return Ok(Next::End);
            }
        }
        Ok(Next::Packet(rec))
    }

    fn link_type(&self) -> LinkType {
        self.reader.link_type()
    }

    fn snaplen(&self) -> u32 {
        self.reader.snaplen()
    }

    fn is_live(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn pcap_records(&mut self) -> Option<&mut TraceReader> {
        let unpaced = self.pace.is_none();
        let pcap = self.reader.pcap_header().is_some();
        (unpaced && pcap).then_some(&mut self.reader)
    }

    fn pcap_file(&mut self) -> Option<(&mut TraceReader, &std::fs::File)> {
        let unpaced = self.pace.is_none();
        let pcap = self.reader.pcap_header().is_some();
        match (&self.file, unpaced && pcap) {
            (Some(file), true) => Some((&mut self.reader, file)),
            _ => None,
        }
    }
}
