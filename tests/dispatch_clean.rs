//! `lander clean`: retention by age and by size, manifests with their traces, nothing a claim
//! refers to, leftovers of interrupted writers and of given-up scrub attempts.

mod dispatch_support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use dispatch_support::*;
use lander_dispatch::claim::{self, Claim};
use lander_dispatch::clean::clean;
use lander_dispatch::config::Config;

const DAY: u64 = 86_400;

/// A spool whose configuration has `retention` appended.
fn spool_with(retention: &str) -> Spool {
    let mut spool = Spool::new(Setup::default());
    let path = spool.config_path();
    let text = std::fs::read_to_string(&path).unwrap() + "\n[retention]\n" + retention;
    std::fs::write(&path, text).unwrap();
    spool.config = Config::load(&path).unwrap();
    spool
}

fn age(path: &Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

fn write(path: &Path, bytes: usize, age_secs: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, vec![b'x'; bytes]).unwrap();
    age(path, age_secs);
}

#[test]
fn old_scrubbed_files_go_with_their_manifests_but_not_while_claimed() {
    let spool = spool_with("scrubbed_days = 30\n");
    let names = spool.add_raw(0..3);
    drain(&mut spool.scrub_engine());
    let scrubbed = spool.scrubbed_dir();
    for name in &names[..2] {
        age(&scrubbed.join(name), 40 * DAY);
        age(&scrubbed.join(format!("{name}.json")), 40 * DAY);
    }
    // The second file's item is claimed again (a rerun): it stays.
    let item = format!("{SITE}/{}", names[1]);
    let claim_path = spool.scrub_state().join("claims").join(&item);
    let c = Claim::new("scrub", &item, format!("scrub.{item}.1"), 1);
    assert!(claim::try_claim(&claim_path, &c).unwrap());

    let dry = clean(&spool.config, true).unwrap();
    assert_eq!(dry.removed.len(), 1, "{dry:#?}");
    assert_eq!(
        dry.removed[0].paths.len(),
        2,
        "the manifest goes with its trace"
    );
    assert!(
        scrubbed.join(&names[0]).exists(),
        "a dry run removes nothing"
    );

    let done = clean(&spool.config, false).unwrap();
    assert_eq!(done.kept_in_use, 1);
    assert!(!scrubbed.join(&names[0]).exists());
    assert!(!scrubbed.join(format!("{}.json", names[0])).exists());
    for name in &names[1..] {
        assert!(scrubbed.join(name).exists(), "{name} kept");
        assert!(scrubbed.join(format!("{name}.json")).exists());
    }
    // The users' links are theirs: untouched.
    for user in USERS {
        assert!(spool.user_dir(user, "incoming").join(&names[0]).exists());
    }
}

#[test]
fn a_size_limit_removes_the_oldest_first_until_under() {
    let spool = spool_with("done_max = \"2300\"\n");
    let done = spool.user_dir("alice", "done");
    let names: Vec<String> = (0..4).map(Spool::name).collect();
    for (i, name) in names.iter().enumerate() {
        let age_secs = (4 - i as u64) * DAY; // names[0] is the oldest
        write(&done.join(name), 1000, age_secs);
        write(&done.join(format!("{name}.json")), 100, age_secs);
    }
    let report = clean(&spool.config, false).unwrap();
    assert_eq!(report.bytes, 2200, "{report:#?}");
    assert!(report.removed.iter().all(|r| r.why == "size"));
    for name in &names[..2] {
        assert!(!done.join(name).exists(), "{name} (old) removed");
        assert!(!done.join(format!("{name}.json")).exists());
    }
    for name in &names[2..] {
        assert!(done.join(name).exists(), "{name} (newer) kept");
    }
    // Bob's done/ has its own limit: nothing of his was touched.
    assert!(report.removed.iter().all(|r| r.paths[0].starts_with(&done)));
}

