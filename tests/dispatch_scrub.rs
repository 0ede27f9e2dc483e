//! The scrub stage under the four failure modes: a job that never runs, a job killed mid-run,
//! a job run twice in a row, two dispatchers (and two copies of one job) at once.

mod dispatch_support;

use std::time::Duration;

use dispatch_support::*;
use lander_dispatch::record::JobOutcome;

#[test]
fn files_are_scrubbed_published_and_fanned_out_once() {
    let spool = Spool::new(Setup::default());
    let names = spool.add_raw(0..7);
    let mut engine = spool.scrub_engine();
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
    // Packets and bytes come from the output manifest into the run record and history.
    let rows = spool
        .ledger()
        .list(Some("scrub"), Some("succeeded"), 100)
        .unwrap();
    assert!(
        rows.iter()
            .any(|r| r.packets == Some(3) && r.bytes == Some(30)),
        "{rows:?}"
    );
}

#[test]
fn a_job_that_never_runs_is_reported_lost_and_finally_failed() {
    let spool = Spool::new(Setup {
        lost_grace: 0.2,
        ..Setup::default()
    });
    let names = spool.add_raw(0..1);
    // A backend whose jobs never start: the wrapper is replaced by a program that does nothing.
    let mut engine = spool.scrub_engine_with(vec!["/bin/true".into()]);
    let first = engine.pass().unwrap();
    assert_eq!(first.submitted, 1);
    let r = pass_until(&mut engine, "the job to be given up", |r| {
        r.failed_items == 1
    });
    assert_eq!(r.active(), 0);
    let rows = spool.ledger().list(Some("scrub"), None, 100).unwrap();
    assert_eq!(rows.len(), 4, "first attempt and three retries: {rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.reason.as_deref() == Some("lost: the job never started")),
        "{rows:?}"
    );
    // The raw file is untouched and nothing was published.
    assert!(spool.raw_dir().join(&names[0]).exists());
    assert!(list(&spool.scrubbed_dir()).iter().all(|n| n == ".work"));
    // Job control brings it back; with a working backend it then completes.
    let job = &rows[0].job_id;
    lander_dispatch::control::retry(&spool.config, job).unwrap();
    let mut engine = spool.scrub_engine();
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
}

#[test]
fn a_job_killed_mid_run_leaves_nothing_partial_and_is_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let flag = tmp.path().join("hang-once");
    let hang = script(
        tmp.path(),
        "scrub.sh",
        &format!(
            "out=\"$2\"\nif [ ! -e {flag:?} ]; then touch {flag:?}; echo partial > \"$out\"; sleep 60; fi\nexec {LANDER} dispatch copy-job \"$1\" \"$2\""
        ),
    );
    let spool = Spool::new(Setup {
        scrub_command: vec![hang],
        lost_grace: 0.5,
        ..Setup::default()
    });
    let names = spool.add_raw(0..1);
    let mut engine = spool.scrub_engine();
    engine.pass().unwrap();
    let pid = running_job_pid(&spool.scrub_state());
    // Wait for the partial output, then kill the job wrapper (the job dies with it).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !flag.exists() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    kill(pid, "KILL");
    assert!(
        list(&spool.scrubbed_dir())
            .iter()
            .all(|n| n.starts_with('.')),
        "nothing partial is published"
    );
    let r = pass_until(&mut engine, "the lost job", |r| r.lost == 1);
    assert_eq!(r.lost, 1);
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
    let rows = spool.ledger().list(Some("scrub"), None, 10).unwrap();
    assert!(
        rows.iter().any(|r| r.state == "retry"
            && r.reason.as_deref() == Some("lost: the job ended without a run record")),
        "{rows:?}"
    );
}

#[test]
fn a_job_run_twice_in_a_row_changes_nothing_the_second_time() {
    let spool = Spool::new(Setup::default());
    let names = spool.add_raw(0..3);
    let mut engine = spool.scrub_engine();
    // Keep a copy of one job's spec (a first attempt's spec is its claim) to run it again by
    // hand later.
    engine.pass().unwrap();
    let spec = list_tree(&spool.scrub_state().join("claims"))
        .into_iter()
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .unwrap();
    let saved = spool.dir.path().join("saved.spec.json");
    std::fs::copy(&spec, &saved).unwrap();
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
    let inode = ino(&spool.scrubbed_dir().join(&names[0]));

    // The same job again: it steps aside (its claim is gone), writing nothing.
    let status = std::process::Command::new(LANDER)
        .args(["dispatch", "job-wrapper"])
        .arg(&saved)
        .status()
        .unwrap();
    assert!(status.success());
    // Another pass: nothing to do.
    let r = engine.pass().unwrap();
    assert_eq!((r.submitted, r.succeeded), (0, 0));
    // The same raw file published again is scrubbed again but changes nothing published.
    spool.add_raw(0..1);
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
    assert_eq!(ino(&spool.scrubbed_dir().join(&names[0])), inode);
}

