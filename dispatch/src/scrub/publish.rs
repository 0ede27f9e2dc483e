//! Putting a scrub attempt's results in place, every step idempotent and none writing over
//! another file: the output (manifest first, then data) into `scrubbed/<site>/`, hard links
//! into each subscribed user's `incoming/<site>/`, the name registered, the raw file archived
//! or removed. A rerun after a crash between any two steps finds the earlier steps done (same
//! inode, or the same content) and does the rest.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use lander_spool::manifest::manifest_path;

use super::identity::{digest_at, read_manifest};
use super::ScrubStage;
use crate::claim::Identity;
use crate::config::AfterSuccess;
use crate::crash;
use crate::fsutil::{self, link_or_copy, move_once, remove_if_exists, LinkOutcome};

impl ScrubStage {
    /// Publishes the attempt's output `work` (manifest first) as `dst`. Each part already
    /// published is recognized (moved before a crash: the scratch copy is gone; or the same
    /// content); a different file under the name is an error and nothing is replaced.
    pub(super) fn publish(&self, work: &Path, dst: &Path) -> io::Result<()> {
        let parts = [
            (manifest_path(work), manifest_path(dst), true),
            (work.to_owned(), dst.to_owned(), false),
        ];
        for (from, to, is_manifest) in parts {
            self.publish_part(&from, &to, is_manifest)?;
            if is_manifest {
                crash::point("scrub.published-manifest");
            }
        }
        crash::point("scrub.published");
        if self.config.fsync {
            lander_spool::publish::fsync_dir(dst.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(())
    }

    fn publish_part(&self, from: &Path, to: &Path, is_manifest: bool) -> io::Result<()> {
        if !fsutil::exists(from) {
            if fsutil::exists(to) {
                return Ok(()); // published before a crash
            }
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: output gone and nothing published", from.display()),
            ));
        }
        self.set_scrubbed_mode(from)?;
        match move_once(from, to) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !same_content(from, to, is_manifest)? {
                    return Err(e);
                }
                remove_if_exists(from)
            }
            other => other,
        }
    }

    /// Scrubbed files are readable by the group users share (`scrub.scrubbed_group`), else
    /// by everyone; never writable but by their owner.
    fn set_scrubbed_mode(&self, path: &Path) -> io::Result<()> {
        let mode = match self.scrubbed_gid {
            Some(gid) => {
                std::os::unix::fs::chown(path, None, Some(gid))
                    .map_err(|e| fsutil::with_path(e, path))?;
                0o640
            }
            None => 0o644,
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| fsutil::with_path(e, path))
    }

    /// Links a published file into every subscribed user's `incoming/<site>/`, once. One
    /// user's trouble does not keep the file from the others; it is reported for the item.
    pub(super) fn fan_out(&self, site: &str, name: &str, published: &Path) -> io::Result<()> {
        let mut errors = Vec::new();
        for (user, cfg) in &self.config.users {
            if !cfg.subscriptions.iter().any(|s| s == site) {
                continue;
            }
            if let Err(e) = self.link_to(user, site, name, published) {
                errors.push(format!("user {user}: {e}"));
            }
        }
        crash::point("scrub.fanned-out");
        match errors.is_empty() {
            true => Ok(()),
            false => Err(io::Error::other(errors.join("; "))),
        }
    }

    fn link_to(&self, user: &str, site: &str, name: &str, published: &Path) -> io::Result<()> {
        if self.user_has(user, site, name, published) {
            return Ok(());
        }
        let incoming = self.spool.incoming(user);
        let dir = incoming.join(site);
        real_dir(&incoming)?;
        real_dir(&dir)?;
        let dst = dir.join(name);
        for (from, to) in [
            (manifest_path(published), manifest_path(&dst)),
            (published.to_owned(), dst.clone()),
        ] {
            let linked = link_or_copy(&from, &to).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => io::Error::new(
                    e.kind(),
                    format!("{}: taken by another entry", to.display()),
                ),
                _ => e,
            })?;
            if linked == LinkOutcome::Copied {
                tracing::warn!(from = %from.display(), to = %to.display(), "different filesystems: copied, not linked");
            }
            if to != dst {
                crash::point("scrub.linked-manifest");
            }
        }
        Ok(())
    }

    /// Whether the user has (or had) this file: their stage finished with it, or one of their
    /// directories holds this very inode (an entry of another kind under the name does not
    /// count: it is reported, not taken for the file).
    fn user_has(&self, user: &str, site: &str, name: &str, published: &Path) -> bool {
        let s = &self.spool;
        let item = format!("{site}/{name}");
        [
            s.incoming(user),
            s.in_process(user),
            s.done(user),
            s.failed(user),
        ]
        .iter()
        .any(|d| fsutil::same_entry(&d.join(&item), published))
            || fsutil::exists(&s.finished_marker(user, &item))
    }

    /// Archives or removes the raw file the item was (only that inode: a new file that has
    /// since arrived under the name is left alone, with its manifest), manifest first.
    pub(super) fn dispose_raw(
        &self,
        site: &str,
        name: &str,
        id: Option<&Identity>,
    ) -> io::Result<()> {
        let raw = self.spool.raw(site).join(name);
        let files = [manifest_path(&raw), raw];
        match self.config.scrub.raw_after {
            AfterSuccess::Remove => remove_raw(&files, id),
            AfterSuccess::Archive => self.archive(site, &files, id),
        }?;
        crash::point("scrub.disposed");
        Ok(())
    }

    /// Moves `files` (manifest, then the trace) into the site's archive, each only while the
    /// trace's entry is still the claimed file. A part the archive already holds for the
    /// claimed file (a second copy, or a step done before a crash) is removed.
    pub(super) fn archive(
        &self,
        site: &str,
        files: &[std::path::PathBuf; 2],
        id: Option<&Identity>,
    ) -> io::Result<()> {
        let archive = self.spool.archive(site);
        fsutil::create_dir_mode(&archive, 0o750)?;
        for (i, f) in files.iter().enumerate() {
            if !still_claimed(&files[1], id)? {
                return Ok(());
            }
            let dst = archive.join(f.file_name().unwrap_or_default());
            private(f);
            match move_once(f, &dst) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !archived_same(&dst, i == 0, id)? {
                        return Err(e);
                    }
                    remove_if_exists(f)?;
                }
                other => other?,
            }
            if i == 0 {
                crash::point("scrub.archived-manifest");
            }
        }
        Ok(())
    }
}

