//! Users' stages: processor environment, outcomes (retry, fail, ignore, timeout), time windows,
//! and the four failure modes.

mod dispatch_support;

use std::time::Duration;

use dispatch_support::*;
use lander_dispatch::record::JobOutcome;

/// A spool whose users' incoming directories hold `n` scrubbed files.
fn fed(setup: Setup, n: usize) -> (Spool, Vec<String>) {
    let spool = Spool::new(setup);
    let names = spool.add_raw(0..n);
    drain(&mut spool.scrub_engine());
    spool.assert_scrubbed_exactly_once(&names);
    (spool, names)
}

fn user_records(spool: &Spool, user: &str) -> Vec<lander_dispatch::record::JobRecord> {
    spool.records(&spool.user_state(user))
}

#[test]
fn processor_gets_its_environment_and_files_move_to_done() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("seen");
    let proc_ = script(
        tmp.path(),
        "proc.sh",
        &format!("test -s \"$LANDER_MANIFEST\" || exit 9\necho \"$LANDER_FILE $LANDER_JOB $LANDER_ATTEMPT\" >> {log:?}"),
    );
    let (spool, names) = fed(
        Setup {
            processor: vec![proc_],
            ..Setup::default()
        },
        3,
    );
    drain(&mut spool.user_engine("alice"));
    let mut done = names
        .iter()
        .flat_map(|n| [n.clone(), format!("{n}.json")])
        .collect::<Vec<_>>();
    done.sort();
    assert_eq!(list(&spool.user_dir("alice", "done")), done);
    assert!(list(&spool.user_dir("alice", "in-process")).is_empty());
    assert!(list(&spool.user_dir("alice", "incoming")).is_empty());
    let seen = std::fs::read_to_string(&log).unwrap();
    assert_eq!(seen.lines().count(), 3);
    assert!(
        seen.lines()
            .all(|l| l.contains("/in-process/") && l.ends_with(" 1")),
        "{seen}"
    );
    // bob's files were not touched by alice's dispatcher.
    assert_eq!(list(&spool.user_dir("bob", "incoming")).len(), 6);
    spool.assert_no_temporaries();
}

#[test]
fn exit_codes_map_to_retry_fail_and_ignore() {
    let tmp = tempfile::tempdir().unwrap();
    // Exit 3 on the first attempt of file 0 (retry), 4 for file 1 (fail), 5 for file 2 (ignore).
    let proc_ = script(
        tmp.path(),
        "proc.sh",
        "case \"$LANDER_FILE\" in\n*-0.pcap) [ \"$LANDER_ATTEMPT\" = 1 ] && exit 3 ;;\n*-1.pcap) exit 4 ;;\n*-2.pcap) exit 5 ;;\nesac\nexit 0",
    );
    let extra = "on_exit = { \"3\" = \"retry\", \"4\" = \"fail\", \"5\" = \"ignore\" }".to_owned();
    let (spool, names) = fed(
        Setup {
            processor: vec![proc_],
            extra_user: extra,
            ..Setup::default()
        },
        3,
    );
    drain(&mut spool.user_engine("alice"));
    let done = list(&spool.user_dir("alice", "done"));
    assert!(
        done.contains(&names[0]) && done.contains(&names[2]),
        "{done:?}"
    );
    let failed = list(&spool.user_dir("alice", "failed"));
    assert!(failed.contains(&names[1]), "{failed:?}");
    let reason = std::fs::read_to_string(
        spool
            .user_dir("alice", "failed")
            .join(format!("{}.reason", names[1])),
    )
    .unwrap();
    assert!(reason.contains("exit 4"), "{reason}");
    let rows = spool.user_ledger("alice").list(None, None, 100).unwrap();
    let states: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.item.strip_prefix("s1/").unwrap().to_owned(),
                r.state.clone(),
            )
        })
        .collect();
    assert!(
        states.contains(&(names[0].clone(), "retry".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(names[0].clone(), "succeeded".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(names[1].clone(), "failed".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(names[2].clone(), "ignored".into())),
        "{states:?}"
    );
    // Job control: retry the failed file; it fails again, exactly once more.
    let job = rows
        .iter()
        .find(|r| r.item == format!("{SITE}/{}", names[1]))
        .unwrap()
        .job_id
        .clone();
    lander_dispatch::control::retry(&spool.config, &job).unwrap();
    assert!(spool.user_dir("alice", "incoming").join(&names[1]).exists());
    drain(&mut spool.user_engine("alice"));
    assert!(list(&spool.user_dir("alice", "failed")).contains(&names[1]));
}

#[test]
fn a_timeout_ends_the_whole_process_group() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("child.pid");
    let proc_ = script(
        tmp.path(),
        "proc.sh",
        &format!("sleep 60 &\necho $! > {pidfile:?}\nwait"),
    );
    let extra = "timeout_secs = 1\non_timeout = \"fail\"".to_owned();
    let (spool, names) = fed(
        Setup {
            processor: vec![proc_],
            extra_user: extra,
            ..Setup::default()
        },
        1,
    );
    drain(&mut spool.user_engine("alice"));
    assert!(list(&spool.user_dir("alice", "failed")).contains(&names[0]));
    let recs = user_records(&spool, "alice");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].outcome, JobOutcome::Timeout);
    let child: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        lander_dispatch::sys::start_time(child).is_none(),
        "the background child was ended too"
    );
}

