//! Trace formats, capture sources, the buffer ring and the rotating writer.
//!
//! - [`record`]: the packet record, link types and format names every part shares.
//! - [`manifest`]: the JSON manifest beside every published trace file.
//! - [`publish`]: temporary name, fsync, rename, directory fsync; recovery of leftovers.

pub mod manifest;
pub mod publish;
pub mod record;

pub use record::{Format, LinkType, OwnedRecord, Record};