#[test]
fn two_dispatchers_at_once_scrub_each_file_once() {
    let spool = Spool::new(Setup {
        slots: 3,
        ..Setup::default()
    });
    let names = spool.add_raw(0..40);
    let mut a = spool.scrub_engine();
    let mut b = spool.scrub_engine();
    std::thread::scope(|s| {
        s.spawn(|| drain(&mut a));
        s.spawn(|| drain(&mut b));
    });
    // A last pass picks up anything one finished while the other was still looking.
    drain(&mut spool.scrub_engine());
    spool.assert_scrubbed_exactly_once(&names);
    let records = spool.records(&spool.scrub_state());
    assert_eq!(records.len(), names.len(), "each file's job ran once");
}

#[test]
fn two_copies_of_one_job_at_once_run_once() {
    let tmp = tempfile::tempdir().unwrap();
    // Each run of the job leaves a line in `runs`: the count says how often it ran.
    let runs = tmp.path().join("runs");
    let slow = script(
        tmp.path(),
        "slow.sh",
        &format!(
            "echo run >> {}\nsleep 0.5\nexec {LANDER} dispatch copy-job \"$1\" \"$2\"",
            runs.display()
        ),
    );
    let spool = Spool::new(Setup {
        scrub_command: vec![slow],
        ..Setup::default()
    });
    let names = spool.add_raw(0..1);
    let mut engine = spool.scrub_engine();
    engine.pass().unwrap();
    let spec = spool
        .scrub_state()
        .join("claims")
        .join(SITE)
        .join(&names[0]);
    running_job_pid(&spool.scrub_state());
    // A second copy of the running job steps aside: it does not run the job.
    let status = std::process::Command::new(LANDER)
        .args(["dispatch", "job-wrapper"])
        .arg(&spec)
        .status()
        .unwrap();
    assert!(status.success());
    drain(&mut engine);
    let ran = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(
        ran.lines().count(),
        1,
        "the job ran once, not once per copy"
    );
    spool.assert_scrubbed_exactly_once(&names);
    assert_eq!(spool.records(&spool.scrub_state()).len(), 1);
}

#[test]
fn a_bad_output_digest_is_not_published_and_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let flag = tmp.path().join("corrupt-once");
    let corrupt = script(
        tmp.path(),
        "corrupt.sh",
        &format!("{LANDER} dispatch copy-job \"$1\" \"$2\" || exit 1\nif [ ! -e {flag:?} ]; then touch {flag:?}; echo garbage >> \"$2\"; fi"),
    );
    let spool = Spool::new(Setup {
        scrub_command: vec![corrupt],
        ..Setup::default()
    });
    let names = spool.add_raw(0..1);
    let mut engine = spool.scrub_engine();
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
    let rows = spool.ledger().list(Some("scrub"), None, 10).unwrap();
    assert!(
        rows.iter().any(
            |r| r.state == "retry" && r.reason.as_deref().is_some_and(|x| x.contains("BLAKE3"))
        ),
        "{rows:?}"
    );
    let ok = spool
        .records(&spool.scrub_state())
        .iter()
        .filter(|r| r.outcome == JobOutcome::Success)
        .count();
    assert_eq!(
        ok, 2,
        "the job itself succeeded twice; only the second output was published"
    );
}

#[test]
fn queue_limit_stops_submission_and_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let slow = script(
        tmp.path(),
        "slow.sh",
        &format!("sleep 0.3\nexec {LANDER} dispatch copy-job \"$1\" \"$2\""),
    );
    let spool = Spool::new(Setup {
        scrub_command: vec![slow],
        queue_limit: 1,
        ..Setup::default()
    });
    let names = spool.add_raw(0..3);
    let mut engine = spool.scrub_engine();
    let r = engine.pass().unwrap();
    assert_eq!(r.submitted, 1);
    assert!(r.over_limit, "{r:?}");
    assert_eq!(r.backlog, 2);
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
}

