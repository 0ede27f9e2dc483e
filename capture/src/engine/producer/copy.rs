//! The replay fast path. A pcap file whose records the output would encode byte for byte
//! (same timestamp unit, little-endian, same link type) is copied into the ring a run of
//! records at a time: one copy per buffer instead of a parse and an encode per packet.
//! Rotation, the packet limit and the counts are decided for each record from its header,
//! exactly as on the per-packet path; a record longer than the snaplen goes that path.
//! A regular file is replayed in blocks instead (`blocks.rs`); this path takes pipes and
//! streams, `--io uring`, and whatever the blocks leave.

use std::sync::atomic::Ordering::Relaxed;

use lander_trace::format::{CopyStop, Endian, RecordHead, TraceReader};
use lander_trace::record::Format;

use super::{OpenFile, Producer, Pumped};
use crate::engine::ring::BufferMeta;
use crate::engine::rotate::{CloseReason, RotatePolicy};
use crate::engine::EngineError;

/// Why a run ended, as the per-record rules decide it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cut {
    /// The file must close before the next record.
    Close(CloseReason),
    /// The packet limit is reached.
    Limit,
    /// The next record is longer than the snaplen: it is cut and encoded on its own.
    Encode,
}

impl Producer {
    /// Whether `reader`'s records are, byte for byte, what this producer would write.
    pub(super) fn copies_as_is(&self, reader: &TraceReader) -> bool {
        let Some(h) = reader.pcap_header() else {
            return false;
        };
        let format = matches!(
            (h.format, self.config.format),
            (Format::Pcap, Format::Pcap) | (Format::PcapNs, Format::PcapNs)
        );
        format && h.endian == Endian::Little && h.link_type == self.link_type
    }

    /// Copies the records of `reader` in runs until it ends, the packet limit, a stop, or an
    /// error.
    pub(super) fn pump_copy(&mut self, reader: &mut TraceReader) -> Result<Pumped, EngineError> {
        loop {
            if self.packets >= self.limit {
                return Ok(Pumped::Ended);
            }
            if self.file.is_none() {
                // A file starts with a whole record (read, checked and encoded as the
                // per-packet path does it), never with one cut short.
                let Some(first) = reader.next().map_err(source_error)? else {
                    return Ok(Pumped::Ended);
                };
                self.on_packet(&first)?;
                continue;
            }
            let (stop, cut) = self.copy_run(reader)?;
            match (cut, stop) {
                (Some(Cut::Limit), _) => return Ok(Pumped::Ended),
                (Some(Cut::Close(reason)), _) => self.close_file(reason)?,
                (Some(Cut::Encode), _) => {
                    if let Some(rec) = reader.next().map_err(source_error)? {
                        self.on_packet(&rec)?;
                    }
                }
                (None, CopyStop::End) => return Ok(Pumped::Ended),
                (None, CopyStop::Full(need)) => {
                    self.flush()?;
                    self.make_room(need)?;
                }
                // a bad record: the next call reports it
                (None, CopyStop::Bad | CopyStop::Refused) => {}
            }
            if self.control.rotate.swap(false, Relaxed) && self.file.is_some() {
                self.close_file(CloseReason::Requested)?;
            }
            self.check_writer()?;
            self.publish_counts();
            if self.control.stop.load(Relaxed) {
                return Ok(Pumped::Stopped);
            }
        }
    }

    /// Copies one run into the current buffer (a file is open): what stopped the copy, and
    /// the cut the per-record rules made, if any.
    fn copy_run(
        &mut self,
        reader: &mut TraceReader,
    ) -> Result<(CopyStop, Option<Cut>), EngineError> {
        let rotate = self.config.rotate;
        let snaplen = self.config.snaplen;
        let left = self.limit - self.packets;
        let file = self.file.as_mut().expect("a file is open");
        let buf = self.buf.as_mut().expect("an open file has a buffer");
        let mut run = Run::new(rotate, snaplen, left);
        let (bytes, stop) = reader
            .copy_pcap_records(buf.spare_mut(), &mut |h| run.take(file, h))
            .map_err(source_error)?;
        buf.advance(bytes);
        buf.meta.merge(&run.meta);
        let meta = run.meta;
        let cut = run.cut;
        self.packets += meta.packets;
        self.totals.bytes += meta.bytes;
        self.totals.wire_bytes += meta.wire_bytes;
        Ok((stop, cut))
    }
}

