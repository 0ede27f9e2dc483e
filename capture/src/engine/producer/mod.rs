//! The source thread: copies each packet once, with its record header, into the current ring
//! buffer, decides rotations, and hands full buffers to the writer.
//!
//! pcap carries one link type per file, so a packet whose link type the open file cannot
//! hold (a pcapng input mixing interfaces of different types) closes the file, and a new
//! one starts with the packet's link type.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::ring::{Buffer, FreeBuffers};
use super::rotate::{CloseReason, RotatePolicy};
use super::source::{Batch, CaptureSource, KernelStats, Next};
use super::stats::Counters;
use super::writer::{Event, FileClose, FileOpen};
use super::{Control, EngineError};
use lander_spool::manifest::now_ns;
use lander_spool::naming::trace_name;
use lander_spool::perms::Perms;
use lander_spool::seq::SeqAllocator;
use lander_trace::format::RecordEncoder;
use lander_trace::record::{Format, LinkType, Record};

mod blocks;
mod copy;

/// One less than the packets between looks at the stop and rotate flags (batches end there).
const FLAG_CHECK_MASK: u64 = 1023;
/// A live buffer is handed over once it holds packets this much older than the newest.
const LIVE_FLUSH_NS: u64 = 1_000_000_000;
/// How long a file source waits for a free buffer before checking on the writer again.
const TAKE_WAIT: Duration = Duration::from_millis(100);

/// What the source thread needs to know.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Output directory.
    pub out_dir: PathBuf,
    /// Site name for file names.
    pub site: String,
    /// Output format.
    pub format: Format,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Rotation rules.
    pub rotate: RotatePolicy,
    /// Where each file's sequence number comes from.
    pub seqs: Arc<SeqAllocator>,
    /// Stop after this many packets.
    pub max_packets: Option<u64>,
    /// Mode and group of the files a replay in blocks creates.
    pub perms: Perms,
    /// Replay a regular pcap file whose records are copied as they are in blocks of this many
    /// bytes, on this thread and one more (module `blocks`); `None`: through the ring.
    pub blocks: Option<usize>,
}

struct OpenFile {
    name: String,
    size: u64,
    packets: u64,
    boundary_ns: Option<u64>,
    kernel_at_open: Option<KernelStats>,
    ring_drops_at_open: u64,
}

/// Why [`Producer::pump`] returned.
enum Pumped {
    /// The source ended, or the packet limit was reached.
    Ended,
    /// A stop was asked for.
    Stopped,
}

/// Captured bytes, wire bytes and source-reported losses of the packets read so far.
#[derive(Default)]
struct Totals {
    bytes: u64,
    wire_bytes: u64,
    source_drops: u64,
}

impl Totals {
    #[inline]
    fn add(&mut self, caplen: usize, wire_len: u32, drops: u32) {
        self.bytes += caplen as u64;
        self.wire_bytes += u64::from(wire_len);
        self.source_drops += u64::from(drops);
    }
}

/// The source thread's state.
pub struct Producer {
    config: ProducerConfig,
    encoder: RecordEncoder,
    /// The encoder's link type, compared with every packet's.
    link_type: LinkType,
    header: Vec<u8>,
    free: FreeBuffers,
    events: Sender<Event>,
    counters: Arc<Counters>,
    control: Control,
    live: bool,
    buf: Option<Buffer>,
    file: Option<OpenFile>,
    packets: u64,
    totals: Totals,
    ring_drops: u64,
    kernel: Option<KernelStats>,
    limit: u64,
    /// Bytes of the open file handed to the writer.
    sent: u64,
}

impl Producer {
    /// A producer writing `config.format` records for packets of a source with this link
    /// type, live or not.
    pub fn new(
        config: ProducerConfig,
        source: (lander_trace::record::LinkType, bool),
        free: FreeBuffers,
        events: Sender<Event>,
        counters: Arc<Counters>,
        control: Control,
    ) -> Result<Producer, EngineError> {
        let (link_type, live) = source;
        let encoder = RecordEncoder::new(config.format, link_type, config.snaplen)
            .map_err(|e| EngineError::Config(format!("cannot write {}: {e}", config.format)))?;
        let header = encoder.file_header();
        Ok(Producer {
            link_type,
            totals: Totals::default(),
            limit: config.max_packets.unwrap_or(u64::MAX),
            config,
            encoder,
            header,
            free,
            events,
            counters,
            control,
            live,
            buf: None,
            file: None,
            packets: 0,
            ring_drops: 0,
            kernel: None,
            sent: 0,
        })
    }

