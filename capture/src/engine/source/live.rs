//! Live capture from a network interface through libpcap.
//!
//! Packets come with nanosecond timestamps where the kernel offers them. The read timeout
//! makes libpcap hand over a partly filled kernel block instead of holding packets back, and
//! lets the capture loop notice rotation times and stop requests when no traffic arrives.

use super::{KernelStats, Next, Source, SourceError};
use crate::record::{LinkType, Record};

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
    config: LiveConfig,
    link_type: LinkType,
    nanos: bool,
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
        let mut cap = inactive.open().map_err(err("cannot open the interface"))?;
        if let Some(filter) = &config.filter {
            cap.filter(filter, true)
                .map_err(err("cannot install the filter"))?;
        }
        let link_type = LinkType(cap.get_datalink().0 as u32);
        Ok(LiveSource {
            cap,
            config,
            link_type,
            nanos: true,
        })
    }
}

impl Source for LiveSource {
    fn next(&mut self) -> Result<Next<'_>, SourceError> {
        let link_type = self.link_type;
        let nanos = self.nanos;
        match self.cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                let frac = ts.tv_usec as u64;
                let ts_ns =
                    ts.tv_sec as u64 * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
                Ok(Next::Packet(Record {
                    ts_ns,
                    wire_len: p.header.len,
                    link_type,
                    interface: 0,
                    drops: 0,
                    data: p.data,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(Next::Idle),
            Err(pcap::Error::NoMorePackets) => Ok(Next::End),
            Err(source) => Err(SourceError::Pcap {
                interface: self.config.interface.clone(),
                what: "read failed",
                source,
            }),
        }
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
