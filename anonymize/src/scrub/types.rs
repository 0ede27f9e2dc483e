//! What a scrub is asked to do, what it reports, and how it fails.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use lander_trace::format::{ReadError, WriteError};
use lander_trace::{Format, LinkType};

use crate::walker::Policy;

/// How to scrub.
#[derive(Clone, Debug)]
pub struct ScrubConfig {
    /// Walker policy: payload, checksums, MACs.
    pub policy: Policy,
    /// Drop packets whose headers could not be parsed whole instead of cutting them.
    pub drop_unparsed: bool,
    /// Threads (at least 1), each reading, walking and writing chunks in turn.
    pub threads: usize,
    /// Output format; `None` keeps the input's.
    pub format: Option<Format>,
    /// Input format; `None` detects it (ERF has no magic and must be named).
    pub input_format: Option<Format>,
    /// fsync the output and its manifest before publishing.
    pub fsync: bool,
    /// Hash the input (BLAKE3, in parallel by the workers). [`scrub_file`](super::scrub_file) otherwise records
    /// the digest the raw file's manifest gives; with both, they must agree.
    pub hash_source: bool,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig {
            policy: Policy::default(),
            drop_unparsed: false,
            threads: 1,
            format: None,
            input_format: None,
            fsync: false,
            hash_source: false,
        }
    }
}

/// Why scrubbing failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// Reading the input failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Encoding the output failed.
    #[error("{path}: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: WriteError,
    },
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The input is not the file its manifest describes.
    #[error("{path}: BLAKE3 {computed} differs from {recorded} in its manifest")]
    SourceDigest {
        /// The input.
        path: PathBuf,
        /// What the input hashes to.
        computed: String,
        /// What its manifest says.
        recorded: String,
    },
    /// A worker thread panicked.
    #[error("a scrub worker panicked")]
    Panicked,
}

pub(super) fn io_at(path: &Path) -> impl Fn(io::Error) -> ScrubError + '_ {
    move |source| ScrubError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Counts of one scrub run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubSummary {
    /// Records read.
    pub packets_in: u64,
    /// Records written.
    pub packets_out: u64,
    /// Records dropped (`--drop-unparsed`).
    pub dropped: u64,
    /// Captured bytes read.
    pub bytes_in: u64,
    /// Captured bytes written.
    pub bytes_out: u64,
    /// Wire bytes of the records written.
    pub wire_bytes_out: u64,
    /// Packets cut or dropped, by reason name.
    pub reasons: BTreeMap<String, u64>,
    /// Packets with bytes replaced by zeros or padding, by kind.
    pub neutralised: BTreeMap<String, u64>,
    /// First and last timestamps written.
    pub first_ts_ns: Option<u64>,
    /// Last timestamp written.
    pub last_ts_ns: Option<u64>,
    /// Sum of the source's loss counters.
    pub source_drops: u64,
    /// Bytes of output (file header included).
    pub file_size: u64,
    /// BLAKE3 of the output.
    pub blake3: String,
}

/// What [`scrub_read`](super::scrub_read) found and did.
#[derive(Clone, Debug)]
pub struct ReadSummary {
    /// The counts.
    pub summary: ScrubSummary,
    /// BLAKE3 of the input, when [`ScrubConfig::hash_source`] asked for it.
    pub source_blake3: Option<String>,
    /// Format, link type and snaplen of the input.
    pub input: (Format, LinkType, u32),
    /// Format of the output.
    pub format: Format,
}

/// What the manifest of a scrubbed file says about how it was made.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// Key id (digest of the key).
    pub key_id: String,
    /// Other settings that change the output.
    pub settings: BTreeMap<String, String>,
}
