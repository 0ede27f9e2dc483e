//! Live capture from a network interface through libpcap.
//!
//! Packets come with nanosecond timestamps where the kernel offers them. The read timeout
//! makes the kernel hand over a partly filled block instead of holding packets back.
//!
//! The handle is non-blocking and waited on with `poll` on its selectable descriptor, with a
//! timeout of its own (at most [`MAX_WAIT_MS`]): a blocking libpcap read on a silent link
//! would never return (the kernel does not retire an empty block), and a stop request or a
//! rotation time would go unnoticed until the next packet.
//!
//! Until a stop, packets come a batch at a time ([`CaptureSource::batch`]): one
//! `pcap_dispatch` hands over what the kernel's ring holds for us (with a
//! `pcap_next_ex` per packet, the capture took about a quarter more CPU time per 64-byte
//! frame).
//!
//! After a stop, [`CaptureSource::next_after_stop`] reads what the kernel still holds: until a
//! read would block and no block is retired within twice the read timeout (a partly filled
//! block waits that long at most), or until a packet stamped after the stop arrives (on a
//! busy link the buffer never empties).

use std::os::fd::{AsRawFd, RawFd};

use super::{Batch, CaptureSource, KernelStats, Next, SourceError};
use crate::engine::sys::poll_readable;
use lander_spool::manifest::now_ns;
use lander_trace::record::{LinkType, Record};

/// Longest wait for packets before the capture loop looks at its flags and clocks again.
pub const MAX_WAIT_MS: u32 = 100;

/// How to open an interface.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Interface name.
    pub interface: String,
    /// BPF filter expression.
    pub filter: Option<String>,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Promiscuous mode.
    pub promisc: bool,
    /// Kernel ring size in bytes.
    pub buffer_size: Option<u32>,
    /// Read timeout in milliseconds.
    pub timeout_ms: u32,
    /// Hand over every packet at once (no kernel batching).
    pub immediate: bool,
}

/// A libpcap capture handle.
pub struct LiveSource {
    cap: pcap::Capture<pcap::Active>,
    fd: RawFd,
    config: LiveConfig,
    link_type: LinkType,
    nanos: bool,
    /// The last read found nothing: the next call waits with `poll` first.
    would_block: bool,
    /// When the stop was asked for (set at the first [`CaptureSource::next_after_stop`]).
    stop_ns: Option<u64>,
    /// The kernel holds nothing more from before the stop.
    drained: bool,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("interface", &self.config.interface)
            .finish()
    }
}

impl LiveSource {
    /// Opens the interface and installs the filter.
    pub fn open(config: LiveConfig) -> Result<LiveSource, SourceError> {
        let err = |what| {
            let interface = config.interface.clone();
            move |source| SourceError::Pcap {
                interface,
                what,
                source,
            }
        };
        let mut inactive = pcap::Capture::from_device(config.interface.as_str())
            .map_err(err("cannot find the interface"))?
            .snaplen(config.snaplen as i32)
            .promisc(config.promisc)
            .timeout(config.timeout_ms as i32)
            .immediate_mode(config.immediate)
            .precision(pcap::Precision::Nano);
        if let Some(size) = config.buffer_size {
            inactive = inactive.buffer_size(size as i32);
        }
        let mut cap = inactive
            .open()
            .map_err(err("cannot open the interface"))?
            .setnonblock()
            .map_err(err("cannot make the handle non-blocking"))?;
        if let Some(filter) = &config.filter {
            cap.filter(filter, true)
                .map_err(err("cannot install the filter"))?;
        }
        let link_type = LinkType(cap.get_datalink().0 as u32);
        let fd = cap.as_raw_fd();
        Ok(LiveSource {
            cap,
            fd,
            config,
            link_type,
            nanos: true,
            would_block: false,
            stop_ns: None,
            drained: false,
        })
    }

    /// How long one wait for packets lasts: the read timeout, at most [`MAX_WAIT_MS`] (and
    /// that when the read timeout is 0, libpcap's "none").
    fn wait_ms(&self) -> i32 {
        match self.config.timeout_ms {
            0 => MAX_WAIT_MS as i32,
            t => t.min(MAX_WAIT_MS) as i32,
        }
    }

