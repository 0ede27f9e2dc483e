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
        .args(["-q", "dispatch", "--config"])
        .arg(spool.config_path())
        .arg("run")
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
    spool.assert_scrubbed_exactly_once(&names);
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
