//! File operations of the spool protocol that are atomic on NFS: O_EXCL create, link, rename
//! within a directory, and publication under a temporary name.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use lander_spool::error::with_path;
pub use lander_spool::publish::{
    is_temp_name, link_or_copy, move_no_replace, remove_if_exists, rename_checked, same_entry,
    same_inode, write_atomic, write_json_atomic, LinkOutcome, PendingFile,
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
        lander_spool::publish::fsync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(true)
}

/// Moves `src` to `dst` without ever replacing what is at `dst`, as
/// [`lander_spool::publish::move_no_replace`] does it (a rename that cannot replace, or a hard
/// link then an unlink; neither follows a symbolic link). A rerun after a crash between link
/// and unlink finds `dst` the same inode and finishes; `src` gone and `dst` there is a move
/// done before. A different entry at `dst` is `AlreadyExists` and nothing is changed: the
/// caller stops for that item and reports it.
pub fn move_once(src: &Path, dst: &Path) -> io::Result<()> {
    match move_no_replace(src, dst) {
        Ok(true) => Ok(()),
        Ok(false) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{}: exists and is not {} (nothing is written over)",
                dst.display(),
                src.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !exists(src) && exists(dst) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `path` names a directory entry of any kind (a dangling symbolic link too).
pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// What kind of entry a non-regular file is, for reasons and reports.
pub fn kind_of(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    match () {
        _ if t.is_file() => "a regular file",
        _ if t.is_symlink() => "a symbolic link",
        _ if t.is_dir() => "a directory",
        _ if t.is_fifo() => "a FIFO",
        _ if t.is_socket() => "a socket",
        _ if t.is_block_device() => "a block device",
        _ if t.is_char_device() => "a character device",
        _ => "not a regular file",
    }
}

/// Opens `path` for reading only if it is a regular file: `O_NOFOLLOW` (a symbolic link in
/// the last component fails), `O_NONBLOCK` (a FIFO does not block), and the type checked on the
/// open descriptor (`fstat`), so an entry swapped after any earlier check cannot slip in.
/// `Ok(Err(what))` names what else it is.
pub fn open_regular(path: &Path) -> io::Result<Result<(fs::File, fs::Metadata), String>> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Ok(Err("a symbolic link".into()))
        }
        Err(e) => return Err(with_path(e, path)),
    };
    let meta = file.metadata().map_err(|e| with_path(e, path))?;
    if !meta.is_file() {
        return Ok(Err(kind_of(&meta).into()));
    }
    Ok(Ok((file, meta)))
}

/// BLAKE3 of an open file from its start, hex.
pub fn digest_of(file: &fs::File) -> io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// The longest item name the spool takes: every name derived from it (its manifest's and reason
/// file's temporaries, `.<name>.json.<host>.<pid>.<n>.tmp`) must fit in 255 bytes.
pub fn max_name_len() -> usize {
    255usize.saturating_sub(56 + lander_spool::os::hostname().len())
}

/// Why a directory entry's name cannot be an item, if it cannot: too long for the names
/// derived from it, control characters, or not UTF-8.
pub fn bad_name(name: &std::ffi::OsStr) -> Option<String> {
    let Some(text) = name.to_str() else {
        return Some(format!("name {name:?} is not UTF-8"));
    };
    if text.len() > max_name_len() {
        return Some(format!(
            "name is {} bytes, longer than the {} the spool takes",
            text.len(),
            max_name_len()
        ));
    }
    if text.chars().any(char::is_control) {
        return Some(format!("name {text:?} holds control characters"));
    }
    None
}

