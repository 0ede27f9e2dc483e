//! Loading a configuration never panics: every key, given any TOML value (any type, NaN,
//! infinities, negative, huge, empty, odd unicode) or removed, either loads or gives an error
//! that names the file and the field. Durations and sizes are bounded; every enum-like string
//! is checked at load.

use std::path::Path;
use std::sync::LazyLock;

use lander_dispatch::config::{Config, ConfigError};
use proptest::prelude::*;
use toml::{Table, Value};

/// A configuration that sets every key.
const FULL: &str = r#"
spool = "/srv/lander"
state_db = "/var/lib/lander/d.sqlite"
user_state_db = "/var/lib/lander/u-{user}.sqlite"
fsync = true
sites = ["ucla", "isi"]

[scrub]
command = ["/usr/bin/lander-scrub"]
args = ["--mapping", "{mapping}", "--payload", "{payload}", "--checksums", "{checksums}", "{in}", "{out}"]
mapping = "cryptopant"
key_file = "/etc/lander/key"
payload = "keep:16"
checksums = "zero"
mac = "scramble"
mpls = "ethernet"
env = { RUST_LOG = "info" }
timeout_secs = 600
retries = 2
backoff_secs = 5
verify_digest = true
raw_after = "archive"

[users.alice]
subscriptions = ["ucla"]
processor = ["/bin/echo", "hello"]
env = { LANG = "C" }
timeout_secs = 5
retries = 1
backoff_secs = 2
on_success = "remove"
on_exit = { "3" = "ignore", default = "retry" }
on_timeout = "fail"
on_crash = "retry"
windows = [ { days = "mon-fri", hours = "22:00-06:00" } ]
timezone = "local"
quota = "2GiB"

[backend]
kind = "slurm"
slots = 3
grace_secs = 10

[backend.slurm]
partition = "lander"
time_limit = "2:00:00"
extra_args = ["--qos=low"]
sbatch = "sbatch"
squeue = "squeue"
scancel = "scancel"

[queue]
limit = 100

[monitor]
stale_secs = 600
start_timeout_secs = 600
silent_secs = 3600
temp_max_age_secs = 3600
lost_grace_secs = 30.0
rescan_secs = 1.5
poll_secs = 60
max_backlog = 5000
min_running = 1
max_drop_fraction = 0.01
min_free = "5%"
remind_secs = 86400
max_per_hour = 20
arrival_batch_secs = 600
notify_timeout_secs = 30
history_days = 30
in_dispatch = true

[[notify]]
command = ["/usr/local/bin/page-ops", "--team", "lander"]
events = ["problem"]

[[notify]]
command = ["/usr/local/bin/tell-user"]
user = "alice"
events = ["arrival", "failure", "problem"]

[retention]
scrubbed_days = 30
scrubbed_max = "1TiB"
archive_days = 365
archive_max = "10TB"
done_days = 7
done_max = "50GiB"
failed_days = 7
failed_max = "1GiB"
logs_days = 7
logs_max = "100MiB"
records_days = 90
records_max = "1GiB"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("lander.toml"), text)
}

/// Every key of [`FULL`].
static KEYS: LazyLock<Vec<Vec<String>>> = LazyLock::new(keys);

/// Every key of [`FULL`], as paths of table keys.
fn keys() -> Vec<Vec<String>> {
    fn walk(table: &Table, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for (k, v) in table {
            let mut path = prefix.to_vec();
            path.push(k.clone());
            if let Value::Table(t) = v {
                walk(t, &path, out);
            }
            if let Value::Array(items) = v {
                for item in items.iter().filter_map(Value::as_table) {
                    walk(item, &path, out);
                }
            }
            out.push(path);
        }
    }
    let mut out = Vec::new();
    walk(&FULL.parse::<Table>().unwrap(), &[], &mut out);
    out
}

/// `FULL` with the value at `path` replaced (or removed, with `None`).
fn with_value(path: &[String], value: Option<Value>) -> String {
    let mut doc: Table = FULL.parse().unwrap();
    let mut table = &mut doc;
    for (i, key) in path.iter().enumerate() {
        if i + 1 == path.len() {
            match value {
                Some(v) => table.insert(key.clone(), v),
                None => table.remove(key),
            };
            break;
        }
        table = match table.get_mut(key) {
            Some(Value::Table(t)) => t,
            Some(Value::Array(a)) => a[0].as_table_mut().unwrap(),
            other => panic!("{path:?}: {other:?}"),
        };
    }
    toml::to_string(&doc).unwrap()
}

