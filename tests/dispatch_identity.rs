//! File identity, nothing overwritten, sites kept apart, only regular files, modes: each
//! guards a way the spool once lost or leaked data (issue 9, findings 2, 3, 5, 7).

mod dispatch_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use dispatch_support::*;
use lander_dispatch::record::JobOutcome;

fn archive_setup() -> Setup {
    Setup {
        extra_scrub: "raw_after = \"archive\"".into(),
        ..Setup::default()
    }
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Trace files (no manifests, no temporaries) of a directory.
fn traces(dir: &std::path::Path) -> Vec<String> {
    list(dir)
        .into_iter()
        .filter(|n| !n.ends_with(".json") && !n.starts_with('.'))
        .collect()
}

#[test]
fn a_different_file_under_a_used_name_is_renamed_and_nothing_is_overwritten() {
    let spool = Spool::new(archive_setup());
    let name = Spool::name(5);
    spool.add_raw_file(SITE, &name, b"first capture\n");
    drain(&mut spool.scrub_engine());
    // A capture restarted in the same second publishes another file under the same name.
    spool.add_raw_file(SITE, &name, b"second capture\n");
    drain(&mut spool.scrub_engine());

    let archive = spool.root().join("archive").join(SITE);
    assert_eq!(
        read(&archive.join(&name)),
        "first capture\n",
        "original kept"
    );
    let fresh = "s1-20240101-000005-1000000005.pcap";
    assert_eq!(traces(&archive), vec![fresh.to_owned(), name.clone()]);
    assert_eq!(read(&archive.join(fresh)), "second capture\n");
    assert!(traces(&spool.raw_dir()).is_empty());
    for user in USERS {
        let incoming = spool.user_dir(user, "incoming");
        assert_eq!(read(&incoming.join(&name)), "first capture\n");
        assert_eq!(read(&incoming.join(fresh)), "second capture\n");
    }
    let ok = spool.records(&spool.scrub_state());
    let ok: Vec<_> = ok
        .iter()
        .filter(|r| r.outcome == JobOutcome::Success)
        .collect();
    assert_eq!(ok.len(), 2, "each file scrubbed once: {ok:?}");
    assert!(
        ok.iter().all(|r| r.digest.is_some()),
        "records carry the digest"
    );
    spool.assert_no_temporaries();
}

#[test]
fn a_second_copy_of_the_same_file_is_delivered_once() {
    let spool = Spool::new(archive_setup());
    let name = Spool::name(1);
    spool.add_raw_file(SITE, &name, b"same bytes\n");
    drain(&mut spool.scrub_engine());
    // A trace replayed again: the same bytes under the same name.
    spool.add_raw_file(SITE, &name, b"same bytes\n");
    drain(&mut spool.scrub_engine());
    assert!(
        traces(&spool.raw_dir()).is_empty(),
        "the copy is disposed of"
    );
    assert_eq!(
        traces(&spool.root().join("archive").join(SITE)),
        vec![name.clone()]
    );
    for user in USERS {
        assert_eq!(
            traces(&spool.user_dir(user, "incoming")),
            vec![name.clone()]
        );
    }
    spool.assert_no_temporaries();
}

#[test]
fn publishing_over_an_existing_scrubbed_name_compares_digests() {
    let spool = Spool::new(Setup::default());
    let name = Spool::name(2);
    // scrubbed/ already holds another file's output under this name.
    let scrubbed = spool.scrubbed_dir();
    std::fs::create_dir_all(&scrubbed).unwrap();
    std::fs::write(scrubbed.join(&name), b"someone else's\n").unwrap();
    let manifest = r#"{"anonymization": {"source_blake3": "00ff"}, "blake3": "x"}"#;
    std::fs::write(scrubbed.join(format!("{name}.json")), manifest).unwrap();
    spool.add_raw_file(SITE, &name, b"new raw\n");
    drain(&mut spool.scrub_engine());
    assert_eq!(
        read(&scrubbed.join(&name)),
        "someone else's\n",
        "not written over"
    );
    let fresh = "s1-20240101-000002-1000000002.pcap";
    assert_eq!(read(&scrubbed.join(fresh)), "new raw\n");
    for user in USERS {
        assert_eq!(
            traces(&spool.user_dir(user, "incoming")),
            vec![fresh.to_owned()]
        );
    }
}

#[test]
fn an_existing_file_at_the_destination_of_a_move_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a, b"new").unwrap();
    std::fs::write(&b, b"old").unwrap();
    let err = lander_dispatch::fsutil::move_once(&a, &b).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(read(&b), "old");
    assert_eq!(read(&a), "new");
    // A rerun after a crash between link and unlink finishes the move.
    std::fs::remove_file(&b).unwrap();
    std::fs::hard_link(&a, &b).unwrap();
    lander_dispatch::fsutil::move_once(&a, &b).unwrap();
    assert!(!a.exists());
    assert_eq!(read(&b), "new");
    lander_dispatch::fsutil::move_once(&a, &b).unwrap();
}