#[test]
fn records_and_logs_of_claimed_jobs_stay_and_old_ones_go() {
    let spool = spool_with("records_days = 1\nlogs_days = 1\nfailed_days = 1\n");
    let state = spool.scrub_state();
    let logs = state.join("logs");
    for job in ["scrub.s1.a.pcap.1", "scrub.s1.b.pcap.1"] {
        write(
            &state.join("records").join(format!("{job}.json")),
            10,
            3 * DAY,
        );
        write(&logs.join(format!("{job}.err")), 10, 3 * DAY);
    }
    let item = "s1/b.pcap";
    let c = Claim::new("scrub", item, "scrub.s1.b.pcap.1".into(), 1);
    std::fs::create_dir_all(state.join("claims/s1")).unwrap();
    assert!(claim::try_claim(&state.join("claims").join(item), &c).unwrap());
    // A failed file with its manifest and reason goes as one.
    let failed = spool.user_dir("bob", "failed");
    for f in ["f.pcap", "f.pcap.json", "f.pcap.reason"] {
        write(&failed.join(f), 10, 3 * DAY);
    }
    let report = clean(&spool.config, false).unwrap();
    assert!(!state.join("records/scrub.s1.a.pcap.1.json").exists());
    assert!(!logs.join("scrub.s1.a.pcap.1.err").exists());
    assert!(state.join("records/scrub.s1.b.pcap.1.json").exists());
    assert!(logs.join("scrub.s1.b.pcap.1.err").exists());
    assert_eq!(report.kept_in_use, 2);
    assert!(list(&failed).is_empty());
    let unit = report.removed.iter().find(|r| r.class == "failed").unwrap();
    assert_eq!(unit.paths.len(), 3, "{unit:?}");
}

#[test]
fn leftover_temporaries_and_work_dirs_of_given_up_attempts_go() {
    let spool = spool_with("");
    // temp_max_age is an hour by default.
    let old_tmp = spool.raw_dir().join(".f.pcap.host.1.0.tmp");
    let new_tmp = spool.raw_dir().join(".g.pcap.host.1.0.tmp");
    write(&old_tmp, 10, 2 * 3600);
    write(&new_tmp, 10, 0);
    // A capture's sequence mark, untouched since the capture stopped, is no leftover.
    let mark = lander_spool::seq::mark_path(&spool.raw_dir(), SITE);
    write(&mark, 10, 2 * 3600);
    let work = spool.scrubbed_dir().join(".work");
    let given_up = work.join("scrub.s1.x.pcap.4");
    let running = work.join("scrub.s1.y.pcap.1");
    for dir in [&given_up, &running] {
        write(&dir.join("out.pcap"), 100, 2 * 3600);
        age(dir, 2 * 3600);
    }
    let item = "s1/y.pcap";
    let c = Claim::new("scrub", item, "scrub.s1.y.pcap.1".into(), 1);
    let claims = spool.scrub_state().join("claims");
    std::fs::create_dir_all(claims.join("s1")).unwrap();
    assert!(claim::try_claim(&claims.join(item), &c).unwrap());
    let report = clean(&spool.config, false).unwrap();
    assert!(!old_tmp.exists());
    assert!(new_tmp.exists(), "a young temporary may have a live writer");
    assert!(mark.exists(), "the sequence mark stays");
    assert!(!given_up.exists());
    assert!(
        running.exists(),
        "the attempt a claim names keeps its scratch"
    );
    let work_unit = report.removed.iter().find(|r| r.class == "work").unwrap();
    assert_eq!(work_unit.bytes, 100);
}

#[test]
fn lander_clean_prints_json() {
    let spool = spool_with("scrubbed_days = 1\n");
    let names = spool.add_raw(0..1);
    drain(&mut spool.scrub_engine());
    age(&spool.scrubbed_dir().join(&names[0]), 2 * DAY);
    let out = std::process::Command::new(LANDER)
        .args(["clean", "--dry-run", "--json", "--config"])
        .arg(spool.config_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["removed"].as_array().unwrap().len(), 1, "{v}");
    assert!(spool.scrubbed_dir().join(&names[0]).exists());
}

