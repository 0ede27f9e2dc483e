//! Where packets come from: a live interface (libpcap), an ERF record stream, a trace file.

use lander_trace::format::{ReadError, TraceReader};
use lander_trace::record::{LinkType, Record};

pub mod erf_stream;
pub mod fanout;
pub mod file;
pub mod live;

/// What a source has next.
#[derive(Debug)]
pub enum Next<'a> {
    /// A packet, borrowed until the next call.
    Packet(Record<'a>),
    /// Nothing arrived within the read timeout (live sources; paced replay waiting).
    Idle,
    /// Nothing is ready this moment: the reader has caught up with a live source. The next
    /// call waits for more, at most the read timeout.
    Empty,
    /// The source is exhausted.
    End,
}

/// What one [`CaptureSource::batch`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    /// This many packets (at least one) were read.
    Read(usize),
    /// As [`Next::Idle`].
    Idle,
    /// As [`Next::Empty`].
    Empty,
    /// As [`Next::End`].
    End,
}

/// Drop counters a live source reports, cumulative since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets the kernel received for us.
    pub received: u64,
    /// Dropped by the kernel (no room in its buffer).
    pub dropped: u64,
    /// Dropped by the interface or driver.
    pub if_dropped: u64,
}

/// A source of packets, read by the capture thread.
pub trait CaptureSource {
    /// The next packet, or why there is none.
    fn next(&mut self) -> Result<Next<'_>, SourceError>;
    /// Hands the packets that are ready, at most `max` (at least one), to `each` in order:
    /// a live interface hands over what its kernel ring holds in one libpcap call instead
    /// of a call per packet. When `each` returns false (the caller is failing), the rest of
    /// the batch is read and not handed over. Sources without batches of their own hand
    /// over [`CaptureSource::next`]'s one packet.
    fn batch(
        &mut self,
        max: usize,
        each: &mut dyn FnMut(&Record<'_>) -> bool,
    ) -> Result<Batch, SourceError> {
        let _ = max;
        Ok(match self.next()? {
            Next::Packet(rec) => {
                each(&rec);
                Batch::Read(1)
            }
            Next::Idle => Batch::Idle,
            Next::Empty => Batch::Empty,
            Next::End => Batch::End,
        })
    }
    /// Link type of the packets.
    fn link_type(&self) -> LinkType;
    /// Largest captured length the source delivers.
    fn snaplen(&self) -> u32;
    /// A live source never waits for buffers: with none free it drops (and counts) packets.
    fn is_live(&self) -> bool;
    /// Interface name, file name or stream name, for manifests and logs.
    fn describe(&self) -> String;
    /// After a stop was asked for: the next packet the source still holds (a live interface's
    /// kernel buffer), `Empty` or `Idle` while it may still hold some, `End` once it holds
    /// none. Packets that arrive after the stop end it too. Sources that hold nothing of
    /// their own (files, streams) end at once.
    fn next_after_stop(&mut self) -> Result<Next<'_>, SourceError> {
        Ok(Next::End)
    }
    /// Kernel drop counters, for sources that have them.
    fn kernel_stats(&mut self) -> Option<KernelStats> {
        None
    }
    /// A trace file of pcap records replayed as fast as possible: its reader, so whole runs
    /// of records can be copied as they are when the output encodes them the same way.
    fn pcap_records(&mut self) -> Option<&mut TraceReader> {
        None
    }
    /// A regular pcap file replayed as fast as possible: its reader, and the file to read
    /// at offsets (sharing the reader's position), so it can be replayed in blocks.
    fn pcap_file(&mut self) -> Option<(&mut TraceReader, &std::fs::File)> {
        None
    }
}

/// A source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading a trace or record stream failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// libpcap failed.
    #[error("{interface}: {what}: {source}")]
    Pcap {
        /// Interface name.
        interface: String,
        /// What was being done.
        what: &'static str,
        /// libpcap's error.
        #[source]
        source: pcap::Error,
    },
    /// Waiting for the source to become readable failed.
    #[error("{name}: cannot wait for packets: {source}")]
    Wait {
        /// Interface or stream name.
        name: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Opening the source failed.
    #[error("{name}: {source}")]
    Open {
        /// File or stream name.
        name: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
