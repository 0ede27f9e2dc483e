//! A dispatcher killed at each named step of both stages (`LANDER_CRASH_AT`), then run again:
//! the end state is the one a run without the crash reaches (issue 9, finding 6). With
//! `retries = 0` a crash between publishing the manifest and the data once gave the item up
//! with an orphan manifest in `scrubbed/`.

mod dispatch_support;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dispatch_support::*;
use lander_dispatch::crash::{ENV, STEPS};

const FIRST: &[u8] = b"first file under the reused name\n";

fn digest(p: &Path) -> String {
    blake3::hash(&std::fs::read(p).unwrap())
        .to_hex()
        .to_string()
}

/// Digests of the trace files (not manifests) in `dir`, with how many times each is there.
fn digests(dir: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for name in list(dir) {
        if !name.ends_with(".json") && !name.starts_with('.') {
            *out.entry(digest(&dir.join(name))).or_default() += 1;
        }
    }
    out
}

/// A spool where one raw name was used before by another file, and three raw files wait.
fn spool_for_crashes() -> (Spool, BTreeMap<String, usize>) {
    let spool = Spool::new(Setup {
        extra_scrub: "raw_after = \"archive\"".into(),
        scrub_retries: 0,
        ..Setup::default()
    });
    let reused = Spool::name(9);
    spool.add_raw_file(SITE, &reused, FIRST);
    drain(&mut spool.scrub_engine());
    for user in USERS {
        drain(&mut spool.user_engine(user));
    }
    spool.add_raw(0..2);
    spool.add_raw_file(SITE, &reused, b"second file under the reused name\n");
    let mut expected = digests(&spool.raw_dir());
    *expected
        .entry(blake3::hash(FIRST).to_hex().to_string())
        .or_default() += 1;
    (spool, expected)
}

