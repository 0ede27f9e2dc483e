//! Sequence numbers that never repeat for a site.
//!
//! A trace file's name is `<site>-<date>-<time>-<seq>.<ext>`; the date and time come from the
//! packets (a replayed trace gives the same ones again), so the sequence number alone keeps
//! names apart. It continues from everything the spool knows about the site:
//!
//! - the names in the output directory (published files, manifests, temporaries);
//! - when the output directory is `<spool>/raw/<site>`, the names in `<spool>/archive/<site>`
//!   and `<spool>/scrubbed/<site>`, including names a dispatcher gave a suffix
//!   (`<site>-<date>-<time>-<seq><anything>`);
//! - the site's high-water mark, [`mark_path`]: a small file in the output directory holding
//!   the next free sequence number. It is raised (written atomically) *before* a file with a
//!   sequence number is published, so a crash can never let a number be used twice, and it
//!   survives every file of the site being moved or deleted.
//!
//! Anyone else who gives out names for the site (a dispatcher renaming a file that collides)
//! raises the same mark with [`raise_mark`] before publishing the new name.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::perms::Perms;
use crate::publish::PendingFile;

/// Start of the mark's file name; the site follows.
pub const MARK_PREFIX: &str = ".lander-seq-";

/// The high-water mark of `site` in `dir` (the site's output directory, `<spool>/raw/<site>`).
pub fn mark_path(dir: &Path, site: &str) -> PathBuf {
    dir.join(format!("{MARK_PREFIX}{site}"))
}

/// Whether a directory entry is a high-water mark (never a leftover to clean up).
pub fn is_mark_name(name: &str) -> bool {
    name.starts_with(MARK_PREFIX)
}

/// Reading or raising the sequence of a site failed.
#[derive(Debug, thiserror::Error)]
pub enum SeqError {
    /// A directory or the mark could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The mark holds something else than a mark.
    #[error(
        "{path}: not a sequence mark ({what}); it must hold {{\"site\": ..., \"next_seq\": N}}"
    )]
    BadMark {
        /// The mark.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SeqError + '_ {
    move |source| SeqError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Mark {
    site: String,
    next_seq: u64,
}

/// The next free sequence number the mark of `site` in `dir` records (0 without a mark).
pub fn read_mark(dir: &Path, site: &str) -> Result<u64, SeqError> {
    let path = mark_path(dir, site);
    let bad = |what: String| SeqError::BadMark {
        path: path.clone(),
        what,
    };
    let bytes = match read_regular(&path) {
        Ok(Some(b)) => b,
        Ok(None) => return Err(bad("not a regular file".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_at(&path)(e)),
    };
    let mark: Mark = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("line {}, column {}: {e}", e.line(), e.column())))?;
    if mark.site != site {
        return Err(bad(format!("it is the mark of site {:?}", mark.site)));
    }
    Ok(mark.next_seq)
}

/// The content of a regular file, never following a symbolic link; `None` for anything else.
fn read_regular(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(4096).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Raises the mark of `site` in `dir` to at least `next` (the next free sequence number),
/// atomically (temporary file and rename), never lowering it.
///
/// Two writers raising the mark at once could leave the lower value; the mark is read back
/// after the rename and written again until it holds at least `next`.
pub fn raise_mark(
    dir: &Path,
    site: &str,
    next: u64,
    perms: &Perms,
    fsync: bool,
) -> Result<(), SeqError> {
    let path = mark_path(dir, site);
    for _ in 0..16 {
        if read_mark(dir, site)? >= next {
            return Ok(());
        }
        let mut json = serde_json::to_vec(&Mark {
            site: site.to_string(),
            next_seq: next,
        })
        .map_err(|e| io_at(&path)(io::Error::other(e)))?;
        json.push(b'\n');
        let mut pending = PendingFile::create_with_perms(&path, perms).map_err(io_at(&path))?;
        pending.file.write_all(&json).map_err(io_at(&path))?;
        pending.commit(fsync).map_err(io_at(&path))?;
    }
    Err(io_at(&path)(io::Error::other(
        "other writers keep lowering the mark",
    )))
}

/// The sequence number in a trace file name of `site`: `<site>-<YYYYMMDD>-<HHMMSS>-<seq>`
/// followed by anything that does not start with a digit (an extension, a suffix a
/// dispatcher added, `.json`). A leading dot (a temporary name) is allowed.
pub fn seq_in_name(name: &str, site: &str) -> Option<u64> {
    let name = name.strip_prefix('.').unwrap_or(name);
    let rest = name.strip_prefix(site)?.strip_prefix('-')?.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        rest.get(r)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    if !digits(0..8) || rest.get(8) != Some(&b'-') || !digits(9..15) || rest.get(15) != Some(&b'-')
    {
        return None;
    }
    let tail = &rest[16..];
    let n = tail.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&tail[..n]).ok()?.parse().ok()
}

