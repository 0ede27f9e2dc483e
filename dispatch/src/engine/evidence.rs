//! What a dispatcher reads of a job's wrapper from its start marker, and the fence that makes a
//! verdict that the job never started final.

use std::io;
use std::path::Path;
use std::time::Duration;

use crate::fsutil::{create_excl, exists};
use crate::record::{read_json, StartMarker};
use crate::sys;

/// Whether no wrapper of the job whose start marker goes at `path` runs on this host or can
/// start any more: its marker names a process that does not run (or is a fence), or there is no
/// marker and a fence was put in its place. A wrapper that made its marker first wins over the
/// fence: the job started after all. An empty marker (created, not yet written) younger than
/// `grace` is a wrapper starting.
///
/// Without the fence, a wrapper slow to start could make its marker just after this check and
/// read the claim before the caller replaced it: a second copy of the attempt ran beside the
/// next one, and its files were written after the attempt was forgotten.
pub(super) fn wrapper_done(path: &Path, grace: Duration) -> io::Result<bool> {
    if !exists(path) {
        return fence(path);
    }
    Ok(!wrapper_alive_here(path, grace))
}

/// Puts a fence at `path`: `false` if a marker was there first.
fn fence(path: &Path) -> io::Result<bool> {
    let job = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let job = job.trim_end_matches(".start.json");
    let bytes = serde_json::to_vec(&StartMarker::fence(job)).map_err(io::Error::other)?;
    create_excl(path, &bytes)
}

/// Whether the start marker at `path` belongs to a wrapper alive on this host, or is being
/// written (created, not yet filled, younger than `grace`).
pub(super) fn wrapper_alive_here(path: &Path, grace: Duration) -> bool {
    match read_json::<StartMarker>(path) {
        Ok(Some(m)) => on_this_host(&m) && sys::alive(m.pid, m.pid_start),
        Ok(None) => false,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => younger_than(path, grace),
        Err(_) => false,
    }
}

/// Whether the wrapper that wrote `m` runs on this host.
pub(super) fn on_this_host(m: &StartMarker) -> bool {
    match &m.host_id {
        Some(id) => id == sys::host_id(),
        None => m.host == sys::hostname(),
    }
}

/// Whether the file at `path` was changed less than `age` ago (a missing file is not).
pub(super) fn younger_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|a| a < age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_takes_the_place_of_a_missing_marker_and_stops_a_late_wrapper() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("scrub.s1.f.1.ab.start.json");
        assert!(wrapper_done(&marker, Duration::from_secs(5)).unwrap());
        let fence: StartMarker = read_json(&marker).unwrap().unwrap();
        assert!(fence.is_fence() && on_this_host(&fence), "{fence:?}");
        assert_eq!(fence.job_id, "scrub.s1.f.1.ab");
        // The wrapper's own exclusive create now fails: it steps aside.
        assert!(!crate::fsutil::create_new(&marker, b"{}", false).unwrap());
        // A fence is no live wrapper: judging again finds the job done.
        assert!(wrapper_done(&marker, Duration::from_secs(5)).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_marker_made_first_by_a_live_wrapper_wins_over_the_fence() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("j.start.json");
        let me = std::process::id();
        let live = StartMarker {
            pid: me,
            pid_start: sys::start_time(me).unwrap(),
            ..StartMarker::fence("j")
        };
        std::fs::write(&marker, serde_json::to_vec(&live).unwrap()).unwrap();
        assert!(!wrapper_done(&marker, Duration::from_secs(5)).unwrap());
        std::fs::write(&marker, b"").unwrap();
        assert!(
            !wrapper_done(&marker, Duration::from_secs(5)).unwrap(),
            "starting"
        );
        assert!(
            wrapper_done(&marker, Duration::ZERO).unwrap(),
            "empty too long"
        );
        assert_eq!(read_json::<StartMarker>(&marker).ok().flatten(), None);
    }
}
