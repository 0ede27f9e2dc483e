//! Plain positioned writes: the fallback when io_uring cannot be set up, and the reference
//! the io_uring writer is compared with.

use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::FileExt;

use super::{Backend, Failure};
use crate::engine::ring::{Buffer, FreeBuffers};

/// Writes each buffer at once with `pwrite`, retrying short writes.
#[derive(Debug)]
pub struct SyncBackend {
    free: FreeBuffers,
    failures: Vec<Failure>,
}

impl SyncBackend {
    /// A backend returning buffers to `free`.
    pub fn new(free: FreeBuffers) -> SyncBackend {
        SyncBackend {
            free,
            failures: Vec::new(),
        }
    }
}

impl Backend for SyncBackend {
    fn name(&self) -> &'static str {
        "sync"
    }

    fn submit(&mut self, fd: RawFd, offset: u64, buf: Buffer) {
        if let Err(error) = write_all_at(fd, buf.filled(), offset) {
            self.failures.push(Failure { offset, error });
        }
        self.free.put(buf);
    }

    fn progress(&mut self, _wait: bool) {}

    fn in_flight(&self) -> usize {
        0
    }

    fn take_failures(&mut self) -> Vec<Failure> {
        std::mem::take(&mut self.failures)
    }
}

/// `pwrite` until every byte is written (`write_all_at` retries short writes and `EINTR`).
fn write_all_at(fd: RawFd, bytes: &[u8], offset: u64) -> io::Result<()> {
    // The writer owns the open file and keeps it open while its writes are in progress; the
    // borrowed `File` is never closed here.
    let file = ManuallyDrop::new(borrow_file(fd));
    file.write_all_at(bytes, offset)
}

#[allow(unsafe_code)]
fn borrow_file(fd: RawFd) -> File {
    // SAFETY: `fd` is the descriptor of the writer's open `PendingFile`, which outlives this
    // call; the `File` is wrapped in `ManuallyDrop` by the only caller, so it never closes it.
    unsafe { File::from_raw_fd(fd) }
}

/// Asks the kernel to start writing back a range of a file, without waiting.
#[allow(unsafe_code)]
pub fn start_writeback(fd: RawFd, offset: u64, len: u64) {
    // SAFETY: a plain system call on a descriptor the writer holds open; it reads no memory of
    // ours. Failure only means the final fsync does all the work.
    unsafe {
        libc::sync_file_range(
            fd,
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}
