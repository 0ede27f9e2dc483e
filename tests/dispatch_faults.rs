//! Fault injection: dispatchers and jobs are SIGKILLed at random points, over many seeds; then
//! every raw file is scrubbed exactly once, every subscribed user has exactly one link per
//! scrubbed file, no temporary file is left, and the history agrees with the files.

mod dispatch_support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use dispatch_support::*;
use lander_dispatch::record::{read_json, StartMarker};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn start_dispatcher(spool: &Spool) -> Child {
    Command::new(LANDER)
        .args(["-v", "dispatch", "--config"])
        .arg(spool.config_path())
        .arg("run")
        .stderr(fleet_log(spool))
        .spawn()
        .expect("start lander dispatch run")
}

fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Pids of running job wrappers, from their start markers.
fn running_jobs(spool: &Spool) -> Vec<u32> {
    list_tree(&spool.scrub_state().join("jobs"))
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".start.json"))
        .filter_map(|p| read_json::<StartMarker>(p).ok().flatten())
        // A dispatcher's fence names no process (pid 0: `kill 0` would hit our own group).
        .filter(|m| !m.is_fence())
        .map(|m| m.pid)
        .collect()
}

fn chaos(seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let job = script(
        tmp.path(),
        "job.sh",
        &format!("sleep 0.02\nexec {LANDER} dispatch copy-job \"$1\" \"$2\""),
    );
    let spool = Spool::new(Setup {
        scrub_command: vec![job],
        lost_grace: 0.3,
        slots: 3,
        ..Setup::default()
    });
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let names = spool.add_raw(0..12);
    let mut dispatchers = vec![start_dispatcher(&spool), start_dispatcher(&spool)];
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(rng.below(60)));
        match rng.below(3) {
            0 => {
                let i = rng.below(2) as usize;
                kill_child(&mut dispatchers[i]);
                dispatchers[i] = start_dispatcher(&spool);
            }
            1 => {
                let jobs = running_jobs(&spool);
                if !jobs.is_empty() {
                    let pid = jobs[rng.below(jobs.len() as u64) as usize];
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
            _ => {}
        }
    }
    for d in &mut dispatchers {
        kill_child(d);
    }
    // Recovery: a fresh dispatcher sweeps leftovers of dead writers and finishes the work.
    let mut engine = spool.scrub_engine();
    std::thread::sleep(Duration::from_millis(400));
    engine.sweep(Duration::ZERO).unwrap();
    drain(&mut engine);
    // Jobs adopted from killed dispatchers may still be finishing: settle them too.
    pass_until(&mut engine, "all jobs to settle", |r| r.quiescent());
    // An item whose every attempt was killed is given up (retries = 3); the operator's
    // `lander jobs retry` brings it back, and then it too is scrubbed exactly once.
    for row in spool
        .ledger()
        .list(Some("scrub"), Some("failed"), 1000)
        .unwrap()
    {
        eprintln!("seed {seed}: {} given up, retried", row.item);
        lander_dispatch::control::retry(&spool.config, &row.job_id).unwrap();
    }
    pass_until(&mut engine, "the retried items", |r| r.quiescent());
    explain_leftovers(&spool, seed);
    assert_nothing_left(&spool, seed);
    spool.assert_scrubbed_exactly_once(&names);
}

/// Waits until no job wrapper of this spool runs (a minute at most), after the checks: a
/// wrapper that wrote its record may still be exiting, which is no fault, but one that never
/// ends is, and none may write into the spool as it is removed.
fn wait_for_wrappers(spool: &Spool, seed: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = explain::wrappers_of(spool);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: job wrappers still running: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// No temporary is left at quiescence, checked without waiting for wrappers to end. Every
/// claim is settled then: a wrapper still running has written its record and writes nothing
/// more, or is a copy of an attempt whose claim moved on (which the start marker's fence
/// prevents). So a temporary here is never a live writer's in the middle of its work; it is
/// one no sweep removed. (Files of attempts in `jobs/` may stay: a dispatcher killed between
/// releasing a claim and forgetting its attempt leaves them for `lander clean`.)
fn assert_nothing_left(spool: &Spool, seed: u64) {
    assert_no_temporaries_explained(spool, seed);
    wait_for_wrappers(spool, seed);
}

/// No temporary is left; else which, who wrote it and what became of that writer, its job's
/// files and log.
fn assert_no_temporaries_explained(spool: &Spool, seed: u64) {
    let found = spool.temporaries();
    assert!(
        found.is_empty(),
        "seed {seed}: temporary files left: {found:?}{}",
        explain::explain_temporaries(spool, &found, &spool.dir.path().join("fleet.log"))
    );
}

/// Prints the claims and history of raw files still there, to tell why they are.
fn explain_leftovers(spool: &Spool, seed: u64) {
    for name in list(&spool.raw_dir()) {
        let item = format!("{SITE}/{name}");
        let claim = std::fs::read_to_string(spool.scrub_state().join("claims").join(&item));
        let rows: Vec<_> = spool
            .ledger()
            .list(Some("scrub"), None, 1000)
            .unwrap()
            .into_iter()
            .filter(|r| r.item == item)
            .collect();
        eprintln!("seed {seed}: {item} left: claim {claim:?}; history {rows:#?}");
    }
}

#[test]
fn random_kills_of_dispatchers_and_jobs_leave_every_file_scrubbed_exactly_once() {
    let seeds: u64 = std::env::var("LANDER_FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    for seed in 1..=seeds {
        eprintln!("seed {seed}");
        chaos(seed);
    }
}

/// Processes of one chaos run: two scrub dispatchers and a user dispatcher per user.
struct Fleet<'a> {
    spool: &'a Spool,
    scrub: Vec<Child>,
    users: Vec<Child>,
}

