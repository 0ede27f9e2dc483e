//! The dispatcher on a real single-node Slurm cluster that these tests bring up themselves
//! (munge, slurmctld, slurmd under a fixed directory in the temporary directory), and shut
//! down when the last test using it ends, failed or not.
//!
//! Needs the Debian packages `slurmctld slurmd slurm-client munge` (scripts/bootstrap.sh);
//! without them the tests fail, naming that script.
#![allow(unsafe_code)] // flock(2) keeps two test runs from sharing the one cluster.

mod dispatch_support;

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use dispatch_support::{ino, list, pass_until, running_job_pid, script, Spool, SITE, USERS};
use lander_dispatch::backend::{Backend, JobState, SlurmBackend};
use lander_dispatch::config::Config;
use lander_dispatch::control;
use lander_dispatch::engine::{Dispatcher, PassReport};
use lander_dispatch::ledger::Ledger;
use lander_dispatch::record::{read_json, JobOutcome, JobRecord};
use lander_dispatch::scrub::ScrubStage;

const LANDER: &str = env!("CARGO_BIN_EXE_lander");
const CAPTURE: &str = env!("CARGO_BIN_EXE_lander-capture");
/// Ports of the test cluster (not Slurm's defaults, so a real cluster is left alone).
const PORTS: (u16, u16) = (6917, 6918);

// ---------------------------------------------------------------------------------------------
// The cluster

/// A running single-node cluster; the daemons stop when the last handle is dropped.
struct Cluster {
    base: PathBuf,
    conf: PathBuf,
    host: String,
    daemons: Vec<(u32, &'static str)>,
    munged: Option<u32>,
    _lock: File,
}

static CLUSTER: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());

/// The test cluster, started if no test holds it.
fn cluster() -> Arc<Cluster> {
    let mut slot = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = slot.upgrade() {
        return c;
    }
    let c = Arc::new(Cluster::start());
    *slot = Arc::downgrade(&c);
    c
}

