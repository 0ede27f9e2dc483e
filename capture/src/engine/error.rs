//! The error that ends a capture's writing.

use std::io;
use std::path::PathBuf;

/// A write error that ended the capture.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}: {source}")]
pub struct WriterError {
    /// The file concerned.
    pub path: PathBuf,
    /// What was being done.
    pub what: String,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}
