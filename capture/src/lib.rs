//! Trace formats, capture sources, the buffer ring and the rotating writer.
//!
//! - [`record`]: the packet record, link types and format names every part shares.
//! - [`format`](mod@format): pcap, pcapng and ERF parsers, readers and writers.
//! - [`engine`]: sources, the ring of buffers, io_uring and plain writers, rotation.
//! - [`manifest`]: the JSON manifest beside every published trace file.
//! - [`proto`]: EtherTypes and IP protocol numbers.
//! - [`publish`]: temporary name, fsync, rename, directory fsync; recovery of leftovers.
//! - [`synth`]: deterministic synthetic traffic.

pub mod engine;
pub mod format;
pub mod manifest;
pub mod proto;
pub mod publish;
pub mod record;
pub mod summary;
pub mod synth;

pub use record::{Format, LinkType, OwnedRecord, Record};
