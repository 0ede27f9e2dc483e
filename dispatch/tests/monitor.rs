//! The monitor: checks against their thresholds, events that begin, clear and remind once
//! each, notifications delivered once (also with two monitors at once, a failing command, a
//! crash between recording and delivering, an hourly limit), user arrivals and failures,
//! bounded history, and capture heartbeats that are old, broken or symbolic links.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use lander_dispatch::config::Config;
use lander_dispatch::monitor::run::Monitor;
use lander_dispatch::monitor::store::Store;
use lander_dispatch::monitor::{events, history};

struct Env {
    dir: tempfile::TempDir,
    config: Config,
}

impl Env {
    /// A spool with sites `s1`, `s2`, users alice and bob, and `extra` appended to the
    /// configuration (`[monitor]` keys come first in `monitor`).
    fn new(monitor: &str, extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["spool/raw/s1", "spool/raw/s2", "spool/state/capture", "out"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let text = format!(
            "spool = {:?}\nstate_db = {:?}\nuser_state_db = {:?}\nsites = [\"s1\", \"s2\"]\n\n\
             [users.alice]\nsubscriptions = [\"s1\", \"s2\"]\nprocessor = [\"/bin/true\"]\n\n\
             [users.bob]\nsubscriptions = [\"s2\"]\nprocessor = [\"/bin/true\"]\n\n\
             [monitor]\nmin_free = \"0%\"\n{monitor}\n\n{extra}\n",
            root.join("spool"),
            root.join("db/dispatch.sqlite"),
            root.join("db/user-{user}.sqlite").to_string_lossy(),
        );
        let text = text.replace("@OUT@", &root.join("out").to_string_lossy());
        let path = root.join("lander.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap();
        Env { dir, config }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn messages(&self, name: &str) -> Vec<serde_json::Value> {
        let path = self.root().join("out").join(name);
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// A raw file of `site` last changed `age` ago.
    fn raw(&self, site: &str, name: &str, age: Duration) -> PathBuf {
        let p = self.root().join("spool/raw").join(site).join(name);
        std::fs::write(&p, b"trace").unwrap();
        set_age(&p, age);
        p
    }

    fn monitor(&self) -> Monitor {
        Monitor::open(&self.config).unwrap()
    }
}

/// A `[[notify]]` table whose command appends each message (one line) to `out/<name>`.
fn sink(name: &str, user: Option<&str>, events: &str) -> String {
    let user = user.map_or(String::new(), |u| format!("user = {u:?}\n"));
    format!(
        "[[notify]]\ncommand = [\"/bin/sh\", \"-c\", \"cat >> \\\"$0\\\"; echo >> \\\"$0\\\"\", \"@OUT@/{name}\"]\n{user}events = {events}\n"
    )
}

fn set_age(p: &Path, age: Duration) {
    let f = if p.is_dir() {
        std::fs::File::open(p).unwrap()
    } else {
        std::fs::File::options().write(true).open(p).unwrap()
    };
    f.set_modified(SystemTime::now() - age).unwrap();
}

/// A heartbeat of a capture run as `lander-capture` writes it.
fn heartbeat(root: &Path, site: &str, age: Duration, packets: u64, ring_drops: u64) {
    let updated = SystemTime::now() - age;
    let ns = updated
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let hb = serde_json::json!({
        "kind": "capture", "host": "probe1", "site": site, "pid": 42, "source": "eth1",
        "state": "running", "started_ns": ns, "updated_ns": ns, "pps": 1500.0, "bps": 1.2e7,
        "counters": {"packets": packets, "bytes": 0, "wire_bytes": 0, "kernel_drops": 0,
                     "interface_drops": 0, "ring_drops": ring_drops, "source_drops": 0,
                     "files": 3, "file_bytes": 0, "current_file": format!("{site}-x.pcap")},
        "error": null
    });
    let p = root.join(format!("spool/state/capture/{site}-probe1.json"));
    std::fs::write(p, hb.to_string()).unwrap();
}

/// Both sites alive, so that only what a test sets up is a problem.
fn alive(env: &Env) {
    heartbeat(env.root(), "s1", Duration::ZERO, 1000, 0);
    heartbeat(env.root(), "s2", Duration::ZERO, 1000, 0);
}

fn ids(env: &Env) -> Vec<String> {
    let st = lander_dispatch::monitor::status(&env.config).unwrap();
    st.open.iter().map(|p| p.id.clone()).collect()
}

const OPS: &str = "[\"problem\"]";

#[test]
fn a_problem_is_told_once_when_it_begins_and_once_when_it_clears() {
    let env = Env::new("stale_secs = 60", &sink("ops", None, OPS));
    alive(&env);
    let file = env.raw("s1", "s1-20261201-000000-1.pcap", Duration::from_secs(600));
    let mut m = env.monitor();
    let first = m.once().unwrap();
    assert_eq!(first.changes.len(), 1, "{:?}", first.changes);
    assert_eq!(first.changes[0].event.id, "stale:scrub");
    for _ in 0..3 {
        assert!(m.once().unwrap().changes.is_empty());
    }
    let msgs = env.messages("ops");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["transition"], "began");
    assert_eq!(msgs[0]["event"]["id"], "stale:scrub");
    assert!(msgs[0]["summary"].as_str().unwrap().contains("began"));
    std::fs::remove_file(file).unwrap();
    assert_eq!(m.once().unwrap().changes.len(), 1);
    m.once().unwrap();
    let msgs = env.messages("ops");
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[1]["transition"], "cleared");
    assert_eq!(msgs[1]["event"]["began"], msgs[0]["event"]["began"]);
    // A new occurrence is a new event under the same id.
    env.raw("s1", "s1-20261201-000000-2.pcap", Duration::from_secs(600));
    m.once().unwrap();
    let msgs = env.messages("ops");
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[2]["transition"], "began");
    assert_eq!(msgs[2]["event"]["id"], "stale:scrub");
    assert_ne!(msgs[2]["event"]["began"], msgs[0]["event"]["began"]);
}

#[test]
fn a_problem_still_open_is_told_again_after_the_reminder_period() {
    let env = Env::new("stale_secs = 60\nremind_secs = 1", &sink("ops", None, OPS));
    alive(&env);
    env.raw("s1", "s1-20261201-000000-1.pcap", Duration::from_secs(600));
    let mut m = env.monitor();
    m.once().unwrap();
    m.once().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    m.once().unwrap();
    m.once().unwrap();
    let msgs = env.messages("ops");
    let kinds: Vec<_> = msgs.iter().map(|m| m["transition"].clone()).collect();
    assert_eq!(kinds, ["began", "reminder"], "{msgs:?}");
}

#[test]
fn two_monitors_at_once_record_one_event_and_deliver_each_message_once() {
    let env = Env::new("stale_secs = 60", &sink("ops", None, OPS));
    alive(&env);
    for i in 0..3 {
        let site = if i == 0 { "s1" } else { "s2" };
        env.raw(
            site,
            &format!("{site}-20261201-000000-{i}.pcap"),
            Duration::from_secs(600),
        );
    }
    let barrier = std::sync::Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let mut m = env.monitor();
                barrier.wait();
                m.once().unwrap();
            });
        }
    });
    let msgs = env.messages("ops");
    let ids: Vec<_> = msgs.iter().map(|m| m["event"]["id"].clone()).collect();
    // scrub is stale; alice and bob have nothing yet (no scrubbed files).
    assert_eq!(ids, ["stale:scrub"], "{msgs:?}");
    let store = Store::open(&env.config.state_db).unwrap();
    assert_eq!(store.open_events().unwrap().len(), 1);
    assert!(store.outbox().unwrap().is_empty());
}

