//! The file scrubber: a bounded parallel pipeline (reader thread, rayon workers, ordered
//! writer) with an in-place path for pcap files (one copy per packet, one write per chunk),
//! then the manifest and atomic publication.
//!
//! - `read.rs`: the entry, which picks the path for an input;
//! - `pcap.rs` (pcap in place) and `records.rs` (any trace, record by record): the two paths,
//!   each a `ChunkSource` with its own chunk state;
//! - `pipeline.rs`: the chunk pool, channels, workers and the ordered writer;
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
pub use publish::scrub_file;
pub use read::{scrub_read, scrub_stream};
pub use records::{CHUNK_BYTES, CHUNK_RECORDS};
pub use types::{
    checksums_name, parse_checksums, parse_payload, payload_name, Provenance, ReadSummary,
    ScrubConfig, ScrubError, Summary,
};

#[cfg(test)]
mod tests;