    /// Runs until the source ends, a stop is asked for, or the writer fails. After a stop,
    /// what the source still holds (a live interface's kernel buffer) is read too, unless a
    /// second stop request says to hurry; everything read is written and published either way.
    pub fn run<S: CaptureSource + ?Sized>(mut self, source: &mut S) -> Result<(), EngineError> {
        let result = match self.pump_fastest(source) {
            Ok(Pumped::Stopped) => self.drain(source),
            Ok(Pumped::Ended) => Ok(()),
            Err(e) => Err(e),
        };
        self.refresh_kernel(source);
        self.publish_counts();
        let closed = self.close_file(CloseReason::End);
        result.and(closed)
    }

    /// Copies runs of records where the source's are already what we write, else reads and
    /// encodes packet by packet.
    fn pump_fastest<S: CaptureSource + ?Sized>(
        &mut self,
        source: &mut S,
    ) -> Result<Pumped, EngineError> {
        if let (Some(len), Some((reader, input))) = (self.config.blocks, source.pcap_file()) {
            if self.copies_as_is(reader) && self.file.is_none() {
                if self.pump_blocks(reader, input, len)? {
                    return Ok(Pumped::Stopped);
                }
                return self.pump_copy(reader);
            }
        }
        if let Some(reader) = source.pcap_records() {
            if self.copies_as_is(reader) {
                return self.pump_copy(reader);
            }
        }
        self.pump(source)
    }

