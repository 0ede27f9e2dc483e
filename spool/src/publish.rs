//! Safe publication: a file appears under its final name only when it is complete.
//!
//! Write under a temporary name in the same directory (dot-prefixed, unique per host, process
//! and counter), fsync when durability is asked for, rename into place, fsync the directory.
//! Only operations that are atomic on NFS are relied on: rename within one directory, link,
//! and `O_EXCL` create. After an error from link or rename the outcome is checked with `stat`
//! (a retransmitted NFS request can report failure for an operation that did happen).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{with_path, with_paths};
use crate::os::hostname;
use crate::perms::Perms;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Suffix of every temporary name.
pub const TEMP_SUFFIX: &str = ".tmp";

/// A file being written under a temporary name, published by [`PendingFile::commit`].
///
/// Dropping it without committing removes the temporary file, unless it is to be kept (see
/// [`PendingFile::keep_when_dropped`]).
#[derive(Debug)]
pub struct PendingFile {
    /// The open temporary file.
    pub file: File,
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl PendingFile {
    /// Creates a temporary file beside `dest` with `O_EXCL` (mode 0644).
    pub fn create(dest: &Path) -> io::Result<PendingFile> {
        PendingFile::create_with_mode(dest, 0o644)
    }

    /// As [`PendingFile::create`], with the given permission bits.
    pub fn create_with_mode(dest: &Path, mode: u32) -> io::Result<PendingFile> {
        let tmp = temp_path_for(dest)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| with_path(e, &tmp))?;
        Ok(PendingFile {
            file,
            tmp,
            dest: dest.to_owned(),
            done: false,
        })
    }

    /// As [`PendingFile::create`], with exactly the mode and group of `perms` (set on the open
    /// file, so the umask neither widens nor narrows them).
    pub fn create_with_perms(dest: &Path, perms: &Perms) -> io::Result<PendingFile> {
        let pending = PendingFile::create_with_mode(dest, perms.mode & 0o600)?;
        perms
            .apply(&pending.file)
            .map_err(|e| with_path(e, &pending.tmp))?;
        Ok(pending)
    }

    /// The temporary path being written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// The final path the file will have.
    pub fn dest_path(&self) -> &Path {
        &self.dest
    }

    /// Publishes the file: fsync (if asked), rename over the final name, fsync the directory.
    pub fn commit(mut self, fsync: bool) -> io::Result<PathBuf> {
        self.file.flush()?;
        if fsync {
            self.file.sync_all().map_err(|e| with_path(e, &self.tmp))?;
        }
        rename_checked(&self.tmp, &self.dest)?;
        self.done = true;
        if fsync {
            fsync_dir(parent_of(&self.dest))?;
        }
        Ok(self.dest.clone())
    }

    /// Publishes the file under its final name only if nothing has that name: `Ok(false)`
    /// leaves whatever is there untouched and keeps the file pending, to be published under
    /// another name (see [`PendingFile::retarget`]). fsync (if asked) of the file before and of
    /// the directory after.
    pub fn commit_new(&mut self, fsync: bool) -> io::Result<bool> {
        self.file.flush()?;
        if fsync {
            self.file.sync_all().map_err(|e| with_path(e, &self.tmp))?;
        }
        if !move_no_replace(&self.tmp, &self.dest)? {
            return Ok(false);
        }
        self.done = true;
        if fsync {
            fsync_dir(parent_of(&self.dest))?;
        }
        Ok(true)
    }

    /// Changes the final name the file will get (in the same directory).
    pub fn retarget(&mut self, dest: &Path) {
        self.dest = parent_of(&self.dest).join(dest.file_name().unwrap_or_default());
    }

    /// From now on, dropping the file without committing or aborting it leaves it where it is,
    /// for the next start to recover: data written is never removed by an error path.
    pub fn keep_when_dropped(&mut self) {
        self.done = true;
    }

    /// Leaves the temporary file where it is, for the next start to recover (a complete file
    /// that could not be published); returns its path.
    pub fn keep(mut self) -> PathBuf {
        self.done = true;
        self.tmp.clone()
    }

