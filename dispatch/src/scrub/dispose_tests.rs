//! Disposing of a raw file after its scrub, when another dispatcher acting on the same view
//! already did, and a new file has since arrived under the name (a capture restarted).

use std::path::{Path, PathBuf};

use super::identity::{identify, Found};
use super::ScrubStage;
use crate::claim::Identity;
use crate::config::Config;

fn stage(root: &Path) -> ScrubStage {
    let text = format!(
        "spool = {:?}\nstate_db = {:?}\nsites = [\"s1\"]\n\n[scrub]\ncommand = [\"/bin/true\"]\n\
         raw_after = \"archive\"\n",
        root.join("spool"),
        root.join("db.sqlite"),
    );
    let config = Config::parse(Path::new("lander.toml"), &text).unwrap();
    ScrubStage::new(config, PathBuf::from("/bin/true")).unwrap()
}

fn put(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn identity(path: &Path) -> Identity {
    match identify(path).unwrap() {
        Found::Regular(id) => id,
        other => panic!("{}: {other:?}", path.display()),
    }
}

/// The chaos test lost a file this way: dispatcher B checked the raw entry was the claimed
/// file, dispatcher A archived it meanwhile, a new file arrived under the name, and B, finding
/// the archive already holding the claimed file, removed "its duplicate": the new file.
#[test]
fn archiving_never_removes_a_new_file_that_arrived_under_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = stage(dir.path());
    let raw = dir.path().join("spool/raw/s1/a.pcap");
    put(&raw, "first capture\n");
    put(&raw.with_file_name("a.pcap.json"), "{}\n");
    let first = identity(&raw);
    let files = [raw.with_file_name("a.pcap.json"), raw.clone()];
    // Dispatcher A archives the claimed file.
    s.archive("s1", &files, Some(&first)).unwrap();
    // A new capture arrives under the name, manifest first.
    put(&raw.with_file_name("a.pcap.json"), "{\"second\": true}\n");
    put(&raw, "second capture\n");
    // Dispatcher B, past its check of the raw entry, archives the claimed file again.
    s.archive("s1", &files, Some(&first)).unwrap();
    assert_eq!(std::fs::read_to_string(&raw).unwrap(), "second capture\n");
    let manifest = std::fs::read_to_string(raw.with_file_name("a.pcap.json")).unwrap();
    assert_eq!(manifest, "{\"second\": true}\n");
    let archived = dir.path().join("spool/archive/s1/a.pcap");
    assert_eq!(
        std::fs::read_to_string(archived).unwrap(),
        "first capture\n"
    );
}

/// A second copy of a file already handled (same content, another inode) is still disposed
/// of: the archive keeps the first, the copy goes.
#[test]
fn a_second_copy_of_an_archived_file_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let s = stage(dir.path());
    let raw = dir.path().join("spool/raw/s1/a.pcap");
    put(&raw, "same\n");
    put(&raw.with_file_name("a.pcap.json"), "{}\n");
    let files = [raw.with_file_name("a.pcap.json"), raw.clone()];
    s.archive("s1", &files, Some(&identity(&raw))).unwrap();
    put(&raw, "same\n");
    put(&raw.with_file_name("a.pcap.json"), "{}\n");
    s.archive("s1", &files, Some(&identity(&raw))).unwrap();
    assert!(!raw.exists());
    assert!(!raw.with_file_name("a.pcap.json").exists());
}
