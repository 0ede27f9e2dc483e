//! A real single-node Slurm cluster that the Slurm tests bring up themselves (munge,
//! slurmctld, slurmd under a fixed directory in the temporary directory), shut down when the
//! last test using it ends, failed or not; and spools dispatched through it.
//!
//! Needs the Debian packages `slurmctld slurmd slurm-client munge` (scripts/bootstrap.sh);
//! without them the tests fail, naming that script.
#![allow(dead_code)]
#![allow(unsafe_code)] // flock(2) keeps two test runs from sharing the one cluster.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::dispatch_support::{script, Spool, SITE, USERS};
use lander_dispatch::backend::SlurmBackend;
use lander_dispatch::config::Config;
use lander_dispatch::control;
use lander_dispatch::engine::{Dispatcher, PassReport};
use lander_dispatch::scrub::ScrubStage;

pub const LANDER: &str = env!("CARGO_BIN_EXE_lander");
pub const CAPTURE: &str = env!("CARGO_BIN_EXE_lander-capture");
/// Ports of the test cluster (not Slurm's defaults, so a real cluster is left alone).
pub const PORTS: (u16, u16) = (6917, 6918);

// ---------------------------------------------------------------------------------------------
// The cluster

/// A running single-node cluster; the daemons stop when the last handle is dropped.
pub struct Cluster {
    pub base: PathBuf,
    pub conf: PathBuf,
    pub host: String,
    pub daemons: Vec<(u32, &'static str)>,
    pub munged: Option<u32>,
    _lock: File,
}

pub static CLUSTER: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());

/// The test cluster, started if no test holds it.
pub fn cluster() -> Arc<Cluster> {
    let mut slot = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = slot.upgrade() {
        return c;
    }
    let c = Arc::new(Cluster::start());
    *slot = Arc::downgrade(&c);
    c
}