impl Fleet<'_> {
    fn scrub_dispatcher(spool: &Spool, crash_at: Option<&str>) -> Child {
        let mut cmd = Command::new(LANDER);
        cmd.args(["-v", "dispatch", "--config"])
            .arg(spool.config_path())
            .arg("run")
            .stderr(fleet_log(spool));
        if let Some(step) = crash_at {
            cmd.env(lander_dispatch::crash::ENV, step);
        }
        cmd.spawn().expect("start lander dispatch run")
    }

    fn user_dispatcher(spool: &Spool, user: &str) -> Child {
        Command::new(LANDER)
            .args(["-v", "user", "--user", user, "--config"])
            .arg(spool.config_path())
            .arg("run")
            .stderr(fleet_log(spool))
            .spawn()
            .expect("start lander user run")
    }

    fn stop(&mut self) {
        for c in self.scrub.iter_mut().chain(self.users.iter_mut()) {
            kill_child(c);
        }
    }
}

/// The log all dispatchers of a chaos run append to (shown for the items a failure is about).
fn fleet_log(spool: &Spool) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spool.dir.path().join("fleet.log"))
        .expect("open the fleet's log")
}

/// Pids of running jobs of every stage.
fn all_running_jobs(spool: &Spool) -> Vec<u32> {
    let mut dirs = vec![spool.scrub_state().join("jobs")];
    dirs.extend(USERS.iter().map(|u| spool.user_state(u).join("jobs")));
    dirs.iter()
        .flat_map(|d| list_tree(d))
        .filter(|p| p.to_string_lossy().ends_with(".start.json"))
        .filter_map(|p| read_json::<StartMarker>(&p).ok().flatten())
        .filter(|m| !m.is_fence())
        .map(|m| m.pid)
        .collect()
}

fn blake(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Digests of the trace files under `dir`'s site directories, counted.
fn digests_under(dir: &std::path::Path) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for p in list_tree(dir) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json") || name.ends_with(".reason") || name.starts_with('.') {
            continue;
        }
        *out.entry(blake(&std::fs::read(&p).unwrap())).or_default() += 1;
    }
    out
}

/// Settles everything after the chaos: leftovers swept, given-up items retried (as an
/// operator would), both stages drained until nothing moves.
fn settle_all(spool: &Spool, seed: u64) {
    std::thread::sleep(Duration::from_millis(400));
    for _round in 0..4 {
        let mut scrub = spool.scrub_engine();
        scrub.sweep(Duration::ZERO).unwrap();
        drain(&mut scrub);
        for row in spool
            .ledger()
            .list(Some("scrub"), Some("failed"), 1000)
            .unwrap()
        {
            eprintln!("seed {seed}: {} given up, retried", row.item);
            let _ = lander_dispatch::control::retry(&spool.config, &row.job_id);
        }
        drain(&mut scrub);
        for user in USERS {
            let mut e = spool.user_engine(user);
            e.sweep(Duration::ZERO).unwrap();
            drain(&mut e);
            let failed = spool
                .user_ledger(user)
                .list(None, Some("failed"), 1000)
                .unwrap();
            for row in failed {
                let _ = lander_dispatch::control::retry(&spool.config, &row.job_id);
            }
            drain(&mut e);
        }
    }
}

