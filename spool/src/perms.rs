//! Who may read raw traces: their mode bits and group, set exactly on every file and on the
//! directory that holds them, whatever the umask.
//!
//! Raw traces hold unanonymized addresses and payloads, so they are never readable by others:
//! files 0640 and their directory 0750 by default, a mode with any bit for others is refused.
//! The group (the dispatcher's) is set with `fchown` on the open temporary file, before the
//! file gets its final name, so no reader ever sees it with the wrong owner or mode.

use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::{fchown, DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Mode bits and group for raw traces and their manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    /// Permission bits of files (0640 by default); directories get the same with `x` wherever
    /// `r` is set.
    pub mode: u32,
    /// Group of files and the output directory; `None` keeps the process's.
    pub gid: Option<u32>,
}

impl Default for Perms {
    fn default() -> Perms {
        Perms::RAW
    }
}

/// A mode that cannot be used for raw traces.
#[derive(Debug, thiserror::Error)]
#[error("mode {given:?}: {why}")]
pub struct ModeError {
    /// The mode as given.
    pub given: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl Perms {
    /// The default for raw traces: 0640, the process's group.
    pub const RAW: Perms = Perms {
        mode: 0o640,
        gid: None,
    };

    /// Parses an octal mode (`640`, `0640`, `0o640`) for raw traces: permission bits only,
    /// readable and writable by the owner, nothing for others.
    pub fn parse_mode(s: &str) -> Result<u32, ModeError> {
        let err = |why| ModeError {
            given: s.to_string(),
            why,
        };
        let digits = s.trim().trim_start_matches("0o");
        let mode = u32::from_str_radix(digits, 8).map_err(|_| err("not an octal number"))?;
        if mode & !0o777 != 0 {
            return Err(err("only permission bits (at most 0777) may be given"));
        }
        if mode & 0o600 != 0o600 {
            return Err(err("the owner must be able to read and write (0600)"));
        }
        if mode & 0o007 != 0 {
            return Err(err(
                "raw traces are never readable by others: no bit for others",
            ));
        }
        Ok(mode)
    }

    /// The mode of directories: the file mode with `x` wherever `r` is set (0640 -> 0750).
    pub fn dir_mode(&self) -> u32 {
        self.mode | ((self.mode & 0o444) >> 2)
    }

    /// Sets the group (if one is given) and then exactly the mode of an open file (a change
    /// of group can clear mode bits, so the mode comes last).
    pub fn apply(&self, file: &File) -> io::Result<()> {
        if let Some(gid) = self.gid {
            fchown(file, None, Some(gid))?;
        }
        file.set_permissions(Permissions::from_mode(self.mode))
    }

    /// Makes sure `dir` exists. Created, it gets exactly [`Perms::dir_mode`] and the group
    /// (its missing parents are created as usual, since they may hold other things: users'
    /// directories, scrubbed files). Existing, it is tightened to the directory mode when it
    /// lets others in, and given the group; a directory that cannot be changed (not ours) is
    /// left as it is with a warning: the files in it are protected by their own mode anyway.
    pub fn ensure_dir(&self, dir: &Path) -> io::Result<()> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| crate::error::with_path(e, parent))?;
        }
        let created = match fs::DirBuilder::new().mode(self.dir_mode()).create(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => false,
            Err(e) => return Err(crate::error::with_path(e, dir)),
        };
        if let Err(e) = self.fix_dir(dir, created) {
            if created {
                let group = self
                    .gid
                    .map_or(String::new(), |g| format!(" and group {g}"));
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "{}: cannot set mode {:o}{group}: {e}",
                        dir.display(),
                        self.dir_mode()
                    ),
                ));
            }
            tracing::warn!(
                "cannot set the mode or group of {} ({e}); its files are still created {:o}",
                dir.display(),
                self.mode
            );
        }
        Ok(())
    }

    fn fix_dir(&self, dir: &Path, created: bool) -> io::Result<()> {
        let meta = fs::metadata(dir)?;
        let mode = meta.mode() & 0o7777;
        let open_to_others = mode & 0o007 != 0;
        if created || open_to_others {
            // Keep what is special about an existing directory (setgid, sticky) but nothing
            // for others.
            let want = if created {
                self.dir_mode()
            } else {
                mode & !0o007
            };
            fs::set_permissions(dir, Permissions::from_mode(want))?;
        }
        match self.gid {
            Some(gid) if meta.gid() != gid => std::os::unix::fs::chown(dir, None, Some(gid)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_for_others_are_refused() {
        assert_eq!(Perms::parse_mode("0640").unwrap(), 0o640);
        assert_eq!(Perms::parse_mode("600").unwrap(), 0o600);
        assert_eq!(Perms::parse_mode("0o660").unwrap(), 0o660);
        for bad in ["0644", "0604", "0440", "1640", "rw-r-----", "99"] {
            assert!(Perms::parse_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn directories_get_x_where_files_get_r() {
        let dir_mode = |mode| Perms { mode, gid: None }.dir_mode();
        assert_eq!(dir_mode(0o640), 0o750);
        assert_eq!(dir_mode(0o600), 0o700);
        assert_eq!(dir_mode(0o660), 0o770);
    }

    #[test]
    fn a_created_directory_gets_exactly_the_mode_and_an_open_one_is_closed_to_others() {
        let tmp = tempfile::tempdir().unwrap();
        let new = tmp.path().join("a/b/raw");
        Perms::RAW.ensure_dir(&new).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&new), 0o750);
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, Permissions::from_mode(0o2775)).unwrap();
        Perms::RAW.ensure_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o2770);
    }
}
