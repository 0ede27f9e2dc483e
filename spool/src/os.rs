//! The few system calls publication needs that the standard library lacks: a rename that never
//! replaces (`renameat2` with `RENAME_NOREPLACE`), user and group lookup by name, the host name,
//! and dropping a file's pages from the page cache.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What [`rename_noreplace`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoReplace {
    /// Renamed.
    Done,
    /// Something is already at the destination; nothing changed.
    Exists,
    /// The filesystem cannot do it (NFS, old kernels): the caller falls back to link + unlink.
    Unsupported,
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: the path holds a NUL byte", path.display()),
        )
    })
}

/// Renames `from` to `to` only if nothing is at `to`, atomically (`renameat2`,
/// `RENAME_NOREPLACE`).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<NoReplace> {
    let (f, t) = (c_path(from)?, c_path(to)?);
    // SAFETY: both pointers are NUL-terminated strings owned by `f` and `t`, alive across the
    // call; AT_FDCWD makes them relative to the working directory as `rename` would.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(NoReplace::Done);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) => Ok(NoReplace::Exists),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            Ok(NoReplace::Unsupported)
        }
        _ => Err(e),
    }
}

/// This machine's short host name (up to the first dot), looked up once; `localhost` when it
/// cannot be found. It names the writer in temporary names, manifests, claims and run records.
pub fn hostname() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(lookup_hostname)
}

fn lookup_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is a writable buffer of the length passed; gethostname writes at most that
    // many bytes and we stop at the first NUL (or the end) below.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]);
    name.split('.').next().unwrap_or("localhost").to_string()
}

/// The group id of `group`: a number is taken as it is, a name is looked up (NSS, so LDAP
/// groups work too).
pub fn group_id(group: &str) -> io::Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let name = CString::new(group).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "a group name holds a NUL byte")
    })?;
    let gid = nss_lookup(|buf| {
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `grp`, `buf` (with its true length) and `found`
        // are valid and writable for the call; getgrnam_r writes only within them.
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        (rc, (!found.is_null()).then_some(grp.gr_gid))
    })?;
    gid.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no group named {group:?}")))
}

/// An account of the user database (NSS: local files, LDAP, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// Its name.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Its home directory.
    pub home: String,
}

/// Looks the account `name` up (`getpwnam_r`); `None` when there is none.
pub fn user_by_name(name: &str) -> io::Result<Option<UserEntry>> {
    let c_name = CString::new(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "an account name holds a NUL byte",
        )
    })?;
    nss_lookup(|buf| {
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `c_name` is NUL-terminated; `pwd`, `buf` (with its true length) and `found`
        // are valid and writable for the call; getpwnam_r writes only within them.
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc != 0 || found.is_null() {
            return (rc, None);
        }
        let home = match pwd.pw_dir.is_null() {
            true => String::new(),
            // SAFETY: on success `pw_dir` points to a NUL-terminated string inside `buf`,
            // alive here.
            false => unsafe { CStr::from_ptr(pwd.pw_dir) }
                .to_string_lossy()
                .into_owned(),
        };
        let entry = UserEntry {
            name: name.to_owned(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home,
        };
        (0, Some(entry))
    })
}

/// The name of group `gid`, if it has one (for messages).
pub fn group_name(gid: u32) -> Option<String> {
    let name = nss_lookup(|buf| {
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: `grp`, `buf` (with its true length) and `found` are valid and writable for
        // the call; getgrgid_r writes only within them.
        let rc = unsafe {
            libc::getgrgid_r(
                gid,
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc != 0 || found.is_null() || grp.gr_name.is_null() {
            return (rc, None);
        }
        // SAFETY: on success `gr_name` points to a NUL-terminated string inside `buf`, alive
        // here.
        let name = unsafe { CStr::from_ptr(grp.gr_name) };
        (0, Some(name.to_string_lossy().into_owned()))
    });
    name.ok().flatten()
}

/// Runs a reentrant NSS lookup (`get*_r`) with a buffer that doubles, up to 1 MiB, while the
/// lookup answers `ERANGE`. `lookup` returns its error code and what it found, read out of
/// the buffer before the buffer goes.
fn nss_lookup<T>(
    mut lookup: impl FnMut(&mut [u8]) -> (libc::c_int, Option<T>),
) -> io::Result<Option<T>> {
    let mut buf = vec![0u8; 4096];
    loop {
        match lookup(&mut buf) {
            (libc::ERANGE, _) if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            (0, found) => return Ok(found),
            (rc, _) => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

/// Allocates the `len` bytes of `file` from `offset` (`fallocate`, mode 0: the file grows to
/// cover them, and they read as zeros until written). Never emulated by writing zeros: where
/// the file system cannot allocate ahead (NFSv3, ...), the error says so (`EOPNOTSUPP`).
pub fn preallocate(file: &std::fs::File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: a plain call on a descriptor `file` keeps open for its duration.
    match unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Writes `file` back and drops its pages from the page cache (`POSIX_FADV_DONTNEED`), so the
/// next read comes from the device, as the first read of a file written by another host or
/// another day does.
pub fn drop_cached(file: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    file.sync_data()?;
    // SAFETY: a plain call on a descriptor `file` keeps open for its duration.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    match rc {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Room allocated ahead reads as zeros past what was written and keeps what was; a pipe
    /// has no room to allocate.
    #[test]
    fn preallocating_grows_the_file_with_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"head").unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        preallocate(&file, 0, 3 << 20).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 3 << 20);
        assert!(&bytes[..4] == b"head" && bytes[4..].iter().all(|&b| b == 0));
        let (read, _write) = std::io::pipe().unwrap();
        let pipe = std::fs::File::from(std::os::fd::OwnedFd::from(read));
        assert!(preallocate(&pipe, 0, 1 << 20).is_err());
        assert!(preallocate(&file, u64::MAX, 1).is_err());
    }

    /// A file's pages are dropped with its bytes intact; a pipe, which has no pages to drop,
    /// is refused.
    #[test]
    fn dropping_cached_pages_keeps_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..3 << 20).map(|i: u32| (i * 7) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        drop_cached(&std::fs::File::open(&path).unwrap()).unwrap();
        assert!(std::fs::read(&path).unwrap() == bytes);
        let (read, _write) = std::io::pipe().unwrap();
        let pipe = std::fs::File::from(std::os::fd::OwnedFd::from(read));
        assert!(drop_cached(&pipe).is_err());
    }

    #[test]
    fn users_by_name() {
        let root = user_by_name("root").unwrap().unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(user_by_name("no-such-user-lander").unwrap().is_none());
        assert!(user_by_name("a\0b").is_err());
    }

    #[test]
    fn rename_noreplace_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        assert_eq!(rename_noreplace(&a, &b).unwrap(), NoReplace::Exists);
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
        assert_eq!(rename_noreplace(&a, &c).unwrap(), NoReplace::Done);
        assert!(!a.exists());
        assert_eq!(std::fs::read(&c).unwrap(), b"a");
    }

    #[test]
    fn groups_by_number_and_by_name() {
        assert_eq!(group_id("4242").unwrap(), 4242);
        assert_eq!(group_id("root").unwrap(), 0);
        assert_eq!(group_name(0).as_deref(), Some("root"));
        let err = group_id("no-such-group-lander").unwrap_err();
        assert!(err.to_string().contains("no-such-group-lander"), "{err}");
    }
}