#[test]
fn a_failing_command_is_tried_again_and_a_crash_before_delivery_loses_nothing() {
    let flag = "@OUT@/broken";
    let extra = format!(
        "[[notify]]\ncommand = [\"/bin/sh\", \"-c\", \"test ! -e {flag} && cat >> @OUT@/ops && echo >> @OUT@/ops\"]\nevents = [\"problem\"]\n"
    );
    let env = Env::new("stale_secs = 60", &extra);
    alive(&env);
    std::fs::write(env.root().join("out/broken"), b"").unwrap();
    env.raw("s1", "s1-20261201-000000-1.pcap", Duration::from_secs(600));
    let mut m = env.monitor();
    let s = m.once().unwrap();
    assert_eq!((s.delivery.sent, s.delivery.failed), (0, 1));
    assert!(env.messages("ops").is_empty());
    // The command works again: the message goes out once.
    std::fs::remove_file(env.root().join("out/broken")).unwrap();
    assert_eq!(m.once().unwrap().delivery.sent, 1);
    m.once().unwrap();
    assert_eq!(env.messages("ops").len(), 1);
    // A crash after the change is recorded and before delivery: the outbox keeps it.
    std::fs::remove_file(env.root().join("spool/raw/s1/s1-20261201-000000-1.pcap")).unwrap();
    let st = lander_dispatch::monitor::status(&env.config).unwrap();
    let mut store = Store::open(&env.config.state_db).unwrap();
    let changes = events::reconcile(&env.config, &mut store, &st.open, st.time).unwrap();
    assert_eq!(changes.len(), 1);
    drop(store); // "crash": nothing delivered
    assert_eq!(env.monitor().once().unwrap().delivery.sent, 1);
    let msgs = env.messages("ops");
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1]["transition"], "cleared");
}

