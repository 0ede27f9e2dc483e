//! A spool in a temporary directory, a configuration for it, and checks of the exactly-once
//! invariants, shared by the dispatch tests.
#![allow(dead_code)]

pub mod explain;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lander_dispatch::config::Config;
use lander_dispatch::control;
use lander_dispatch::engine::{Dispatcher, PassReport};
use lander_dispatch::ledger::Ledger;
use lander_dispatch::record::{read_json, JobOutcome, JobRecord};
use lander_dispatch::scrub::ScrubStage;
use lander_dispatch::user::UserStage;

pub const LANDER: &str = env!("CARGO_BIN_EXE_lander");
pub const SITE: &str = "s1";
pub const USERS: [&str; 2] = ["alice", "bob"];

pub struct Spool {
    pub dir: tempfile::TempDir,
    pub config: Config,
}

/// Settings a test may change; everything else is fixed.
pub struct Setup {
    pub scrub_command: Vec<String>,
    pub processor: Vec<String>,
    pub extra_user: String,
    pub extra_scrub: String,
    pub slots: usize,
    pub lost_grace: f64,
    pub queue_limit: usize,
    pub scrub_args: String,
    /// Sites (every user subscribes to all).
    pub sites: Vec<String>,
    /// Retries of a failed scrub.
    pub scrub_retries: u32,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            scrub_command: vec![LANDER.into(), "dispatch".into(), "copy-job".into()],
            processor: vec!["/bin/true".into()],
            extra_user: String::new(),
            extra_scrub: String::new(),
            slots: 2,
            lost_grace: 1.0,
            queue_limit: 100,
            scrub_args: "args = [\"{in}\", \"{out}\"]".into(),
            sites: vec![SITE.into()],
            scrub_retries: 3,
        }
    }
}

fn toml_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

impl Spool {
    pub fn new(setup: Setup) -> Spool {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut text = format!(
            "spool = {:?}\nstate_db = {:?}\nsites = {}\nfsync = false\n\n\
             [scrub]\ncommand = {}\n{}\nbackoff_secs = 0\nretries = {}\n{}\n\n\
             [backend]\nslots = {}\ngrace_secs = 1\n\n\
             [queue]\nlimit = {}\n\n\
             [monitor]\nlost_grace_secs = {}\nrescan_secs = 0\nstale_secs = 0\nstart_timeout_secs = 1\n",
            root.join("spool"),
            root.join("db/dispatch.sqlite"),
            toml_list(&setup.sites),
            toml_list(&setup.scrub_command),
            setup.scrub_args,
            setup.scrub_retries,
            setup.extra_scrub,
            setup.slots,
            setup.queue_limit,
            setup.lost_grace,
        );
        for user in USERS {
            text += &format!(
                "\n[users.{user}]\nsubscriptions = {}\nprocessor = {}\nbackoff_secs = 0\n{}\n",
                toml_list(&setup.sites),
                toml_list(&setup.processor),
                setup.extra_user
            );
        }
        let path = root.join("lander.toml");
        std::fs::write(&path, &text).unwrap();
        let config = Config::load(&path).unwrap();
        Spool { dir, config }
    }

    pub fn root(&self) -> PathBuf {
        self.config.spool.clone()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("lander.toml")
    }

    pub fn raw_dir(&self) -> PathBuf {
        self.root().join("raw").join(SITE)
    }

    pub fn scrubbed_dir(&self) -> PathBuf {
        self.root().join("scrubbed").join(SITE)
    }

    /// A user's directory `sub`; the file directories (`incoming`, `in-process`, `done`,
    /// `failed`) are per site: this is the one of [`SITE`].
    pub fn user_dir(&self, user: &str, sub: &str) -> PathBuf {
        let dir = self.root().join("users").join(user).join(sub);
        match sub {
            "incoming" | "in-process" | "done" | "failed" => dir.join(SITE),
            _ => dir,
        }
    }

    /// The name of raw file `i`.
    pub fn name(i: usize) -> String {
        format!("{SITE}-20240101-{:06}-{i}.pcap", i % 240000)
    }