/// Allocated bytes of a file.
fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn quota_counts_linked_files_once_and_reports_what_is_shared_with_scrubbed() {
    let mut spool = Spool::new(Setup::default());
    let path = spool.config_path();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[users.alice]\n", "[users.alice]\nquota = \"32KiB\"\n");
    std::fs::write(&path, text).unwrap();
    spool.config = Config::load(&path).unwrap();
    let names = spool.add_raw(0..3);
    drain(&mut spool.scrub_engine());
    // A file of alice's own, linked twice inside her directory: counted once.
    let own = spool.user_dir("alice", "done").join("own.pcap");
    write(&own, 64 * 1024, 0);
    let failed = spool.user_dir("alice", "failed");
    std::fs::create_dir_all(&failed).unwrap();
    std::fs::hard_link(&own, failed.join("own.pcap")).unwrap();

    let report = lander_dispatch::quota::usage(&spool.config).unwrap();
    let shared: u64 = names
        .iter()
        .flat_map(|n| [n.clone(), format!("{n}.json")])
        .map(|n| allocated(&spool.scrubbed_dir().join(n)))
        .sum();
    let alice = report.users.iter().find(|u| u.user == "alice").unwrap();
    assert_eq!(alice.files, 7, "{alice:?}");
    assert_eq!(alice.shared_with_scrubbed, shared);
    assert_eq!(alice.bytes, shared + allocated(&own));
    assert!(alice.over);
    let bob = report.users.iter().find(|u| u.user == "bob").unwrap();
    assert_eq!((bob.files, bob.bytes, bob.over), (6, shared, false));
    assert_eq!(report.hogs, ["alice"]);

    let run = |check: bool| {
        let mut cmd = std::process::Command::new(LANDER);
        cmd.args(["quota", "--json", "--config"]).arg(&path);
        if check {
            cmd.arg("--check");
        }
        cmd.output().unwrap()
    };
    let out = run(false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hogs"], serde_json::json!(["alice"]));
    let out = run(true);
    assert_eq!(out.status.code(), Some(1), "over quota with --check");
}

/// A temporary file in `dir` left by a writer on this host that is gone.
fn dead_writers_temporary(dir: &Path, name: &str) -> std::path::PathBuf {
    let host = lander_spool::manifest::hostname();
    let path = dir.join(format!(".{name}.{host}.{}.0.tmp", u32::MAX - 1));
    write(&path, 10, 0);
    path
}

#[test]
fn once_sweeps_leftovers_of_dead_writers_like_run() {
    let spool = spool_with("");
    let scrub_jobs = spool.scrub_state().join("jobs");
    let user_jobs = spool.user_state("alice").join("jobs");
    // Both stages' state directories exist once their engines have run.
    drain(&mut spool.scrub_engine());
    drain(&mut spool.user_engine("alice"));
    let scrub_left = dead_writers_temporary(&scrub_jobs, "scrub.s1.x.pcap.1.spec.json");
    let user_left = dead_writers_temporary(&user_jobs, "user.x.pcap.1.spec.json");
    let config = spool.config_path();
    for (args, left) in [
        (&["dispatch", "once"][..], &scrub_left),
        (&["user", "--user", "alice", "once"][..], &user_left),
    ] {
        let out = std::process::Command::new(LANDER)
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!left.exists(), "{args:?} left {}", left.display());
    }
}

#[test]
fn orphan_specs_and_start_markers_go_after_their_grace() {
    let spool = spool_with("");
    let state = spool.scrub_state();
    let jobs = state.join("jobs");
    // A dispatcher that stopped between releasing a claim and forgetting the attempt leaves
    // its spec and start marker; a claimed job's files and young files stay.
    let orphan = "scrub.s1.a.pcap.2";
    let claimed = "scrub.s1.b.pcap.1";
    let young = "scrub.s1.c.pcap.1";
    for job in [orphan, claimed] {
        for suffix in [".spec.json", ".start.json"] {
            write(&jobs.join(format!("{job}{suffix}")), 10, 2 * 3600);
        }
    }
    write(&jobs.join(format!("{young}.spec.json")), 10, 60);
    let c = Claim::new("scrub", "s1/b.pcap", claimed.into(), 1);
    std::fs::create_dir_all(state.join("claims/s1")).unwrap();
    assert!(claim::try_claim(&state.join("claims/s1/b.pcap"), &c).unwrap());
    // The same in a user's state.
    let user_jobs = spool.user_state("bob").join("jobs");
    write(&user_jobs.join("user.f.pcap.1.start.json"), 10, 2 * 3600);

    let report = clean(&spool.config, false).unwrap();
    let left = list(&jobs);
    assert!(!left.iter().any(|n| n.starts_with(orphan)), "{left:?}");
    assert!(left.contains(&format!("{claimed}.spec.json")), "{left:?}");
    assert!(left.contains(&format!("{claimed}.start.json")), "{left:?}");
    assert!(left.contains(&format!("{young}.spec.json")), "{left:?}");
    assert!(list(&user_jobs).is_empty());
    let removed: Vec<_> = report
        .removed
        .iter()
        .filter(|r| r.why == "orphan")
        .collect();
    assert_eq!(removed.len(), 3, "{report:#?}");
    assert!(removed.iter().all(|r| r.class == "jobs"), "{removed:?}");
}