/// Whether the error names the field at `path` (the whole dotted path, or its table and key).
/// Users subscribe to sites: a change of `sites` may be reported at their subscriptions.
fn names_field(err: &str, path: &[String]) -> bool {
    if path == ["sites"] && err.contains("subscriptions") {
        return true;
    }
    // Notification commands name users: removing a user may be reported at its command.
    if path.first().is_some_and(|k| k == "users") && err.contains("notify[1].user") {
        return true;
    }
    // A key of a window is reported as the window's.
    if path.len() == 4 && path[2] == "windows" {
        return err.contains("users.alice.windows");
    }
    let dotted = path.join(".");
    let parent = path[..path.len() - 1].join(".");
    let leaf = &path[path.len() - 1];
    err.contains(&dotted) || (err.contains(&parent) && err.contains(leaf.as_str()))
}

fn check(path: &[String], value: Option<Value>) -> Result<(), TestCaseError> {
    let text = with_value(path, value.clone());
    if let Err(e) = parse(&text) {
        let msg = e.to_string();
        prop_assert!(msg.starts_with("lander.toml:"), "{msg}");
        prop_assert!(names_field(&msg, path), "{path:?} = {value:?}: {msg}");
    }
    Ok(())
}

fn scalar() -> impl Strategy<Value = Value> {
    let words = prop_oneof![
        Just(""),
        Just(" "),
        Just("-1"),
        Just("1e400GiB"),
        Just("18446744073709551616"),
        Just("99999999999999999999TiB"),
        Just("keep:"),
        Just("keep:-1"),
        Just("keep:99999999999999999999"),
        Just("{user}"),
        Just("a\u{0}b"),
        Just("\u{202e}\u{fffd}\u{1f600}"),
        Just(".."),
        Just("/"),
    ];
    prop_oneof![
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::Integer),
        prop_oneof![
            Just(i64::MAX),
            Just(i64::MIN),
            Just(-1),
            Just(0),
            Just(u32::MAX as i64 + 1)
        ]
        .prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Float),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1e300),
            Just(-0.5),
            Just(1.8e19)
        ]
        .prop_map(Value::Float),
        any::<String>().prop_map(Value::String),
        words.prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z0-9_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

#[test]
fn the_full_configuration_loads() {
    parse(FULL).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_value_for_any_key_loads_or_names_the_field(
        index in any::<prop::sample::Index>(),
        value in prop::option::weighted(0.95, value()),
    ) {
        let key: &Vec<String> = index.get(&KEYS);
        check(key, value)?;
    }
}

#[test]
fn every_key_with_every_edge_value_loads_or_names_the_field() {
    let edges = [
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Float(f64::NEG_INFINITY),
        Value::Float(1e300),
        Value::Float(-1.0),
        Value::Integer(i64::MAX),
        Value::Integer(-1),
        Value::Integer(0),
        Value::String(String::new()),
        Value::String("\u{0}".into()),
        Value::Array(Vec::new()),
        Value::Table(Table::new()),
    ];
    for path in KEYS.iter() {
        check(path, None).unwrap();
        for v in &edges {
            check(path, Some(v.clone())).unwrap();
        }
    }
}

/// The error for `key = value` in `[table]` of `FULL`, which must name the field and its line.
fn error_for(table: &str, key: &str, value: &str) -> String {
    let header = format!("[{table}]\n");
    let start = FULL.find(&header).unwrap() + header.len() - 1;
    let line_start = start + FULL[start..].find(&format!("\n{key} = ")).unwrap() + 1;
    let line_end = line_start + FULL[line_start..].find('\n').unwrap();
    let text = format!(
        "{}{key} = {value}{}",
        &FULL[..line_start],
        &FULL[line_end..]
    );
    let err = parse(&text).expect_err(&format!("{table}.{key} = {value}"));
    let msg = err.to_string();
    assert!(msg.contains(&format!("{table}.{key}")), "{msg}");
    let line = FULL[..line_start].matches('\n').count() + 1;
    assert!(
        msg.starts_with(&format!("lander.toml:{line}: ")),
        "line {line}: {msg}"
    );
    msg
}

#[test]
fn durations_that_are_not_finite_or_too_long_are_errors() {
    for value in ["inf", "-inf", "nan", "1e300", "-1.0", "31622401.0"] {
        error_for("monitor", "lost_grace_secs", value);
        error_for("monitor", "rescan_secs", value);
    }
    let secs = [
        ("scrub", "timeout_secs"),
        ("scrub", "backoff_secs"),
        ("users.alice", "timeout_secs"),
        ("users.alice", "backoff_secs"),
        ("backend", "grace_secs"),
        ("monitor", "stale_secs"),
        ("monitor", "start_timeout_secs"),
        ("monitor", "silent_secs"),
        ("monitor", "temp_max_age_secs"),
    ];
    for (table, key) in secs {
        for value in ["9223372036854775807", "31622401", "-1"] {
            let msg = error_for(table, key, value);
            assert!(!msg.is_empty());
        }
    }
    let msg = error_for("monitor", "lost_grace_secs", "1e300");
    assert!(msg.contains("1e300 is not"), "the value as written: {msg}");
    let msg = error_for("retention", "logs_days", "9223372036854775807");
    assert!(msg.contains("days"), "{msg}");
}

