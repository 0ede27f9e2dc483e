//! Job arrays and faults on a real single-node Slurm cluster (see `slurm_support`): a
//! dispatcher killed between `sbatch` and recording, a burst after an outage, the controller
//! stopped mid-run, a node failing mid-job, one array task cancelled.
//!
//! These tests stop daemons of the one test cluster, so they run one at a time.

mod dispatch_support;
mod slurm_support;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dispatch_support::{list, script, Spool};
use lander_dispatch::backend::Backend;
use lander_dispatch::batch::{self, Batch};
use lander_dispatch::config::Config;
use lander_dispatch::engine::{Dispatcher, PassReport};
use lander_dispatch::ledger::JobRow;
use lander_dispatch::record::{read_json, JobOutcome, JobRecord, StartMarker};
use lander_dispatch::scrub::ScrubStage;
use slurm_support::*;

/// One test at a time: each may stop a daemon the others need.
fn serial() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A spool whose scrub job waits while `hang` exists, then copies; `extra` goes into
/// `[backend.slurm]`, `lost_grace` into `[monitor]`. The Slurm commands are this spool's own
/// wrappers, so each `squeue` call is counted in `<dir>/squeue.calls`.
fn spool(c: &Cluster, hang: &Path, extra: &str, lost_grace: f64) -> Spool {
    let tmp = tempfile::tempdir().unwrap();
    let job = script(
        tmp.path(),
        "scrub.sh",
        &format!(
            "while [ -e {hang:?} ]; do sleep 0.1; done\nexec {LANDER} dispatch copy-job \"$1\" \"$2\""
        ),
    );
    let spool = slurm_spool(c, &[job], "", "db/dispatch.sqlite");
    let calls = spool.dir.path().join("squeue.calls");
    let squeue = script(
        spool.dir.path(),
        "squeue",
        &format!(
            "echo x >> {calls:?}\nexec {:?} \"$@\"",
            c.base.join("bin/squeue")
        ),
    );
    std::mem::forget(tmp);
    let text = std::fs::read_to_string(spool.config_path()).unwrap();
    let text = text
        .replace(
            "lost_grace_secs = 30",
            &format!("lost_grace_secs = {lost_grace}"),
        )
        .replace(
            &format!("squeue = {:?}", c.base.join("bin/squeue")),
            &format!("squeue = {squeue:?}\n{extra}"),
        );
    std::fs::write(spool.config_path(), text).unwrap();
    Spool {
        config: Config::load(&spool.config_path()).unwrap(),
        ..spool
    }
}