fn chaos_both_stages(seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let job = script(
        tmp.path(),
        "job.sh",
        &format!("sleep 0.02\nexec {LANDER} dispatch copy-job \"$1\" \"$2\""),
    );
    let spool = Spool::new(Setup {
        scrub_command: vec![job],
        lost_grace: 0.3,
        slots: 3,
        sites: vec!["s1".into(), "s2".into()],
        extra_scrub: "raw_after = \"archive\"".into(),
        ..Setup::default()
    });
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut expected = std::collections::BTreeMap::<String, usize>::new();
    let mut texts = std::collections::BTreeMap::<String, (String, String)>::new();
    let mut add = |site: &str, i: usize, text: String| {
        spool.add_raw_file(site, &Spool::name(i), text.as_bytes());
        *expected.entry(blake(text.as_bytes())).or_default() += 1;
        texts.insert(blake(text.as_bytes()), (Spool::name(i), text));
    };
    for i in 0..10 {
        add("s1", i, format!("s1 trace {i}\n"));
        add("s2", i, format!("s2 trace {i}\n"));
    }
    // Odd entries: an over-long name and a link in raw, a dangling link in bob's incoming
    // under a name that will arrive.
    std::fs::write(spool.root().join("raw/s1").join("y".repeat(245)), b"long").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", spool.root().join("raw/s2/link.pcap")).unwrap();
    let bob = spool.user_site_dir("bob", "incoming", "s1");
    std::fs::create_dir_all(&bob).unwrap();
    std::os::unix::fs::symlink("/nonexistent", bob.join(Spool::name(4))).unwrap();

    let mut fleet = Fleet {
        spool: &spool,
        scrub: vec![
            Fleet::scrub_dispatcher(&spool, None),
            Fleet::scrub_dispatcher(&spool, None),
        ],
        users: USERS
            .iter()
            .map(|u| Fleet::user_dispatcher(&spool, u))
            .collect(),
    };
    let mut reused = 0;
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(rng.below(60)));
        // A capture restarted: names 0..3 of s1 come again with other content, once the
        // first file of that name has left raw/.
        if reused < 3
            && !spool
                .root()
                .join("raw/s1")
                .join(Spool::name(reused))
                .exists()
        {
            add("s1", reused, format!("s1 trace {reused}, second capture\n"));
            reused += 1;
        }
        match rng.below(4) {
            0 => {
                let i = rng.below(2) as usize;
                kill_child(&mut fleet.scrub[i]);
                let steps = lander_dispatch::crash::STEPS;
                let step =
                    (rng.below(2) == 0).then(|| steps[rng.below(steps.len() as u64) as usize]);
                fleet.scrub[i] = Fleet::scrub_dispatcher(fleet.spool, step);
            }
            1 => {
                let jobs = all_running_jobs(&spool);
                if !jobs.is_empty() {
                    let pid = jobs[rng.below(jobs.len() as u64) as usize];
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
            2 => {
                let i = rng.below(2) as usize;
                kill_child(&mut fleet.users[i]);
                fleet.users[i] = Fleet::user_dispatcher(fleet.spool, USERS[i]);
            }
            _ => {}
        }
    }
    fleet.stop();
    while reused < 3 {
        settle_all(&spool, seed);
        add("s1", reused, format!("s1 trace {reused}, second capture\n"));
        reused += 1;
    }
    settle_all(&spool, seed);

    // Every raw file's packets reached every subscribed user exactly once (by digest).
    for user in USERS {
        let mut got = digests_under(&spool.root().join("users").join(user).join("done"));
        for (d, n) in digests_under(&spool.root().join("users").join(user).join("incoming")) {
            *got.entry(d).or_default() += n;
        }
        assert!(
            got == expected,
            "seed {seed}: {user} has every file once:{}",
            explain::explain(
                &spool,
                user,
                &got,
                &expected,
                &texts,
                &spool.dir.path().join("fleet.log")
            )
        );
    }
    // No original was written over: the archive holds each raw file once, the first capture
    // under its own name.
    let archive = spool.root().join("archive");
    assert_eq!(digests_under(&archive), expected, "seed {seed}: archive");
    for i in 0..3 {
        let first = std::fs::read_to_string(archive.join("s1").join(Spool::name(i))).unwrap();
        assert_eq!(first, format!("s1 trace {i}\n"), "seed {seed}");
    }
    assert!(
        digests_under(&spool.root().join("raw")).is_empty(),
        "seed {seed}: raw drained"
    );
    assert_nothing_left(&spool, seed);
    for state in [spool.scrub_state()]
        .into_iter()
        .chain(USERS.iter().map(|u| spool.user_state(u)))
    {
        let claims = list_tree(&state.join("claims"));
        assert!(claims.is_empty(), "seed {seed}: claims left {claims:?}");
    }
    // The odd entries are reported.
    let st = lander_dispatch::monitor::status(&spool.config).unwrap();
    let mut reasons: Vec<String> = st.quarantine.iter().map(|q| q.reason.clone()).collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "seed {seed}: {:#?}", st.quarantine);
    assert!(
        reasons.iter().any(|r| r.contains("longer than")),
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("symbolic link"))
            .count(),
        2
    );
}

#[test]
fn chaos_over_both_stages_delivers_every_file_once_and_overwrites_nothing() {
    let seeds: u64 = std::env::var("LANDER_FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for seed in 1..=seeds {
        eprintln!("seed {seed}");
        chaos_both_stages(seed);
    }
}