/// Finds a program in PATH or the sbin directories; fails naming the bootstrap script.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path.split(':').chain(["/usr/sbin", "/sbin", "/usr/bin"]);
    for dir in dirs.filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{name} not found: these tests run a real single-node Slurm and need the Debian \
         packages slurmctld slurmd slurm-client munge; install them with scripts/bootstrap.sh (as root)"
    )
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pid_in(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// The command name of a live process ("" when gone or a zombie).
fn comm(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return String::new();
    };
    match stat[close + 1..].trim_start().starts_with('Z') {
        true => String::new(),
        false => stat[open + 1..close].to_owned(),
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Stops `pid` if it is still the named daemon: TERM, then KILL after 10 s.
fn stop(pid: u32, name: &str) {
    if comm(pid) != name {
        return;
    }
    signal(pid, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while comm(pid) == name && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if comm(pid) == name {
        signal(pid, "KILL");
    }
}

/// Daemons left running with this configuration by an earlier run (found in /proc).
fn leftover_daemons(conf: &Path) -> Vec<(u32, &'static str)> {
    let mut found = Vec::new();
    let conf = conf.to_string_lossy();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(conf.as_ref()) {
            continue;
        }
        for name in ["slurmctld", "slurmd"] {
            if comm(pid) == name {
                found.push((pid, name));
            }
        }
    }
    found
}

impl Cluster {
    fn start() -> Cluster {
        for t in [
            "slurmctld",
            "slurmd",
            "munged",
            "munge",
            "sbatch",
            "squeue",
            "sinfo",
        ] {
            tool(t);
        }
        let base = std::env::temp_dir().join("lander-slurm-test");
        std::fs::create_dir_all(&base).unwrap();
        let lock = lock(&base.join("lock"));
        let conf = base.join("slurm.conf");
        // A cluster left by an earlier run (killed test) is stopped and started afresh.
        for (pid, name) in leftover_daemons(&conf) {
            stop(pid, name);
        }
        for dir in ["state", "spool", "log", "run", "bin"] {
            let d = base.join(dir);
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
        }
        let host = run_ok(Command::new("hostname").arg("-s"), "hostname -s")
            .trim()
            .to_owned();
        std::fs::write(&conf, slurm_conf(&base, &host)).unwrap();
        write_client_wrappers(&base, &conf);
        let munged = start_munge();
        let mut cluster = Cluster {
            base,
            conf,
            host,
            daemons: Vec::new(),
            munged,
            _lock: lock,
        };
        cluster.start_daemon("slurmctld");
        cluster.start_daemon("slurmd");
        cluster.wait_idle();
        cluster
    }

    fn start_daemon(&mut self, name: &'static str) {
        let pid_file = self.base.join("run").join(format!("{name}.pid"));
        run_ok(
            Command::new(tool(name)).arg("-f").arg(&self.conf),
            &format!("starting {name}"),
        );
        wait_for(
            &format!("{name} to write {}", pid_file.display()),
            Duration::from_secs(20),
            || pid_in(&pid_file).is_some_and(|p| comm(p) == name),
        );
        self.daemons.push((pid_in(&pid_file).unwrap(), name));
    }

    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.cmd("sinfo").args(["-h", "-o", "%T"]).output().unwrap();
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if state == "idle" {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the test Slurm node is not idle after 30 s (state {state:?}, {}); \
                     logs in {}:\n{}",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    self.base.join("log").display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        for name in ["slurmctld.log", "slurmd.log"] {
            let log = std::fs::read_to_string(self.base.join("log").join(name)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            text += &format!(
                "== {name}\n{}\n",
                lines[lines.len().saturating_sub(15)..].join("\n")
            );
        }
        text
    }

    /// A Slurm client command for this cluster.
    fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(tool(name));
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// The `[backend]` tables of a LANDER configuration for this cluster.
    fn backend_toml(&self) -> String {
        let bin = self.base.join("bin");
        format!(
            "[backend]\nkind = \"slurm\"\ngrace_secs = 1\n\n[backend.slurm]\npartition = \"lander\"\n\
             extra_args = [\"--cpus-per-task=1\"]\nsbatch = {:?}\nsqueue = {:?}\nscancel = {:?}\n",
            bin.join("sbatch"),
            bin.join("squeue"),
            bin.join("scancel"),
        )
    }

    fn settings(&self, config: &Config) -> SlurmBackend {
        SlurmBackend::new(vec!["/bin/true".into()], config.backend.slurm.clone())
    }

    /// The job names of every `sbatch` call made through this cluster's wrapper.
    fn submissions(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.base.join("log/sbatch.calls")).unwrap_or_default();
        log.lines()
            .filter_map(|l| l.split(' ').find_map(|w| w.strip_prefix("--job-name=")))
            .map(str::to_owned)
            .collect()
    }

    /// The job's line in `squeue -h -t all -j ID -o '%T'` ("" once Slurm forgot it).
    fn squeue_state(&self, id: &str) -> String {
        let out = self
            .cmd("squeue")
            .args(["-h", "-t", "all", "-j", id, "-o", "%T"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _slot = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
        // Jobs left by a failed test end with the cluster, not after it.
        let _ = self
            .cmd("scancel")
            .args(["-u", "root"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let out = self.cmd("squeue").args(["-h", "-o", "%A"]).output();
            if out.is_ok_and(|o| o.stdout.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for &(pid, name) in self.daemons.iter().rev() {
            stop(pid, name);
        }
        if let Some(pid) = self.munged {
            stop(pid, "munged");
        }
    }
}

/// An exclusive lock on `path`, held while the returned file is open (one cluster per host).
fn lock(path: &Path) -> File {
    let f = File::create(path).unwrap();
    // SAFETY: flock(2) on a descriptor owned by `f`, which outlives the call.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}", path.display());
    f
}

fn slurm_conf(base: &Path, host: &str) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_mb = meminfo_mb().saturating_sub(512).max(256);
    let b = base.display();
    // config_overrides: the node offers more CPUs than the host has, so the tests (which run
    // in parallel, and whose jobs mostly wait) are not serialized by core count.
    format!(
        "ClusterName=lander-test\nSlurmctldHost={host}\nSlurmUser=root\nSlurmdUser=root\n\
         SlurmctldPort={}\nSlurmdPort={}\n\
         AuthType=auth/munge\nCredType=cred/munge\nMpiDefault=none\n\
         ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
         JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
         JobCompType=jobcomp/filetxt\nJobCompLoc={b}/log/jobcomp.log\n\
         SchedulerType=sched/backfill\nSchedulerParameters=batch_sched_delay=0\n\
         SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
         SlurmdParameters=config_overrides\nReturnToService=2\n\
         MinJobAge=2\nKillWait=2\nMailProg=/bin/true\n\
         StateSaveLocation={b}/state\nSlurmdSpoolDir={b}/spool\n\
         SlurmctldPidFile={b}/run/slurmctld.pid\nSlurmdPidFile={b}/run/slurmd.pid\n\
         SlurmctldLogFile={b}/log/slurmctld.log\nSlurmdLogFile={b}/log/slurmd.log\n\
         NodeName={host} CPUs={} RealMemory={mem_mb} State=UNKNOWN\n\
         PartitionName=lander Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
        PORTS.0,
        PORTS.1,
        (cpus * 4).max(8),
    )
}

fn meminfo_mb() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(1024, |kb| kb / 1024)
}

/// `bin/sbatch`, `bin/squeue`, `bin/scancel`: site-style wrappers that name this cluster's
/// configuration (and log each submission), as the dispatcher's configuration points to.
fn write_client_wrappers(base: &Path, conf: &Path) {
    let calls = base.join("log/sbatch.calls");
    for name in ["sbatch", "squeue", "scancel"] {
        let log = if name == "sbatch" {
            format!("echo \"$*\" >> '{}'\n", calls.display())
        } else {
            String::new()
        };
        let body = format!(
            "SLURM_CONF='{}'\nexport SLURM_CONF\n{log}exec '{}' \"$@\"",
            conf.display(),
            tool(name).display()
        );
        script(&base.join("bin"), name, &body);
    }
}

/// Starts munged if no munge daemon answers; returns its pid when started here.
fn start_munge() -> Option<u32> {
    let answers = || {
        Command::new(tool("munge"))
            .arg("-n")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if answers() {
        return None;
    }
    run_ok(
        Command::new("install").args([
            "-d",
            "-o",
            "munge",
            "-g",
            "munge",
            "-m",
            "0755",
            "/run/munge",
        ]),
        "creating /run/munge",
    );
    run_ok(
        Command::new("runuser")
            .args(["-u", "munge", "--"])
            .arg(tool("munged"))
            .arg("--force"),
        "starting munged as the munge user",
    );
    wait_for("munged to answer", Duration::from_secs(10), answers);
    pid_in(Path::new("/run/munge/munged.pid"))
}

// ---------------------------------------------------------------------------------------------
// Spools dispatched through the cluster

/// A spool whose scrub job is `scrub` (argv) with arguments `{in} {out}`, dispatched on Slurm.
fn slurm_spool(c: &Cluster, scrub: &[String], extra_scrub: &str, state_db: &str) -> Spool {
    spool_with_backend(&c.backend_toml(), scrub, extra_scrub, state_db)
}

fn spool_with_backend(backend: &str, scrub: &[String], extra_scrub: &str, state_db: &str) -> Spool {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut text = format!(
        "spool = {:?}\nstate_db = {:?}\nsites = [\"{SITE}\"]\nfsync = false\n\n\
         [scrub]\ncommand = {}\nargs = [\"{{in}}\", \"{{out}}\"]\nbackoff_secs = 0\nretries = 3\n{extra_scrub}\n\n\
         [monitor]\nlost_grace_secs = 30\nrescan_secs = 0\n\n{}",
        root.join("spool"),
        root.join(state_db),
        toml_list(scrub),
        backend,
    );
    for user in USERS {
        text += &format!(
            "\n[users.{user}]\nsubscriptions = [\"{SITE}\"]\nprocessor = [\"/bin/true\"]\n"
        );
    }
    let path = root.join("lander.toml");
    std::fs::write(&path, &text).unwrap();
    let config = Config::load(&path).unwrap();
    Spool { dir, config }
}

fn toml_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

fn copy_job() -> Vec<String> {
    vec![LANDER.into(), "dispatch".into(), "copy-job".into()]
}

fn engine(spool: &Spool) -> Dispatcher<ScrubStage> {
    control::scrub_engine(
        &spool.config,
        Spool::wrapper(),
        PathBuf::from("/nonexistent/lander-scrub"),
    )
    .unwrap()
}

/// `lander dispatch --config FILE once --json`.
fn dispatch_once(config: &Path) -> PassReport {
    let out = run_ok(
        Command::new(LANDER)
            .args(["dispatch", "--json", "--config"])
            .arg(config)
            .arg("once"),
        "lander dispatch once",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap_or(0) as usize;
    PassReport {
        succeeded: n("succeeded"),
        failed_attempts: n("failed_attempts"),
        lost: n("lost"),
        gave_up: n("gave_up"),
        submitted: n("submitted"),
        running: n("running"),
        pending: n("pending"),
        waiting: n("waiting"),
        failed_items: n("failed_items"),
        backlog: n("backlog"),
        ..PassReport::default()
    }
}

/// Runs `lander dispatch once` until a pass finds nothing to do; returns the summed report.
fn dispatch_until_quiescent(config: &Path) -> PassReport {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut total = PassReport::default();
    loop {
        let r = dispatch_once(config);
        total.succeeded += r.succeeded;
        total.failed_attempts += r.failed_attempts;
        total.lost += r.lost;
        total.submitted += r.submitted;
        if r.quiescent() {
            return total;
        }
        assert!(Instant::now() < deadline, "not quiescent after 90 s: {r:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn job_name(item: &str) -> String {
    lander_dispatch::backend::slurm::job_name("scrub", item)
}

fn item(name: &str) -> String {
    format!("{SITE}/{name}")
}

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
        // The backend id is Slurm's job id, and the job ran under the item's stable name.
        let id = row.backend_id.as_deref().unwrap();
        assert!(id.parse::<u64>().is_ok(), "Slurm job id {id:?}");
        let rec = records.iter().find(|r| r.job.item == item(name)).unwrap();
        assert_eq!(rec.outcome, JobOutcome::Success);
        assert_eq!(rec.host, c.host);
    }
    let submitted = c.submissions();
    for name in &names {
        let n = submitted
            .iter()
            .filter(|s| **s == job_name(&item(name)))
            .count();
        assert_eq!(n, 1, "sbatch calls for {name}: {submitted:?}");
    }
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

    // scancel: Slurm sends TERM; the wrapper records a cancel, which the scrub stage fails.
    let (job1, slurm1) = id(1);
    run_ok(c.cmd("scancel").arg(&slurm1), "scancel");
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
    let calls = c.submissions();
    for name in &names {
        let n = calls
            .iter()
            .filter(|s| **s == job_name(&item(name)))
            .count();
        assert_eq!(n, 1, "sbatch calls for {name}");
    }
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
             pending) echo '41|PENDING|Priority';;\n\
             esac",
            says.display()
        ),
    );
    let sbatch = script(bin, "sbatch", "cat > /dev/null; echo 41");
    let backend = format!(
        "[backend]\nkind = \"slurm\"\n\n[backend.slurm]\nsbatch = {sbatch:?}\nsqueue = {squeue:?}\n"
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
