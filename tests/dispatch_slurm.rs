//! The dispatcher on a real single-node Slurm cluster that these tests bring up themselves
//! (see `slurm_support`).
//!
//! Needs the Debian packages `slurmctld slurmd slurm-client munge` (scripts/bootstrap.sh);
//! without them the tests fail, naming that script.

mod dispatch_support;
mod slurm_support;

use std::process::Command;
use std::time::Duration;

use dispatch_support::{ino, list, pass_until, running_job_pid, script, Spool, SITE, USERS};
use lander_dispatch::backend::{Backend, JobState};
use lander_dispatch::config::Config;
use lander_dispatch::control;
use lander_dispatch::engine::PassReport;
use lander_dispatch::ledger::Ledger;
use lander_dispatch::record::{read_json, JobOutcome, JobRecord};
use slurm_support::*;
// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn captured_files_are_scrubbed_on_slurm_end_to_end() {
    let c = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key");
    run_ok(
        Command::new(LANDER).args(["keygen", "--out"]).arg(&key),
        "lander keygen",
    );
    // The real lander-scrub, found beside the lander binary (the default scrub command).
    let spool = slurm_spool(
        &c,
        &[env!("CARGO_BIN_EXE_lander-scrub").into()],
        &format!("key_file = {key:?}\npayload = \"zero\""),
        "db/dispatch.sqlite",
    );
    let text = std::fs::read_to_string(spool.config_path()).unwrap();
    let text = text.replace("args = [\"{in}\", \"{out}\"]\n", "");
    std::fs::write(spool.config_path(), text).unwrap();
    // Raw files as the capture tool publishes them: rotated traces with their manifests.
    let trace = tmp.path().join("trace.pcap");
    run_ok(
        Command::new(LANDER)
            .args(["gen", "mixed", "--packets", "300", "--seed", "7", "--out"])
            .arg(&trace),
        "lander gen",
    );
    run_ok(
        Command::new(CAPTURE)
            .arg("--read")
            .arg(&trace)
            .arg("--out-dir")
            .arg(spool.raw_dir())
            .args(["--site", SITE, "--rotate-packets", "100"]),
        "lander-capture --read",
    );
    let names: Vec<String> = list(&spool.raw_dir())
        .into_iter()
        .filter(|n| !n.ends_with(".json"))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");

    let total = dispatch_until_quiescent(&spool.config_path());
    assert_eq!(total.succeeded, 3, "{total:?}");
    assert_eq!(total.submitted, 3, "{total:?}");
    assert_eq!((total.lost, total.failed_attempts), (0, 0), "{total:?}");

    assert!(list(&spool.raw_dir()).is_empty(), "raw files left");
    let ledger = Ledger::open(&spool.config.state_db).unwrap();
    let rows = ledger.list(Some("scrub"), None, 100).unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let records = spool.records(&spool.scrub_state());
    for name in &names {
        let published = spool.scrubbed_dir().join(name);
        let manifest = lander_spool::manifest::Manifest::read(
            &lander_spool::manifest::manifest_path(&published),
        )
        .unwrap();
        assert_eq!(manifest.packets, 100, "{name}");
        assert!(manifest.anonymization.is_some(), "{name}");
        for user in USERS {
            let link = spool.user_dir(user, "incoming").join(name);
            assert_eq!(ino(&link), ino(&published), "{user}'s link to {name}");
        }
        let row = rows.iter().find(|r| r.item == item(name)).unwrap();
        assert_eq!(row.state, "succeeded");
        assert_eq!(row.packets, Some(100));
        // The backend id is the Slurm array task's id (`<array>_<index>`).
        let id = row.backend_id.as_deref().unwrap();
        let (array, index) = id.split_once('_').unwrap();
        assert!(
            array.parse::<u64>().is_ok() && index.parse::<u64>().is_ok(),
            "{id:?}"
        );
        let rec = records.iter().find(|r| r.item == item(name)).unwrap();
        assert_eq!(rec.outcome, JobOutcome::Success);
        assert_eq!(rec.host, c.host);
    }
    // One pass found all three: one array of three tasks, one sbatch call.
    assert_eq!(c.arrays_of(spool.dir.path()), vec![3]);
    spool.assert_no_temporaries();
}