#[test]
fn sizes_over_the_bound_are_errors() {
    for value in [
        "\"99999999999999999999TiB\"",
        "\"2000000TiB\"",
        "\"1e3GiB\"",
    ] {
        error_for("retention", "logs_max", value);
        error_for("users.alice", "quota", value);
    }
}

#[test]
fn counts_are_bounded() {
    error_for("scrub", "retries", "4294967295");
    error_for("users.alice", "retries", "100000");
    error_for("backend", "slots", "9223372036854775807");
    error_for("queue", "limit", "9223372036854775807");
}

#[test]
fn scrub_policies_and_mapping_are_checked_at_load() {
    let msg = error_for("scrub", "payload", "\"keep:lots\"");
    assert!(msg.contains("keep:N"), "{msg}");
    let msg = error_for("scrub", "checksums", "\"maybe\"");
    assert!(msg.contains("fix"), "{msg}");
    let msg = error_for("scrub", "mapping", "\"rot13\"");
    assert!(msg.contains("cryptopan"), "{msg}");
}

#[test]
fn wrong_types_name_the_field() {
    let msg = error_for("users.alice", "timeout_secs", "\"five\"");
    assert!(msg.contains("invalid type"), "{msg}");
    error_for("monitor", "lost_grace_secs", "\"soon\"");
}

#[test]
fn words_that_cannot_reach_a_program_are_errors() {
    error_for("users.alice", "processor", "[\"/bin/echo\", \"a\\u0000b\"]");
    error_for("users.alice", "env", "{ \"A=B\" = \"x\" }");
    error_for("scrub", "env", "{ \"\" = \"x\" }");
    error_for("scrub", "command", "[\"lander-\\u0000scrub\"]");
}

#[test]
fn repeated_and_overlong_site_names_are_errors() {
    let text = FULL.replace(
        "sites = [\"ucla\", \"isi\"]",
        "sites = [\"ucla\", \"isi\", \"ucla\"]",
    );
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains("sites") && msg.contains("twice"), "{msg}");
    let long = "x".repeat(65);
    let text = FULL.replace("\"isi\"", &format!("\"{long}\""));
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains("sites"), "{msg}");
}

#[test]
fn monitor_thresholds_and_notify_commands_are_checked_at_load() {
    let base = "spool = \"/s\"\nsites = [\"a\"]\n[users.alice]\nsubscriptions = [\"a\"]\nprocessor = [\"/bin/true\"]\n";
    let bad = [
        ("[monitor]\nmin_free = \"lots\"\n", "monitor.min_free"),
        ("[monitor]\nmin_free = \"101%\"\n", "monitor.min_free"),
        (
            "[monitor]\nmax_drop_fraction = 1.5\n",
            "monitor.max_drop_fraction",
        ),
        ("[monitor]\nmax_per_hour = 0\n", "monitor.max_per_hour"),
        (
            "[monitor]\nremind_secs = 99999999999\n",
            "monitor.remind_secs",
        ),
        ("[[notify]]\ncommand = []\n", "notify[0].command"),
        (
            "[[notify]]\ncommand = [\"/bin/x\"]\nuser = \"mallory\"\n",
            "notify[0].user",
        ),
        (
            "[[notify]]\ncommand = [\"/bin/x\"]\nevents = []\n",
            "notify[0].events",
        ),
        (
            "[[notify]]\ncommand = [\"/bin/x\"]\nevents = [\"gossip\"]\n",
            "notify",
        ),
        (
            "[[notify]]\ncommand = [\"/bin/x\"]\nshell = true\n",
            "notify",
        ),
    ];
    for (extra, field) in bad {
        let err = parse(&format!("{base}{extra}")).unwrap_err().to_string();
        assert!(err.contains(field), "{extra}: {err}");
        assert!(err.starts_with("lander.toml:"), "{err}");
    }
    let ok = parse(&format!(
        "{base}[monitor]\nmin_free = \"10GiB\"\n[[notify]]\ncommand = [\"/bin/x\"]\n[[notify]]\ncommand = [\"/bin/y\"]\nuser = \"alice\"\n"
    ))
    .unwrap();
    use lander_dispatch::config::{MinFree, NotifyKind};
    assert_eq!(ok.monitor.min_free, MinFree::Bytes(10 << 30));
    assert_eq!(ok.notify[0].kinds, [NotifyKind::Problem]);
    assert_eq!(
        ok.notify[1].kinds,
        [
            NotifyKind::Problem,
            NotifyKind::Arrival,
            NotifyKind::Failure
        ]
    );
}

#[test]
fn the_example_monitor_configuration_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/monitor.example.toml");
    let config = Config::load(&path).unwrap();
    assert!(!config.notify.is_empty());
}
