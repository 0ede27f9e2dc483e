//! Publishing one finished trace file and its manifest under a name never used before.
//!
//! The manifest first, then the trace, each under its final name only if nothing has it (no
//! rename ever replaces a file), so a consumer that sees a trace sees its manifest. When a
//! file that is not ours already has either name, the file takes the next sequence number
//! (reserved in the site's mark before it is used) and what was there is left untouched.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::WriterError;
use lander_spool::manifest::{manifest_path, now_ns, Manifest};
use lander_spool::naming::with_seq;
use lander_spool::perms::Perms;
use lander_spool::publish::{fsync_dir, remove_if_exists, PendingFile};
use lander_spool::seq::SeqAllocator;

/// How many names a file tries before publication gives up (each one found taken by a file
/// that is not ours).
const NAME_TRIES: usize = 1000;

/// How one file is published.
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    /// fsync the manifest and the directory (the caller fsyncs the trace's data).
    pub fsync: bool,
    /// Mode and group of the manifest.
    pub perms: Perms,
    /// Where the next sequence number comes from when the name is taken; without one, a
    /// taken name is an error.
    pub seqs: Option<&'a SeqAllocator>,
}

fn error(path: &Path, what: &str, source: io::Error) -> WriterError {
    WriterError {
        path: path.to_owned(),
        what: what.into(),
        source,
    }
}

impl Publication<'_> {
    /// Publishes `pending` with `manifest` under the pending file's final name, or the first
    /// free one after it; returns the path. The manifest is written into `room` (a temporary
    /// file taken for it beforehand) where there is one. On error the pending file stays
    /// pending, for the caller to keep or remove.
    pub fn publish(
        &self,
        pending: &mut PendingFile,
        manifest: &mut Manifest,
        mut room: Option<PendingFile>,
    ) -> Result<PathBuf, WriterError> {
        for _ in 0..NAME_TRIES {
            if self.publish_as(pending, manifest, &mut room)? {
                let dest = pending.dest_path().to_owned();
                if self.fsync {
                    let dir = dest.parent().unwrap_or(Path::new("."));
                    fsync_dir(dir).map_err(|e| error(dir, "cannot fsync the directory", e))?;
                }
                return Ok(dest);
            }
            self.take_next_name(pending, manifest)?;
        }
        Err(error(
            pending.dest_path(),
            "cannot find a free name",
            io::Error::other(format!("{NAME_TRIES} names in a row were taken")),
        ))
    }

    /// The manifest, then the trace; `Ok(false)` if either name was taken (nothing of ours
    /// is left under the final names then).
    fn publish_as(
        &self,
        pending: &mut PendingFile,
        manifest: &mut Manifest,
        room: &mut Option<PendingFile>,
    ) -> Result<bool, WriterError> {
        let dest = pending.dest_path().to_owned();
        if std::fs::symlink_metadata(&dest).is_ok() {
            return Ok(false);
        }
        let mpath = manifest_path(&dest);
        manifest.created_ns = now_ns();
        if !self.publish_manifest(&mpath, manifest, room)? {
            return Ok(false);
        }
        match pending.commit_new(false) {
            Ok(true) => Ok(true),
            Ok(false) => {
                // Someone else's trace took the name meanwhile: our manifest must not stay
                // beside it.
                let _ = remove_if_exists(&mpath);
                Ok(false)
            }
            Err(e) => {
                let _ = remove_if_exists(&mpath);
                Err(error(&dest, "cannot publish the trace file", e))
            }
        }
    }

    /// The manifest under `mpath`, written into `room` if there is one; `Ok(false)` if the
    /// name is taken (the room is then kept for the next name).
    fn publish_manifest(
        &self,
        mpath: &Path,
        manifest: &Manifest,
        room: &mut Option<PendingFile>,
    ) -> Result<bool, WriterError> {
        // a room a cleaner took away (it is old when its file was open a long time) is
        // replaced by a new file
        let taken = room
            .take()
            .filter(|r| std::fs::symlink_metadata(r.tmp_path()).is_ok());
        let mut mfile = match taken {
            Some(mut r) => {
                r.retarget(mpath);
                r
            }
            None => PendingFile::create_with_perms(mpath, &self.perms)
                .map_err(|e| error(mpath, "cannot create the manifest", e))?,
        };
        let json = manifest.to_json();
        mfile
            .file
            .write_all_at(&json, 0)
            .and_then(|()| mfile.file.set_len(json.len() as u64))
            .map_err(|e| error(mpath, "cannot write the manifest", e))?;
        if self.fsync {
            mfile
                .file
                .sync_all()
                .map_err(|e| error(mpath, "cannot fsync the manifest", e))?;
        }
        let published = mfile
            .commit_new(false)
            .map_err(|e| error(mpath, "cannot publish the manifest", e))?;
        if !published {
            *room = Some(mfile);
        }
        Ok(published)
    }

    /// Renames the pending file (and its manifest) to the next sequence number, reserved.
    fn take_next_name(
        &self,
        pending: &mut PendingFile,
        manifest: &mut Manifest,
    ) -> Result<(), WriterError> {
        let dest = pending.dest_path().to_owned();
        let taken = || io::Error::from(io::ErrorKind::AlreadyExists);
        let Some(seqs) = self.seqs else {
            return Err(error(&dest, "the name is taken", taken()));
        };
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let seq = seqs.take_reserved().map_err(|e| {
            error(
                &dest,
                "cannot reserve a sequence number",
                io::Error::other(e),
            )
        })?;
        let Some(next) = with_seq(&name, seq) else {
            return Err(error(
                &dest,
                "the name is taken (not a trace file name)",
                taken(),
            ));
        };
        tracing::warn!("{name} is taken by a file that is not ours: publishing as {next}");
        pending.retarget(Path::new(&next));
        manifest.file = next;
        manifest.seq = Some(seq);
        Ok(())
    }
}