/// The directories whose names count for `site`: `out_dir`, and when it is
/// `<spool>/raw/<name>`, also `<spool>/archive/<name>` and `<spool>/scrubbed/<name>`.
pub fn known_dirs(out_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![out_dir.to_owned()];
    let abs = std::path::absolute(out_dir).unwrap_or_else(|_| out_dir.to_owned());
    let (Some(name), Some(raw)) = (abs.file_name(), abs.parent()) else {
        return dirs;
    };
    if raw.file_name().is_some_and(|n| n == "raw") {
        if let Some(spool) = raw.parent() {
            dirs.push(spool.join("archive").join(name));
            dirs.push(spool.join("scrubbed").join(name));
        }
    }
    dirs
}

/// One past the largest sequence number of `site` anywhere in [`known_dirs`], or the mark if
/// that is higher: the first number a new capture may use.
pub fn next_seq(out_dir: &Path, site: &str) -> Result<u64, SeqError> {
    let mut next = read_mark(out_dir, site)?;
    for dir in known_dirs(out_dir) {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_at(&dir)(e)),
        };
        for entry in entries {
            let name = entry.map_err(io_at(&dir))?.file_name();
            if let Some(seq) = name.to_str().and_then(|n| seq_in_name(n, site)) {
                next = next.max(seq.saturating_add(1));
            }
        }
    }
    Ok(next)
}

/// Gives out the sequence numbers of one capture run: cheaply ([`take`], one read of the
/// mark) to name a file, durably ([`reserve`], the mark raised) before the file exists.
///
/// [`take`]: SeqAllocator::take
/// [`reserve`]: SeqAllocator::reserve
#[derive(Debug)]
pub struct SeqAllocator {
    dir: PathBuf,
    site: String,
    perms: Perms,
    fsync: bool,
    next: Mutex<u64>,
    /// The mark on disk is at least this.
    marked: Mutex<u64>,
}

impl SeqAllocator {
    /// An allocator continuing from [`next_seq`].
    pub fn open(
        dir: &Path,
        site: &str,
        perms: Perms,
        fsync: bool,
    ) -> Result<SeqAllocator, SeqError> {
        let next = next_seq(dir, site)?;
        Ok(SeqAllocator {
            dir: dir.to_owned(),
            site: site.to_string(),
            perms,
            fsync,
            next: Mutex::new(next),
            marked: Mutex::new(read_mark(dir, site)?),
        })
    }

    /// The site.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// The next number, never given out before by this allocator nor below the mark (which
    /// another writer for the site may have raised meanwhile); not yet durable.
    pub fn take(&self) -> u64 {
        let mark = read_mark(&self.dir, &self.site).unwrap_or(0);
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let seq = (*next).max(mark);
        *next = seq + 1;
        seq
    }

    /// Makes `seq` durable: raises the mark past it if it is not already.
    pub fn reserve(&self, seq: u64) -> Result<(), SeqError> {
        let mut marked = self.marked.lock().unwrap_or_else(|p| p.into_inner());
        if *marked > seq {
            return Ok(());
        }
        raise_mark(&self.dir, &self.site, seq + 1, &self.perms, self.fsync)?;
        *marked = seq + 1;
        Ok(())
    }