#[test]
fn a_finished_job_gone_from_squeue_is_settled_by_its_record() {
    let c = cluster();
    let spool = slurm_spool(&c, &copy_job(), "", "db/dispatch.sqlite");
    let names = spool.add_raw(100..101);
    let r = engine(&spool).pass().unwrap();
    assert_eq!(r.submitted, 1, "{r:?}");
    let row = &spool.ledger().list(Some("scrub"), None, 10).unwrap()[0];
    let id = row.backend_id.clone().unwrap();
    // No dispatcher watches while the job runs, ends and is purged from Slurm's memory.
    let record = spool
        .config
        .spool
        .join("state/scrub/records")
        .join(format!("{}.json", row.job_id));
    wait_for("the run record", Duration::from_secs(30), || {
        record.exists()
    });
    wait_for(
        "Slurm to forget the job (MinJobAge)",
        Duration::from_secs(30),
        || c.squeue_state(&id).is_empty(),
    );
    let states = c
        .settings(&spool.config)
        .poll(std::slice::from_ref(&id))
        .unwrap();
    assert_eq!(states[&id], JobState::Unknown);
    // A new dispatcher (as after a restart) finds the record: finished, not lost.
    let r = engine(&spool).pass().unwrap();
    assert_eq!((r.succeeded, r.lost, r.failed_attempts), (1, 0, 0), "{r:?}");
    spool.assert_scrubbed_exactly_once(&names);
}

#[test]
fn a_job_still_queued_is_pending_and_not_lost_across_dispatcher_runs() {
    let c = cluster();
    let spool = slurm_spool(&c, &copy_job(), "", "db/dispatch.sqlite");
    // lost_grace 0.1 s: only Slurm's word keeps a job that has not started from being lost.
    let text = std::fs::read_to_string(spool.config_path()).unwrap();
    let text = text.replace("lost_grace_secs = 30", "lost_grace_secs = 0.1");
    let text = text.replace(
        "[\"--cpus-per-task=1\"]",
        "[\"--cpus-per-task=1\", \"--hold\"]",
    );
    std::fs::write(spool.config_path(), text).unwrap();
    let spool = Spool {
        config: Config::load(&spool.config_path()).unwrap(),
        ..spool
    };
    let names = spool.add_raw(400..402);
    assert_eq!(engine(&spool).pass().unwrap().submitted, 2);
    let rows = spool.ledger().list(Some("scrub"), None, 10).unwrap();
    let row_of = |name: &str| rows.iter().find(|r| r.item == item(name)).unwrap();
    let (held, cancelled) = (row_of(&names[0]), row_of(&names[1]));
    let id = held.backend_id.clone().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // A fresh engine knows the held jobs' ids from the history and asks Slurm.
    let r = engine(&spool).pass().unwrap();
    assert_eq!((r.pending, r.lost), (2, 0), "{r:?}");
    assert_eq!(c.squeue_state(&id), "PENDING");
    // Job control cancels a queued Slurm job in Slurm too.
    let said = control::cancel(&spool.config, &cancelled.job_id).unwrap();
    assert!(said.contains("before it started"), "{said}");
    let other = cancelled.backend_id.clone().unwrap();
    assert!(
        matches!(c.squeue_state(&other).as_str(), "CANCELLED" | ""),
        "{}",
        c.squeue_state(&other)
    );
    run_ok(c.cmd("scontrol").args(["release", &id]), "scontrol release");
    let mut e = engine(&spool);
    let r = pass_until(&mut e, "the released job", |r| r.quiescent());
    assert_eq!((r.failed_items, r.lost), (1, 0), "{r:?}");
    let mut want = vec![names[0].clone(), format!("{}.json", names[0])];
    want.sort();
    assert_eq!(list(&spool.scrubbed_dir()), want);
    assert!(spool.raw_dir().join(&names[1]).exists());
}