    fn pump<S: CaptureSource + ?Sized>(&mut self, source: &mut S) -> Result<Pumped, EngineError> {
        let (mut seen, mut checked) = (0u64, 0u64);
        loop {
            if self.packets >= self.limit {
                return Ok(Pumped::Ended);
            }
            // a batch ends at the next look at the flags and at the packet limit
            let to_check = FLAG_CHECK_MASK + 1 - (seen - checked);
            let max = (self.limit - self.packets).min(to_check) as usize;
            let mut failed = None;
            let batch = source.batch(max, &mut |rec| match self.on_packet(rec) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            });
            // the writer's failure, not a read error that followed it, is the cause
            if let Some(e) = failed {
                return Err(e);
            }
            let batch = batch?;
            let check = match batch {
                Batch::Read(n) => {
                    seen += n as u64;
                    seen - checked > FLAG_CHECK_MASK
                }
                Batch::Empty => true,
                Batch::Idle => {
                    self.on_idle(source)?;
                    true
                }
                Batch::End => return Ok(Pumped::Ended),
            };
            if check {
                let kernel = seen >> 16 != checked >> 16;
                checked = seen;
                if self.flags(source, kernel)? {
                    return Ok(Pumped::Stopped);
                }
            }
        }
    }

    /// Reads what the source still holds after a stop, until it holds nothing more, the
    /// packet limit, or a second stop request.
    fn drain<S: CaptureSource + ?Sized>(&mut self, source: &mut S) -> Result<(), EngineError> {
        let mut seen: u64 = 0;
        while !self.control.hurry.load(Relaxed) && self.packets < self.limit {
            match source.next_after_stop()? {
                Next::Packet(rec) => {
                    self.on_packet(&rec)?;
                    seen += 1;
                    if seen & FLAG_CHECK_MASK == 0 {
                        self.check_writer()?;
                        self.publish_counts();
                    }
                }
                Next::Empty | Next::Idle => self.check_writer()?,
                Next::End => break,
            }
        }
        if seen > 0 {
            tracing::info!("read {seen} packets the source still held at the stop");
        }
        Ok(())
    }

    fn check_writer(&self) -> Result<(), EngineError> {
        if self.control.writer_failed.load(Relaxed) {
            return Err(EngineError::WriterGone);
        }
        Ok(())
    }

    /// Looks at the stop and rotate flags and the writer; publishes the counters; true to
    /// stop.
    fn flags<S: CaptureSource + ?Sized>(
        &mut self,
        source: &mut S,
        kernel: bool,
    ) -> Result<bool, EngineError> {
        self.check_writer()?;
        self.publish_counts();
        if kernel {
            self.refresh_kernel(source);
        }
        if self.control.rotate.swap(false, Relaxed) && self.file.is_some() {
            self.refresh_kernel(source);
            self.close_file(CloseReason::Requested)?;
        }
        Ok(self.control.stop.load(Relaxed))
    }

    /// Makes the packets read so far visible to the reporter (the heartbeat counts packets
    /// when they are read, not when their buffer is handed over).
    fn publish_counts(&self) {
        let (c, t) = (&self.counters, &self.totals);
        c.packets.store(self.packets, Relaxed);
        c.bytes.store(t.bytes, Relaxed);
        c.wire_bytes.store(t.wire_bytes, Relaxed);
        c.source_drops.store(t.source_drops, Relaxed);
    }

    #[inline]
    fn on_packet(&mut self, rec: &Record<'_>) -> Result<(), EngineError> {
        let caplen = rec.data.len().min(self.config.snaplen as usize);
        let need = self.encoder.record_len(caplen);
        if rec.link_type != self.link_type {
            self.link_type_changes(rec)?;
        }
        if let Some(reason) = self.rotation_due(rec.ts_ns, need) {
            self.close_file(reason)?;
        }
        if self.file.is_none() && !self.open_file(rec.ts_ns, need)? {
            return Ok(());
        }
        if !self.make_room(need)? {
            return Ok(());
        }
        let buf = self.buf.as_mut().expect("make_room leaves a buffer");
        let n = self
            .encoder
            .encode_into(rec, buf.spare_mut())
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        buf.advance(n);
        buf.meta.add(rec.ts_ns, caplen, rec.wire_len, rec.drops);
        let old = buf.meta.first_ts_ns.unwrap_or(rec.ts_ns);
        self.packets += 1;
        self.totals.add(caplen, rec.wire_len, rec.drops);
        let file = self.file.as_mut().expect("a file is open");
        file.size += n as u64;
        file.packets += 1;
        if self.config.rotate.full_of_packets(file.packets) {
            self.close_file(CloseReason::Packets)?;
        } else if self.live && rec.ts_ns.saturating_sub(old) > LIVE_FLUSH_NS {
            self.flush()?;
        }
        Ok(())
    }

    /// A packet of another link type than the file's: closes the file and switches the
    /// encoder, unless the file can hold the packet as it is (raw IP of either version).
    #[cold]
    fn link_type_changes(&mut self, rec: &Record<'_>) -> Result<(), EngineError> {
        if raw_ip_fits(self.link_type, rec) {
            return Ok(());
        }
        let encoder = RecordEncoder::new(self.config.format, rec.link_type, self.config.snaplen)
            .map_err(|e| {
                EngineError::Encode(format!("cannot write {}: {e}", self.config.format))
            })?;
        let closing = self.file.as_ref().map_or(String::new(), |f| {
            format!("; closing {} and starting a new file", f.name)
        });
        tracing::info!(
            "link type changes from {} to {}{closing} (a trace file holds one link type)",
            self.link_type,
            rec.link_type
        );
        self.close_file(CloseReason::LinkType)?;
        self.header = encoder.file_header();
        self.encoder = encoder;
        self.link_type = rec.link_type;
        Ok(())
    }

    #[inline]
    fn rotation_due(&self, ts_ns: u64, need: usize) -> Option<CloseReason> {
        let file = self.file.as_ref()?;
        if file.boundary_ns.is_some_and(|b| ts_ns >= b) {
            return Some(CloseReason::Interval);
        }
        (file.packets > 0 && self.config.rotate.over_size(file.size, need))
            .then_some(CloseReason::Size)
    }

    /// No packet within the read timeout: close a file whose interval is over, hand over a
    /// partly filled buffer, refresh the kernel counters.
    fn on_idle<S: CaptureSource + ?Sized>(&mut self, source: &mut S) -> Result<(), EngineError> {
        self.refresh_kernel(source);
        self.publish_counts();
        let now = now_ns();
        let over = self
            .file
            .as_ref()
            .and_then(|f| f.boundary_ns)
            .is_some_and(|b| now >= b);
        if over {
            return self.close_file(CloseReason::Interval);
        }
        self.flush()
    }

    /// Starts a file at a packet stamped `ts_ns`; false if a live source had no buffer for it.
    fn open_file(&mut self, ts_ns: u64, need: usize) -> Result<bool, EngineError> {
        if !self.make_room(self.header.len() + need)? {
            return Ok(false);
        }
        let (open, file) = self.new_file(ts_ns);
        self.send(Event::Open(open))?;
        self.sent = 0;
        let buf = self.buf.as_mut().expect("make_room leaves a buffer");
        // no file is open, so the buffer is empty: its bytes go from the file's start
        buf.begin_at(0, self.header.len() + need);
        buf.push(&self.header);
        self.file = Some(file);
        Ok(true)
    }

    /// The next file, for a first packet stamped `ts_ns`: what the writer is told, and what
    /// is kept here.
    fn new_file(&mut self, ts_ns: u64) -> (FileOpen, OpenFile) {
        let rotate = self.config.rotate;
        let name_ts = rotate.interval_start(ts_ns).unwrap_or(ts_ns);
        let seq = self.config.seqs.take();
        let name = trace_name(&self.config.site, name_ts, seq, self.config.format);
        let open = FileOpen {
            path: self.config.out_dir.join(&name),
            seq,
            link_type: self.link_type,
        };
        let file = OpenFile {
            name,
            size: self.header.len() as u64,
            packets: 0,
            boundary_ns: rotate.next_boundary(ts_ns),
            kernel_at_open: self.kernel,
            ring_drops_at_open: self.ring_drops,
        };
        (open, file)
    }

    /// Ends the open file (if any): hands over its last buffer and tells the writer.
    fn close_file(&mut self, reason: CloseReason) -> Result<(), EngineError> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        self.flush()?;
        let close = self.closing(&file, reason);
        self.send(Event::Close(close))
    }

    /// What the writer is told at the end of `file`.
    fn closing(&self, file: &OpenFile, reason: CloseReason) -> FileClose {
        let delta = |now: Option<KernelStats>, f: fn(&KernelStats) -> u64| {
            now.map(|n| f(&n) - file.kernel_at_open.map_or(0, |o| f(&o)))
        };
        FileClose {
            reason,
            kernel_drops: delta(self.kernel, |k| k.dropped),
            interface_drops: delta(self.kernel, |k| k.if_dropped),
            ring_drops: self.ring_drops - file.ring_drops_at_open,
        }
    }

    /// Makes sure the current buffer has `need` bytes free; false if a live source found no
    /// free buffer (the packet is then counted as a ring drop).
    #[inline]
    fn make_room(&mut self, need: usize) -> Result<bool, EngineError> {
        if self.buf.as_ref().is_some_and(|b| b.remaining() >= need) {
            return Ok(true);
        }
        if let Some(b) = self.buf.as_mut() {
            // full: the file goes on in the next buffer at once
            b.continued = true;
        }
        self.flush()?;
        let buf = if self.live {
            self.free.try_take()
        } else {
            Some(self.take_waiting()?)
        };
        match buf {
            Some(b) if b.capacity() < need => Err(EngineError::Config(format!(
                "a record of {need} bytes does not fit in a ring buffer of {} bytes",
                b.capacity()
            ))),
            Some(mut b) => {
                b.begin_at(self.sent, need);
                self.buf = Some(b);
                Ok(true)
            }
            None => {
                self.ring_drops += 1;
                self.counters.ring_drops.fetch_add(1, Relaxed);
                Ok(false)
            }
        }
    }

    fn take_waiting(&mut self) -> Result<Buffer, EngineError> {
        loop {
            if let Some(b) = self.free.take_timeout(TAKE_WAIT) {
                return Ok(b);
            }
            if self.control.writer_failed.load(Relaxed) {
                return Err(EngineError::WriterGone);
            }
        }
    }

    /// Hands the current buffer to the writer if it holds anything, else back to the ring.
    fn flush(&mut self) -> Result<(), EngineError> {
        match self.buf.take() {
            Some(mut b) if !b.is_empty() => {
                let offset = self.sent;
                self.sent += b.len() as u64;
                if !self.live {
                    // A replay keeps both threads busy: take half of the hashing.
                    b.lend_leaves(offset);
                }
                self.send(Event::Data(b))
            }
            Some(b) => {
                // back to the ring (the next taken, being the last returned): a buffer is
                // placed for the offset and room of its first record, which an empty one
                // kept here would no longer match
                self.free.put(b);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn send(&self, event: Event) -> Result<(), EngineError> {
        self.events.send(event).map_err(|_| EngineError::WriterGone)
    }

    fn refresh_kernel<S: CaptureSource + ?Sized>(&mut self, source: &mut S) {
        if let Some(k) = source.kernel_stats() {
            self.kernel = Some(k);
            self.counters.kernel_drops.store(k.dropped, Relaxed);
            self.counters.interface_drops.store(k.if_dropped, Relaxed);
            self.counters.kernel_drops_known.store(true, Relaxed);
        }
    }
}

/// Whether a raw IP file takes this record as it is: `RAW` takes both versions, `IPV4` and
/// `IPV6` their own (the encoder's own rule).
fn raw_ip_fits(file: LinkType, rec: &Record<'_>) -> bool {
    let raw = [LinkType::RAW, LinkType::IPV4, LinkType::IPV6];
    if !raw.contains(&file) || !raw.contains(&rec.link_type) {
        return false;
    }
    let version = rec.data.first().map(|b| b >> 4);
    match file {
        LinkType::IPV4 => version == Some(4),
        LinkType::IPV6 => version == Some(6),
        _ => true,
    }
}
