//! Leftovers of a crash: temporary trace files salvaged up to their last whole record and
//! published with `recovered: true`, or removed.
//!
//! A leftover is read with [`TraceReader`] until its first error or truncation; every whole
//! record before that is written again through [`RecordEncoder`] (the same encoder that wrote
//! it, so the bytes are the same) under the final name the file was meant to get, or, if a
//! file that is not ours has that name, the next free sequence number.
//!
//! What an interrupted publication leaves is told apart first:
//! - a leftover with a second link (`st_nlink` > 1) was published already (a crash between
//!   the link and the unlink of a publication without `RENAME_NOREPLACE`): it is removed;
//! - a manifest under the final name of an unpublished leftover is the orphan of a crash
//!   between the manifest's publication and the trace's: it is removed with the leftover
//!   (`--discard-partial`) or replaced by the salvaged file's.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::publication::Publication;
use lander_spool::manifest::{manifest_path, Manifest};
use lander_spool::naming::parse_trace_name;
use lander_spool::perms::Perms;
use lander_spool::publish::{leftovers, Leftover, PendingFile};
use lander_spool::seq::{is_mark_name, SeqAllocator};
use lander_trace::format::{RecordEncoder, TraceReader};

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
pub enum SalvageOutcome {
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
    /// Left where it is: it could not be dealt with now (the next start tries again). One
    /// such leftover never keeps the others, or the capture, from going on.
    Kept {
        /// The temporary file.
        path: PathBuf,
        /// What went wrong.
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

/// How leftovers are dealt with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SalvageConfig {
    /// Publish or remove.
    pub policy: LeftoverPolicy,
    /// fsync what is published.
    pub fsync: bool,
    /// Mode and group of what is published.
    pub perms: Perms,
}

/// Deals with every abandoned temporary file in `dir`, publishing with the default modes.
pub fn salvage_dir(
    dir: &Path,
    policy: LeftoverPolicy,
    fsync: bool,
) -> Result<Vec<SalvageOutcome>, SalvageError> {
    salvage_dir_with(
        dir,
        &SalvageConfig {
            policy,
            fsync,
            perms: Perms::RAW,
        },
    )
}

/// Deals with every abandoned temporary file in `dir`. Only a directory that cannot be
/// listed is an error; a leftover that cannot be dealt with is [`SalvageOutcome::Kept`].
pub fn salvage_dir_with(
    dir: &Path,
    config: &SalvageConfig,
) -> Result<Vec<SalvageOutcome>, SalvageError> {
    let found = leftovers(dir, FOREIGN_AGE).map_err(|source| SalvageError {
        path: dir.to_owned(),
        what: "cannot list leftovers",
        source,
    })?;
    let mut outcomes = Vec::new();
    for left in &found {
        match salvage_one(dir, left, config) {
            Ok(done) => outcomes.extend(done),
            Err(e) => {
                tracing::warn!("leftover {} kept: {e}", left.path.display());
                outcomes.push(SalvageOutcome::Kept {
                    path: left.path.clone(),
                    why: e.to_string(),
                });
            }
        }
    }
    Ok(outcomes)
}

/// Why a leftover is removed without a look at its content, if it is: it is not a trace, or
/// it was published already.
fn not_to_salvage(left: &Leftover) -> Option<String> {
    if left.final_name.ends_with(".json") {
        return Some("temporary manifest".into());
    }
    if is_mark_name(&left.final_name) {
        return Some("temporary sequence mark".into());
    }
    let links = std::fs::symlink_metadata(&left.path).map_or(1, |m| m.nlink());
    (links > 1).then(|| "already published (a second link of a published file)".into())
}

fn salvage_one(
    dir: &Path,
    left: &Leftover,
    config: &SalvageConfig,
) -> Result<Vec<SalvageOutcome>, SalvageError> {
    if let Some(why) = not_to_salvage(left) {
        return Ok(vec![remove(&left.path, why)?]);
    }
    let dest = dir.join(&left.final_name);
    let mut outcomes: Vec<SalvageOutcome> = remove_orphan_manifest(&dest)?.into_iter().collect();
    if config.policy == LeftoverPolicy::Discard {
        outcomes.push(remove(&left.path, "discarded (--discard-partial)".into())?);
        return Ok(outcomes);
    }
    match recover(&left.path, &dest, config)? {
        Some((path, packets)) => {
            tracing::warn!(
                "recovered {} whole packets from {} as {}",
                packets,
                left.path.display(),
                path.display()
            );
            remove(&left.path, String::new())?;
            outcomes.push(SalvageOutcome::Recovered { path, packets });
        }
        None => outcomes.push(remove(&left.path, "no readable file header".to_string())?),
    }
    Ok(outcomes)
}

/// Removes the manifest published under `dest`'s name when `dest` itself is missing: the
/// orphan of a publication interrupted between the manifest and the trace. (With `dest`
/// present, the manifest is that file's and stays.)
fn remove_orphan_manifest(dest: &Path) -> Result<Option<SalvageOutcome>, SalvageError> {
    let mpath = manifest_path(dest);
    if std::fs::symlink_metadata(dest).is_ok() || std::fs::symlink_metadata(&mpath).is_err() {
        return Ok(None);
    }
    remove(
        &mpath,
        "orphan manifest of an interrupted publication".into(),
    )
    .map(Some)
}

fn remove(path: &Path, why: String) -> Result<SalvageOutcome, SalvageError> {
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
    Ok(SalvageOutcome::Removed {
        path: path.to_owned(),
        why,
    })
}

/// Copies the whole records of `tmp` to a new file published at `dest` (or, if that name is
/// taken, the next free sequence number); `None` if `tmp` has no readable header.
fn recover(
    tmp: &Path,
    dest: &Path,
    config: &SalvageConfig,
) -> Result<Option<(PathBuf, u64)>, SalvageError> {
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
    let mut pending = PendingFile::create_with_perms(dest, &config.perms)
        .map_err(|e| err("cannot create the output", e))?;
    let mut out = HashingWriter::new(io::BufWriter::new(&pending.file));
    out.write_all(&encoder.file_header())
        .map_err(|e| err("cannot write", e))?;
    let mut scratch = Vec::new();
    let stop = loop {
        let start = reader.offset();
        let rec = match reader.next() {
            Ok(Some(rec)) => rec,
            Ok(None) => break "the file ends after a whole record".to_string(),
            Err(e) => break e.to_string(),
        };
        if rec.ts_ns == 0 && rec.wire_len == 0 && rec.data.is_empty() {
            // No capture writes such a record; a crash with writes in flight can leave zeros
            // before bytes written later. Nothing from here on is trusted.
            break format!("zeros at byte {start}: a hole the interrupted writes left");
        }
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
    if config.fsync {
        pending
            .file
            .sync_all()
            .map_err(|e| err("cannot fsync the salvaged file", e))?;
    }
    let path = publish_salvaged(dir_of(dest), &mut pending, &mut manifest, config)
        .map_err(|e| err("cannot publish the salvaged file", io::Error::other(e)))?;
    Ok(Some((path, manifest.packets)))
}

fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Publishes under a name never used, with the site's sequence numbers when the name is a
/// trace file name (the mark is raised past the salvaged file's number first).
fn publish_salvaged(
    dir: &Path,
    pending: &mut PendingFile,
    manifest: &mut Manifest,
    config: &SalvageConfig,
) -> Result<PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    let seqs = match (&manifest.site, manifest.seq) {
        (Some(site), Some(seq)) => {
            let seqs = SeqAllocator::open(dir, site, config.perms, config.fsync)?;
            seqs.reserve(seq)?;
            Some(seqs)
        }
        _ => None,
    };
    let how = Publication {
        fsync: config.fsync,
        perms: config.perms,
        seqs: seqs.as_ref(),
    };
    Ok(how.publish(pending, manifest, None)?)
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