    /// How long to wait after a stop for the kernel to hand over its last, partly filled
    /// block: it retires a block with packets at the second read timeout at the latest (8 ms
    /// is the kernel's own timeout when none is given).
    fn drain_wait_ms(&self) -> i32 {
        let tov = self.config.timeout_ms.max(8);
        tov.saturating_mul(2)
            .saturating_add(50)
            .min(i32::MAX as u32) as i32
    }

    /// After a read found nothing: waits up to `ms` for the descriptor; true if it is ready.
    fn wait(&mut self, ms: i32) -> Result<bool, SourceError> {
        if !self.would_block {
            return Ok(true);
        }
        let ready = poll_readable(self.fd, ms).map_err(|source| SourceError::Wait {
            name: self.config.interface.clone(),
            source,
        })?;
        self.would_block = !ready;
        Ok(ready)
    }

    /// One non-blocking read. After a stop (`stop_ns`), the first packet stamped later is
    /// the last one read.
    fn read(&mut self, stop_ns: Option<u64>) -> Result<Next<'_>, SourceError> {
        let (link_type, nanos) = (self.link_type, self.nanos);
        match self.cap.next_packet() {
            Ok(p) => {
                let rec = record(&p, link_type, nanos);
                self.drained |= stop_ns.is_some_and(|stop| rec.ts_ns > stop);
                Ok(Next::Packet(rec))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.would_block = true;
                Ok(Next::Empty)
            }
            Err(pcap::Error::NoMorePackets) => Ok(Next::End),
            Err(source) => Err(read_failed(&self.config.interface, source)),
        }
    }
}

fn read_failed(interface: &str, source: pcap::Error) -> SourceError {
    SourceError::Pcap {
        interface: interface.to_string(),
        what: "read failed",
        source,
    }
}

/// The record of a packet libpcap handed over.
#[inline]
fn record<'a>(p: &pcap::Packet<'a>, link_type: LinkType, nanos: bool) -> Record<'a> {
    let ts = p.header.ts;
    let frac = ts.tv_usec as u64;
    Record {
        ts_ns: ts.tv_sec as u64 * 1_000_000_000 + if nanos { frac } else { frac * 1000 },
        wire_len: p.header.len,
        link_type,
        interface: 0,
        drops: 0,
        data: p.data,
    }
}

impl AsRawFd for LiveSource {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl CaptureSource for LiveSource {
    fn next(&mut self) -> Result<Next<'_>, SourceError> {
        if !self.wait(self.wait_ms())? {
            return Ok(Next::Idle);
        }
        self.read(None)
    }

    /// One `pcap_dispatch`: the packets the kernel's ring holds for us, up to `max`.
    fn batch(
        &mut self,
        max: usize,
        each: &mut dyn FnMut(&Record<'_>) -> bool,
    ) -> Result<Batch, SourceError> {
        if !self.wait(self.wait_ms())? {
            return Ok(Batch::Idle);
        }
        let (link_type, nanos) = (self.link_type, self.nanos);
        let mut taking = true;
        let read = self
            .cap
            .dispatch(Some(max.max(1)), |p| {
                taking = taking && each(&record(&p, link_type, nanos));
            })
            .map_err(|e| read_failed(&self.config.interface, e))?;
        if read == 0 {
            self.would_block = true;
            return Ok(Batch::Empty);
        }
        Ok(Batch::Read(read))
    }

    fn next_after_stop(&mut self) -> Result<Next<'_>, SourceError> {
        let stop_ns = *self.stop_ns.get_or_insert_with(now_ns);
        if self.drained || !self.wait(self.drain_wait_ms())? {
            self.drained = true;
            return Ok(Next::End);
        }
        self.read(Some(stop_ns))
    }

    fn link_type(&self) -> LinkType {
        self.link_type
    }

    fn snaplen(&self) -> u32 {
        self.config.snaplen
    }

    fn is_live(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.config.interface.clone()
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        let s = self.cap.stats().ok()?;
        Some(KernelStats {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }
}
