//! The job wrapper never panics on the limits a job spec carries: a time limit too far away to
//! reach is no limit, and a grace period that cannot be represented is not waited for forever.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use lander_dispatch::claim::{self, Claim};
use lander_dispatch::record::{JobOutcome, JobSpec};
use lander_dispatch::wrapper::{run, Wrapped};

fn spec(dir: &Path, job: &str, argv: &[&str], timeout_secs: f64, grace_secs: f64) -> JobSpec {
    let claim_path = dir.join(format!("{job}.claim"));
    let c = Claim::new("scrub", "s1/f.pcap", job.into(), 1);
    assert!(claim::try_claim(&claim_path, &c).unwrap());
    JobSpec {
        job_id: job.into(),
        stage: "scrub".into(),
        item: "s1/f.pcap".into(),
        attempt: 1,
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: Default::default(),
        stdout: dir.join(format!("{job}.out")),
        stderr: dir.join(format!("{job}.err")),
        start_marker: dir.join(format!("{job}.start.json")),
        record: dir.join(format!("{job}.json")),
        claim: claim_path,
        timeout_secs,
        grace_secs,
        counts_from: None,
        fsync: false,
        digest: None,
        cancel_request: None,
        heartbeat: None,
        heartbeat_secs: 0.0,
        run_as: None,
    }
}

fn outcome(spec: &JobSpec) -> JobOutcome {
    match run(spec, &AtomicBool::new(false)).unwrap() {
        Wrapped::Ran(record) => record.outcome,
        Wrapped::Superseded => panic!("{}: superseded", spec.job_id),
    }
}

#[test]
fn a_time_limit_too_far_to_reach_is_no_limit() {
    let dir = tempfile::tempdir().unwrap();
    let limits = [
        1e300,
        f64::MAX,
        f64::INFINITY,
        f64::NAN,
        -1.0,
        f64::NEG_INFINITY,
        u64::MAX as f64,
        1e12,
    ];
    for (i, limit) in limits.into_iter().enumerate() {
        let s = spec(dir.path(), &format!("job{i}"), &["/bin/true"], limit, 1.0);
        assert_eq!(outcome(&s), JobOutcome::Success, "timeout_secs = {limit}");
    }
}

#[test]
fn an_unrepresentable_grace_still_ends_the_job() {
    let dir = tempfile::tempdir().unwrap();
    for (i, grace) in [f64::INFINITY, f64::NAN, 1e300, -5.0]
        .into_iter()
        .enumerate()
    {
        let s = spec(dir.path(), &format!("job{i}"), &["sleep", "30"], 0.2, grace);
        assert_eq!(outcome(&s), JobOutcome::Timeout, "grace_secs = {grace}");
    }
}
