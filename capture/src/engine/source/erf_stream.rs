//! A DAG ERF record stream from a file, a FIFO or stdin, with its loss counters (`lctr`).
//!
//! Reads go through `poll` with a short timeout, so a stop request is noticed even when the
//! writer at the other end of the FIFO is silent. At a stop, the records the stream already
//! holds (read, or queued in the pipe) are written, then it ends as if at end of file.
//! Once the stream has started, a `poll` that times out makes the source report
//! [`Next::Idle`], as a live interface does, so interval rotation and rotation requests close
//! files while the FIFO is silent.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, RawFd};
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
    stop: Arc<AtomicBool>,
    /// The input is a regular file (a stop ends it at once), not a FIFO or pipe.
    regular: bool,
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
        let flags = (stop.clone(), report_idle.clone());
        let open_error = |source| SourceError::Open {
            name: name.clone(),
            source,
        };
        let (input, regular): (Box<dyn Read + Send>, bool) = if path == Path::new("-") {
            let stdin = io::stdin();
            let regular = is_regular(stdin.as_fd()).map_err(open_error)?;
            (Box::new(StopReader::new(stdin, flags, regular)), regular)
        } else {
            let file = File::open(path).map_err(open_error)?;
            let regular = is_regular(file.as_fd()).map_err(open_error)?;
            (Box::new(StopReader::new(file, flags, regular)), regular)
        };
        let reader = TraceReader::from_stream_with_format(&name, input, Format::Erf)?;
        report_idle.store(true, Relaxed);
        // From here on a silent input reports idle instead of waiting.
        Ok(ErfStreamSource {
            reader,
            name,
            stop,
            regular,
        })
    }
}

/// Whether `fd` is a regular file (through a duplicate of it: `File` owns what it holds).
fn is_regular(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<bool> {
    Ok(File::from(fd.try_clone_to_owned()?).metadata()?.is_file())
}

/// Whether a read error is the stream's silence (see [`StopReader`]), not a failure.
fn is_silence(e: &ReadError) -> bool {
    matches!(e, ReadError::Io { source, .. } if source.kind() == io::ErrorKind::TimedOut)
}

impl CaptureSource for ErfStreamSource {
    /// The next record. After a stop, a record the stop cut (its writer was still sending
    /// it, or, in a regular file, the stop came before its rest was read) ends the stream
    /// and is reported, not taken for a broken stream.
    fn next(&mut self) -> Result<Next<'_>, SourceError> {
        // The reader keeps what it has read of a record across the error and goes on from
        // there at the next call.
        match self.reader.next() {
            Ok(Some(rec)) => Ok(Next::Packet(rec)),
            Ok(None) => Ok(Next::End),
            Err(e) if is_silence(&e) => Ok(Next::Idle),
            Err(e) if e.is_truncated_at_end() && self.stop.load(Relaxed) => {
                let why = match self.regular {
                    true => "the stop came before the rest of this record was read",
                    false => "the stop cut this record",
                };
                tracing::warn!("{e}: {why}; it is not written");
                Ok(Next::End)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The records the stream held at the stop: those already read, and those the pipe
    /// held when the stop came (once the stop is set the input never reports silence).
    fn next_after_stop(&mut self) -> Result<Next<'_>, SourceError> {
        self.next()
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
///
/// What a pipe, FIFO or socket already holds when the stop is seen was sent before it, as
/// the packets a live interface's kernel ring holds at a stop were received before it: those
/// bytes are read (without waiting for more), then the input ends. A regular file ends at
/// once: the rest of it was not captured yet.
struct StopReader<R> {
    inner: R,
    fd: RawFd,
    stop: Arc<AtomicBool>,
    report_idle: Arc<AtomicBool>,
    /// The input is a regular file (it ends at once at a stop).
    regular: bool,
    /// Bytes still to read after the stop, counted when it is first seen.
    draining: Option<usize>,
}

impl<R: Read + AsRawFd> StopReader<R> {
    fn new(
        inner: R,
        (stop, report_idle): (Arc<AtomicBool>, Arc<AtomicBool>),
        regular: bool,
    ) -> StopReader<R> {
        let fd = inner.as_raw_fd();
        StopReader {
            inner,
            fd,
            stop,
            report_idle,
            regular,
            draining: None,
        }
    }
}

impl<R: Read> StopReader<R> {
    /// A read after the stop: what the input held when it was seen, then the end.
    fn drain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (fd, regular) = (self.fd, self.regular);
        let left = *self.draining.get_or_insert_with(|| match regular {
            true => 0,
            false => crate::engine::sys::queued_bytes(fd).unwrap_or(0),
        });
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(left);
        let read = match crate::engine::sys::poll_readable(fd, 0)? {
            true => self.inner.read(&mut buf[..n])?,
            false => 0,
        };
        self.draining = Some(if read == 0 { 0 } else { left - read });
        Ok(read)
    }
}

impl<R: Read> Read for StopReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stop.load(Relaxed) {
                return self.drain(buf);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    fn stopped<R: Read + AsRawFd>(inner: R, regular: bool) -> StopReader<R> {
        let flags = (
            Arc::new(AtomicBool::new(true)),
            Arc::new(AtomicBool::new(true)),
        );
        StopReader::new(inner, flags, regular)
    }

    #[test]
    fn a_stop_reads_what_the_pipe_holds_then_ends_without_waiting() {
        let (r, mut w) = std::io::pipe().unwrap();
        let sent: Vec<u8> = (0..60_000u32).map(|i| (i * 7) as u8).collect();
        w.write_all(&sent).unwrap();
        let mut reader = stopped(r, false);
        let mut got = Vec::new();
        // the writer is still open: without the stop this would wait for more
        reader.read_to_end(&mut got).unwrap();
        assert_eq!(got, sent, "the bytes queued at the stop are read");
        // what comes after the stop is not
        w.write_all(b"later").unwrap();
        assert_eq!(reader.read(&mut [0; 64]).unwrap(), 0);
    }

    #[test]
    fn a_stop_ends_a_regular_file_at_once() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[1; 10_000]).unwrap();
        file.rewind().unwrap();
        let mut reader = stopped(file, true);
        assert_eq!(reader.read(&mut [0; 4096]).unwrap(), 0);
    }

    #[test]
    fn a_stop_while_nothing_is_queued_ends_the_input() {
        let (r, _w) = std::io::pipe().unwrap();
        let mut reader = stopped(r, false);
        assert_eq!(reader.read(&mut [0; 4096]).unwrap(), 0);
    }
}