    /// Gives up: removes the temporary file.
    pub fn abort(mut self) -> io::Result<()> {
        self.done = true;
        remove_if_exists(&self.tmp)
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `dest` through a temporary file and a rename.
pub fn write_atomic(dest: &Path, bytes: &[u8], fsync: bool) -> io::Result<()> {
    let mut pending = PendingFile::create(dest)?;
    pending
        .file
        .write_all(bytes)
        .map_err(|e| with_path(e, pending.tmp_path()))?;
    pending.commit(fsync).map(drop)
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize>(
    dest: &Path,
    value: &T,
    fsync: bool,
) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(dest, &bytes, fsync)
}

/// fsyncs a directory, so that renames and links in it are durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| with_path(e, dir))
}

/// Whether a directory entry is not a finished file: dot files (our temporaries, editors'
/// files) and the `.nfsXXXX` files NFS leaves for deleted open files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(TEMP_SUFFIX)
}

/// A temporary file left in a directory by a writer that did not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// Path of the temporary file.
    pub path: PathBuf,
    /// The final name it was meant to get.
    pub final_name: String,
    /// Host that wrote it.
    pub host: String,
    /// Process that wrote it.
    pub pid: u32,
}

impl Leftover {
    /// Whether the writer may still be running: same host and its process is alive.
    /// A writer on another host is judged by age instead (see [`leftovers`]).
    pub fn writer_alive(&self) -> bool {
        self.host == hostname() && process_alive(self.pid)
    }
}

/// Parses a temporary name `.<final>.<host>.<pid>.<n>.tmp`.
pub fn parse_temp_name(name: &str) -> Option<(String, String, u32)> {
    let inner = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let mut parts = inner.rsplitn(4, '.');
    let _counter: u64 = parts.next()?.parse().ok()?;
    let pid: u32 = parts.next()?.parse().ok()?;
    let host = parts.next()?.to_string();
    let final_name = parts.next()?.to_string();
    (!final_name.is_empty()).then_some((final_name, host, pid))
}

/// Lists the temporary files in `dir` whose writers are gone: on this host, their process
/// is dead; from other hosts, untouched for longer than `foreign_age`.
pub fn leftovers(dir: &Path, foreign_age: std::time::Duration) -> io::Result<Vec<Leftover>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| with_path(e, dir))? {
        let entry = entry?;
        let name = entry.file_name();
        let Some((final_name, host, pid)) = name.to_str().and_then(parse_temp_name) else {
            continue;
        };
        let left = Leftover {
            path: entry.path(),
            final_name,
            host,
            pid,
        };
        if is_abandoned(&left, &entry, foreign_age) {
            found.push(left);
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn is_abandoned(left: &Leftover, entry: &fs::DirEntry, foreign_age: std::time::Duration) -> bool {
    if left.host == hostname() {
        return !process_alive(left.pid);
    }
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > foreign_age)
}

/// Whether a process with this pid runs on this host. A zombie (ended, not yet reaped:
/// orphans in a container whose init reaps nothing stay so for good) does not: it can write
/// nothing more, so what it left is abandoned. Where its state cannot be read, a process
/// that exists counts as running.
pub fn process_alive(pid: u32) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(stat) = fs::read_to_string(proc_dir.join("stat")) else {
        return proc_dir.exists();
    };
    // The command name (field 2) is in parentheses and may hold spaces: the state follows
    // the last ')'.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_ascii_whitespace().next());
    !matches!(state, Some("Z" | "X"))
}

/// What [`link_or_copy`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    /// A new hard link was made.
    Linked,
    /// `dst` already was a link to the same inode: nothing to do.
    AlreadyLinked,
    /// `src` and `dst` are on different filesystems: copied through a temporary and renamed.
    Copied,
}

