//! The few process-level system calls the dispatcher needs: signals to process groups, the
//! parent-death signal, and identity of a process across pid reuse (`/proc/<pid>/stat`).
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

pub use lander_spool::os::hostname;

/// Sends `signal` to every process in the group `pgid`. A group that is gone is not an error.
pub fn kill_group(pgid: u32, signal: i32) -> io::Result<()> {
    let Ok(pgid) = i32::try_from(pgid) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "pgid out of range",
        ));
    };
    if pgid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal pgid <= 1",
        ));
    }
    // SAFETY: kill(2) takes plain integers and has no memory effects; a negative pid addresses
    // the process group, which we checked is neither 0 (our own group) nor 1 (init).
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ESRCH) => Ok(()),
        _ => Err(err),
    }
}

/// Makes `cmd` start in a new process group and die with SIGKILL when its parent dies.
pub fn detach_and_die_with_parent(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2) and
    // getppid(2), both async-signal-safe; it allocates nothing and touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() == 1 {
                return Err(io::Error::other("parent already gone"));
            }
            Ok(())
        });
    }
}

/// The start time of `pid` in clock ticks since boot, or `None` if there is no such process.
///
/// Together with the pid it names one process for good: a reused pid has another start time.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // After the name, `state` is field 3; starttime is field 22.
    fields.nth(22 - 4)?.parse().ok()
}

/// Whether a process `pid` runs on this host (of any start time). A zombie (ended, not yet
/// reaped: orphans of a container whose init reaps nothing stay so for good) does not run: it
/// can write nothing more, so what it left is abandoned.
pub fn running(pid: u32) -> bool {
    lander_spool::publish::process_alive(pid)
}

/// Whether the process `pid` that started at `start` is still alive.
pub fn alive(pid: u32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// CPU time (user and system) the calling thread has used so far.
pub fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec through the pointer, which points at a live,
    // properly aligned local; CLOCK_THREAD_CPUTIME_ID needs no other argument.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The offset of local time from UTC at Unix time `t`, in seconds (east positive), from the
/// system's time zone (`TZ`, `/etc/localtime`); 0 when it cannot be found.
pub fn local_offset(t: i64) -> i64 {
    let time: libc::time_t = t;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct (its zone pointer null).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r(3) reads the time_t and writes one tm through the pointers, both to
    // live locals; it is the thread-safe variant (no shared static buffer).
    let out = unsafe { libc::localtime_r(&time, &mut tm) };
    if out.is_null() {
        return 0;
    }
    tm.tm_gmtoff
}

/// A short token unique to this call: 8 hex digits from the time, host, process and a counter.
pub fn nonce() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{t}.{}.{}.{n}", hostname(), std::process::id());
    blake3::hash(seed.as_bytes()).to_hex()[..8].to_owned()
}

/// Ends this process at once with SIGKILL, as a crash or the OOM killer would (no destructor,
/// no buffered output flushed): the crash points of [`crate::crash`].
pub fn kill_self() -> ! {
    // SAFETY: kill(2) with our own pid and a signal number has no memory effects.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

/// The environment variable that overrides [`host_id`].
pub const HOST_ID_ENV: &str = "LANDER_HOST_ID";

/// Seconds on this host's boot clock (`CLOCK_BOOTTIME`): never set back, counts suspend, and
/// means nothing on another host.
pub fn boot_clock() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec through the pointer, which points at a live,
    // properly aligned local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + f64::from(ts.tv_nsec as u32) * 1e-9
}

/// This host's stable identity, looked up once: its host name and the first 12 digits of its
/// machine id (`/etc/machine-id`), as `<host>@<id>`. Short host names repeat across clusters and
/// containers; the machine id tells two hosts of one name apart. Without a machine id, the host
/// name alone.
pub fn host_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        // Stands in for the host's identity where one machine plays several (tests, containers
        // sharing a machine id).
        if let Some(id) = std::env::var(HOST_ID_ENV).ok().filter(|s| !s.is_empty()) {
            return id;
        }
        let id = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().chars().take(12).collect::<String>())
            .filter(|s| !s.is_empty());
        match id {
            Some(id) => format!("{}@{id}", hostname()),
            None => hostname().to_owned(),
        }
    })
}

/// Seconds since the Unix epoch, as a float.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_stable_and_alive() {
        let me = std::process::id();
        let t = start_time(me).expect("own stat");
        assert_eq!(start_time(me), Some(t));
        assert!(alive(me, t));
        assert!(!alive(me, t + 1));
    }

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let t0 = thread_cpu();
        let mut x = 0u64;
        while thread_cpu() == t0 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu() > t0);
    }

    #[test]
    fn local_offset_is_within_a_day() {
        assert!(local_offset(1_704_067_200).abs() <= 14 * 3600);
    }

    #[test]
    fn missing_process_has_no_start_time() {
        assert_eq!(start_time(u32::MAX - 1), None);
    }

    #[test]
    fn refuses_to_signal_init_or_self_group() {
        assert!(kill_group(0, libc::SIGTERM).is_err());
        assert!(kill_group(1, libc::SIGTERM).is_err());
    }
}