/// Finds a program in PATH or the sbin directories; fails naming the bootstrap script.
pub fn tool(name: &str) -> PathBuf {
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

pub fn run_ok(cmd: &mut Command, what: &str) -> String {
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

pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn pid_in(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// The command name of a live process ("" when gone or a zombie).
pub fn comm(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return String::new();
    };
    match stat[close + 1..].trim_start().starts_with('Z') {
        true => String::new(),
        false => stat[open + 1..close].to_owned(),
    }
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Stops `pid` if it is still the named daemon: TERM, then KILL after 10 s.
pub fn stop(pid: u32, name: &str) {
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
pub fn leftover_daemons(conf: &Path) -> Vec<(u32, &'static str)> {
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
    pub fn start() -> Cluster {
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

    pub fn start_daemon(&mut self, name: &'static str) {
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

    /// Stops one daemon (`slurmctld`, `slurmd`) at once with KILL, as a crash would.
    pub fn kill_daemon(&self, name: &str) {
        for (pid, n) in leftover_daemons(&self.conf) {
            if n == name {
                signal(pid, "KILL");
                wait_for(&format!("{name} to die"), Duration::from_secs(10), || {
                    comm(pid) != name
                });
            }
        }
    }

    /// Starts a daemon stopped by a test again.
    pub fn restart_daemon(&self, name: &'static str) {
        let pid_file = self.base.join("run").join(format!("{name}.pid"));
        let _ = std::fs::remove_file(&pid_file);
        run_ok(
            Command::new(tool(name)).arg("-f").arg(&self.conf),
            &format!("starting {name} again"),
        );
        wait_for(
            &format!("{name} to write {}", pid_file.display()),
            Duration::from_secs(20),
            || pid_in(&pid_file).is_some_and(|p| comm(p) == name),
        );
    }

    pub fn wait_idle(&self) {
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

    pub fn log_tail(&self) -> String {
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
    pub fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(tool(name));
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// The `[backend]` tables of a LANDER configuration for this cluster.
    pub fn backend_toml(&self) -> String {
        let bin = self.base.join("bin");
        format!(
            "[backend]\nkind = \"slurm\"\ngrace_secs = 1\n\n[backend.slurm]\npartition = \"lander\"\n\
             extra_args = [\"--cpus-per-task=1\"]\nsbatch = {:?}\nsqueue = {:?}\nscancel = {:?}\n\
             scontrol = {:?}\n",
            bin.join("sbatch"),
            bin.join("squeue"),
            bin.join("scancel"),
            bin.join("scontrol"),
        )
    }

    pub fn settings(&self, config: &Config) -> SlurmBackend {
        SlurmBackend::new(vec!["/bin/true".into()], config.backend.slurm.clone())
    }

    /// The job names of every `sbatch` call made through this cluster's wrapper.
    pub fn submissions(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.base.join("log/sbatch.calls")).unwrap_or_default();
        log.lines()
            .filter_map(|l| l.split(' ').find_map(|w| w.strip_prefix("--job-name=")))
            .map(str::to_owned)
            .collect()
    }

    /// The task count of each array submitted for the spool under `root` (its batch files'
    /// error logs name it), in the order of the `sbatch` calls.
    pub fn arrays_of(&self, root: &Path) -> Vec<usize> {
        let log = std::fs::read_to_string(self.base.join("log/sbatch.calls")).unwrap_or_default();
        let root = root.to_string_lossy();
        log.lines()
            .filter(|l| l.contains(root.as_ref()))
            .filter_map(|l| l.split(' ').find_map(|w| w.strip_prefix("--array=0-")))
            .map(|r| r.split('%').next().unwrap().parse::<usize>().unwrap() + 1)
            .collect()
    }

    /// The job's line in `squeue -h -t all -j ID -o '%T'` ("" once Slurm forgot it).
    pub fn squeue_state(&self, id: &str) -> String {
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
        // Daemons a test restarted run under new pids.
        for (pid, name) in leftover_daemons(&self.conf) {
            stop(pid, name);
        }
        if let Some(pid) = self.munged {
            stop(pid, "munged");
        }
    }
}

/// An exclusive lock on `path`, held while the returned file is open (one cluster per host).
pub fn lock(path: &Path) -> File {
    let f = File::create(path).unwrap();
    // SAFETY: flock(2) on a descriptor owned by `f`, which outlives the call.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}", path.display());
    f
}

pub fn slurm_conf(base: &Path, host: &str) -> String {
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
         MinJobAge=2\nKillWait=2\nMailProg=/bin/true\nMaxArraySize=4001\n\
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

pub fn meminfo_mb() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(1024, |kb| kb / 1024)
}

/// `bin/sbatch`, `bin/squeue`, `bin/scancel`: site-style wrappers that name this cluster's
/// configuration (and log each submission), as the dispatcher's configuration points to.
pub fn write_client_wrappers(base: &Path, conf: &Path) {
    let calls = base.join("log/sbatch.calls");
    for name in ["sbatch", "squeue", "scancel", "scontrol"] {
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
pub fn start_munge() -> Option<u32> {
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
pub fn slurm_spool(c: &Cluster, scrub: &[String], extra_scrub: &str, state_db: &str) -> Spool {
    spool_with_backend(&c.backend_toml(), scrub, extra_scrub, state_db)
}

pub fn spool_with_backend(
    backend: &str,
    scrub: &[String],
    extra_scrub: &str,
    state_db: &str,
) -> Spool {
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

pub fn toml_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

pub fn copy_job() -> Vec<String> {
    vec![LANDER.into(), "dispatch".into(), "copy-job".into()]
}

pub fn engine(spool: &Spool) -> Dispatcher<ScrubStage> {
    control::scrub_engine(
        &spool.config,
        Spool::wrapper(),
        PathBuf::from("/nonexistent/lander-scrub"),
    )
    .unwrap()
}

/// `lander dispatch --config FILE once --json`.
pub fn dispatch_once(config: &Path) -> PassReport {
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
pub fn dispatch_until_quiescent(config: &Path) -> PassReport {
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

pub fn job_name(item: &str) -> String {
    lander_dispatch::backend::slurm::job_name("scrub", item)
}

pub fn item(name: &str) -> String {
    format!("{SITE}/{name}")
}
