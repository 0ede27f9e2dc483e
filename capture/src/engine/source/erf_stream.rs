//! A DAG ERF record stream from a file, a FIFO or stdin, with its loss counters (`lctr`).
//!
//! Reads go through `poll` with a short timeout, so a stop request is noticed even when the
//! writer at the other end of the FIFO is silent: the stream then ends as if at end of file.
//! Once the stream has started, a `poll` that times out makes the source report
//! [`Next::Idle`], as a live interface does, so interval rotation and rotation requests close
//! files while the FIFO is silent.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use super::{CaptureSource, Next, SourceError};
use lander_trace::format::{ReadError, TraceReader};
use lander_trace::record::{Format, LinkType};

/// How long one `poll` waits before the stop flag is looked at again, in milliseconds.
const POLL_MS: i32 = 100;

/// An ERF record stream.
#[derive(Debug)]
pub struct ErfStreamSource {
    reader: TraceReader,
    name: String,
}

impl ErfStreamSource {
    /// Opens `path` (a file or FIFO), or stdin for `-`; reading ends when `stop` is set.
    pub fn open(path: &Path, stop: Arc<AtomicBool>) -> Result<ErfStreamSource, SourceError> {
        let name = if path == Path::new("-") {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        let report_idle = Arc::new(AtomicBool::new(false));
        let flags = (stop, report_idle.clone());
        let input: Box<dyn Read + Send> = if path == Path::new("-") {
            Box::new(StopReader::new(io::stdin(), flags))
        } else {
            let file = File::open(path).map_err(|source| SourceError::Open {
                name: name.clone(),
                source,
            })?;
            Box::new(StopReader::new(file, flags))
        };
        let reader = TraceReader::from_stream_with_format(&name, input, Format::Erf)?;
        report_idle.store(true, Relaxed);
        // From here on a silent input reports idle instead of waiting.
        Ok(ErfStreamSource { reader, name })
    }
}

/// Whether a read error is the stream's silence (see [`StopReader`]), not a failure.
fn is_silence(e: &ReadError) -> bool {
    matches!(e, ReadError::Io { source, .. } if source.kind() == io::ErrorKind::TimedOut)
}

impl CaptureSource for ErfStreamSource {
    fn next(&mut self) -> Result<Next<'_>, SourceError> {
        // The reader keeps what it has read of a record across the error and goes on from
        // there at the next call.
        match self.reader.next() {
            Ok(Some(rec)) => Ok(Next::Packet(rec)),
            Ok(None) => Ok(Next::End),
            Err(e) if is_silence(&e) => Ok(Next::Idle),
            Err(e) => Err(e.into()),
        }
    }

    fn link_type(&self) -> LinkType {
        self.reader.link_type()
    }

    fn snaplen(&self) -> u32 {
        self.reader.snaplen()
    }

    fn is_live(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// A reader that waits with `poll` and reports end of input once `stop` is set; once
/// `report_idle` is set, a wait that times out is an error of kind `TimedOut`.
struct StopReader<R> {
    inner: R,
    fd: RawFd,
    stop: Arc<AtomicBool>,
    report_idle: Arc<AtomicBool>,
}

impl<R: Read + AsRawFd> StopReader<R> {
    fn new(inner: R, (stop, report_idle): (Arc<AtomicBool>, Arc<AtomicBool>)) -> StopReader<R> {
        let fd = inner.as_raw_fd();
        StopReader {
            inner,
            fd,
            stop,
            report_idle,
        }
    }
}

impl<R: Read> Read for StopReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stop.load(Relaxed) {
                return Ok(0);
            }
            if crate::engine::sys::poll_readable(self.fd, POLL_MS)? {
                return self.inner.read(buf);
            }
            if self.report_idle.load(Relaxed) {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }
}