/// Runs `args` (a `once` pass) with the crash point set until the process kills itself there.
fn crash_at(spool: &Spool, step: &str, args: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = Command::new(LANDER)
            .args(["-q"])
            .args(&args[..1])
            .arg("--config")
            .arg(spool.config_path())
            .args(&args[1..])
            .env(ENV, step)
            .status()
            .unwrap();
        if status.signal() == Some(libc_sigkill()) {
            return;
        }
        assert!(status.success(), "{step}: {status}");
        assert!(Instant::now() < deadline, "step {step} was never reached");
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn libc_sigkill() -> i32 {
    9
}

/// Every file reached every user exactly once, nothing was written over, nothing is left.
fn assert_end_state(spool: &Spool, expected: &BTreeMap<String, usize>, step: &str) {
    let archive = spool.root().join("archive").join(SITE);
    assert_eq!(
        &digests(&archive),
        expected,
        "{step}: archive holds every original"
    );
    assert_eq!(
        &digests(&spool.scrubbed_dir()),
        expected,
        "{step}: scrubbed"
    );
    for user in USERS {
        let mut got = digests(&spool.user_dir(user, "done"));
        for (d, n) in digests(&spool.user_dir(user, "incoming")) {
            *got.entry(d).or_default() += n;
        }
        assert_eq!(&got, expected, "{step}: {user} has every file once");
        assert!(
            list(&spool.user_dir(user, "in-process")).is_empty(),
            "{step}"
        );
    }
    assert!(digests(&spool.raw_dir()).is_empty(), "{step}: raw drained");
    let claims = list_tree(&spool.scrub_state().join("claims"));
    assert!(claims.is_empty(), "{step}: claims left {claims:?}");
    let inputs = list_tree(&spool.scrub_state().join("input"));
    assert!(inputs.is_empty(), "{step}: pinned inputs left {inputs:?}");
    spool.assert_no_temporaries();
}

fn recover(spool: &Spool) {
    let mut engine = spool.scrub_engine();
    engine.sweep(Duration::ZERO).unwrap();
    drain(&mut engine);
}

#[test]
fn a_dispatcher_killed_at_any_scrub_step_resumes_to_the_same_end_state() {
    for step in STEPS.iter().filter(|s| !s.starts_with("user.")) {
        eprintln!("scrub stage, crash at {step}");
        let (spool, expected) = spool_for_crashes();
        crash_at(&spool, step, &["dispatch", "once"]);
        recover(&spool);
        assert_end_state(&spool, &expected, step);
    }
}

#[test]
fn a_dispatcher_killed_at_any_user_step_resumes_to_the_same_end_state() {
    let user_steps = STEPS
        .iter()
        .filter(|s| s.starts_with("user.") || !s.contains('.'));
    for step in user_steps {
        eprintln!("user stage, crash at {step}");
        let (spool, expected) = spool_for_crashes();
        recover(&spool);
        crash_at(&spool, step, &["user", "--user", "alice", "once"]);
        let mut alice = spool.user_engine("alice");
        alice.sweep(Duration::ZERO).unwrap();
        drain(&mut alice);
        assert_end_state(&spool, &expected, step);
        let rows = spool
            .user_ledger("alice")
            .list(None, Some("failed"), 100)
            .unwrap();
        assert!(rows.is_empty(), "{step}: {rows:?}");
    }
}

#[test]
fn a_crash_between_manifest_and_data_publication_is_completed_not_given_up() {
    let (spool, expected) = spool_for_crashes();
    crash_at(&spool, "scrub.published-manifest", &["dispatch", "once"]);
    // The manifest is published, the data still in the attempt's scratch directory.
    let half: Vec<_> = list(&spool.scrubbed_dir());
    assert!(half.iter().any(|n| n.ends_with(".json")), "{half:?}");
    recover(&spool);
    assert_end_state(&spool, &expected, "scrub.published-manifest");
    let failed = spool
        .ledger()
        .list(Some("scrub"), Some("failed"), 10)
        .unwrap();
    assert!(failed.is_empty(), "given up: {failed:?}");
}

/// A user dispatcher killed while writing a quarantine reason left its temporary behind in
/// `users/<user>/state/quarantine/`, and no sweep removed it (the chaos test found it).
#[test]
fn a_quarantine_temporary_of_a_dead_user_dispatcher_is_swept() {
    let spool = Spool::new(Setup::default());
    let dir = spool.user_state("bob").join("quarantine");
    std::fs::create_dir_all(&dir).unwrap();
    let host = lander_dispatch::sys::hostname();
    let left = dir.join(format!(".17-ab.reason.json.{host}.{}.0.tmp", u32::MAX - 1));
    std::fs::write(&left, b"{").unwrap();
    spool.user_engine("bob").sweep(Duration::ZERO).unwrap();
    assert!(!left.exists(), "{} left", left.display());
    spool.assert_no_temporaries();
}

/// A job wrapper killed while writing its heartbeat or run record, after its dispatcher had
/// died, is reparented to init; an init that reaps nothing (a container's, this machine's)
/// leaves it a zombie for good, and `/proc/<pid>` stays. Its temporaries were taken for a live
/// writer's and never swept (random_kills found them in `jobs/` and `records/`).
#[test]
fn temporaries_of_a_killed_wrapper_left_a_zombie_are_swept() {
    let spool = Spool::new(Setup::default());
    // A child not waited for is a zombie once it ends, as an unreaped orphan is.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lander_dispatch::sys::running(pid) {
        assert!(Instant::now() < deadline, "{pid} did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "a zombie");
    let host = lander_dispatch::sys::hostname();
    let job = "scrub.s1.f.pcap.1.0123abcd";
    let left = [
        spool
            .scrub_state()
            .join(format!("jobs/.{job}.beat.json.{host}.{pid}.0.tmp")),
        spool
            .scrub_state()
            .join(format!("records/.{job}.json.{host}.{pid}.1.tmp")),
        spool
            .user_state("bob")
            .join(format!("records/.user.bob.f.1.ab.json.{host}.{pid}.1.tmp")),
    ];
    let scrub = spool.scrub_engine();
    let bob = spool.user_engine("bob");
    for p in &left {
        std::fs::write(p, b"").unwrap();
    }
    scrub.sweep(Duration::ZERO).unwrap();
    bob.sweep(Duration::ZERO).unwrap();
    child.wait().unwrap();
    for p in &left {
        assert!(!p.exists(), "{} left", p.display());
    }
    spool.assert_no_temporaries();
}

/// A job judged never started (no start marker, its wrapper not known to run) is given a fence
/// for a start marker before its claim moves on. A wrapper slow to start that read the claim
/// just before it moved on (simulated: it reads a copy of the claim as it was) ran the attempt
/// beside the next one and left its files behind; now its exclusive start marker fails and it
/// steps aside.
#[test]
fn a_wrapper_starting_after_its_job_was_judged_never_started_steps_aside() {
    use lander_dispatch::record::{read_json, JobSpec, StartMarker};
    use lander_dispatch::wrapper::{self, Wrapped};
    let spool = Spool::new(Setup {
        lost_grace: 0.2,
        ..Setup::default()
    });
    let names = spool.add_raw(0..1);
    // A wrapper that ends at once without a marker: the job never started.
    let mut engine = spool.scrub_engine_with(vec!["/bin/true".into()]);
    let claim = spool
        .scrub_state()
        .join("claims")
        .join(SITE)
        .join(&names[0]);
    pass_until(&mut engine, "a submission", |r| r.submitted == 1);
    let as_read = spool.dir.path().join("claim as the slow wrapper read it");
    std::fs::copy(&claim, &as_read).unwrap();
    let mut spec: JobSpec = read_json(&claim).unwrap().unwrap();
    pass_until(&mut engine, "the verdict", |r| r.lost == 1);
    spec.claim = as_read;
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let ran = wrapper::run(&spec, &cancel).unwrap();
    assert!(
        matches!(ran, Wrapped::Superseded),
        "the late copy ran: {ran:?}"
    );
    assert!(!spec.record.exists());
    assert!(!spec.heartbeat.as_ref().unwrap().exists());
    let fence: Option<StartMarker> = read_json(&spec.start_marker).unwrap();
    assert!(fence.is_some_and(|m| m.is_fence()));
    // The next attempt runs (with a real wrapper) and the fence goes with the old attempt.
    let mut engine = spool.scrub_engine();
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
    assert!(!spec.start_marker.exists());
}

/// A dispatcher that gave an item up was killed before its history committed: the claim says
/// failed, the history has no failed row, so `lander jobs` did not list it and no operator
/// could retry it (the chaos test found the raw file left). The next pass writes the row.
#[test]
fn a_given_up_item_whose_history_was_lost_is_listed_failed_and_can_be_retried() {
    use lander_dispatch::claim::{self, Claim, ClaimState};
    let spool = Spool::new(Setup::default());
    let names = spool.add_raw(0..1);
    let item = format!("{SITE}/{}", names[0]);
    let job = format!("scrub.{SITE}.{}.4.deadbeef", names[0]);
    let c = Claim {
        state: ClaimState::Failed,
        reason: Some("lost: the job ended without a run record".into()),
        ..Claim::new("scrub", &item, job.clone(), 4)
    };
    let path = spool.scrub_state().join("claims").join(&item);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    claim::rewrite(&path, &c, false).unwrap();
    let mut engine = spool.scrub_engine();
    engine.pass().unwrap();
    let failed = spool
        .ledger()
        .list(Some("scrub"), Some("failed"), 10)
        .unwrap();
    assert_eq!(
        failed.iter().map(|r| r.job_id.as_str()).collect::<Vec<_>>(),
        [job.as_str()]
    );
    lander_dispatch::control::retry(&spool.config, &job).unwrap();
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
}