    /// Publishes raw files `range` with their manifests (manifest first); returns their names.
    pub fn add_raw(&self, range: std::ops::Range<usize>) -> Vec<String> {
        std::fs::create_dir_all(self.raw_dir()).unwrap();
        range
            .map(|i| {
                let name = Self::name(i);
                let path = self.raw_dir().join(&name);
                let manifest = format!("{{\"packets\": {i}, \"bytes\": {}}}", 10 * i);
                lander_spool::publish::write_atomic(
                    &path.with_file_name(format!("{name}.json")),
                    manifest.as_bytes(),
                    false,
                )
                .unwrap();
                lander_spool::publish::write_atomic(
                    &path,
                    format!("trace {i}\n").as_bytes(),
                    false,
                )
                .unwrap();
                name
            })
            .collect()
    }

    /// Publishes one raw file `name` of `site` with `content` and a counts-only manifest.
    pub fn add_raw_file(&self, site: &str, name: &str, content: &[u8]) -> PathBuf {
        let dir = self.root().join("raw").join(site);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let manifest = format!("{{\"packets\": 1, \"bytes\": {}}}", content.len());
        lander_spool::publish::write_atomic(
            &path.with_file_name(format!("{name}.json")),
            manifest.as_bytes(),
            false,
        )
        .unwrap();
        lander_spool::publish::write_atomic(&path, content, false).unwrap();
        path
    }

    /// A user's file directory of `site`.
    pub fn user_site_dir(&self, user: &str, sub: &str, site: &str) -> PathBuf {
        self.root().join("users").join(user).join(sub).join(site)
    }

    pub fn wrapper() -> Vec<String> {
        vec![LANDER.into(), "dispatch".into(), "job-wrapper".into()]
    }

    pub fn scrub_engine(&self) -> Dispatcher<ScrubStage> {
        self.scrub_engine_with(Self::wrapper())
    }

    pub fn scrub_engine_with(&self, wrapper: Vec<String>) -> Dispatcher<ScrubStage> {
        control::scrub_engine(
            &self.config,
            wrapper,
            PathBuf::from("/nonexistent/lander-scrub"),
        )
        .unwrap()
    }

    pub fn user_engine(&self, user: &str) -> Dispatcher<UserStage> {
        self.user_engine_with(user, Self::wrapper())
    }

    pub fn user_engine_with(&self, user: &str, wrapper: Vec<String>) -> Dispatcher<UserStage> {
        control::user_engine(&self.config, user, wrapper).unwrap()
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::open(&self.config.state_db).unwrap()
    }

    pub fn user_ledger(&self, user: &str) -> Ledger {
        Ledger::open(&self.config.user_db(user)).unwrap()
    }

