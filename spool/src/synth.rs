//! Synthetic traffic published as a trace file.

use std::path::Path;

use lander_trace::format::WriteError;
use lander_trace::synth::{write_to, Profile};
use lander_trace::Format;

use crate::publish::PendingFile;

/// Writes `packets` packets of `profile` to `path` in `format`, published atomically (an
/// existing file at `path` is never replaced). Returns the number of bytes written.
pub fn write_trace(
    profile: Profile,
    seed: u64,
    packets: u64,
    path: &Path,
    format: Format,
) -> Result<u64, WriteError> {
    let mut pending = PendingFile::create(path)?;
    let out = std::io::BufWriter::with_capacity(1 << 20, &mut pending.file);
    let (bytes, mut out) = write_to(profile, seed, packets, out, format)?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    pending.commit(false)?;
    Ok(bytes)
}