#[test]
fn scancel_is_a_cancel_and_a_killed_job_is_retried() {
    let c = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let hang = tmp.path().join("hang");
    let scrub = script(
        tmp.path(),
        "scrub.sh",
        &format!(
            "while [ -e {hang:?} ]; do sleep 0.1; done\nexec {LANDER} dispatch copy-job \"$1\" \"$2\""
        ),
    );
    let spool = slurm_spool(&c, &[scrub], "", "db/dispatch.sqlite");
    let names = spool.add_raw(200..201);
    std::fs::write(&hang, "").unwrap();
    let mut e = engine(&spool);
    assert_eq!(e.pass().unwrap().submitted, 1);
    running_job_pid(&spool.scrub_state());
    let id = |attempt: u32| {
        let rows = spool.ledger().list(Some("scrub"), None, 10).unwrap();
        let row = rows.into_iter().find(|r| r.attempt == attempt).unwrap();
        (row.job_id, row.backend_id.unwrap())
    };

    // Job control cancels through Slurm (scancel sends TERM); with its note in place the
    // wrapper records a cancel, which the scrub stage fails.
    let (job1, _) = id(1);
    control::cancel(&spool.config, &job1).unwrap();
    pass_until(&mut e, "the cancelled job to be given up", |r| {
        r.failed_items == 1
    });
    let rec: JobRecord = read_json(&spool.scrub_state().join(format!("records/{job1}.json")))
        .unwrap()
        .unwrap();
    assert_eq!(rec.outcome, JobOutcome::Cancelled);
    let row = spool.ledger().get(&job1).unwrap().unwrap();
    assert_eq!(
        (row.state.as_str(), row.reason.as_deref()),
        ("failed", Some("cancelled"))
    );

    // Job control queues it again; this time the job is killed outright (no record): it is
    // lost, and retried by the stage's retry policy.
    control::retry(&spool.config, &job1).unwrap();
    let second = || {
        let rows = spool.ledger().list(Some("scrub"), None, 10).unwrap();
        rows.into_iter()
            .find(|r| r.attempt == 2 && r.item == item(&names[0]))
    };
    pass_until(&mut e, "the second attempt to be submitted", |_| {
        second().is_some()
    });
    let (job2, slurm2) = id(2);
    let marker = spool.scrub_state().join(format!("jobs/{job2}.start.json"));
    wait_for(
        "the second attempt's start marker",
        Duration::from_secs(30),
        || marker.exists(),
    );
    // Slurm's own KILL comes after a TERM (a cancel), so the job is killed outright as the
    // kernel's OOM killer or a crash would: no record, and the job ends in Slurm.
    let m: lander_dispatch::record::StartMarker = read_json(&marker).unwrap().unwrap();
    assert_eq!(m.host, c.host);
    signal(m.pid, "KILL");
    wait_for("Slurm to see the job end", Duration::from_secs(30), || {
        !matches!(c.squeue_state(&slurm2).as_str(), "RUNNING" | "COMPLETING")
    });
    std::fs::remove_file(&hang).unwrap();
    pass_until(&mut e, "the file to be scrubbed", |r| r.quiescent());
    let row = spool.ledger().get(&job2).unwrap().unwrap();
    assert_eq!(row.state, "retry", "{row:?}");
    assert_eq!(
        row.reason.as_deref(),
        Some("lost: the job ended without a run record")
    );
    let rows = spool
        .ledger()
        .list(Some("scrub"), Some("succeeded"), 10)
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].attempt, 3);
    spool.assert_scrubbed_exactly_once(&names);
}