#[test]
fn two_sites_with_the_same_file_name_reach_a_user_subscribed_to_both() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("seen");
    let proc_ = script(
        tmp.path(),
        "proc.sh",
        &format!("echo \"$LANDER_SITE $LANDER_NAME $(cat \"$LANDER_FILE\")\" >> {log:?}"),
    );
    let spool = Spool::new(Setup {
        sites: vec!["s1".into(), "s2".into()],
        processor: vec![proc_],
        ..Setup::default()
    });
    let name = "capture-20240101-000000-000001.pcap";
    spool.add_raw_file("s1", name, b"from s1");
    spool.add_raw_file("s2", name, b"from s2");
    drain(&mut spool.scrub_engine());
    for user in USERS {
        for site in ["s1", "s2"] {
            let got = spool.user_site_dir(user, "incoming", site).join(name);
            assert_eq!(read(&got), format!("from {site}"), "{user} {site}");
        }
    }
    drain(&mut spool.user_engine("alice"));
    let mut seen: Vec<String> = read(&log).lines().map(str::to_owned).collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![format!("s1 {name} from s1"), format!("s2 {name} from s2")]
    );
    for site in ["s1", "s2"] {
        assert!(spool
            .user_site_dir("alice", "done", site)
            .join(name)
            .exists());
    }
}

#[test]
fn a_symlink_or_fifo_in_raw_is_never_followed_or_published_and_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, b"private key material\n").unwrap();
    let spool = Spool::new(Setup::default());
    let names = spool.add_raw(0..2);
    let link = spool.raw_dir().join(Spool::name(7));
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let fifo = spool.raw_dir().join(Spool::name(8));
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    drain(&mut spool.scrub_engine());
    spool.assert_scrubbed_exactly_once(&names);
    for user in USERS {
        for dir in ["incoming"] {
            for f in list(&spool.user_dir(user, dir)) {
                let text = std::fs::read(spool.user_dir(user, dir).join(&f)).unwrap();
                assert!(!String::from_utf8_lossy(&text).contains("private"), "{f}");
            }
        }
    }
    let st = lander_dispatch::monitor::status(&spool.config).unwrap();
    let reasons: Vec<_> = st.quarantine.iter().map(|q| q.reason.clone()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("symbolic link")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("FIFO")), "{reasons:?}");
    assert!(
        st.problems
            .iter()
            .any(|p| p.contains("2 entries quarantined")),
        "{:?}",
        st.problems
    );
    assert_eq!(
        read(&secret),
        "private key material\n",
        "the target is untouched"
    );
}

#[test]
fn raw_traces_are_not_readable_by_others_and_scrubbed_files_by_the_shared_group() {
    let spool = Spool::new(Setup {
        extra_scrub: "raw_after = \"archive\"\nscrubbed_group = \"0\"".into(),
        ..Setup::default()
    });
    let mut engine = spool.scrub_engine();
    let names = spool.add_raw(0..1);
    let raw = spool.raw_dir().join(&names[0]);
    std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o644)).unwrap();
    drain(&mut engine);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let archive = spool.root().join("archive").join(SITE);
    assert_eq!(mode(&archive), 0o750, "archive directory");
    assert_eq!(
        mode(&archive.join(&names[0])) & 0o007,
        0,
        "archived raw file"
    );
    assert_eq!(mode(&spool.raw_dir()), 0o750, "raw directory");
    let scrubbed = spool.scrubbed_dir().join(&names[0]);
    assert_eq!(mode(&scrubbed), 0o640, "scrubbed file");
    assert_eq!(std::fs::metadata(&scrubbed).unwrap().gid(), 0);
}
