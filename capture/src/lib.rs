//! Trace formats, capture sources, the buffer ring and the rotating writer.
//!
//! - [`record`]: the packet record, link types and format names every part shares.
//! - [`format`](mod@format): pcap, pcapng and ERF parsers, readers and writers.
//! - [`engine`]: sources, the ring of buffers, io_uring and plain writers, rotation.
//! - [`manifest`]: the JSON manifest beside every published trace file.
//! - [`proto`]: EtherTypes and IP protocol numbers.
//! - [`publish`]: temporary name, fsync, rename that never replaces, directory fsync;
//!   recovery of leftovers.
//! - [`perms`]: mode and group of raw traces.
//! - [`seq`]: sequence numbers that never repeat for a site.
//! - [`size`]: byte sizes (`64MiB`, `50GB`), one rule everywhere.
//! - [`utc`]: calendar dates of Unix times.
//! - [`synth`]: deterministic synthetic traffic.

pub mod engine;
pub mod format;
pub mod manifest;
pub mod os;
pub mod perms;
pub mod proto;
pub mod publish;
pub mod record;
pub mod seq;
pub mod size;
pub mod summary;
pub mod synth;
pub mod utc;

pub use record::{Format, LinkType, OwnedRecord, Record};
