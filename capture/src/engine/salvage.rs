//! Leftovers of a crash: temporary trace files salvaged up to their last whole record and
//! published with `recovered: true`, or removed.
//!
//! A leftover is read with [`TraceReader`] until its first error or truncation; every whole
//! record before that is written again through [`RecordEncoder`] (the same encoder that wrote
//! it, so the bytes are the same) under the final name the file was meant to get.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::naming::parse_trace_name;
use crate::format::{RecordEncoder, TraceReader};
use crate::manifest::{manifest_path, Manifest};
use crate::publish::{leftovers, Leftover, PendingFile};

/// A temporary file from another host counts as abandoned after this long untouched.
const FOREIGN_AGE: Duration = Duration::from_secs(3600);

/// What to do with leftovers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftoverPolicy {
    /// Publish their whole records.
    Recover,
    /// Remove them.
    Discard,
}

/// What happened to one leftover.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    /// Published under this path with this many packets.
    Recovered {
        /// The published file.
        path: PathBuf,
        /// Whole records kept.
        packets: u64,
    },
    /// Removed (discarded, unreadable, a temporary manifest, or already published).
    Removed {
        /// The temporary file that was removed.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// Salvaging failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}: {source}")]
pub struct SalvageError {
    /// The file concerned.
    pub path: PathBuf,
    /// What was being done.
    pub what: &'static str,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// Deals with every abandoned temporary file in `dir`.
pub fn salvage_dir(
    dir: &Path,
    policy: LeftoverPolicy,
    fsync: bool,
) -> Result<Vec<Outcome>, SalvageError> {
    let found = leftovers(dir, FOREIGN_AGE).map_err(|source| SalvageError {
        path: dir.to_owned(),
        what: "cannot list leftovers",
        source,
    })?;
    found
        .iter()
        .map(|left| salvage_one(dir, left, policy, fsync))
        .collect()
}

fn salvage_one(
    dir: &Path,
    left: &Leftover,
    policy: LeftoverPolicy,
    fsync: bool,
) -> Result<Outcome, SalvageError> {
    let dest = dir.join(&left.final_name);
    let why = if policy == LeftoverPolicy::Discard {
        Some("discarded (--discard-partial)".to_string())
    } else if left.final_name.ends_with(".json") {
        Some("temporary manifest".to_string())
    } else if dest.exists() {
        Some("already published".to_string())
    } else {
        None
    };
    if let Some(why) = why {
        return remove(&left.path, why);
    }
    match recover(&left.path, &dest, fsync)? {
        Some(packets) => {
            tracing::warn!(
                "recovered {} whole packets from {} as {}",
                packets,
                left.path.display(),
                dest.display()
            );
            remove(&left.path, String::new())?;
            Ok(Outcome::Recovered {
                path: dest,
                packets,
            })
        }
        None => remove(&left.path, "no readable file header".to_string()),
    }
}

fn remove(path: &Path, why: String) -> Result<Outcome, SalvageError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(SalvageError {
                path: path.to_owned(),
                what: "cannot remove the leftover",
                source,
            })
        }
    }
    if !why.is_empty() {
        tracing::info!("removed leftover {}: {why}", path.display());
    }
    Ok(Outcome::Removed {
        path: path.to_owned(),
        why,
    })
}

/// Copies the whole records of `tmp` to a new file published at `dest`; `None` if `tmp` has
/// no readable header.
fn recover(tmp: &Path, dest: &Path, fsync: bool) -> Result<Option<u64>, SalvageError> {
    let err = |what, source| SalvageError {
        path: tmp.to_owned(),
        what,
        source,
    };
    let Ok(mut reader) = TraceReader::open(tmp) else {
        return Ok(None);
    };
    let encoder = RecordEncoder::new(reader.format(), reader.link_type(), reader.snaplen())
        .map_err(|e| err("cannot write its format", io::Error::other(e.to_string())))?;
    let mut manifest = Manifest::new(
        &dest.file_name().unwrap_or_default().to_string_lossy(),
        reader.format(),
        reader.link_type(),
        reader.snaplen(),
    );
    let pending = PendingFile::create(dest).map_err(|e| err("cannot create the output", e))?;
    let mut out = HashingWriter::new(io::BufWriter::new(&pending.file));
    out.write_all(&encoder.file_header())
        .map_err(|e| err("cannot write", e))?;
    let mut scratch = Vec::new();
    let stop = loop {
        let rec = match reader.next() {
            Ok(Some(rec)) => rec,
            Ok(None) => break "the file ends after a whole record".to_string(),
            Err(e) => break e.to_string(),
        };
        scratch.resize(encoder.record_len(rec.data.len()), 0);
        let n = encoder
            .encode_into(&rec, &mut scratch)
            .map_err(|e| err("cannot re-encode", io::Error::other(e.to_string())))?;
        out.write_all(&scratch[..n])
            .map_err(|e| err("cannot write", e))?;
        manifest.add_packet(rec.ts_ns, rec.data.len(), rec.wire_len);
    };
    let (digest, size) = out.finish().map_err(|e| err("cannot write", e))?;
    fill_manifest(&mut manifest, dest, digest, size, &stop);
    manifest
        .publish(&manifest_path(dest), fsync)
        .map_err(|e| err("cannot publish the manifest", e))?;
    pending
        .commit(fsync)
        .map_err(|e| err("cannot publish the salvaged file", e))?;
    Ok(Some(manifest.packets))
}

fn fill_manifest(m: &mut Manifest, dest: &Path, digest: String, size: u64, stop: &str) {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    if let Some((site, _, seq)) = parse_trace_name(&name) {
        m.site = Some(site.to_string());
        m.seq = Some(seq);
    }
    m.blake3 = digest;
    m.file_size = size;
    m.recovered = true;
    m.partial = Some(format!("salvaged after an interrupted capture: {stop}"));
}

/// A writer that hashes what passes through it and counts it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: blake3::Hasher::new(),
            size: 0,
        }
    }

    fn finish(mut self) -> io::Result<(String, u64)> {
        self.inner.flush()?;
        Ok((self.hasher.finalize().to_hex().to_string(), self.size))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