#[test]
fn over_the_hourly_limit_messages_wait_in_the_outbox() {
    let env = Env::new("stale_secs = 60\nmax_per_hour = 1", &sink("ops", None, OPS));
    // Both sites silent: two problems at once.
    env.raw("s1", "s1-20261201-000000-1.pcap", Duration::from_secs(7200));
    std::fs::remove_dir(env.root().join("spool/raw/s2")).unwrap();
    set_age(&env.root().join("spool/raw/s1"), Duration::from_secs(7200));
    let mut m = env.monitor();
    let s = m.once().unwrap();
    assert!(s.changes.len() >= 2, "{:?}", s.changes);
    assert_eq!(s.delivery.sent, 1);
    assert!(s.delivery.held >= 1);
    assert_eq!(env.messages("ops").len(), 1);
    let store = Store::open(&env.config.state_db).unwrap();
    assert_eq!(store.outbox().unwrap().len(), s.changes.len() - 1);
}

#[test]
fn silent_sites_drops_and_heartbeats_that_are_broken_or_links() {
    let env = Env::new("silent_secs = 600\nmax_drop_fraction = 0.01", "");
    // s1: fresh heartbeat, 2 % drops; s2: an hour-old heartbeat and nothing else.
    heartbeat(env.root(), "s1", Duration::ZERO, 980, 20);
    heartbeat(env.root(), "s2", Duration::from_secs(3600), 1000, 0);
    set_age(&env.root().join("spool/raw/s2"), Duration::from_secs(3600));
    let found = ids(&env);
    assert!(found.contains(&"drops:s1".to_owned()), "{found:?}");
    assert!(found.contains(&"silent:s2".to_owned()), "{found:?}");
    assert!(!found.contains(&"silent:s1".to_owned()), "{found:?}");
    // A fresh raw file is a sign of life too.
    env.raw("s2", "s2-20261201-000000-1.pcap", Duration::ZERO);
    assert!(!ids(&env).contains(&"silent:s2".to_owned()));
    // A heartbeat that is garbage, or a symbolic link to a fresh one, is not believed.
    let hb = env.root().join("spool/state/capture");
    std::fs::write(hb.join("s1-probe1.json"), b"{not json").unwrap();
    std::fs::write(
        hb.join("fresh.json"),
        std::fs::read(hb.join("s2-probe1.json")).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(hb.join("s2-probe1.json")).unwrap();
    std::os::unix::fs::symlink(hb.join("fresh.json"), hb.join("s2-evil.json")).unwrap();
    let st = lander_dispatch::monitor::status(&env.config).unwrap();
    let s1 = &st.sites[0];
    assert!(
        s1.heartbeat_error
            .as_deref()
            .unwrap()
            .contains("s1-probe1.json"),
        "{s1:?}"
    );
    assert_eq!(st.sites[1].state, "none", "{:?}", st.sites[1]);
}

#[test]
fn users_hear_of_arrivals_in_batches_and_of_their_failed_jobs() {
    let extra = sink("alice", Some("alice"), "[\"arrival\", \"failure\"]");
    let env = Env::new("arrival_batch_secs = 0", &extra);
    alive(&env);
    let incoming = env.root().join("spool/users/alice/incoming/s1");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::write(incoming.join("s1-20261201-000000-0.pcap"), b"old").unwrap();
    let mut m = env.monitor();
    m.once().unwrap(); // what was there before the monitor is not news
    for i in 1..4 {
        std::fs::write(
            incoming.join(format!("s1-20261201-000000-{i}.pcap")),
            b"new!",
        )
        .unwrap();
        std::fs::write(
            incoming.join(format!("s1-20261201-000000-{i}.pcap.json")),
            b"{}",
        )
        .unwrap();
    }
    // A failed job in alice's history.
    let mut ledger = lander_dispatch::ledger::Ledger::open(&env.config.user_db("alice")).unwrap();
    let mut row = lander_dispatch::ledger::JobRow::new(
        "user-alice.j1",
        "user/alice",
        "s1/x.pcap",
        1,
        "submitted",
    );
    row.submitted = Some(lander_dispatch::sys::now());
    ledger.submitted(&row).unwrap();
    row.state = "failed".into();
    row.reason = Some("exit 3".into());
    ledger.set_state(&row).unwrap();
    drop(ledger);
    m.once().unwrap();
    m.once().unwrap();
    let msgs = env.messages("alice");
    let arrivals: Vec<_> = msgs.iter().filter(|m| m["kind"] == "arrival").collect();
    assert_eq!(arrivals.len(), 1, "{msgs:?}");
    assert_eq!(arrivals[0]["count"], 3);
    assert_eq!(
        arrivals[0]["files"][0]["item"],
        "s1/s1-20261201-000000-1.pcap"
    );
    let failures: Vec<_> = msgs.iter().filter(|m| m["kind"] == "failure").collect();
    assert_eq!(failures.len(), 1, "{msgs:?}");
    assert_eq!(failures[0]["reason"], "exit 3");
    assert!(failures[0]["logs_command"]
        .as_str()
        .unwrap()
        .contains("lander jobs logs user-alice.j1"));
}

#[test]
fn history_is_folded_into_hours_after_a_day_and_dropped_after_history_days() {
    let env = Env::new("history_days = 2", "");
    let mut store = Store::open(&env.config.state_db).unwrap();
    let start = 1_800_000_000.0;
    // Three days of a sample a minute.
    for i in 0..(3 * 24 * 60) {
        let now = start + f64::from(i) * 60.0;
        let samples = vec![("backlog:scrub".to_owned(), f64::from(i % 10))];
        history::record(&mut store, &samples, now, 2.0 * 86_400.0).unwrap();
    }
    let n = history::sample_count(&store).unwrap();
    // A day at full resolution (1440), up to a day more in hours (24), and one open hour.
    assert!(n <= 1440 + 25 + 60, "{n} samples kept");
    assert!(n >= 1440, "{n}");
    let end = start + 3.0 * 86_400.0;
    let series = history::series(&store, 0.0).unwrap();
    let points = &series[0].points;
    assert!(
        points[0].0 >= end - 2.0 * 86_400.0 - 3600.0,
        "{:?}",
        points[0]
    );
    let hourly: Vec<_> = points
        .iter()
        .filter(|p| p.0 < end - 86_400.0 - 3600.0)
        .collect();
    assert!(
        hourly.iter().all(|p| (p.1 - 4.5).abs() < 1e-9),
        "{hourly:?}"
    );
}

#[test]
fn status_page_shows_when_a_problem_began_from_the_monitors_record() {
    let env = Env::new("stale_secs = 60", "");
    alive(&env);
    env.raw("s1", "s1-20261201-000000-1.pcap", Duration::from_secs(600));
    let before = lander_dispatch::status::build(&env.config).unwrap();
    assert_eq!(before.problems.len(), 1);
    assert!(before.monitor_seen.is_none());
    env.monitor().once().unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let page = lander_dispatch::status::build(&env.config).unwrap();
    assert!(
        page.problems[0].since < page.time - 2.0,
        "{:?}",
        page.problems
    );
    assert!(page.monitor_seen.is_some());
    let text = lander_dispatch::status::text::render(&page);
    assert!(
        text.contains("PROBLEMS  1 open") && text.contains(" s ago"),
        "{text}"
    );
}

#[test]
fn jobs_pending_too_long_on_slurm_carry_slurms_reason() {
    let env = Env::new("start_timeout_secs = 60", "");
    let squeue = lander_dispatch::standin::script(
        env.root(),
        "squeue",
        "echo \"$@\" > \"$(dirname \"$0\")/squeue.args\"\necho '4242|QOSMaxJobsPerUserLimit'\necho '4243|Priority'\necho '4244|QOSMaxJobsPerUserLimit'",
    );
    let text = std::fs::read_to_string(&env.config.path).unwrap()
        + &format!("\n[backend]\nkind = \"slurm\"\n\n[backend.slurm]\nsqueue = {squeue:?}\n");
    std::fs::write(&env.config.path, text).unwrap();
    let config = Config::load(&env.config.path).unwrap();
    alive(&env);
    let dirs = config.stage_dirs("scrub").unwrap();
    let mut ledger = lander_dispatch::ledger::Ledger::open(&config.state_db).unwrap();
    for (i, backend_id) in ["4242", "4243", "4244"].iter().enumerate() {
        let item = format!("s1/s1-20261201-000000-{i}.pcap");
        let job = format!("scrub.job{i}");
        let mut claim = lander_dispatch::claim::Claim::new("scrub", &item, job.clone(), 1);
        claim.claimed_at -= 600.0;
        let path = dirs.claim(&item);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        assert!(lander_dispatch::claim::try_claim(&path, &claim).unwrap());
        let mut row = lander_dispatch::ledger::JobRow::new(&job, "scrub", &item, 1, "submitted");
        row.backend_id = Some((*backend_id).to_owned());
        ledger.submitted(&row).unwrap();
    }
    drop(ledger);
    let st = lander_dispatch::monitor::status(&config).unwrap();
    assert_eq!(st.stages[0].not_started, 3, "{:?}", st.stages[0]);
    assert_eq!(
        st.stages[0].pending_reasons,
        [
            ("QOSMaxJobsPerUserLimit".to_owned(), 2),
            ("Priority".to_owned(), 1)
        ]
    );
    let p = st
        .open
        .iter()
        .find(|p| p.id == "not_started:scrub")
        .unwrap();
    assert!(
        p.message
            .ends_with("(Slurm says: QOSMaxJobsPerUserLimit 2, Priority 1)"),
        "{}",
        p.message
    );
    let args = std::fs::read_to_string(env.root().join("squeue.args")).unwrap();
    assert!(
        args.starts_with("-h -j 424") && args.trim_end().ends_with("-o %A|%r"),
        "{args}"
    );
}

#[test]
fn text_from_heartbeats_and_file_names_is_escaped_on_the_page() {
    let env = Env::new("", "");
    alive(&env);
    let hb = env.root().join("spool/state/capture/s1-probe1.json");
    let text = std::fs::read_to_string(&hb)
        .unwrap()
        .replace("s1-x.pcap", "<script>alert(1)</script>")
        .replace("probe1", "probe1\\\" onload=\\\"x");
    std::fs::write(&hb, text).unwrap();
    let page = lander_dispatch::status::build(&env.config).unwrap();
    assert_eq!(
        page.sites[0].current_file.as_deref(),
        Some("<script>alert(1)</script>")
    );
    use lander_dispatch::status::html::{render, Refresh};
    for html in [
        render(&page, Refresh::Meta(60)),
        render(&page, Refresh::Fetch(10)),
    ] {
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("\" onload="), "{html}");
    }
}

