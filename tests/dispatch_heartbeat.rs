//! Liveness across hosts from shared evidence: two dispatchers on one spool judge a job that
//! runs on another host (its wrapper under another host identity) by its heartbeats and the
//! backend's word, one of them through a delayed view of the spool (as an NFS client's
//! attribute cache gives; no kernel NFS here). Neither judges a beating job lost; once the
//! node dies, exactly one takes the item over, and it is done once.

mod dispatch_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dispatch_support::{kill, list, script, Setup, Spool, LANDER};
use lander_dispatch::backend::{Backend, BackendError, JobState, LocalBackend};
use lander_dispatch::engine::{Dispatcher, Options, PassReport};
use lander_dispatch::heartbeat::{self, Beat};
use lander_dispatch::ledger::Ledger;
use lander_dispatch::record::{read_json, JobSpec, StartMarker};
use lander_dispatch::scrub::ScrubStage;

/// Runs jobs on this machine under another host's identity, and has no word on them (as a
/// batch system that forgot them, or one this dispatcher cannot ask).
struct Elsewhere(LocalBackend);

impl Backend for Elsewhere {
    fn name(&self) -> &'static str {
        "elsewhere"
    }
    fn capacity(&self) -> Option<usize> {
        Some(4)
    }
    fn submit(&mut self, spec: &JobSpec, spec_path: &Path) -> Result<String, BackendError> {
        self.0.submit(spec, spec_path)
    }
    fn poll(&mut self, ids: &[String]) -> Result<HashMap<String, JobState>, BackendError> {
        Ok(ids.iter().map(|i| (i.clone(), JobState::Unknown)).collect())
    }
    fn cancel(&mut self, id: &str) -> Result<(), BackendError> {
        self.0.cancel(id)
    }
}

const NODE: &str = "node7@0123456789ab";

/// An engine on the spool (both share its history, which is a local file on one host: here it
/// only gathers what both did).
fn engine(spool: &Spool, attr_cache: Duration) -> Dispatcher<ScrubStage> {
    let wrapper = vec![
        "env".into(),
        format!("LANDER_HOST_ID={NODE}"),
        LANDER.into(),
        "dispatch".into(),
        "job-wrapper".into(),
    ];
    let stage = ScrubStage::new(spool.config.clone(), PathBuf::from("/nonexistent")).unwrap();
    let ledger = Ledger::open(&spool.config.state_db).unwrap();
    let opts = Options {
        lost_grace: Duration::from_millis(200),
        heartbeat: Duration::from_millis(200),
        attr_cache,
        ..Options::default()
    };
    let backend = Box::new(Elsewhere(LocalBackend::new(wrapper, 4)));
    Dispatcher::new(stage, backend, ledger, opts).unwrap()
}

/// Beat files as a client whose attribute cache holds each file `lag` long.
fn delayed_view(lag: Duration) -> lander_dispatch::engine::BeatView {
    let cache: Mutex<HashMap<PathBuf, (Option<Beat>, Instant)>> = Mutex::new(HashMap::new());
    Arc::new(move |path: &Path| {
        let mut cache = cache.lock().unwrap();
        let entry = cache
            .entry(path.to_owned())
            .or_insert_with(|| (heartbeat::read(path), Instant::now()));
        if entry.1.elapsed() >= lag {
            *entry = (heartbeat::read(path), Instant::now());
        }
        entry.0.clone()
    })
}

fn marker(spool: &Spool) -> Option<StartMarker> {
    let dir = spool.scrub_state().join("jobs");
    list(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".start.json"))
        .filter_map(|n| read_json::<StartMarker>(&dir.join(n)).ok().flatten())
        .find(|m| !m.is_fence())
}

fn pass_both(a: &mut Dispatcher<ScrubStage>, b: &mut Dispatcher<ScrubStage>) -> [PassReport; 2] {
    [a.pass().unwrap(), b.pass().unwrap()]
}

#[test]
fn a_stale_view_never_judges_a_beating_job_lost_and_one_dispatcher_takes_a_dead_one_over() {
    let tmp = tempfile::tempdir().unwrap();
    let hang = tmp.path().join("hang");
    std::fs::write(&hang, "").unwrap();
    let job = script(
        tmp.path(),
        "scrub.sh",
        &format!("while [ -e {hang:?} ]; do sleep 0.05; done\nexec {LANDER} dispatch copy-job \"$1\" \"$2\""),
    );
    let spool = Spool::new(Setup {
        scrub_command: vec![job],
        ..Setup::default()
    });
    let names = spool.add_raw(0..1);
    // The view lags by 1.2 s; the grace allows for 1.5 s of attribute caching.
    let cache = Duration::from_millis(1500);
    let mut a = engine(&spool, cache);
    let mut b = engine(&spool, cache);
    b.set_beat_view(delayed_view(Duration::from_millis(1200)));
    assert_eq!(a.pass().unwrap().submitted, 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        if let Some(m) = marker(&spool) {
            break m;
        }
        assert!(Instant::now() < deadline, "the job did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(m.host_id.as_deref(), Some(NODE), "the job runs 'elsewhere'");

    // The job beats for 4 s; the backend has no word; nobody judges it lost.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        for r in pass_both(&mut a, &mut b) {
            assert_eq!((r.lost, r.failed_attempts), (0, 0), "{r:?}");
            assert_eq!(r.running, 1, "{r:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // The node dies: the wrapper and its job end at once, with no record and no more beats.
    kill(m.pid, "KILL");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", m.pid)])
        .status();
    std::fs::remove_file(&hang).unwrap();
    let mut failed = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let [ra, rb] = pass_both(&mut a, &mut b);
        failed += ra.failed_attempts + rb.failed_attempts;
        if ra.quiescent() && rb.quiescent() {
            break;
        }
        assert!(Instant::now() < deadline, "{ra:?} {rb:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(failed, 1, "exactly one dispatcher took the lost job over");
    spool.assert_scrubbed_exactly_once(&names);
}
