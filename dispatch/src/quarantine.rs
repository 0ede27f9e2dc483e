//! Quarantine: directory entries that cannot be items (a symbolic link or other entry that is
//! not a regular file, a name too long or with control characters) are moved out of the input
//! directory, never followed or published, with a reason file beside them, and reported by
//! `lander status`. Each gets a short unique id as its name (the original name may be the very
//! problem): `<id>` (the entry), `<id>.json` (its manifest, if it had one) and
//! `<id>.reason.json`.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{self, remove_if_exists, write_json_atomic};
use crate::sys;

/// Why an entry was quarantined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The quarantine id (the entry's name here).
    pub id: String,
    /// The stage that found it (`scrub`, `user/<name>`).
    pub stage: String,
    /// The directory it was in.
    pub dir: PathBuf,
    /// Its name there (lossy, when not UTF-8).
    pub name: String,
    /// What was wrong.
    pub reason: String,
    /// Unix time.
    pub time: f64,
}

/// Moves `dir/name` (and its manifest) into the quarantine directory `to` with a reason.
/// `Ok(false)` if the entry was gone (another dispatcher moved it first).
pub fn quarantine(
    to: &Path,
    stage: &str,
    dir: &Path,
    name: &OsStr,
    reason: &str,
    fsync: bool,
) -> io::Result<bool> {
    crate::fsutil::create_dir_mode(to, 0o750)?;
    let id = format!("{:.0}-{}", sys::now(), sys::nonce());
    let why = Reason {
        id: id.clone(),
        stage: stage.to_owned(),
        dir: dir.to_owned(),
        name: name.to_string_lossy().into_owned(),
        reason: reason.to_owned(),
        time: sys::now(),
    };
    let reason_path = to.join(format!("{id}.reason.json"));
    write_json_atomic(&reason_path, &why, fsync)?;
    match fsutil::move_once(&dir.join(name), &to.join(&id)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            remove_if_exists(&reason_path)?;
            return Ok(false);
        }
        other => other?,
    }
    let mut manifest = name.to_owned();
    manifest.push(".json");
    if fsutil::exists(&dir.join(&manifest)) {
        match fsutil::move_once(&dir.join(&manifest), &to.join(format!("{id}.json"))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    tracing::warn!(stage, dir = %dir.display(), name = %why.name, reason, id, "quarantined");
    Ok(true)
}

/// The reasons of everything in the quarantine directory `dir`, oldest first. A reason whose
/// entry is not there is no quarantined entry: its dispatcher stopped between writing it and
/// moving the entry (which a later pass quarantines again, with a reason of its own), or is
/// moving it now.
pub fn list(dir: &Path) -> io::Result<Vec<Reason>> {
    let mut out = Vec::new();
    for name in fsutil::list_names(dir)? {
        if name.ends_with(".reason.json") {
            if let Ok(Some(r)) = crate::record::read_json::<Reason>(&dir.join(&name)) {
                if fsutil::exists(&dir.join(&r.id)) {
                    out.push(r);
                }
            }
        }
    }
    out.sort_by(|a, b| a.time.total_cmp(&b.time));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dangling_link_is_moved_with_its_reason_and_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir(&input).unwrap();
        std::os::unix::fs::symlink("/nonexistent/target", input.join("x.pcap")).unwrap();
        let q = dir.path().join("q");
        let moved = quarantine(&q, "scrub", &input, OsStr::new("x.pcap"), "a link", false);
        assert!(moved.unwrap());
        assert!(!fsutil::exists(&input.join("x.pcap")));
        let reasons = list(&q).unwrap();
        assert_eq!(reasons.len(), 1);
        assert_eq!(reasons[0].name, "x.pcap");
        let entry = std::fs::symlink_metadata(q.join(&reasons[0].id)).unwrap();
        assert!(entry.file_type().is_symlink());
        // A second dispatcher that saw the same entry finds it gone and leaves no reason.
        let again = quarantine(&q, "scrub", &input, OsStr::new("x.pcap"), "a link", false);
        assert!(!again.unwrap());
        assert_eq!(list(&q).unwrap().len(), 1);
    }

    /// A dispatcher killed between writing the reason and moving the entry left a reason with
    /// no entry; the next pass quarantined the entry again, and `lander status` (and the chaos
    /// test) counted it twice.
    #[test]
    fn a_reason_whose_entry_never_came_is_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir(&input).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", input.join("y.pcap")).unwrap();
        let q = dir.path().join("q");
        std::fs::create_dir(&q).unwrap();
        let orphan = Reason {
            id: "1-deadbeef".into(),
            stage: "scrub".into(),
            dir: input.clone(),
            name: "y.pcap".into(),
            reason: "a link".into(),
            time: 1.0,
        };
        write_json_atomic(&q.join("1-deadbeef.reason.json"), &orphan, false).unwrap();
        assert!(list(&q).unwrap().is_empty());
        assert!(quarantine(&q, "scrub", &input, OsStr::new("y.pcap"), "a link", false).unwrap());
        let listed = list(&q).unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_ne!(listed[0].id, orphan.id);
    }
}