fn squeue_calls(spool: &Spool) -> usize {
    std::fs::read_to_string(spool.dir.path().join("squeue.calls"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn batches(spool: &Spool) -> Vec<Batch> {
    batch::read_all(&spool.scrub_state().join("batches"))
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect()
}

fn markers(spool: &Spool) -> Vec<StartMarker> {
    let dir = spool.scrub_state().join("jobs");
    list(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".start.json"))
        .filter_map(|n| read_json::<StartMarker>(&dir.join(n)).ok().flatten())
        // A dispatcher's fence (pid 0) names no process.
        .filter(|m| !m.is_fence())
        .collect()
}

fn wait_markers(spool: &Spool, n: usize) {
    wait_for("jobs to start", Duration::from_secs(60), || {
        markers(spool).len() >= n
    });
}

/// Passes until `done`, within `limit`; returns the number of passes and the summed report.
fn passes_until(
    e: &mut Dispatcher<ScrubStage>,
    limit: Duration,
    mut done: impl FnMut(&PassReport) -> bool,
) -> (usize, PassReport) {
    let deadline = Instant::now() + limit;
    let mut total = PassReport::default();
    for n in 1.. {
        let r = e.pass().unwrap();
        total.succeeded += r.succeeded;
        total.submitted += r.submitted;
        total.arrays += r.arrays;
        total.lost += r.lost;
        total.failed_attempts += r.failed_attempts;
        if done(&r) {
            return (n, total);
        }
        assert!(
            Instant::now() < deadline,
            "not done: {r:?}, so far {total:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    unreachable!()
}

fn rows(spool: &Spool) -> Vec<JobRow> {
    spool.ledger().list(Some("scrub"), None, 10_000).unwrap()
}

#[test]
fn a_dispatcher_killed_between_sbatch_and_recording_adopts_its_array() {
    let _one = serial();
    let c = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let hang = tmp.path().join("hang");
    std::fs::write(&hang, "").unwrap();
    // lost_grace 0.1 s: only the adoption keeps the running jobs from being judged lost.
    let spool = spool(&c, &hang, "", 0.1);
    let names = spool.add_raw(0..3);
    let out = Command::new(LANDER)
        .args(["dispatch", "--config"])
        .arg(spool.config_path())
        .arg("once")
        .env("LANDER_CRASH_AT", "submitted")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    // The intent is on disk, without the id; the history has nothing.
    let b = batches(&spool);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!((b[0].tasks.len(), b[0].array_id.as_deref()), (3, None));
    assert!(rows(&spool).is_empty());
    wait_markers(&spool, 3);

    let mut e = engine(&spool);
    let r = e.pass().unwrap();
    assert_eq!((r.running, r.lost, r.submitted), (3, 0, 0), "{r:?}");
    let b = batches(&spool);
    let id = b[0].array_id.clone().expect("adopted: the id is recorded");
    assert_eq!(c.squeue_state(&format!("{id}_0")), "RUNNING");
    std::fs::remove_file(&hang).unwrap();
    let (_, total) = passes_until(&mut e, Duration::from_secs(90), |r| r.quiescent());
    assert_eq!(
        (total.succeeded, total.lost, total.submitted),
        (3, 0, 0),
        "{total:?}"
    );
    spool.assert_scrubbed_exactly_once(&names);
    assert_eq!(c.arrays_of(spool.dir.path()), vec![3], "one sbatch call");
}

#[test]
fn an_intent_never_submitted_is_queued_again_after_the_grace() {
    let _one = serial();
    let c = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let hang = tmp.path().join("hang");
    let spool = spool(&c, &hang, "", 1.0);
    let names = spool.add_raw(10..12);
    let out = Command::new(LANDER)
        .args(["dispatch", "--config"])
        .arg(spool.config_path())
        .arg("once")
        .env("LANDER_CRASH_AT", "intended")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    assert_eq!(batches(&spool).len(), 1);
    let mut e = engine(&spool);
    let r = e.pass().unwrap();
    assert_eq!(
        (r.pending, r.lost, r.submitted),
        (2, 0, 0),
        "within the grace: {r:?}"
    );
    let (_, total) = passes_until(&mut e, Duration::from_secs(90), |r| r.quiescent());
    assert_eq!((total.succeeded, total.submitted), (2, 2), "{total:?}");
    assert!(
        rows(&spool).iter().all(|r| r.attempt == 1),
        "not counted as a failure"
    );
    spool.assert_scrubbed_exactly_once(&names);
    assert_eq!(c.arrays_of(spool.dir.path()), vec![2]);
    wait_for("the settled batches to go", Duration::from_secs(10), || {
        e.pass().unwrap();
        batches(&spool).is_empty()
    });
}

#[test]
fn five_hundred_files_after_an_outage_go_out_in_a_few_arrays_each_processed_once() {
    let _one = serial();
    let c = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let spool = spool(
        &c,
        &tmp.path().join("no-hang"),
        "max_array_size = 200\narray_throttle = 16\n",
        30.0,
    );
    let names = spool.add_raw(1000..1500);
    let mut e = engine(&spool);
    let t0 = Instant::now();
    let r = e.pass().unwrap();
    let first = t0.elapsed();
    assert_eq!((r.submitted, r.arrays), (500, 3), "{r:?}");
    assert_eq!(c.arrays_of(spool.dir.path()), vec![200, 200, 100]);
    // One squeue for the three arrays, as a pass makes it (500 tasks in the queue).
    let arrays: Vec<String> = batches(&spool).into_iter().map(|b| b.array_name).collect();
    let mut backend = c.settings(&spool.config);
    let t = Instant::now();
    let q = backend.poll_arrays(&arrays).unwrap();
    let one_squeue = t.elapsed();
    assert_eq!(q.ids.len(), 3, "{:?}", q.ids);
    let calls0 = squeue_calls(&spool);
    let mut busy = Vec::new();
    let (passes, total) = passes_until(&mut e, Duration::from_secs(600), |r| {
        busy.push(r.busy);
        r.quiescent()
    });
    let squeues = squeue_calls(&spool) - calls0;
    busy.sort();
    eprintln!(
        "500 files: first pass (claims, specs, batch files, 3 sbatch) {first:?}; \
         one squeue of 3 arrays {one_squeue:?}; then {passes} passes (median {:?}, max {:?}), \
         {squeues} squeue calls, {:?} in all",
        busy[busy.len() / 2],
        busy[busy.len() - 1],
        t0.elapsed()
    );
    assert!(
        squeues <= passes,
        "{squeues} squeue calls in {passes} passes"
    );
    assert_eq!(
        (total.succeeded, total.lost, total.submitted),
        (500, 0, 0),
        "{total:?}"
    );
    let rows = rows(&spool);
    assert_eq!(rows.len(), 500);
    assert!(rows
        .iter()
        .all(|r| r.attempt == 1 && r.state == "succeeded"));
    spool.assert_scrubbed_exactly_once(&names);
}

#[test]
fn slurmctld_stopped_and_restarted_mid_run_loses_nothing_and_submits_nothing_twice() {
    let _one = serial();
    let c = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let hang = tmp.path().join("hang");
    std::fs::write(&hang, "").unwrap();
    let spool = spool(&c, &hang, "", 0.1);
    let names = spool.add_raw(20..24);
    let mut e = engine(&spool);
    assert_eq!(e.pass().unwrap().submitted, 4);
    wait_markers(&spool, 4);
    c.kill_daemon("slurmctld");
    // The jobs end while the controller is down; passes fail and judge nothing.
    std::fs::remove_file(&hang).unwrap();
    let err = e.pass().unwrap_err().to_string();
    assert!(err.contains("squeue"), "{err}");
    c.restart_daemon("slurmctld");
    let (_, total) = passes_until(&mut e, Duration::from_secs(120), |r| r.quiescent());
    assert_eq!(
        (total.succeeded, total.lost, total.submitted),
        (4, 0, 0),
        "{total:?}"
    );
    spool.assert_scrubbed_exactly_once(&names);
    assert_eq!(
        c.arrays_of(spool.dir.path()),
        vec![4],
        "nothing submitted twice"
    );
}

#[test]
fn a_node_failing_mid_job_has_its_items_redone_once() {
    let _one = serial();
    let c = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let hang = tmp.path().join("hang");
    std::fs::write(&hang, "").unwrap();
    let spool = spool(&c, &hang, "", 1.0);
    let names = spool.add_raw(30..32);
    let mut e = engine(&spool);
    assert_eq!(e.pass().unwrap().submitted, 2);
    wait_markers(&spool, 2);
    // The node dies: slurmd, the job steps and the jobs, all at once; then it comes back.
    c.kill_daemon("slurmd");
    for pid in pids_named("slurmstepd") {
        signal(pid, "KILL");
    }
    for m in markers(&spool) {
        signal(m.pid, "KILL");
    }
    std::fs::remove_file(&hang).unwrap();
    c.restart_daemon("slurmd");
    let (_, total) = passes_until(&mut e, Duration::from_secs(240), |r| r.quiescent());
    assert_eq!((total.lost, total.succeeded), (2, 2), "{total:?}");
    let rows = rows(&spool);
    for name in &names {
        let of = |a: u32| {
            rows.iter()
                .find(|r| r.item.ends_with(name.as_str()) && r.attempt == a)
        };
        assert_eq!(of(1).map(|r| r.state.as_str()), Some("retry"), "{rows:?}");
        assert_eq!(
            of(2).map(|r| r.state.as_str()),
            Some("succeeded"),
            "{rows:?}"
        );
        assert!(of(3).is_none(), "{rows:?}");
    }
    spool.assert_scrubbed_exactly_once(&names);
    assert_eq!(c.arrays_of(spool.dir.path()), vec![2, 2]);
}

#[test]
fn scancel_of_one_array_task_redoes_that_item_and_leaves_the_others() {
    let _one = serial();
    let c = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let hang = tmp.path().join("hang");
    std::fs::write(&hang, "").unwrap();
    let spool = spool(&c, &hang, "", 1.0);
    let names = spool.add_raw(40..43);
    let mut e = engine(&spool);
    assert_eq!(e.pass().unwrap().submitted, 3);
    wait_markers(&spool, 3);
    let rows0 = rows(&spool);
    let victim = rows0
        .iter()
        .find(|r| r.backend_id.as_deref().is_some_and(|id| id.ends_with("_1")))
        .unwrap()
        .clone();
    run_ok(
        c.cmd("scancel").arg(victim.backend_id.as_deref().unwrap()),
        "scancel",
    );
    let record = spool
        .scrub_state()
        .join(format!("records/{}.json", victim.job_id));
    wait_for(
        "the cancelled task's record",
        Duration::from_secs(30),
        || record.exists(),
    );
    let rec: JobRecord = read_json(&record).unwrap().unwrap();
    assert_eq!(
        rec.outcome,
        JobOutcome::Signal(15),
        "not a job-control cancel"
    );
    std::fs::remove_file(&hang).unwrap();
    let (_, total) = passes_until(&mut e, Duration::from_secs(120), |r| r.quiescent());
    assert_eq!(
        (total.succeeded, total.failed_attempts),
        (3, 1),
        "{total:?}"
    );
    let rows = rows(&spool);
    for r in &rows0 {
        let now = rows.iter().find(|x| x.job_id == r.job_id).unwrap();
        let want = if r.job_id == victim.job_id {
            "retry"
        } else {
            "succeeded"
        };
        assert_eq!(now.state, want, "{now:?}");
    }
    let redo: Vec<&JobRow> = rows.iter().filter(|r| r.attempt == 2).collect();
    assert_eq!(redo.len(), 1, "{rows:?}");
    assert_eq!(
        (redo[0].item.as_str(), redo[0].state.as_str()),
        (victim.item.as_str(), "succeeded")
    );
    spool.assert_scrubbed_exactly_once(&names);
}

/// Pids of live processes whose command name is `name`.
fn pids_named(name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() {
            if comm(pid) == name {
                out.push(pid);
            }
        }
    }
    out
}