#[test]
fn orphan_manifests_go_after_their_grace() {
    let spool = spool_with("");
    let root = spool.root();
    let dirs = [
        root.join("raw").join(SITE),
        root.join("scrubbed").join(SITE),
        root.join("archive").join(SITE),
    ];
    for dir in &dirs {
        // Old and alone: goes. Young and alone (a trace may follow): stays. With its trace:
        // stays.
        write(&dir.join("s1-20240101-000000-1.pcap.json"), 10, 2 * 3600);
        write(&dir.join("s1-20240101-000000-2.pcap.json"), 10, 60);
        write(&dir.join("s1-20240101-000000-3.pcap"), 10, 2 * 3600);
        write(&dir.join("s1-20240101-000000-3.pcap.json"), 10, 2 * 3600);
    }
    // A claimed item's manifest stays whatever its age (its scrub is under way).
    write(
        &dirs[1].join("s1-20240101-000000-4.pcap.json"),
        10,
        2 * 3600,
    );
    let item = format!("{SITE}/s1-20240101-000000-4.pcap");
    let claims = spool.scrub_state().join("claims");
    std::fs::create_dir_all(claims.join(SITE)).unwrap();
    let c = Claim::new("scrub", &item, format!("scrub.{item}.1"), 1);
    assert!(claim::try_claim(&claims.join(&item), &c).unwrap());

    let dry = clean(&spool.config, true).unwrap();
    assert_eq!(dry.removed.len(), 3, "{dry:#?}");
    let report = clean(&spool.config, false).unwrap();
    assert_eq!(report.removed.len(), 3, "{report:#?}");
    assert!(report.removed.iter().all(|r| r.why == "orphan"));
    assert_eq!(report.kept_in_use, 1);
    for dir in &dirs {
        let left = list(dir);
        assert!(
            !left.contains(&"s1-20240101-000000-1.pcap.json".to_owned()),
            "{left:?}"
        );
        for name in [
            "s1-20240101-000000-2.pcap.json",
            "s1-20240101-000000-3.pcap",
            "s1-20240101-000000-3.pcap.json",
        ] {
            assert!(left.contains(&name.to_owned()), "{name}: {left:?}");
        }
    }
    let classes: Vec<&str> = report.removed.iter().map(|r| r.class.as_str()).collect();
    assert_eq!(classes, ["raw", "scrubbed", "archive"]);
}

#[test]
fn only_publication_temporaries_of_gone_writers_are_removed_never_other_dot_files() {
    let spool = spool_with("");
    let raw = spool.raw_dir();
    let host = lander_spool::manifest::hostname();
    // Old dot files that are no publication temporaries: another tool's, NFS's, a name that
    // only looks like one, a symbolic link; all older than temp_max_age (an hour).
    let foreign = [
        ".keep-me",
        ".nfs0000000012345678",
        ".x.pcap.tmp",
        ".x.pcap.host.notapid.0.tmp",
        ".x.pcap.host.1.0.partial",
    ];
    for name in foreign {
        write(&raw.join(name), 10, 2 * 3600);
    }
    let target = raw.join(".target");
    write(&target, 10, 2 * 3600);
    let link = raw.join(format!(".l.pcap.{host}.{}.0.tmp", u32::MAX - 1));
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // Publication temporaries: a young one of a dead writer on this host, an old one from
    // another host, and a young one whose writer (this process) is alive.
    let dead = dead_writers_temporary(&raw, "d.pcap");
    let old_foreign = raw.join(".f.pcap.elsewhere.1.0.tmp");
    write(&old_foreign, 10, 2 * 3600);
    let live = raw.join(format!(".a.pcap.{host}.{}.0.tmp", std::process::id()));
    write(&live, 10, 0);
    // an old one whose writer is alive: a file open for hours on a quiet link, or the room
    // taken for its manifest when it was created
    let live_old = raw.join(format!(".b.pcap.json.{host}.{}.1.tmp", std::process::id()));
    write(&live_old, 10, 2 * 3600);
    clean(&spool.config, false).unwrap();
    for name in foreign {
        assert!(raw.join(name).exists(), "{name} is not ours to remove");
    }
    assert!(
        target.exists() && link.symlink_metadata().is_ok(),
        "links stay"
    );
    assert!(!dead.exists(), "its writer is gone");
    assert!(!old_foreign.exists(), "older than temp_max_age");
    assert!(live.exists(), "its writer is alive");
    assert!(live_old.exists(), "its writer is alive, however old");
}
