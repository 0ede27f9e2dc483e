//! The few system calls the engine makes directly.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

/// Waits up to `timeout_ms` for `fd` to become readable (or hung up); true if it did.
pub fn poll_readable(fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid, initialised pollfd that lives across the call, and the count
    // passed is 1.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    match rc {
        -1 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// Bytes waiting to be read from `fd` (a pipe, FIFO or socket), as `FIONREAD` counts them.
pub fn queued_bytes(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which is valid for the call.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(usize::try_from(n).unwrap_or(0)),
    }
}

/// Peak resident set size of this process (or of its waited-for children), in bytes.
pub fn peak_rss(children: bool) -> u64 {
    let who = if children {
        libc::RUSAGE_CHILDREN
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the kernel to fill.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    if rc != 0 {
        return 0;
    }
    (usage.ru_maxrss.max(0) as u64) * 1024
}

/// CPU seconds (user and system) of this process's children that have been waited for so far:
/// the difference across one child's wait is that child's CPU time.
pub fn children_cpu_secs() -> f64 {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the kernel to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