#[test]
fn work_waits_outside_its_time_windows() {
    // A window of one minute twelve hours from now.
    let now = lander_dispatch::sys::now() as i64;
    let m = ((now + 12 * 3600) % 86_400) / 60;
    let hours = format!(
        "{:02}:{:02}-{:02}:{:02}",
        m / 60,
        m % 60,
        (m + 1) / 60 % 24,
        (m + 1) % 60
    );
    let extra = format!("windows = [ {{ days = \"*\", hours = \"{hours}\" }} ]");
    let (spool, names) = fed(
        Setup {
            extra_user: extra,
            ..Setup::default()
        },
        2,
    );
    let r = spool.user_engine("alice").pass().unwrap();
    assert!(r.held);
    assert_eq!(r.submitted, 0);
    assert_eq!(
        list(&spool.user_dir("alice", "incoming")).len(),
        2 * names.len()
    );
}

#[test]
fn a_job_that_never_runs_is_reported() {
    let (spool, names) = fed(
        Setup {
            lost_grace: 0.2,
            ..Setup::default()
        },
        1,
    );
    let mut engine = spool.user_engine_with("alice", vec!["/bin/true".into()]);
    let r = pass_until(&mut engine, "the job to be given up", |r| r.gave_up == 1);
    assert_eq!(r.active(), 0);
    assert!(list(&spool.user_dir("alice", "failed")).contains(&names[0]));
    let rows = spool.user_ledger("alice").list(None, None, 100).unwrap();
    assert!(
        rows.iter()
            .all(|r| r.reason.as_deref() == Some("lost: the job never started")),
        "{rows:?}"
    );
}

#[test]
fn a_processor_killed_mid_run_is_redone_and_nothing_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let flag = tmp.path().join("hang-once");
    let proc_ = script(
        tmp.path(),
        "proc.sh",
        &format!("if [ ! -e {flag:?} ]; then touch {flag:?}; sleep 60; fi"),
    );
    let (spool, names) = fed(
        Setup {
            processor: vec![proc_],
            lost_grace: 0.5,
            ..Setup::default()
        },
        1,
    );
    let mut engine = spool.user_engine("alice");
    engine.pass().unwrap();
    let pid = running_job_pid(&spool.user_state("alice"));
    kill(pid, "KILL");
    pass_until(&mut engine, "the lost job", |r| r.lost == 1);
    drain(&mut engine);
    assert!(list(&spool.user_dir("alice", "done")).contains(&names[0]));
    assert!(list(&spool.user_dir("alice", "in-process")).is_empty());
    let ok = user_records(&spool, "alice")
        .iter()
        .filter(|r| r.outcome == JobOutcome::Success)
        .count();
    assert_eq!(ok, 1);
    spool.assert_no_temporaries();
}

#[test]
fn a_file_linked_again_after_processing_is_not_processed_twice() {
    let (spool, names) = fed(Setup::default(), 2);
    let mut engine = spool.user_engine("alice");
    drain(&mut engine);
    assert_eq!(user_records(&spool, "alice").len(), 2);
    // A second pass does nothing.
    let r = engine.pass().unwrap();
    assert_eq!((r.submitted, r.succeeded), (0, 0));
    // The fan-out runs again (the same raw file arrives again): alice already has it.
    spool.add_raw(0..1);
    drain(&mut spool.scrub_engine());
    // Even a duplicate link dropped straight into incoming is recognized and dropped.
    std::fs::hard_link(
        spool.scrubbed_dir().join(&names[1]),
        spool.user_dir("alice", "incoming").join(&names[1]),
    )
    .unwrap();
    drain(&mut engine);
    assert_eq!(
        user_records(&spool, "alice").len(),
        2,
        "no file processed twice"
    );
    assert!(list(&spool.user_dir("alice", "incoming")).is_empty());
}

#[test]
fn two_user_dispatchers_at_once_process_each_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("seen");
    let proc_ = script(
        tmp.path(),
        "proc.sh",
        &format!("echo \"$LANDER_FILE\" >> {log:?}"),
    );
    let (spool, names) = fed(
        Setup {
            processor: vec![proc_],
            slots: 3,
            ..Setup::default()
        },
        30,
    );
    let mut a = spool.user_engine("alice");
    let mut b = spool.user_engine("alice");
    std::thread::scope(|s| {
        s.spawn(|| drain(&mut a));
        s.spawn(|| drain(&mut b));
    });
    drain(&mut spool.user_engine("alice"));
    let seen = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<_> = seen.lines().collect();
    lines.sort();
    lines.dedup();
    assert_eq!(
        seen.lines().count(),
        names.len(),
        "each file processed once"
    );
    assert_eq!(lines.len(), names.len());
    assert_eq!(
        list(&spool.user_dir("alice", "done")).len(),
        2 * names.len()
    );
}
