//! Packet traces: records, link types and the pcap, pcapng and ERF formats.
//!
//! The bottom floor: it knows nothing of spools, capture or anonymization.
//!
//! - [`align`]: where bytes go in memory so the kernel copies them to and from files fast.
//! - [`checksum`]: the Internet checksum and its incremental update.
//! - [`record`]: the packet record, link types and format names every part shares.
//! - [`format`](mod@format): pcap, pcapng and ERF parsers, readers and writers.
//! - [`proto`]: EtherTypes and IP protocol numbers.
//! - [`summary`]: what a trace holds (packets, bytes, times, link types).
//! - `synth` (feature `synth`): deterministic synthetic traffic.

pub mod align;
pub mod checksum;
pub mod format;
pub mod proto;
pub mod record;
pub mod summary;
#[cfg(feature = "synth")]
pub mod synth;

pub use record::{Format, LinkType, OwnedRecord, Record, RecordMeta};
