//! The packet record every format reads into and writes from, and the names of formats and
//! link types.

use std::fmt;
use std::str::FromStr;

/// A link-layer header type, numbered as in the pcap/pcapng registry (`LINKTYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback (4-byte host-order address family).
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II / 802.3.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP, version taken from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback (4-byte network-order address family).
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture, version 1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture, version 2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The conventional short name (as tcpdump prints it), or the number.
    pub fn name(self) -> String {
        match self {
            LinkType::NULL => "NULL".into(),
            LinkType::ETHERNET => "EN10MB".into(),
            LinkType::RAW => "RAW".into(),
            LinkType::LOOP => "LOOP".into(),
            LinkType::LINUX_SLL => "LINUX_SLL".into(),
            LinkType::IPV4 => "IPV4".into(),
            LinkType::IPV6 => "IPV6".into(),
            LinkType::LINUX_SLL2 => "LINUX_SLL2".into(),
            LinkType(n) => format!("LINKTYPE_{n}"),
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One packet as read from a trace, borrowed from the reader's buffer.
///
/// `data.len()` is the captured length; `wire_len` the length on the wire (larger when the
/// capture was cut at the snaplen). Timestamps are nanoseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    pub ts_ns: u64,
    /// Original length of the packet on the wire.
    pub wire_len: u32,
    /// Link type of `data`.
    pub link_type: LinkType,
    /// Interface index (pcapng interface id, ERF port; 0 for pcap).
    pub interface: u32,
    /// Packets the source reported lost just before this one (ERF `lctr`); 0 elsewhere.
    pub drops: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// A record's fields without the borrow of its bytes, which lie at `start..start + len` of
/// some buffer (records batched into one buffer by a reader or a pipeline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    pub ts_ns: u64,
    /// Original length of the packet on the wire.
    pub wire_len: u32,
    /// Link type of the bytes.
    pub link_type: LinkType,
    /// Interface index.
    pub interface: u32,
    /// Packets lost just before this one.
    pub drops: u32,
    /// Where the captured bytes start in their buffer.
    pub start: usize,
    /// Captured length.
    pub len: usize,
}

impl RecordMeta {
    /// The fields of `r`, whose bytes are copied to `start` of a buffer.
    #[inline]
    pub fn of(r: &Record<'_>, start: usize) -> RecordMeta {
        RecordMeta {
            ts_ns: r.ts_ns,
            wire_len: r.wire_len,
            link_type: r.link_type,
            interface: r.interface,
            drops: r.drops,
            start,
            len: r.data.len(),
        }
    }

    /// The record, its bytes taken from `buf`.
    #[inline]
    pub fn record(self, buf: &[u8]) -> Record<'_> {
        self.with_data(&buf[self.start..self.start + self.len])
    }

    /// The record with `data` as its captured bytes (cut, or rewritten elsewhere).
    #[inline]
    pub fn with_data(self, data: &[u8]) -> Record<'_> {
        Record {
            ts_ns: self.ts_ns,
            wire_len: self.wire_len,
            link_type: self.link_type,
            interface: self.interface,
            drops: self.drops,
            data,
        }
    }
}

impl Record<'_> {
    /// Captured length.
    pub fn caplen(&self) -> usize {
        self.data.len()
    }

    /// Copies the record into an owned one.
    pub fn to_owned_record(&self) -> OwnedRecord {
        OwnedRecord {
            ts_ns: self.ts_ns,
            wire_len: self.wire_len,
            link_type: self.link_type,
            interface: self.interface,
            drops: self.drops,
            data: self.data.to_vec(),
        }
    }
}

/// A record that owns its bytes, for where several must live at once (batches, channels).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    pub ts_ns: u64,
    /// Original length of the packet on the wire.
    pub wire_len: u32,
    /// Link type of `data`.
    pub link_type: LinkType,
    /// Interface index.
    pub interface: u32,
    /// Packets lost just before this one.
    pub drops: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

impl OwnedRecord {
    /// Borrows the record.
    pub fn as_record(&self) -> Record<'_> {
        Record {
            ts_ns: self.ts_ns,
            wire_len: self.wire_len,
            link_type: self.link_type,
            interface: self.interface,
            drops: self.drops,
            data: &self.data,
        }
    }
}

/// A trace file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// libpcap, microsecond timestamps.
    Pcap,
    /// libpcap, nanosecond timestamps (magic `a1b23c4d`).
    PcapNs,
    /// pcapng.
    Pcapng,
    /// Endace ERF (DAG card records).
    Erf,
}

impl Format {
    /// All formats, in the order they are documented.
    pub const ALL: [Format; 4] = [Format::Pcap, Format::PcapNs, Format::Pcapng, Format::Erf];

    /// The name used on command lines and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNs => "pcap-ns",
            Format::Pcapng => "pcapng",
            Format::Erf => "erf",
        }
    }

    /// The file name extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Pcap | Format::PcapNs => "pcap",
            Format::Pcapng => "pcapng",
            Format::Erf => "erf",
        }
    }

    /// Timestamp resolution kept by the format, in nanoseconds.
    pub fn resolution_ns(self) -> u64 {
        match self {
            Format::Pcap => 1_000,
            _ => 1,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown trace format {0:?} (expected pcap, pcap-ns, pcapng or erf)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pcap" => Ok(Format::Pcap),
            "pcap-ns" | "pcapns" | "nanopcap" => Ok(Format::PcapNs),
            "pcapng" => Ok(Format::Pcapng),
            "erf" => Ok(Format::Erf),
            other => Err(UnknownFormat(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert!("pcap2".parse::<Format>().is_err());
    }
}