/// Hard-links `src` to `dst`. An existing link to the same inode counts as done; across
/// filesystems, copies through a temporary name and renames. An existing different file at
/// `dst` is an error (`AlreadyExists`).
pub fn link_or_copy(src: &Path, dst: &Path) -> io::Result<LinkOutcome> {
    match fs::hard_link(src, dst) {
        Ok(()) => Ok(LinkOutcome::Linked),
        Err(e) if same_inode(src, dst) => {
            let _ = e;
            Ok(LinkOutcome::AlreadyLinked)
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => copy_atomic(src, dst),
        Err(e) => Err(with_paths(e, "link", src, dst)),
    }
}

fn copy_atomic(src: &Path, dst: &Path) -> io::Result<LinkOutcome> {
    let mut pending = PendingFile::create(dst)?;
    let mut input = File::open(src).map_err(|e| with_path(e, src))?;
    io::copy(&mut input, &mut pending.file)?;
    pending.commit(false)?;
    Ok(LinkOutcome::Copied)
}

/// Whether two paths name the same inode.
pub fn same_inode(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Whether two paths are the same directory entry's inode, without following links.
pub fn same_entry(a: &Path, b: &Path) -> bool {
    match (fs::symlink_metadata(a), fs::symlink_metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Renames `from` to `to`; after an error, checks with stat whether it happened anyway.
pub fn rename_checked(from: &Path, to: &Path) -> io::Result<()> {
    let before = fs::metadata(from).ok().map(|m| (m.dev(), m.ino()));
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) => {
            let after = fs::metadata(to).ok().map(|m| (m.dev(), m.ino()));
            if before.is_some() && before == after && !from.exists() {
                return Ok(());
            }
            Err(with_paths(e, "rename", from, to))
        }
    }
}

/// Moves `src` to `dst` only if nothing is at `dst`, never replacing anything: `Ok(false)`
/// when something is there (both left untouched).
///
/// A rename with `RENAME_NOREPLACE` where the filesystem has it; elsewhere (NFS) a hard link,
/// which fails on an existing name atomically, then the removal of `src`. A crash between
/// the two leaves `src` as a second link of `dst` (`st_nlink` 2): recovery can tell it was
/// published. An earlier move interrupted that way (`dst` already `src`'s inode) is
/// finished. No step follows a symbolic link: a link is moved as itself and never taken for
/// the file it points to. A directory is renamed (after a check where the filesystem cannot
/// refuse to replace).
pub fn move_no_replace(src: &Path, dst: &Path) -> io::Result<bool> {
    let moved = |e: io::Error| with_paths(e, "move", src, dst);
    match crate::os::rename_noreplace(src, dst).map_err(moved)? {
        crate::os::NoReplace::Done => return Ok(true),
        crate::os::NoReplace::Exists if !same_entry(src, dst) => return Ok(false),
        _ => {}
    }
    if fs::symlink_metadata(src).is_ok_and(|m| m.is_dir()) {
        // A directory cannot be linked: where the filesystem cannot rename without replacing,
        // a rename after a check (a directory is only moved to a fresh, unique name).
        if fs::symlink_metadata(dst).is_ok() {
            return Ok(false);
        }
        return fs::rename(src, dst).map(|()| true).map_err(moved);
    }
    if !link_no_replace(src, dst).map_err(moved)? {
        return Ok(false);
    }
    remove_if_exists(src)?;
    Ok(true)
}

/// Hard-links `src` at `dst` only if nothing is at `dst`: `Ok(false)` when something other
/// than `src` is there. A retransmitted NFS link that reports failure although it happened
/// counts as done (stat decides, without following links).
pub fn link_no_replace(src: &Path, dst: &Path) -> io::Result<bool> {
    match fs::hard_link(src, dst) {
        Ok(()) => Ok(true),
        Err(_) if same_entry(src, dst) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a file; a file already gone is not an error.
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(with_path(e, path)),
        _ => Ok(()),
    }
}

fn temp_path_for(dest: &Path) -> io::Result<PathBuf> {
    let name = dest.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file name", dest.display()),
        )
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(
        ".{name}.{}.{}.{n}{TEMP_SUFFIX}",
        hostname(),
        std::process::id()
    );
    Ok(parent_of(dest).join(tmp))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_not_alive_a_running_process_is() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(process_alive(sleeper.id()));
        let mut ended = std::process::Command::new("true").spawn().unwrap();
        // not reaped yet: a zombie once it has ended
        let stat = format!("/proc/{}/stat", ended.id());
        let zombie = (0..1000).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            std::fs::read_to_string(&stat).is_ok_and(|s| s.contains(") Z "))
        });
        assert!(zombie, "the child became a zombie");
        assert!(!process_alive(ended.id()));
        ended.wait().unwrap();
        assert!(!process_alive(ended.id()));
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }

    #[test]
    fn pending_file_is_invisible_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.pcap");
        let mut p = PendingFile::create(&dest).unwrap();
        p.file.write_all(b"hello").unwrap();
        assert!(!dest.exists());
        let tmp_name = p
            .tmp_path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(is_temp_name(&tmp_name));
        assert_eq!(parse_temp_name(&tmp_name).unwrap().0, "a.pcap");
        p.commit(true).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"hello");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_pending_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        drop(PendingFile::create(&dir.path().join("b")).unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn temp_names_parse_with_dots_in_the_final_name() {
        let (name, host, pid) = parse_temp_name(".x-1.pcap.json.host-a.123.7.tmp").unwrap();
        assert_eq!(
            (name.as_str(), host.as_str(), pid),
            ("x-1.pcap.json", "host-a", 123)
        );
        assert!(parse_temp_name(".nfs000123").is_none());
        assert!(parse_temp_name("x.pcap").is_none());
    }

    #[test]
    fn leftovers_of_dead_local_writers_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = format!(".f.pcap.{}.{}.0.tmp", hostname(), u32::MAX - 1);
        let live = format!(".g.pcap.{}.{}.0.tmp", hostname(), std::process::id());
        fs::write(dir.path().join(&dead), b"x").unwrap();
        fs::write(dir.path().join(&live), b"x").unwrap();
        let left = leftovers(dir.path(), std::time::Duration::from_secs(3600)).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].final_name, "f.pcap");
    }

    #[test]
    fn link_twice_is_done_once() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"data").unwrap();
        assert_eq!(link_or_copy(&a, &b).unwrap(), LinkOutcome::Linked);
        assert_eq!(link_or_copy(&a, &b).unwrap(), LinkOutcome::AlreadyLinked);
        fs::write(dir.path().join("c"), b"other").unwrap();
        let err = link_or_copy(&dir.path().join("c"), &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn commit_new_never_replaces_and_can_take_another_name() {
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("x-1.pcap");
        fs::write(&taken, b"theirs").unwrap();
        let mut p = PendingFile::create(&taken).unwrap();
        p.file.write_all(b"ours").unwrap();
        assert!(!p.commit_new(false).unwrap());
        assert_eq!(fs::read(&taken).unwrap(), b"theirs");
        p.retarget(&dir.path().join("x-2.pcap"));
        assert!(p.commit_new(true).unwrap());
        drop(p);
        assert_eq!(fs::read(dir.path().join("x-2.pcap")).unwrap(), b"ours");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporary left"
        );
    }

    #[test]
    fn move_no_replace_leaves_an_existing_file_and_finishes_an_interrupted_move() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        fs::write(&a, b"a").unwrap();
        fs::write(&b, b"b").unwrap();
        assert!(!move_no_replace(&a, &b).unwrap());
        assert_eq!(
            (fs::read(&a).unwrap(), fs::read(&b).unwrap()),
            (b"a".to_vec(), b"b".to_vec())
        );
        // a crash between link and unlink: both names, one inode
        fs::hard_link(&a, &c).unwrap();
        assert!(move_no_replace(&a, &c).unwrap());
        assert!(!a.exists());
        assert_eq!(fs::read(&c).unwrap(), b"a");
        assert!(link_no_replace(&c, &b).is_ok_and(|linked| !linked));
    }

    #[test]
    fn perms_are_exact_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.pcap");
        let perms = Perms {
            mode: 0o660,
            gid: None,
        };
        let mut p = PendingFile::create_with_perms(&dest, &perms).unwrap();
        assert!(p.commit_new(false).unwrap());
        let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o660);
    }

    #[test]
    fn write_atomic_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        write_json_atomic(&p, &serde_json::json!({"a": 1}), false).unwrap();
        write_atomic(&p, b"new", true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
    }
}