#[test]
fn a_history_database_that_cannot_be_read_still_gives_the_page_of_the_spool() {
    let env = Env::new("", "");
    alive(&env);
    std::fs::create_dir_all(env.config.state_db.parent().unwrap()).unwrap();
    std::fs::write(
        &env.config.state_db,
        b"this is not a database, but garbage of a full disk",
    )
    .unwrap();
    let page = lander_dispatch::status::build(&env.config).unwrap();
    assert_eq!(page.sites.len(), 2);
    assert!(page.history.is_empty() && page.monitor_seen.is_none());
}

#[test]
fn a_file_still_there_after_the_history_period_is_not_told_of_again() {
    use lander_dispatch::monitor::tell;
    let extra = sink("alice", Some("alice"), "[\"arrival\"]");
    let env = Env::new("arrival_batch_secs = 0\nhistory_days = 1", &extra);
    let incoming = env.root().join("spool/users/alice/incoming/s1");
    std::fs::create_dir_all(&incoming).unwrap();
    let mut store = Store::open(&env.config.state_db).unwrap();
    let t = 1_800_000_000.0;
    assert_eq!(tell::arrivals(&env.config, &mut store, t).unwrap(), 0);
    std::fs::write(incoming.join("s1-20261201-000000-1.pcap"), b"x").unwrap();
    assert_eq!(
        tell::arrivals(&env.config, &mut store, t + 10.0).unwrap(),
        1
    );
    for day in 1..5 {
        let now = t + f64::from(day) * 86_400.0;
        assert_eq!(
            tell::arrivals(&env.config, &mut store, now).unwrap(),
            0,
            "day {day}"
        );
    }
    assert_eq!(store.outbox().unwrap().len(), 1);
}
