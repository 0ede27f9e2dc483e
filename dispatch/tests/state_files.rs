//! Claims, job specs and run records written before their shared fields became one struct
//! (`JobIdentity`, flattened) read the same, and are written back with the same flat keys.

use lander_dispatch::claim::{Claim, ClaimState};
use lander_dispatch::record::{JobIdentity, JobOutcome, JobRecord, JobSpec};
use serde_json::Value;

/// A run record as the job wrapper wrote it before.
const OLD_RECORD: &str = r#"{"job_id":"scrub.s1.a.pcap.2","stage":"scrub","item":"s1/a.pcap",
"attempt":2,"host":"cap1","pid":4242,"start":1700000000.5,"end":1700000003.25,
"outcome":{"kind":"exit","value":3},"exit_code":3,"signal":null,"packets":10,"bytes":1400,
"digest":"ab12"}"#;

/// A first-generation claim holding its job's spec, as the dispatcher wrote it before.
const OLD_CLAIM_WITH_SPEC: &str = r#"{"job_id":"scrub.s1.a.pcap.1","stage":"scrub",
"item":"s1/a.pcap","attempt":1,"argv":["/bin/true"],"env":{},"stdout":"o","stderr":"e",
"start_marker":"m","record":"r","claim":"c","timeout_secs":0.0,"grace_secs":5.0,
"counts_from":null,"fsync":false,"digest":"ab12","host":"cap1","pid":7,
"claimed_at":1700000000.0,"state":"active","not_before":0.0,"reason":null,
"identity":{"digest":"ab12","dev":1,"ino":2,"size":3}}"#;

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn an_old_run_record_reads_the_same_and_writes_the_same_keys() {
    let record: JobRecord = serde_json::from_str(OLD_RECORD).unwrap();
    let job = JobIdentity {
        job_id: "scrub.s1.a.pcap.2".into(),
        stage: "scrub".into(),
        item: "s1/a.pcap".into(),
        attempt: 2,
    };
    assert_eq!(record.job, job);
    assert_eq!(record.outcome, JobOutcome::Exit(3));
    assert_eq!(record.digest.as_deref(), Some("ab12"));
    let old: Value = serde_json::from_str(OLD_RECORD).unwrap();
    let new = serde_json::to_value(&record).unwrap();
    assert_eq!(new, old, "written back byte for byte the same document");
}

#[test]
fn an_old_claim_with_its_spec_reads_as_both() {
    let claim: Claim = serde_json::from_str(OLD_CLAIM_WITH_SPEC).unwrap();
    let spec: JobSpec = serde_json::from_str(OLD_CLAIM_WITH_SPEC).unwrap();
    assert_eq!(claim.job, spec.job);
    assert_eq!((claim.job.attempt, claim.state), (1, ClaimState::Active));
    assert_eq!(claim.identity.as_ref().map(|i| i.ino), Some(2));
    assert_eq!(spec.argv, ["/bin/true"]);
    let old: Value = serde_json::from_str(OLD_CLAIM_WITH_SPEC).unwrap();
    let mut both = keys(&serde_json::to_value(&claim).unwrap());
    both.extend(keys(&serde_json::to_value(&spec).unwrap()));
    both.sort();
    both.dedup();
    assert_eq!(both, keys(&old));
}
