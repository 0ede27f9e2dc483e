//! The io_uring writer: several buffer writes in flight, submitted in batches.
//!
//! Ownership rule (as in monoio and glommio): a buffer belongs to the operation in flight
//! from the moment its entry is pushed until its completion is reaped. Only then does it go
//! back to the free list, whatever the outcome, and even when `submit` failed (the entry is
//! still in the queue and will reach the kernel later). A short write is resubmitted for the
//! rest at the new offset. If the backend is dropped with writes in flight it waits for them;
//! if it cannot, it leaks their buffers rather than free memory the kernel may still read.
//!
//! No buffers are registered, so no locked memory is needed beyond the ring itself.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, types, IoUring};

use super::{Backend, Failure};
use crate::engine::ring::{Buffer, FreeBuffers};

/// Entries pushed before a submission system call is made.
const BATCH: usize = 8;

struct Op {
    fd: RawFd,
    buf: Buffer,
    /// File offset of the buffer's first byte.
    offset: u64,
    /// Bytes already written.
    done: usize,
}

/// Writes through one io_uring instance.
pub struct UringBackend {
    ring: IoUring,
    ops: Vec<Option<Op>>,
    idle_slots: Vec<usize>,
    queued: usize,
    in_flight: usize,
    free: FreeBuffers,
    failures: Vec<Failure>,
    reaped: Vec<(u64, i32)>,
    broken: bool,
}

impl std::fmt::Debug for UringBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringBackend")
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl UringBackend {
    /// A ring with room for `depth` writes in flight; fails where io_uring is not allowed
    /// (old kernels, seccomp, `io_uring_disabled`, memory limits).
    pub fn new(depth: usize, free: FreeBuffers) -> io::Result<UringBackend> {
        let entries = depth.clamp(4, 4096).next_power_of_two() as u32;
        let ring = IoUring::new(entries)?;
        Ok(UringBackend {
            ring,
            ops: Vec::with_capacity(depth),
            idle_slots: Vec::with_capacity(depth),
            queued: 0,
            in_flight: 0,
            free,
            failures: Vec::new(),
            reaped: Vec::with_capacity(entries as usize * 2),
            broken: false,
        })
    }

    fn slot(&mut self) -> usize {
        self.idle_slots.pop().unwrap_or_else(|| {
            self.ops.push(None);
            self.ops.len() - 1
        })
    }

    /// Pushes the entry for the unwritten rest of the operation in `slot`.
    fn push(&mut self, slot: usize) {
        let op = self.ops[slot]
            .as_ref()
            .expect("a queued slot holds an operation");
        let rest = &op.buf.filled()[op.done..];
        let entry = opcode::Write::new(types::Fd(op.fd), rest.as_ptr(), rest.len() as u32)
            .offset(op.offset + op.done as u64)
            .build()
            .user_data(slot as u64);
        loop {
            // SAFETY: the entry points into the heap allocation of `op.buf`, which stays in
            // `self.ops[slot]` (it does not move when the `Op` moves: it is a boxed slice)
            // until this entry's completion is reaped in `complete`; the descriptor belongs to
            // the writer's open file, which is kept open until `in_flight` drops to zero.
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                break;
            }
            // The queue is full: hand it to the kernel and make room.
            self.enter(false);
            self.reap();
        }
        self.queued += 1;
    }

    /// Hands queued entries to the kernel; with `wait`, waits for one completion.
    fn enter(&mut self, wait: bool) {
        let want = usize::from(wait && self.in_flight > 0);
        match self.ring.submit_and_wait(want) {
            Ok(_) => self.queued = 0,
            Err(e) if retryable(&e) => {}
            Err(e) => {
                tracing::error!("io_uring submission failed: {e}");
                self.fail_all(&e);
            }
        }
    }

    fn reap(&mut self) {
        self.reaped.clear();
        for cqe in self.ring.completion() {
            self.reaped.push((cqe.user_data(), cqe.result()));
        }
        for i in 0..self.reaped.len() {
            let (slot, res) = self.reaped[i];
            self.complete(slot as usize, res);
        }
    }

    fn complete(&mut self, slot: usize, res: i32) {
        let Some(op) = self.ops[slot].as_mut() else {
            return;
        };
        if res == -libc::EINTR || res == -libc::EAGAIN {
            return self.push(slot);
        }
        if res < 0 {
            let error = io::Error::from_raw_os_error(-res);
            return self.finish(slot, Some(error));
        }
        op.done += res as usize;
        if op.done >= op.buf.len() {
            self.finish(slot, None);
        } else if res == 0 {
            self.finish(slot, Some(io::ErrorKind::WriteZero.into()));
        } else {
            self.push(slot);
        }
    }

    fn finish(&mut self, slot: usize, error: Option<io::Error>) {
        let op = self.ops[slot]
            .take()
            .expect("a completed slot holds an operation");
        if let Some(error) = error {
            self.failures.push(Failure {
                offset: op.offset,
                error,
            });
        }
        self.free.put(op.buf);
        self.idle_slots.push(slot);
        self.in_flight -= 1;
    }
}

impl UringBackend {
    /// The ring cannot be used any more: every write in flight counts as failed, and its
    /// buffer stays owned (and is leaked on drop) since the kernel may still hold it.
    fn fail_all(&mut self, e: &io::Error) {
        self.broken = true;
        for op in self.ops.iter().flatten() {
            self.failures.push(Failure {
                offset: op.offset,
                error: io::Error::new(e.kind(), format!("io_uring submission failed: {e}")),
            });
        }
    }
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY)
    )
}

impl Backend for UringBackend {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn submit(&mut self, fd: RawFd, offset: u64, buf: Buffer) {
        if self.broken {
            self.failures.push(Failure {
                offset,
                error: io::Error::other("the io_uring instance failed earlier"),
            });
            return self.free.put(buf);
        }
        let slot = self.slot();
        self.ops[slot] = Some(Op {
            fd,
            buf,
            offset,
            done: 0,
        });
        self.in_flight += 1;
        self.push(slot);
        if self.queued >= BATCH {
            self.enter(false);
        }
    }

    fn progress(&mut self, wait: bool) {
        if self.broken {
            return;
        }
        self.enter(wait);
        self.reap();
    }

    fn in_flight(&self) -> usize {
        if self.broken {
            0
        } else {
            self.in_flight
        }
    }

    fn take_failures(&mut self) -> Vec<Failure> {
        std::mem::take(&mut self.failures)
    }
}

impl Drop for UringBackend {
    fn drop(&mut self) {
        while self.in_flight > 0 && !self.broken {
            self.enter(true);
            self.reap();
        }
        if self.in_flight > 0 {
            // The kernel may still own these buffers: never free them.
            for op in self.ops.drain(..).flatten() {
                std::mem::forget(op.buf);
            }
        }
    }
}
