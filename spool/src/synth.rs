//! Synthetic traffic published as a trace file.

use std::path::Path;

use lander_trace::format::WriteError;
use lander_trace::synth::{write_to, Profile};
use lander_trace::Format;

use crate::publish::PendingFile;

/// Writes `packets` packets of `profile` to `path` in `format`, published atomically (a
/// reader never sees part of it; a file already at `path` is replaced whole). Returns the
/// number of bytes written.
pub fn write_trace(
    profile: Profile,
    seed: u64,
    packets: u64,
    path: &Path,
    format: Format,
) -> Result<u64, WriteError> {
    let (pending, bytes) = write_pending(profile, seed, packets, path, format)?;
    pending.commit(false)?;
    Ok(bytes)
}

/// As [`write_trace`], but the file is left pending, to be published by the caller.
pub fn write_pending(
    profile: Profile,
    seed: u64,
    packets: u64,
    path: &Path,
    format: Format,
) -> Result<(PendingFile, u64), WriteError> {
    let mut pending = PendingFile::create(path)?;
    let out = std::io::BufWriter::with_capacity(1 << 20, &mut pending.file);
    let (bytes, mut out) = write_to(profile, seed, packets, out, format)?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    Ok((pending, bytes))
}
