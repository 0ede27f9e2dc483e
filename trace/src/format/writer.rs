//! [`RecordEncoder`] turns records into the bytes of one format; [`TraceWriter`] writes a whole
//! file through it.
//!
//! All output is little-endian. Records longer than the snaplen are cut to it (the wire
//! length is kept). pcap µs timestamps truncate toward zero. pcapng files get one SHB and one
//! IDB with `if_tsresol` 9 (ns). ERF records are padded to a multiple of 8 bytes; ERF has no
//! caplen, so a record cut at the snaplen reads back with its pad bytes (zeros) included, up to
//! its wire length.
//!
//! A [`RecordEncoder::mixed`] encoder takes records of several link types: pcapng records
//! keep their interface id (the caller writes the IDBs, [`RecordEncoder::interface_block`],
//! and the file header is the SHB alone), ERF records get the type of their own link type
//! (Ethernet, IPv4 or IPv6). pcap holds one link type only.

use std::io::Write;

use super::{erf, pcap, pcapng, WriteError};
use crate::record::{Format, LinkType, Record};

/// The largest caplen an ERF record can carry (rlen is 16 bits, padded to 8).
pub const ERF_MAX_CAPLEN: u32 = 65_510;

/// Encodes records of one format, link type and snaplen.
#[derive(Clone, Debug)]
pub struct RecordEncoder {
    format: Format,
    link_type: LinkType,
    snaplen: u32,
    mixed: bool,
}

impl RecordEncoder {
    /// An encoder; ERF carries only Ethernet and raw IP (`ETHERNET`, `RAW`, `IPV4`, `IPV6`).
    pub fn new(format: Format, link_type: LinkType, snaplen: u32) -> Result<Self, WriteError> {
        if snaplen == 0 {
            return Err(WriteError::ZeroSnaplen);
        }
        let supported = match format {
            Format::Erf => is_ethernet_or_ip(link_type),
            Format::Pcapng => link_type.0 <= 0xffff,
            Format::Pcap | Format::PcapNs => true,
        };
        if !supported {
            return Err(WriteError::UnsupportedLinkType { format, link_type });
        }
        let snaplen = match format {
            Format::Erf => snaplen.min(ERF_MAX_CAPLEN),
            _ => snaplen,
        };
        Ok(RecordEncoder {
            format,
            link_type,
            snaplen,
            mixed: false,
        })
    }

    /// The same encoder for records of several link types (pcapng, ERF; pcap stays strict).
    /// For pcapng the caller declares the interfaces: [`file_header`](Self::file_header) is
    /// then the SHB alone, and each record is written with its own interface id.
    pub fn mixed(mut self) -> Self {
        self.mixed = !matches!(self.format, Format::Pcap | Format::PcapNs);
        self
    }

    /// Whether records of several link types are taken.
    pub fn is_mixed(&self) -> bool {
        self.mixed
    }

    /// A pcapng Section Header Block (what a new section starts with).
    pub fn section_header() -> Vec<u8> {
        let mut v = vec![0; pcapng::emit::SECTION_HEADER_LEN];
        pcapng::emit::emit_section_header(&mut v);
        v
    }

