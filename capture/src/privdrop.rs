//! Dropping root after the capture handle and the output directory are open, as tcpdump's
//! `-Z USER` does: the user's groups (`initgroups`), then its gid, then its uid; then a check
//! that root cannot be had back. Nothing a capture does after it (rotation opens files in the
//! output directory, never the interface) needs `CAP_NET_RAW`, so no capability is kept.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What could not be done.
#[derive(Debug, thiserror::Error)]
pub enum PrivDropError {
    /// No such user.
    #[error("--user {0:?}: no such user")]
    NoUser(String),
    /// The user database could not be read, or a call failed.
    #[error("--user {user:?}: {step}: {source}")]
    Call {
        /// The user asked for.
        user: String,
        /// Which call.
        step: &'static str,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The process is not root, so it has nothing to drop (and cannot switch users).
    #[error("--user {user:?}: only root can switch users (running as uid {uid})")]
    NotRoot {
        /// The user asked for.
        user: String,
        /// The uid the process runs as.
        uid: u32,
    },
    /// After the switch, root could be had back: refuse to go on.
    #[error("--user {0:?}: root privileges could be regained after the switch; stopping")]
    NotDropped(String),
}

/// A user to switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user's name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
}

impl Account {
    /// Looks `user` up (NSS, so LDAP users work too).
    pub fn lookup(user: &str) -> Result<Account, PrivDropError> {
        let entry = lander_spool::os::user_by_name(user).map_err(|source| PrivDropError::Call {
            user: user.to_string(),
            step: "getpwnam_r",
            source,
        })?;
        let entry = entry.ok_or_else(|| PrivDropError::NoUser(user.to_string()))?;
        Ok(Account {
            name: entry.name,
            uid: entry.uid,
            gid: entry.gid,
        })
    }

    /// Switches the whole process (every thread: glibc's set*id broadcast) to this user.
    /// Call it before any thread that must keep root is started, and after everything that
    /// needs root is open.
    pub fn switch_to(&self) -> Result<(), PrivDropError> {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(PrivDropError::NotRoot {
                user: self.name.clone(),
                uid: euid,
            });
        }
        let name = CString::new(self.name.as_str())
            .map_err(|_| PrivDropError::NoUser(self.name.clone()))?;
        let check = |rc: libc::c_int, step| match rc {
            0 => Ok(()),
            _ => Err(PrivDropError::Call {
                user: self.name.clone(),
                step,
                source: io::Error::last_os_error(),
            }),
        };
        // SAFETY: `name` is NUL-terminated and outlives the call.
        let rc = unsafe { libc::initgroups(name.as_ptr(), self.gid) };
        check(rc, "initgroups")?;
        // SAFETY: plain system calls on integers.
        check(unsafe { libc::setgid(self.gid) }, "setgid")?;
        // SAFETY: as above.
        check(unsafe { libc::setuid(self.uid) }, "setuid")?;
        // SAFETY: as above; this call must fail once root is gone.
        if self.uid != 0 && unsafe { libc::setuid(0) } == 0 {
            return Err(PrivDropError::NotDropped(self.name.clone()));
        }
        Ok(())
    }
}

/// True when the process (as it is now) may create files in `dir`.
pub fn can_write(dir: &Path) -> bool {
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is NUL-terminated and outlives the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_nobody_are_found_and_a_made_up_user_is_not() {
        assert_eq!(Account::lookup("root").unwrap().uid, 0);
        assert!(Account::lookup("nobody").unwrap().uid > 0);
        let err = Account::lookup("no-such-user-lander").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--user \"no-such-user-lander\": no such user"
        );
    }
}