#[test]
fn a_paused_stage_starts_nothing_until_resumed() {
    let spool = Spool::new(Setup::default());
    let names = spool.add_raw(0..2);
    lander_dispatch::control::pause(&spool.config, "scrub").unwrap();
    let mut engine = spool.scrub_engine();
    let r = engine.pass().unwrap();
    assert!(r.held);
    assert_eq!(r.submitted, 0);
    lander_dispatch::control::resume(&spool.config, "scrub").unwrap();
    drain(&mut engine);
    spool.assert_scrubbed_exactly_once(&names);
}

#[test]
fn the_monitor_reports_work_no_dispatcher_picked_up_and_jobs_never_started() {
    let spool = Spool::new(Setup {
        lost_grace: 60.0,
        ..Setup::default()
    });
    spool.add_raw(0..2);
    std::thread::sleep(Duration::from_millis(50));
    let st = lander_dispatch::monitor::status(&spool.config).unwrap();
    assert_eq!(st.stages[0].waiting_files, 2);
    assert!(
        st.problems
            .iter()
            .any(|p| p.starts_with("scrub: 2 files waiting")),
        "{:?}",
        st.problems
    );
    // Jobs submitted to a backend that never starts them show up as not started.
    let mut engine = spool.scrub_engine_with(vec!["/bin/true".into()]);
    engine.pass().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let st = lander_dispatch::monitor::status(&spool.config).unwrap();
    assert_eq!(st.stages[0].not_started, 2, "{st:?}");
    assert!(
        st.problems
            .iter()
            .any(|p| p.contains("2 jobs submitted but not started")),
        "{:?}",
        st.problems
    );
    let page = lander_dispatch::status::build(&spool.config).unwrap();
    let html = lander_dispatch::status::html::render(
        &page,
        lander_dispatch::status::html::Refresh::Meta(60),
    );
    assert!(html.contains("not started"));
}

#[test]
fn the_real_lander_scrub_runs_as_the_scrub_job() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key");
    let ok = std::process::Command::new(LANDER)
        .args(["keygen", "--out"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(ok.success(), "lander keygen");
    let spool = Spool::new(Setup {
        scrub_command: vec![env!("CARGO_BIN_EXE_lander-scrub").into()],
        scrub_args: String::new(),
        extra_scrub: format!("key_file = {key:?}\npayload = \"zero\""),
        ..Setup::default()
    });
    std::fs::create_dir_all(spool.raw_dir()).unwrap();
    let name = Spool::name(0);
    let staged = tmp.path().join(&name);
    let ok = std::process::Command::new(LANDER)
        .args(["gen", "syn-flood", "--packets", "200", "--out"])
        .arg(&staged)
        .status()
        .unwrap();
    assert!(ok.success(), "lander gen");
    std::fs::rename(&staged, spool.raw_dir().join(&name)).unwrap();
    let mut engine = spool.scrub_engine();
    drain(&mut engine);
    let rows = spool.ledger().list(Some("scrub"), None, 10).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].state, "succeeded", "{rows:?}");
    assert_eq!(rows[0].packets, Some(200));
    let published = spool.scrubbed_dir().join(&name);
    let manifest =
        lander_spool::manifest::Manifest::read(&lander_spool::manifest::manifest_path(&published))
            .unwrap();
    assert!(manifest.anonymization.is_some());
    for user in USERS {
        assert_eq!(
            ino(&spool.user_dir(user, "incoming").join(&name)),
            ino(&published)
        );
    }
    assert!(list(&spool.raw_dir()).is_empty());
}

#[test]
fn several_dispatchers_starting_at_once_on_a_new_database_all_work() {
    let spool = Spool::new(Setup {
        slots: 3,
        ..Setup::default()
    });
    let names = spool.add_raw(0..12);
    assert!(!spool.config.state_db.exists());
    let children: Vec<_> = (0..6)
        .map(|_| {
            std::process::Command::new(LANDER)
                .args(["-q", "dispatch", "--config"])
                .arg(spool.config_path())
                .arg("once")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a dispatcher failed: {err}");
        assert!(!err.contains("locked"), "{err}");
    }
    drain(&mut spool.scrub_engine());
    spool.assert_scrubbed_exactly_once(&names);
}
