//! The file scrubber: a bounded parallel pipeline (rayon workers, each taking a chunk from
//! its read through its walk to its turn at the ordered write) with an in-place path for
//! pcap files (one copy per packet, one write per chunk), then the manifest and atomic
//! publication.
//!
//! - `read.rs`: the entry, which picks the path for an input;
//! - `pcap.rs` (pcap in place) and `records.rs` (any trace, record by record): the two paths,
//!   each a `ChunkSource` with its own chunk state;
//! - `pipeline.rs`: the chunk pool, the workers, the reading and writing locks and the
//!   ordered writer;
//! - `publish.rs`: the output and its manifest, published atomically;
//! - `types.rs`: configuration, summary and errors.

mod digest;
mod interfaces;
mod pcap;
mod pipeline;
mod publish;
mod read;
mod records;
mod types;

pub use pcap::BLOCK as PCAP_BLOCK;
pub use publish::{scrub_file, scrub_stream_file};
pub use read::{scrub_read, scrub_read_file, scrub_stream};
pub use records::{CHUNK_BYTES, CHUNK_RECORDS};
pub use types::{Provenance, ReadSummary, ScrubConfig, ScrubError, ScrubSummary};

#[cfg(test)]
mod tests;