    /// A pcapng Interface Description Block (nanosecond timestamps).
    pub fn interface_block(link_type: LinkType, snaplen: u32) -> Vec<u8> {
        let mut v = vec![0; pcapng::emit::INTERFACE_LEN];
        pcapng::emit::emit_interface(&mut v, link_type, snaplen);
        v
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The file's link type.
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// The snaplen records are cut to.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// The bytes a file starts with: pcap global header; pcapng SHB and IDB; nothing for ERF.
    pub fn file_header(&self) -> Vec<u8> {
        match self.format {
            Format::Pcap | Format::PcapNs => {
                let mut v = vec![0; pcap::HEADER_LEN];
                let repr = pcap::FileHeaderRepr {
                    endian: super::Endian::Little,
                    format: self.format,
                    snaplen: self.snaplen,
                    link_type: self.link_type,
                };
                repr.emit(&mut v);
                v
            }
            Format::Pcapng if self.mixed => Self::section_header(),
            Format::Pcapng => {
                let mut v = vec![0; pcapng::emit::SECTION_HEADER_LEN + pcapng::emit::INTERFACE_LEN];
                pcapng::emit::emit_section_header(&mut v);
                let idb = &mut v[pcapng::emit::SECTION_HEADER_LEN..];
                pcapng::emit::emit_interface(idb, self.link_type, self.snaplen);
                v
            }
            Format::Erf => Vec::new(),
        }
    }

    /// Exact bytes `encode` appends for a record of `caplen` captured bytes (after the cut)
    /// of the file's link type.
    #[inline]
    pub fn record_len(&self, caplen: usize) -> usize {
        self.record_len_of(self.link_type, caplen)
    }

    /// Exact bytes `encode` appends for a record of link type `link` and `caplen` bytes.
    #[inline]
    pub fn record_len_of(&self, link: LinkType, caplen: usize) -> usize {
        let cut = caplen.min(self.snaplen as usize);
        match self.format {
            Format::Pcap | Format::PcapNs => pcap::RECORD_HEADER_LEN + cut,
            Format::Pcapng => pcapng::emit::epb_len(cut),
            Format::Erf => erf::record_len(erf_pad_type(link), cut),
        }
    }

    /// Appends the encoded record to `out`.
    pub fn encode(&self, rec: &Record<'_>, out: &mut Vec<u8>) -> Result<(), WriteError> {
        let at = out.len();
        out.resize(at + self.record_len_of(rec.link_type, rec.caplen()), 0);
        match self.encode_into(rec, &mut out[at..]) {
            Ok(_) => Ok(()),
            Err(e) => {
                out.truncate(at);
                Err(e)
            }
        }
    }

    /// Encodes the record into the start of `out`; returns the bytes written. No allocation.
    #[inline]
    pub fn encode_into(&self, rec: &Record<'_>, out: &mut [u8]) -> Result<usize, WriteError> {
        self.check_link(rec)?;
        let cut = rec.caplen().min(self.snaplen as usize);
        let data = &rec.data[..cut];
        let needed = self.record_len_of(rec.link_type, cut);
        if out.len() < needed {
            return Err(WriteError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        match self.format {
            Format::Pcap | Format::PcapNs => self.encode_pcap(rec, data, out)?,
            Format::Pcapng => {
                let interface = if self.mixed { rec.interface } else { 0 };
                pcapng::emit::emit_enhanced_packet(out, interface, rec.ts_ns, rec.wire_len, data)
            }
            Format::Erf => self.encode_erf(rec, data, out)?,
        }
        Ok(needed)
    }

    fn encode_pcap(&self, rec: &Record<'_>, data: &[u8], out: &mut [u8]) -> Result<(), WriteError> {
        let secs = u32::try_from(rec.ts_ns / 1_000_000_000).map_err(|_| {
            WriteError::TimestampOutOfRange {
                format: self.format,
                ts_ns: rec.ts_ns,
            }
        })?;
        let sub = (rec.ts_ns % 1_000_000_000) as u32;
        let frac = match self.format {
            Format::PcapNs => sub,
            _ => sub / 1_000,
        };
        pcap::emit_record_header(out, secs, frac, data.len() as u32, rec.wire_len);
        out[pcap::RECORD_HEADER_LEN..pcap::RECORD_HEADER_LEN + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn encode_erf(&self, rec: &Record<'_>, data: &[u8], out: &mut [u8]) -> Result<(), WriteError> {
        let wlen = u16::try_from(rec.wire_len).map_err(|_| WriteError::TooLarge {
            format: Format::Erf,
            what: "wire length",
            len: rec.wire_len.into(),
            limit: u16::MAX.into(),
        })?;
        let erf_type = erf_type_of(rec.link_type, data);
        erf::emit_record(out, erf_type, rec.ts_ns, rec.interface as u8, wlen, data);
        Ok(())
    }

    fn check_link(&self, rec: &Record<'_>) -> Result<(), WriteError> {
        if rec.link_type == self.link_type || raw_ip_compatible(self.link_type, rec) {
            return Ok(());
        }
        let mixed_ok = match self.format {
            Format::Erf => is_ethernet_or_ip(rec.link_type),
            _ => rec.link_type.0 <= 0xffff,
        };
        if self.mixed && mixed_ok {
            return Ok(());
        }
        Err(WriteError::LinkTypeMismatch {
            format: self.format,
            file: self.link_type,
            record: rec.link_type,
        })
    }
}

/// The ERF type that decides padding (raw IP types share a length).
fn erf_pad_type(link: LinkType) -> u8 {
    match link {
        LinkType::ETHERNET => erf::TYPE_ETH,
        _ => erf::TYPE_IPV4,
    }
}

fn is_ethernet_or_ip(l: LinkType) -> bool {
    matches!(
        l,
        LinkType::ETHERNET | LinkType::RAW | LinkType::IPV4 | LinkType::IPV6
    )
}

fn ip_version(data: &[u8]) -> Option<u8> {
    data.first().map(|b| b >> 4)
}

/// Raw IP records fit raw IP files: `RAW` takes both versions, `IPV4`/`IPV6` their own.
fn raw_ip_compatible(file: LinkType, rec: &Record<'_>) -> bool {
    let raw = [LinkType::RAW, LinkType::IPV4, LinkType::IPV6];
    if !raw.contains(&file) || !raw.contains(&rec.link_type) {
        return false;
    }
    match file {
        LinkType::IPV4 => ip_version(rec.data) == Some(4),
        LinkType::IPV6 => ip_version(rec.data) == Some(6),
        _ => true,
    }
}

fn erf_type_of(link_type: LinkType, data: &[u8]) -> u8 {
    match link_type {
        LinkType::ETHERNET => erf::TYPE_ETH,
        LinkType::IPV6 => erf::TYPE_IPV6,
        LinkType::IPV4 => erf::TYPE_IPV4,
        _ if ip_version(data) == Some(6) => erf::TYPE_IPV6,
        _ => erf::TYPE_IPV4,
    }
}

/// Size at which the writer hands its buffer to the sink.
const FLUSH_AT: usize = 256 << 10;

/// Writes a trace file: the file header at creation, then records.
///
/// Output is buffered; call [`finish`](Self::finish) to flush it and get the sink back
/// (dropping the writer loses what is buffered).
#[derive(Debug)]
pub struct TraceWriter<W: Write> {
    sink: W,
    encoder: RecordEncoder,
    buf: Vec<u8>,
    packets: u64,
    bytes: u64,
}

impl<W: Write> TraceWriter<W> {
    /// A writer; the file header is written with the first flush.
    pub fn new(
        sink: W,
        format: Format,
        link_type: LinkType,
        snaplen: u32,
    ) -> Result<Self, WriteError> {
        let encoder = RecordEncoder::new(format, link_type, snaplen)?;
        let mut buf = Vec::with_capacity(FLUSH_AT + 65_536);
        buf.extend_from_slice(&encoder.file_header());
        Ok(TraceWriter {
            sink,
            bytes: buf.len() as u64,
            encoder,
            buf,
            packets: 0,
        })
    }

    /// Writes one record.
    #[inline]
    pub fn write(&mut self, rec: &Record<'_>) -> Result<(), WriteError> {
        let before = self.buf.len();
        self.encoder.encode(rec, &mut self.buf)?;
        self.bytes += (self.buf.len() - before) as u64;
        self.packets += 1;
        if self.buf.len() >= FLUSH_AT {
            self.sink.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Flushes everything and returns the sink.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.sink.write_all(&self.buf)?;
        self.buf.clear();
        self.sink.flush()?;
        Ok(self.sink)
    }

    /// Records written.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Bytes of the file so far (header included, buffered bytes counted).
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// The encoder.
    pub fn encoder(&self) -> &RecordEncoder {
        &self.encoder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::TraceReader;

    fn rec(data: &[u8], ts_ns: u64) -> Record<'_> {
        Record {
            ts_ns,
            wire_len: data.len() as u32,
            link_type: LinkType::ETHERNET,
            interface: 0,
            drops: 0,
            data,
        }
    }

    #[test]
    fn every_format_round_trips() {
        let frames: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 14 + i as usize]).collect();
        for format in Format::ALL {
            let mut w = TraceWriter::new(Vec::new(), format, LinkType::ETHERNET, 65535).unwrap();
            for (i, f) in frames.iter().enumerate() {
                w.write(&rec(f, 1_700_000_000_000_000_000 + i as u64 * 1_234_567))
                    .unwrap();
            }
            assert_eq!(w.packets(), 20);
            let bytes_written = w.bytes_written();
            let bytes = w.finish().unwrap();
            assert_eq!(bytes.len() as u64, bytes_written);
            let mut r = TraceReader::from_bytes("mem", bytes, Some(format)).unwrap();
            for (i, f) in frames.iter().enumerate() {
                let got = r.next().unwrap().unwrap();
                assert_eq!(got.data, &f[..], "{format} #{i}");
                let ts = 1_700_000_000_000_000_000 + i as u64 * 1_234_567;
                let res = format.resolution_ns();
                assert_eq!(got.ts_ns, ts / res * res, "{format} #{i}");
            }
            assert!(r.next().unwrap().is_none());
        }
    }

    #[test]
    fn record_len_is_exact_and_snaplen_cuts() {
        let data = [7u8; 100];
        for format in Format::ALL {
            let e = RecordEncoder::new(format, LinkType::ETHERNET, 60).unwrap();
            let mut out = Vec::new();
            e.encode(&rec(&data, 5), &mut out).unwrap();
            assert_eq!(out.len(), e.record_len(100), "{format}");
            let mut small = [0u8; 8];
            assert!(matches!(
                e.encode_into(&rec(&data, 5), &mut small),
                Err(WriteError::BufferTooSmall { .. })
            ));
        }
    }

    fn rec_of<'a>(data: &'a [u8], link: LinkType, interface: u32) -> Record<'a> {
        Record {
            link_type: link,
            interface,
            ..rec(data, 1_000_000_007)
        }
    }

    #[test]
    fn mixed_pcapng_keeps_interfaces_and_link_types() {
        let e = RecordEncoder::new(Format::Pcapng, LinkType::ETHERNET, 65535)
            .unwrap()
            .mixed();
        let mut out = e.file_header();
        out.extend(RecordEncoder::interface_block(LinkType::ETHERNET, 65535));
        out.extend(RecordEncoder::interface_block(LinkType::RAW, 100));
        let eth = [0xaa; 14];
        let ip = [0x45; 20];
        e.encode(&rec_of(&eth, LinkType::ETHERNET, 0), &mut out)
            .unwrap();
        e.encode(&rec_of(&ip, LinkType::RAW, 1), &mut out).unwrap();
        let mut r = TraceReader::from_bytes("mem", out, None).unwrap();
        let a = r.next_owned().unwrap().unwrap();
        let b = r.next_owned().unwrap().unwrap();
        assert_eq!(
            (a.link_type, a.interface, a.data),
            (LinkType::ETHERNET, 0, eth.to_vec())
        );
        assert_eq!(
            (b.link_type, b.interface, b.data),
            (LinkType::RAW, 1, ip.to_vec())
        );
        assert_eq!(r.interfaces().len(), 2);
    }

    #[test]
    fn mixed_erf_gives_each_record_its_type() {
        let e = RecordEncoder::new(Format::Erf, LinkType::ETHERNET, 65535)
            .unwrap()
            .mixed();
        let mut out = Vec::new();
        let eth = [0xaa; 14];
        let v6 = [0x60; 40];
        e.encode(&rec_of(&eth, LinkType::ETHERNET, 1), &mut out)
            .unwrap();
        e.encode(&rec_of(&v6, LinkType::RAW, 2), &mut out).unwrap();
        assert!(e
            .encode(&rec_of(&eth, LinkType::LINUX_SLL, 0), &mut out)
            .is_err());
        let mut r = TraceReader::from_bytes("mem", out, Some(Format::Erf)).unwrap();
        let a = r.next_owned().unwrap().unwrap();
        let b = r.next_owned().unwrap().unwrap();
        assert_eq!(
            (a.link_type, a.interface, a.data),
            (LinkType::ETHERNET, 1, eth.to_vec())
        );
        assert_eq!(
            (b.link_type, b.interface, b.data),
            (LinkType::RAW, 2, v6.to_vec())
        );
        assert!(r.next().unwrap().is_none());
    }

    #[test]
    fn pcap_stays_one_link_type_even_mixed() {
        let e = RecordEncoder::new(Format::Pcap, LinkType::ETHERNET, 100)
            .unwrap()
            .mixed();
        assert!(!e.is_mixed());
        let mut out = Vec::new();
        assert!(e.encode(&rec_of(b"x", LinkType::RAW, 0), &mut out).is_err());
    }

    #[test]
    fn link_type_mismatch_is_an_error() {
        let e = RecordEncoder::new(Format::Pcap, LinkType::RAW, 100).unwrap();
        let mut out = Vec::new();
        assert!(e.encode(&rec(b"x", 0), &mut out).is_err());
        assert!(out.is_empty());
        assert!(RecordEncoder::new(Format::Erf, LinkType::LINUX_SLL, 100).is_err());
        assert!(RecordEncoder::new(Format::Pcap, LinkType::RAW, 0).is_err());
    }
}