    /// Run records of a stage's state dir.
    pub fn records(&self, state: &Path) -> Vec<JobRecord> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(state.join("records")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
            {
                out.push(read_json(&p).unwrap().unwrap());
            }
        }
        out
    }

    pub fn scrub_state(&self) -> PathBuf {
        self.root().join("state/scrub")
    }

    pub fn user_state(&self, user: &str) -> PathBuf {
        self.user_dir(user, "state")
    }

    /// Checks that each of `names` was scrubbed exactly once and linked once into each user's
    /// incoming (same inode), that nothing temporary is left, and that the history agrees.
    pub fn assert_scrubbed_exactly_once(&self, names: &[String]) {
        let raw_left: Vec<_> = list(&self.raw_dir());
        assert!(raw_left.is_empty(), "raw files left: {raw_left:?}");
        let mut expected: Vec<String> = names
            .iter()
            .flat_map(|n| [n.clone(), format!("{n}.json")])
            .collect();
        expected.sort();
        assert_eq!(list(&self.scrubbed_dir()), expected, "scrubbed files");
        for name in names {
            let scrubbed = self.scrubbed_dir().join(name);
            let i: usize = name
                .rsplit('-')
                .next()
                .unwrap()
                .trim_end_matches(".pcap")
                .parse()
                .unwrap();
            assert_eq!(
                std::fs::read_to_string(&scrubbed).unwrap(),
                format!("trace {i}\n")
            );
            for user in USERS {
                let link = self.user_dir(user, "incoming").join(name);
                assert_eq!(ino(&link), ino(&scrubbed), "{user} has a link to {name}");
            }
        }
        for user in USERS {
            assert_eq!(
                list(&self.user_dir(user, "incoming")),
                expected,
                "{user}'s incoming"
            );
        }
        self.assert_no_temporaries();
        let successes: Vec<_> = self
            .records(&self.scrub_state())
            .into_iter()
            .filter(|r| r.outcome == JobOutcome::Success)
            .collect();
        let mut items: Vec<_> = successes.iter().map(|r| r.job.item.clone()).collect();
        items.sort();
        items.dedup();
        assert_eq!(
            items.len(),
            names.len(),
            "one successful scrub record per file"
        );
        let ledger = self.ledger();
        let succeeded = ledger
            .list(Some("scrub"), Some("succeeded"), usize::MAX >> 1)
            .unwrap();
        let mut by_item: BTreeMap<String, usize> = BTreeMap::new();
        for row in &succeeded {
            *by_item.entry(row.item.clone()).or_default() += 1;
        }
        let all = ledger.list(Some("scrub"), None, usize::MAX >> 1).unwrap();
        let missing: Vec<_> = all
            .iter()
            .filter(|r| !by_item.contains_key(&r.item))
            .collect();
        assert_eq!(
            by_item.len(),
            names.len(),
            "history: one succeeded job per file; rows of the others: {missing:#?}"
        );
        assert!(
            by_item.values().all(|&n| n == 1),
            "history: a file succeeded twice: {by_item:?}"
        );
        let claims = list_tree(&self.scrub_state().join("claims"));
        assert!(claims.is_empty(), "claims left: {claims:?}");
    }

    /// No dot files anywhere in the spool except empty `.work` directories and capture's
    /// sequence marks.
    pub fn assert_no_temporaries(&self) {
        let found = self.temporaries();
        assert!(found.is_empty(), "temporary files left: {found:?}");
    }

    /// The dot files in the spool other than empty `.work` directories and capture's sequence
    /// marks: temporaries of writers that did not finish (or have not yet).
    pub fn temporaries(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(&self.root(), &mut |p: &Path| {
            let name = p.file_name().unwrap().to_string_lossy();
            let state = (name == ".work" && p.is_dir()) || lander_spool::seq::is_mark_name(&name);
            if name.starts_with('.') && !state {
                found.push(p.to_owned());
            }
        });
        found
    }
}

pub fn ino(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .ino()
}

pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            // the scratch of scrub attempts and capture's sequence mark are not items
            .filter(|n| n != ".work" && !lander_spool::seq::is_mark_name(n))
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

pub fn list_tree(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    walk(dir, &mut |p: &Path| {
        if p.is_file() {
            v.push(p.to_owned())
        }
    });
    v
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        f(&p);
        if p.is_dir() {
            walk(&p, f);
        }
    }
}

/// Runs passes until `done(report)` or the time runs out (then panics).
pub fn pass_until<S: lander_dispatch::stage::Stage>(
    engine: &mut Dispatcher<S>,
    what: &str,
    mut done: impl FnMut(&PassReport) -> bool,
) -> PassReport {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = engine.pass().unwrap();
        if done(&r) {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Drains an engine until nothing is left.
pub fn drain<S: lander_dispatch::stage::Stage>(engine: &mut Dispatcher<S>) {
    pass_until(engine, "quiescence", |r| r.quiescent());
}

/// Writes an executable shell script into `dir` (not every test binary uses it).
#[allow(unused_imports)]
pub use lander_dispatch::standin::script;

/// The pid in the start marker of the only running job of a stage, waiting for it.
pub fn running_job_pid(state: &Path) -> u32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        for e in std::fs::read_dir(state.join("jobs")).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".start.json") {
                match read_json::<lander_dispatch::record::StartMarker>(&p) {
                    Ok(Some(m)) if !m.is_fence() => return m.pid,
                    _ => {}
                }
            }
        }
        assert!(std::time::Instant::now() < deadline, "no job started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn kill(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success(), "kill -{sig} {pid}");
}