/// The per-record rules over one run.
pub(super) struct Run {
    rotate: RotatePolicy,
    snaplen: u32,
    /// Packets the limit leaves.
    pub(super) left: u64,
    /// Counts of the records taken.
    pub(super) meta: BufferMeta,
    /// Why the run ends, once it does.
    pub(super) cut: Option<Cut>,
}

impl Run {
    pub(super) fn new(rotate: RotatePolicy, snaplen: u32, left: u64) -> Run {
        Run {
            rotate,
            snaplen,
            left,
            meta: BufferMeta::default(),
            cut: None,
        }
    }

    /// Takes the records at the start of `bytes` (little-endian pcap records whose
    /// fractional timestamps count units of `frac_ns`) that [`Run::take`] would take without
    /// cutting the run, while they start before `until`, lie whole in `bytes` and have a
    /// caplen within `limit`. Returns the bytes taken. The record it stops at needs the
    /// rules one by one (a cut, the limit, a bad or unfinished record).
    #[inline]
    pub(super) fn take_plain(
        &mut self,
        file: &mut OpenFile,
        bytes: &[u8],
        until: usize,
        frac_ns: u64,
        limit: u32,
    ) -> usize {
        if self.cut.is_some() {
            return 0;
        }
        let boundary = file.boundary_ns.unwrap_or(u64::MAX);
        let max_size = self.rotate.size.unwrap_or(u64::MAX);
        let max_packets = self.rotate.packets.unwrap_or(u64::MAX);
        let room = self.left - self.meta.packets;
        let cap = self.snaplen.min(limit);
        let (mut size, mut packets) = (file.size, file.packets);
        let mut run = BufferMeta::default();
        let mut at = 0;
        while at < until {
            let Some(h) = bytes.get(at..at + 16) else {
                break;
            };
            let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            let caplen = word(8);
            let len = 16 + caplen as usize;
            if caplen > cap || at + len > bytes.len() {
                break;
            }
            let ts = u64::from(word(0)) * 1_000_000_000 + u64::from(word(4)) * frac_ns;
            let over = packets > 0 && size.saturating_add(len as u64) > max_size;
            // what take() cuts at or just after: left for it
            if ts >= boundary || over || run.packets + 1 >= room || packets + 1 >= max_packets {
                break;
            }
            run.packets += 1;
            run.bytes += u64::from(caplen);
            run.wire_bytes += u64::from(word(12));
            run.first_ts_ns = run.first_ts_ns.or(Some(ts));
            run.last_ts_ns = Some(ts);
            size += len as u64;
            packets += 1;
            at += len;
        }
        self.meta.merge(&run);
        (file.size, file.packets) = (size, packets);
        at
    }

    /// Takes a record into the open file, or cuts the run before it.
    #[inline]
    pub(super) fn take(&mut self, file: &mut OpenFile, h: RecordHead) -> bool {
        if self.cut.is_some() {
            return false;
        }
        if h.caplen > self.snaplen {
            self.cut = Some(Cut::Encode);
            return false;
        }
        let need = h.record_len();
        if file.boundary_ns.is_some_and(|b| h.ts_ns >= b) {
            self.cut = Some(Cut::Close(CloseReason::Interval));
            return false;
        }
        if file.packets > 0 && self.rotate.over_size(file.size, need) {
            self.cut = Some(Cut::Close(CloseReason::Size));
            return false;
        }
        if self.meta.packets == self.left {
            self.cut = Some(Cut::Limit);
            return false;
        }
        self.meta.add(h.ts_ns, h.caplen as usize, h.wire_len, 0);
        file.size += need as u64;
        file.packets += 1;
        if self.rotate.full_of_packets(file.packets) {
            self.cut = Some(Cut::Close(CloseReason::Packets));
        } else if self.meta.packets == self.left {
            self.cut = Some(Cut::Limit);
        }
        true
    }
}

fn source_error(e: lander_trace::format::ReadError) -> EngineError {
    EngineError::Source(e.into())
}
