//! Capture over several sockets of one interface with `PACKET_FANOUT`: the kernel spreads
//! the packets over the sockets of a fanout group (by flow hash, or by the CPU that received
//! them), each socket with its own ring, read by its own thread and written by its own writer.
//! For NICs with several RSS queues: one socket per queue and core.
//!
//! Two promises, each made impossible to break rather than checked:
//!
//! - **No other capture's packets.** The group id is chosen by the kernel
//!   (`PACKET_FANOUT_FLAG_UNIQUEID`) when the first socket joins, and read back for the
//!   others, so two captures on one interface never share a group by picking the same number.
//! - **No packet twice.** A socket bound to the interface sees every packet until it joins
//!   the group, so packets from before the last socket joined may have reached several. The
//!   time when all have joined is taken after the last join, and each socket's reader drops
//!   the packets stamped before it: the kernel stamps a packet before it hands it to the
//!   sockets, so a packet stamped later reached the group, and exactly one socket. Packets in
//!   that start-up window are not captured at all; none is captured twice.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use super::live::{LiveConfig, LiveSource};
use super::{Batch, CaptureSource, KernelStats, Next, SourceError};
use lander_spool::manifest::now_ns;
use lander_trace::record::{LinkType, Record};

/// How the kernel spreads packets over the sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FanoutMode {
    /// By flow hash (both directions of a flow to one socket; IP fragments reassembled for
    /// the hash first, so they follow their flow).
    #[default]
    Hash,
    /// By the CPU that received the packet (with RSS, by NIC queue).
    Cpu,
}

impl std::str::FromStr for FanoutMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hash" => Ok(FanoutMode::Hash),
            "cpu" => Ok(FanoutMode::Cpu),
            _ => Err(format!("{s:?}: the fanout mode is hash or cpu")),
        }
    }
}

impl FanoutMode {
    fn type_flags(self) -> u32 {
        match self {
            FanoutMode::Hash => libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG,
            FanoutMode::Cpu => libc::PACKET_FANOUT_CPU,
        }
    }
}

/// Opens `threads` sockets on `config.interface` in one new fanout group.
pub fn open_group(
    config: &LiveConfig,
    threads: u32,
    mode: FanoutMode,
) -> Result<Vec<FanoutSource>, SourceError> {
    let mut sources = Vec::with_capacity(threads as usize);
    let mut group = None;
    for _ in 0..threads.max(1) {
        let source = LiveSource::open(config.clone())?;
        let id = join(source.as_raw_fd(), group, mode).map_err(|e| fanout_error(config, e))?;
        group = Some(id);
        sources.push(source);
    }
    let since_ns = now_ns();
    Ok(sources
        .into_iter()
        .map(|inner| FanoutSource { inner, since_ns })
        .collect())
}

/// One socket of a fanout group: a live source that drops the packets stamped before the
/// whole group had joined (which may have reached other sockets too).
#[derive(Debug)]
pub struct FanoutSource {
    inner: LiveSource,
    since_ns: u64,
}

impl FanoutSource {
    /// Passes `next`'s answer on, but a packet from before `since_ns` as `Empty` (the
    /// reader asks again at once).
    fn only_after(since_ns: u64, next: Next<'_>) -> Next<'_> {
        match next {
            Next::Packet(r) if r.ts_ns < since_ns => Next::Empty,
            other => other,
        }
    }
}

impl CaptureSource for FanoutSource {
    fn next(&mut self) -> Result<Next<'_>, SourceError> {
        let since = self.since_ns;
        Ok(Self::only_after(since, self.inner.next()?))
    }

    /// The inner socket's batch, without the packets from before the group joined (the
    /// count read includes them).
    fn batch(
        &mut self,
        max: usize,
        each: &mut dyn FnMut(&Record<'_>) -> bool,
    ) -> Result<Batch, SourceError> {
        let since = self.since_ns;
        self.inner
            .batch(max, &mut |rec| rec.ts_ns < since || each(rec))
    }

    fn next_after_stop(&mut self) -> Result<Next<'_>, SourceError> {
        let since = self.since_ns;
        Ok(Self::only_after(since, self.inner.next_after_stop()?))
    }

    fn link_type(&self) -> LinkType {
        self.inner.link_type()
    }

    fn snaplen(&self) -> u32 {
        self.inner.snaplen()
    }

    fn is_live(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        self.inner.kernel_stats()
    }
}

fn fanout_error(config: &LiveConfig, source: io::Error) -> SourceError {
    SourceError::Open {
        name: format!("{}: cannot join a PACKET_FANOUT group", config.interface),
        source,
    }
}

/// Joins `fd` to fanout group `group`, or to a new group with a kernel-chosen id; the id.
fn join(fd: RawFd, group: Option<u16>, mode: FanoutMode) -> io::Result<u16> {
    let arg = match group {
        Some(id) => u32::from(id) | mode.type_flags() << 16,
        None => (mode.type_flags() | libc::PACKET_FANOUT_FLAG_UNIQUEID) << 16,
    };
    setsockopt_u32(fd, libc::PACKET_FANOUT, arg)?;
    Ok((getsockopt_u32(fd, libc::PACKET_FANOUT)? & 0xffff) as u16)
}

fn setsockopt_u32(fd: RawFd, name: libc::c_int, value: u32) -> io::Result<()> {
    // SAFETY: `value` is a live u32 for the duration of the call and the length passed is
    // its size; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            name,
            (&value as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

fn getsockopt_u32(fd: RawFd, name: libc::c_int) -> io::Result<u32> {
    let mut value: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live, writable and of the size `len` says; the kernel
    // writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            name,
            (&mut value as *mut u32).cast(),
            &mut len,
        )
    };
    match rc {
        0 => Ok(value),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!("hash".parse(), Ok(FanoutMode::Hash));
        assert_eq!("cpu".parse(), Ok(FanoutMode::Cpu));
        assert!("rr".parse::<FanoutMode>().is_err());
    }

    #[test]
    fn hash_mode_reassembles_fragments_first() {
        assert_eq!(
            FanoutMode::Hash.type_flags(),
            libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG
        );
    }

    #[test]
    fn packets_from_before_the_group_was_whole_are_dropped() {
        let rec = |ts_ns| lander_trace::record::Record {
            ts_ns,
            wire_len: 1,
            link_type: LinkType(1),
            interface: 0,
            drops: 0,
            data: &[0],
        };
        assert!(matches!(
            FanoutSource::only_after(10, Next::Packet(rec(9))),
            Next::Empty
        ));
        assert!(matches!(
            FanoutSource::only_after(10, Next::Packet(rec(10))),
            Next::Packet(_)
        ));
        assert!(matches!(FanoutSource::only_after(10, Next::End), Next::End));
    }

    #[test]
    fn joining_a_socket_that_is_not_a_packet_socket_fails() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(join(sock.as_raw_fd(), None, FanoutMode::Hash).is_err());
    }
}
