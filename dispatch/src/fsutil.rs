//! File operations of the spool protocol that are atomic on NFS: O_EXCL create, link, rename
//! within a directory, and publication under a temporary name.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

pub use lander_capture::publish::{
    is_temp_name, link_or_copy, remove_if_exists, rename_checked, same_inode, with_path,
    write_atomic, write_json_atomic, LinkOutcome, PendingFile,
};

/// Publishes `bytes` at `path` only if nothing is there: `Ok(false)` if something was.
///
/// This is the claim primitive: of any number of processes, on any number of hosts, exactly
/// one gets `Ok(true)`. The content is written under a temporary name first and linked into
/// place (link fails if the name exists, atomically, also on NFS), so a claim is never seen
/// half-written.
pub fn create_excl(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let mut pending = PendingFile::create(path)?;
    pending.file.write_all(bytes)?;
    let tmp = pending.tmp_path().to_owned();
    let result = match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        // A retransmitted NFS link may report failure although it happened: stat decides.
        Err(_) if same_inode(&tmp, path) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(with_path(e, path)),
    };
    pending.abort()?;
    result
}

/// Creates `path` with `bytes` only if nothing is there (`O_EXCL`, no temporary name):
/// `Ok(false)` if something was. One file instead of a temporary, a link and an unlink; the
/// price is that a reader may see the file empty for a moment, so this serves only files whose
/// readers allow for that (job start markers). `fsync` syncs the file and its directory.
pub fn create_new(path: &Path, bytes: &[u8], fsync: bool) -> io::Result<bool> {
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(with_path(e, path)),
    };
    file.write_all(bytes).map_err(|e| with_path(e, path))?;
    if fsync {
        file.sync_all().map_err(|e| with_path(e, path))?;
        lander_capture::publish::fsync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(true)
}

/// Moves `src` to `dst`; when `src` is already gone and `dst` exists (a rerun), that is done.
pub fn move_once(src: &Path, dst: &Path) -> io::Result<()> {
    match rename_checked(src, dst) {
        Err(_) if !src.exists() && dst.exists() => Ok(()),
        other => other,
    }
}

/// Names of all entries of `dir`, temporaries included; a missing directory has none.
pub fn list_all(dir: &Path) -> io::Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(with_path(e, dir)),
    }
}

/// Names of the regular entries of `dir` that are not temporaries, unsorted. A missing
/// directory has no entries.
pub fn list_names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_temp_name(&name) || entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_excl_has_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("claim");
        assert!(create_excl(&p, b"a").unwrap());
        assert!(!create_excl(&p, b"b").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"a");
    }

    #[test]
    fn create_new_has_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        assert!(create_new(&p, b"a", false).unwrap());
        assert!(!create_new(&p, b"b", true).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"a");
    }

    #[test]
    fn write_atomic_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        write_atomic(&p, b"{}", true).unwrap();
        write_atomic(&p, b"{\"a\":1}", false).unwrap();
        assert_eq!(list_names(dir.path()).unwrap(), vec!["r.json".to_owned()]);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_and_nfs_names_are_skipped() {
        assert!(is_temp_name(".nfs000123"));
        assert!(is_temp_name(".x.pcap.host.1.0.tmp"));
        assert!(!is_temp_name("site-20240101-000000-1.pcap"));
    }
}
