//! Jobs as their users: a wrapper running as root starts a user's processor under the account
//! the configuration names (`run_as`), never as root. The account is looked up on the host the
//! job runs on (NSS: local files, LDAP), with its supplementary groups; the child then sets its
//! groups, group and user, in that order, before it execs, and checks that root cannot be
//! taken back.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// An account a job runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its name.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// All its groups (primary included).
    pub groups: Vec<u32>,
    /// Its home directory.
    pub home: String,
}

/// Looks `name` up (`getpwnam_r`, `getgrouplist`).
pub fn lookup(name: &str) -> io::Result<Account> {
    let entry = lander_spool::os::user_by_name(name)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no account {name:?} on this host"),
        )
    })?;
    let c_name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "account name holds NUL"))?;
    let groups = group_list(&c_name, entry.gid)?;
    Ok(Account {
        name: entry.name,
        uid: entry.uid,
        gid: entry.gid,
        groups,
        home: entry.home,
    })
}

fn group_list(name: &CStr, gid: libc::gid_t) -> io::Result<Vec<u32>> {
    let mut n: libc::c_int = 64;
    loop {
        let mut groups: Vec<libc::gid_t> = vec![0; n as usize];
        let asked = n;
        // SAFETY: `groups` holds `n` writable entries and `n` says so; the name is
        // NUL-terminated. getgrouplist writes at most `n` entries and sets `n` to the count.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            return Ok(groups);
        }
        if n <= asked {
            n = asked * 2;
        }
        if n > 65_536 {
            return Err(io::Error::other("too many groups"));
        }
    }
}

/// What the wrapper must do to run a job as `name`: `Ok(None)` when it already runs as that
/// account; an error when it cannot become it (not root).
pub fn prepare(name: &str) -> io::Result<Option<Account>> {
    let account = lookup(name)?;
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    let me = unsafe { libc::geteuid() };
    if me == account.uid {
        return Ok(None);
    }
    if me != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the job wrapper runs as uid {me}, not root: it cannot become {name}"),
        ));
    }
    if account.uid == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("run_as {name}: an account with uid 0 is root"),
        ));
    }
    Ok(Some(account))
}

/// Has `cmd` drop to `account` in the child before it execs: groups, group, user, then a
/// check that root cannot be taken back. Register this before any other `pre_exec` whose
/// effect a change of credentials would undo (a parent-death signal is cleared by it).
pub fn drop_to(cmd: &mut Command, account: &Account) {
    let (uid, gid) = (account.uid, account.gid);
    let groups: Vec<libc::gid_t> = account.groups.clone();
    cmd.env("USER", &account.name)
        .env("LOGNAME", &account.name)
        .env("HOME", &account.home);
    // SAFETY: the closure runs in the forked child before exec and only makes the system calls
    // setgroups(2), setgid(2), setuid(2) (async-signal-safe) on data prepared before the fork;
    // it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::setuid(0) == 0 || libc::geteuid() != uid || libc::getegid() != gid {
                return Err(io::Error::other("privileges were not dropped"));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_found_with_their_groups_and_unknown_ones_are_an_error() {
        let root = lookup("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0));
        let err = lookup("no-such-account-lander").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        // The tests run as root: becoming root is nothing to do.
        assert_eq!(prepare("root").unwrap(), None);
    }

    #[test]
    fn a_root_wrapper_runs_the_child_as_the_account() {
        // `nobody` exists on every Debian system.
        let Some(nobody) = prepare("nobody").unwrap() else {
            panic!("these tests run as root");
        };
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "id -u; id -g; id -G"]);
        drop_to(&mut cmd, &nobody);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], nobody.uid.to_string());
        assert_eq!(lines[1], nobody.gid.to_string());
        assert!(
            !lines[2].split(' ').any(|g| g == "0"),
            "no root group: {}",
            lines[2]
        );
    }
}