/// Removes `files` (manifest, then the trace), each only while the trace's entry is still the
/// claimed file.
fn remove_raw(files: &[std::path::PathBuf; 2], id: Option<&Identity>) -> io::Result<()> {
    for f in files {
        if !still_claimed(&files[1], id)? {
            return Ok(());
        }
        remove_if_exists(f)?;
    }
    Ok(())
}

/// Whether the raw trace entry `raw` is still the file the claim took (`id`; any entry when
/// the claim recorded none). Checked right before each step that moves or removes something
/// under its name: another dispatcher acting on the same view may have disposed of the claimed
/// file already, and a new file (a capture restarted) arrived under the name since; that one,
/// and the manifest beside it, are never taken for the claimed file.
fn still_claimed(raw: &Path, id: Option<&Identity>) -> io::Result<bool> {
    match std::fs::symlink_metadata(raw) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(fsutil::with_path(e, raw)),
        Ok(m) => Ok(id.is_none_or(|id| id.same_inode(&m))),
    }
}

/// Takes read access from others on a raw file (the capture host should have); a file the
/// dispatcher does not own keeps its mode, with a warning.
fn private(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    if meta.is_file() && mode & 0o007 != 0 {
        let set = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o007));
        if let Err(e) = set {
            tracing::warn!(path = %path.display(), "raw file readable by others: {e}");
        }
    }
}

/// Whether `dst` in the archive already is the raw file of identity `id` (for its manifest:
/// whether the archived trace beside it is: a manifest describes its trace).
fn archived_same(dst: &Path, is_manifest: bool, id: Option<&Identity>) -> io::Result<bool> {
    let Some(id) = id else {
        return Ok(false);
    };
    let trace = match is_manifest {
        true => dst.with_extension(""),
        false => dst.to_owned(),
    };
    Ok(digest_at(&trace)?.is_some_and(|d| d == id.digest))
}

/// Whether two published parts hold the same: manifests recording the same file made from the
/// same raw file, or data with the same digest.
fn same_content(a: &Path, b: &Path, is_manifest: bool) -> io::Result<bool> {
    if is_manifest {
        let key = |p: &Path| {
            read_manifest(p).map(|v| {
                let src = v.get("anonymization").and_then(|a| a.get("source_blake3"));
                (v.get("blake3").cloned(), src.cloned())
            })
        };
        return Ok(key(a).is_some() && key(a) == key(b));
    }
    Ok(digest_at(a)?.is_some() && digest_at(a)? == digest_at(b)?)
}

/// Creates `dir` if needed and checks it is a directory, not a link to one elsewhere.
fn real_dir(dir: &Path) -> io::Result<()> {
    fsutil::create_dir_mode(dir, 0o755)?;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| fsutil::with_path(e, dir))?;
    if meta.is_dir() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{}: {}, not a directory",
        dir.display(),
        fsutil::kind_of(&meta)
    )))
}