    /// A new number, durable before it is returned.
    pub fn take_reserved(&self) -> Result<u64, SeqError> {
        let seq = self.take();
        self.reserve(seq)?;
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_is_read_from_every_shape_of_name() {
        let s = |n| seq_in_name(n, "isi");
        assert_eq!(s("isi-20240101-000000-000007.pcap"), Some(7));
        assert_eq!(s("isi-20240101-000000-000007.pcap.json"), Some(7));
        assert_eq!(
            s(".isi-20240101-000000-000012.pcap.host.12.0.tmp"),
            Some(12)
        );
        assert_eq!(s("isi-20240101-000000-000007-dup1.pcap"), Some(7));
        assert_eq!(s("isi-20240101-000000-123"), Some(123));
        assert_eq!(s("isi-b-20240101-000000-000007.pcap"), None);
        assert_eq!(s("isi-2024010-000000-000007.pcap"), None);
        assert_eq!(s("isi-20240101-000000-.pcap"), None);
        assert_eq!(s("other-20240101-000000-000007.pcap"), None);
        assert_eq!(
            seq_in_name("isi-b-20240101-000000-000003.erf", "isi-b"),
            Some(3)
        );
    }

    #[test]
    fn the_spool_is_searched_when_the_output_is_a_raw_site_directory() {
        let spool = tempfile::tempdir().unwrap();
        let raw = spool.path().join("raw/isi");
        for (dir, name) in [
            ("raw/isi", "isi-20240101-000000-000002.pcap"),
            ("archive/isi", "isi-20240101-000000-000009.pcap"),
            ("scrubbed/isi", "isi-20240101-000000-000011-1.pcap"),
            ("scrubbed/other", "isi-20240101-000000-000050.pcap"),
        ] {
            fs::create_dir_all(spool.path().join(dir)).unwrap();
            fs::write(spool.path().join(dir).join(name), b"").unwrap();
        }
        assert_eq!(next_seq(&raw, "isi").unwrap(), 12);
        // elsewhere only the directory itself counts
        let plain = spool.path().join("scrubbed/other");
        assert_eq!(next_seq(&plain, "isi").unwrap(), 51);
    }

    #[test]
    fn the_mark_outlives_every_file_and_never_goes_down() {
        let dir = tempfile::tempdir().unwrap();
        let perms = Perms::RAW;
        assert_eq!(read_mark(dir.path(), "s").unwrap(), 0);
        raise_mark(dir.path(), "s", 40, &perms, true).unwrap();
        raise_mark(dir.path(), "s", 7, &perms, false).unwrap();
        assert_eq!(read_mark(dir.path(), "s").unwrap(), 40);
        assert_eq!(next_seq(dir.path(), "s").unwrap(), 40);
        assert_eq!(next_seq(dir.path(), "t").unwrap(), 0, "marks are per site");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [".lander-seq-s"]);
        assert!(is_mark_name(&names[0]));
    }

    #[test]
    fn a_bad_mark_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(mark_path(dir.path(), "s"), b"12").unwrap();
        let err = next_seq(dir.path(), "s").unwrap_err().to_string();
        assert!(
            err.contains(".lander-seq-s") && err.contains("not a sequence mark"),
            "{err}"
        );
        fs::write(
            mark_path(dir.path(), "s"),
            br#"{"site": "t", "next_seq": 3}"#,
        )
        .unwrap();
        let err = read_mark(dir.path(), "s").unwrap_err().to_string();
        assert!(err.contains("site \"t\""), "{err}");
    }

    #[test]
    fn a_mark_that_is_a_link_or_a_fifo_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        fs::write(&secret, br#"{"site": "s", "next_seq": 3}"#).unwrap();
        std::os::unix::fs::symlink(&secret, mark_path(dir.path(), "s")).unwrap();
        let err = read_mark(dir.path(), "s").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let fifo = mark_path(dir.path(), "f");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let err = read_mark(dir.path(), "f").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        // Raising replaces the link itself, never what it points to.
        raise_mark(dir.path(), "s", 9, &Perms::RAW, false).unwrap_err();
        assert_eq!(
            fs::read(&secret).unwrap(),
            br#"{"site": "s", "next_seq": 3}"#
        );
    }

    #[test]
    fn the_allocator_reserves_before_it_hands_out() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("s-20240101-000000-000004.pcap"), b"").unwrap();
        let a = SeqAllocator::open(dir.path(), "s", Perms::RAW, false).unwrap();
        assert_eq!(a.take(), 5);
        assert_eq!(
            read_mark(dir.path(), "s").unwrap(),
            0,
            "take alone is not durable"
        );
        assert_eq!(a.take_reserved().unwrap(), 6);
        assert_eq!(read_mark(dir.path(), "s").unwrap(), 7);
        a.reserve(5).unwrap();
        assert_eq!(read_mark(dir.path(), "s").unwrap(), 7);
        let again = SeqAllocator::open(dir.path(), "s", Perms::RAW, false).unwrap();
        assert_eq!(again.take(), 7);
        // Someone else gave out numbers for the site meanwhile.
        raise_mark(dir.path(), "s", 20, &Perms::RAW, false).unwrap();
        assert_eq!(a.take_reserved().unwrap(), 20);
        assert_eq!(again.take(), 21);
    }
}