#[test]
fn two_dispatchers_at_once_submit_each_file_once() {
    let c = cluster();
    let spool = slurm_spool(&c, &copy_job(), "", "db/a.sqlite");
    let names = spool.add_raw(300..306);
    // A second dispatcher on the same spool with its own history, as on another host.
    let other = spool.dir.path().join("other.toml");
    let text = std::fs::read_to_string(spool.config_path()).unwrap();
    std::fs::write(&other, text.replace("db/a.sqlite", "db/b.sqlite")).unwrap();
    let configs = [spool.config_path(), other];
    let totals: Vec<PassReport> = std::thread::scope(|s| {
        let handles: Vec<_> = configs
            .iter()
            .map(|cfg| s.spawn(move || dispatch_until_quiescent(cfg)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Both may settle the same finished job (idempotently); only one submits it.
    let submitted: usize = totals.iter().map(|t| t.submitted).sum();
    assert_eq!(submitted, 6, "{totals:?}");
    assert!(totals.iter().all(|t| t.lost == 0), "{totals:?}");
    let tasks: usize = c.arrays_of(spool.dir.path()).iter().sum();
    assert_eq!(tasks, 6, "array tasks submitted");
    // Each file was submitted once, by one dispatcher, and succeeded at its first attempt.
    let mut rows = Vec::new();
    for db in ["db/a.sqlite", "db/b.sqlite"] {
        let path = spool.dir.path().join(db);
        if path.exists() {
            let ledger = Ledger::open(&path).unwrap();
            rows.extend(ledger.list(Some("scrub"), None, 100).unwrap());
        }
    }
    for name in &names {
        let of_item = || rows.iter().filter(|r| r.item == item(name));
        let submitted = of_item().filter(|r| r.backend_id.is_some()).count();
        let settled = of_item().filter(|r| r.state == "succeeded").count();
        assert_eq!(submitted, 1, "{name}: {rows:?}");
        assert!(settled >= 1, "{name}: {rows:?}");
        assert!(of_item().all(|r| r.attempt == 1), "{rows:?}");
    }
    assert!(list(&spool.raw_dir()).is_empty());
    let scrubbed: Vec<String> = list(&spool.scrubbed_dir())
        .into_iter()
        .filter(|n| !n.ends_with(".json"))
        .collect();
    assert_eq!(scrubbed, names);
    for user in USERS {
        let incoming = list(&spool.user_dir(user, "incoming"));
        assert_eq!(incoming.len(), 2 * names.len(), "{user}: {incoming:?}");
    }
}

#[test]
fn an_unreachable_controller_fails_the_pass_and_loses_no_job() {
    // Stand-ins for the Slurm commands (no cluster needed): squeue answers as told.
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path();
    let says = bin.join("squeue-says");
    let squeue = script(
        bin,
        "squeue",
        &format!(
            "case $(cat '{}') in\n\
             down) echo 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2; exit 1;;\n\
             pending) for a; do case $a in --name=*) echo \"41_0|${{a#--name=}}|PENDING\";; esac; done;;\n\
             esac",
            says.display()
        ),
    );
    let sbatch = script(bin, "sbatch", "cat > /dev/null; echo 41");
    let backend = format!(
        "[backend]\nkind = \"slurm\"\n\n[backend.slurm]\nsbatch = {sbatch:?}\nsqueue = {squeue:?}\n\
         scontrol = \"/bin/false\"\n"
    );
    let spool = spool_with_backend(&backend, &copy_job(), "", "db/dispatch.sqlite");
    let text = std::fs::read_to_string(spool.config_path()).unwrap();
    let text = text.replace("lost_grace_secs = 30", "lost_grace_secs = 0.1");
    std::fs::write(spool.config_path(), text).unwrap();
    let spool = Spool {
        config: Config::load(&spool.config_path()).unwrap(),
        ..spool
    };
    spool.add_raw(500..501);
    assert_eq!(engine(&spool).pass().unwrap().submitted, 1);
    std::thread::sleep(Duration::from_millis(300));

    // The controller is down: the pass fails; nothing is judged lost.
    std::fs::write(&says, "down").unwrap();
    let err = engine(&spool).pass().unwrap_err().to_string();
    assert!(err.contains("Unable to contact"), "{err}");
    let rows = spool.ledger().list(Some("scrub"), None, 10).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].state, "submitted", "{rows:?}");

    // Back, and the job still queued: pending.
    std::fs::write(&says, "pending").unwrap();
    let r = engine(&spool).pass().unwrap();
    assert_eq!((r.pending, r.lost), (1, 0), "{r:?}");

    // Slurm no longer knows it and it never started: lost (not finished), and retried.
    std::fs::write(&says, "gone").unwrap();
    let r = engine(&spool).pass().unwrap();
    assert_eq!((r.lost, r.waiting), (1, 1), "{r:?}");
    assert_eq!(engine(&spool).pass().unwrap().submitted, 1);
    let row = spool.ledger().get(&rows[0].job_id).unwrap().unwrap();
    assert_eq!(row.reason.as_deref(), Some("lost: the job never started"));
}

#[test]
fn a_failed_sbatch_backs_off_and_its_items_go_out_once_when_it_works() {
    // Stand-ins (no cluster needed): sbatch fails or answers as told; the queue is empty.
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path();
    let (mode, calls) = (bin.join("mode"), bin.join("calls"));
    let sbatch = script(
        bin,
        "sbatch",
        &format!(
            "echo \"$*\" >> {calls:?}\ncat > /dev/null\n\
             if [ \"$(cat {mode:?})\" = fail ]; then\n\
             echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv' >&2; exit 1\n\
             fi\necho 41"
        ),
    );
    let squeue = script(bin, "squeue", "exit 0");
    let backend = format!(
        "[backend]\nkind = \"slurm\"\n\n[backend.slurm]\nsbatch = {sbatch:?}\nsqueue = {squeue:?}\n\
         scontrol = \"/bin/false\"\n"
    );
    let spool = spool_with_backend(&backend, &copy_job(), "", "db/dispatch.sqlite");
    let text = std::fs::read_to_string(spool.config_path()).unwrap();
    let text = text.replace("lost_grace_secs = 30", "lost_grace_secs = 0.5");
    std::fs::write(spool.config_path(), text).unwrap();
    let spool = Spool {
        config: Config::load(&spool.config_path()).unwrap(),
        ..spool
    };
    let n_calls = || {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count()
    };
    spool.add_raw(600..602);
    std::fs::write(&mode, "fail").unwrap();
    let mut e = engine(&spool);
    let r = e.pass().unwrap();
    assert_eq!((r.submitted, r.arrays, r.pending), (0, 0, 2), "{r:?}");
    assert_eq!(n_calls(), 1);
    // Within the grace the intent may still have been taken: pending, and no new sbatch.
    let r = e.pass().unwrap();
    assert_eq!((r.pending, r.lost, r.submitted), (2, 0, 0), "{r:?}");
    // After the grace the queue does not know it: never submitted, queued again (no attempt
    // counted); sbatch is not tried while backing off.
    std::thread::sleep(Duration::from_millis(600));
    let r = e.pass().unwrap();
    assert_eq!((r.lost, r.waiting, r.failed_attempts), (2, 2, 0), "{r:?}");
    assert_eq!(e.pass().unwrap().submitted, 0, "backing off");
    assert_eq!(n_calls(), 1);
    std::fs::write(&mode, "ok").unwrap();
    let r = pass_until(&mut e, "the retry after the back-off", |r| r.submitted > 0);
    assert_eq!((r.submitted, r.arrays), (2, 1), "{r:?}");
    let log = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(n_calls(), 2, "{log}");
    assert!(log.lines().nth(1).unwrap().contains("--array=0-1"), "{log}");
    let rows = spool.ledger().list(Some("scrub"), None, 10).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.attempt == 1 && r.backend_id.is_some()),
        "{rows:?}"
    );
}

#[test]
fn array_limits_come_from_the_cluster_unless_configured() {
    let c = cluster();
    let spool = slurm_spool(&c, &copy_job(), "", "db/dispatch.sqlite");
    let mut b = c.settings(&spool.config);
    // The test cluster's MaxArraySize=4001 (array indices 0-4000); MaxJobCount is Slurm's
    // default.
    assert_eq!(b.arrays().unwrap().max_tasks, 4001);
    assert_eq!(b.capacity(), Some(10_000));
    let mut settings = spool.config.backend.slurm.clone();
    settings.max_array_size = Some(300);
    settings.max_jobs = Some(700);
    let mut b = lander_dispatch::backend::SlurmBackend::new(vec![], settings);
    assert_eq!(b.arrays().unwrap().max_tasks, 300);
    assert_eq!(b.capacity(), Some(700));
}