/// Creates `dir` (and its parents) and gives the new directories `mode` (umask aside).
pub fn create_dir_mode(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new().recursive(true).mode(mode).create(dir) {
        Ok(()) => Ok(()),
        Err(e) => Err(with_path(e, dir)),
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

/// Temporaries in `dir` (`.<final>.<host>.<pid>.<n>.tmp`) whose writers are gone: on this host,
/// the process named does not run ([`crate::sys::running`]: a zombie nobody reaped has ended
/// too); from another host, untouched for longer than `foreign_age`. A missing directory has
/// none; NFS silly-renamed files are never taken (they go when their holder closes them).
pub fn abandoned_temporaries(dir: &Path, foreign_age: Duration) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for name in list_all(dir)? {
        let Some((_, host, pid)) = lander_spool::publish::parse_temp_name(&name) else {
            continue;
        };
        if is_nfs_silly(&name) {
            continue;
        }
        let path = dir.join(&name);
        let gone = match host == lander_spool::os::hostname() {
            true => !crate::sys::running(pid),
            false => older_than(&path, foreign_age),
        };
        if gone {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Whether the entry at `path` was last changed longer than `age` ago (a missing one is not).
fn older_than(path: &Path, age: Duration) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|a| a > age)
}

/// Whether `name` is an NFS client's silly-renamed file (`.nfsXXXX`: a file deleted while a
/// process still had it open; it goes when that process closes it).
pub fn is_nfs_silly(name: &str) -> bool {
    name.starts_with(".nfs")
}

/// Removes the directory tree `dir`. `Ok(false)` when it could not all go only because it still
/// holds NFS silly-renamed files: that is no error, and a later sweep removes the rest.
pub fn remove_tree(dir: &Path) -> io::Result<bool> {
    match fs::remove_dir(dir).or_else(|_| fs::remove_dir_all(dir)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if holds_only_silly_files(dir) => {
            tracing::info!("{}: left for later (open files on NFS): {e}", dir.display());
            Ok(false)
        }
        Err(e) => Err(with_path(e, dir)),
    }
}

/// Whether every file left under `dir` is an NFS silly-renamed file (and there is one).
fn holds_only_silly_files(dir: &Path) -> bool {
    let mut silly = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            return false;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                _ if is_nfs_silly(&name) => silly += 1,
                _ => return false,
            }
        }
    }
    silly > 0
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
    fn move_once_never_takes_a_symlink_for_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let (target, link) = (dir.path().join("t"), dir.path().join("l"));
        fs::write(&target, b"t").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = move_once(&link, &target).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"t");
    }

    #[test]
    fn move_once_finishes_an_interrupted_move_and_a_done_one() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"a").unwrap();
        fs::hard_link(&a, &b).unwrap();
        move_once(&a, &b).unwrap();
        assert!(!exists(&a));
        move_once(&a, &b).unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"a");
        assert_eq!(
            move_once(&a, &dir.path().join("c")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn move_once_moves_a_directory_but_not_onto_one() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        let err = move_once(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        move_once(&a, &c).unwrap();
        assert!(c.is_dir() && !exists(&a));
    }

    /// A writer killed mid-write whose parent died first is reparented to init; an init that
    /// reaps nothing (a container's) leaves it a zombie for good, and `/proc/<pid>` stays.
    /// Its temporary was taken for a live writer's and never swept.
    #[test]
    fn a_temporary_of_a_zombie_writer_is_abandoned_one_of_a_live_writer_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while crate::sys::running(pid) {
            assert!(std::time::Instant::now() < deadline, "{pid} did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "a zombie");
        let host = lander_spool::os::hostname();
        let zombie = dir.path().join(format!(".r.json.{host}.{pid}.0.tmp"));
        let live = dir
            .path()
            .join(format!(".b.json.{host}.{}.3.tmp", std::process::id()));
        let foreign = dir.path().join(".c.json.elsewhere.1.0.tmp");
        for p in [&zombie, &live, &foreign] {
            fs::write(p, b"{").unwrap();
        }
        fs::write(dir.path().join(".nfs0000123"), b"").unwrap();
        let found = abandoned_temporaries(dir.path(), Duration::from_secs(60)).unwrap();
        child.wait().unwrap();
        assert_eq!(found, vec![zombie.clone()]);
        let old = std::time::SystemTime::now() - Duration::from_secs(120);
        fs::File::options()
            .write(true)
            .open(&foreign)
            .and_then(|f| f.set_modified(old))
            .unwrap();
        let found = abandoned_temporaries(dir.path(), Duration::from_secs(60)).unwrap();
        assert_eq!(found, vec![foreign, zombie]);
        let none = abandoned_temporaries(&dir.path().join("missing"), Duration::ZERO).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn temp_and_nfs_names_are_skipped() {
        assert!(is_temp_name(".nfs000123"));
        assert!(is_temp_name(".x.pcap.host.1.0.tmp"));
        assert!(!is_temp_name("site-20240101-000000-1.pcap"));
    }

    #[test]
    fn a_tree_held_by_an_nfs_silly_file_is_left_for_later_and_goes_then() {
        // An immutable file stands in for the `.nfsXXXX` file an NFS client will not unlink
        // while it is open (no kernel NFS here); ext4 and root are enough for chattr.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("work/job1");
        fs::create_dir_all(dir.join("sub")).unwrap();
        let silly = dir.join("sub/.nfs000000000123");
        fs::write(&silly, b"x").unwrap();
        let chattr = |flag: &str, file: &Path| {
            let st = std::process::Command::new("chattr")
                .arg(flag)
                .arg(file)
                .status();
            assert!(
                st.is_ok_and(|s| s.success()),
                "chattr {flag} (e2fsprogs) on {file:?}"
            );
        };
        chattr("+i", &silly);
        fs::write(dir.join("other"), b"y").unwrap();
        assert!(!remove_tree(&dir).unwrap(), "left for later, no error");
        assert!(silly.exists() && !dir.join("other").exists());
        let stuck = dir.join("stuck");
        fs::write(&stuck, b"z").unwrap();
        chattr("+i", &stuck);
        let err = remove_tree(&dir);
        chattr("-i", &stuck);
        assert!(err.is_err(), "another file that stays is an error");
        chattr("-i", &silly);
        assert!(remove_tree(&dir).unwrap());
        assert!(!dir.exists());
        assert!(remove_tree(&dir).unwrap(), "gone already");
    }
}
