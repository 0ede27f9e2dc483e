//! Unit tests of loading: good files, and errors that name the file, line and field.

use std::time::Duration;

use lander_anonymize::walker::{Checksums, MacMode, MplsPolicy, Payload};

use super::*;

const GOOD: &str = r#"
spool = "/srv/lander"
state_db = "/var/lib/lander/d.sqlite"
sites = ["ucla", "isi"]

[scrub]
mapping = "cryptopant"
key_file = "/etc/lander/key"

[users.alice]
subscriptions = ["ucla"]
processor = ["/bin/echo", "hello"]
timeout_secs = 5
on_exit = { "3" = "ignore", default = "retry" }
windows = [ { days = "mon-fri", hours = "22:00-06:00" } ]

[backend]
slots = 3
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("lander.toml"), text)
}

#[test]
fn good_config_parses() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.sites, ["ucla", "isi"]);
    assert_eq!(c.backend.slots, 3);
    let alice = &c.users["alice"];
    assert_eq!(alice.on_exit[&3], Action::Ignore);
    assert_eq!(alice.on_exit_default, Action::Retry);
    assert_eq!(alice.timeout, Duration::from_secs(5));
    assert_eq!(
        c.user_db("alice"),
        PathBuf::from("/var/lib/lander/user-alice.sqlite")
    );
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let text = GOOD.replace("slots = 3", "slots = 3\nslotz = 4");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.starts_with("lander.toml:"), "{err}");
    assert!(err.contains("slotz"), "{err}");
    let line: usize = err.split(':').nth(1).unwrap().parse().unwrap();
    assert_eq!(text.lines().nth(line - 1).unwrap().trim(), "slotz = 4");
}

#[test]
fn wrong_type_names_line() {
    let text = GOOD.replace("timeout_secs = 5", "timeout_secs = \"five\"");
    let err = parse(&text).unwrap_err();
    let ConfigError::Parse { line, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(
        text.lines().nth(line - 1).unwrap().trim(),
        "timeout_secs = \"five\""
    );
}

#[test]
fn unknown_subscription_names_field_and_line() {
    let text = GOOD.replace("subscriptions = [\"ucla\"]", "subscriptions = [\"mars\"]");
    let err = parse(&text).unwrap_err();
    let ConfigError::Invalid {
        line, ref field, ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(field, "users.alice.subscriptions");
    assert!(text.lines().nth(line - 1).unwrap().contains("mars"));
}

#[test]
fn bad_window_is_reported() {
    let text = GOOD.replace("22:00-06:00", "22:00-30:00");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("users.alice.windows"), "{err}");
}

#[test]
fn scrub_mac_and_mpls_policies() {
    let c = parse(GOOD).unwrap();
    assert_eq!(
        (c.scrub.mac, c.scrub.mpls),
        (MacMode::Keep, MplsPolicy::Auto)
    );
    assert!(c.scrub.args.windows(2).any(|w| w == ["--mac", "{mac}"]));
    let text = GOOD.replace("[scrub]\n", "[scrub]\nmac = \"scramble-keep-oui\"\n");
    assert_eq!(parse(&text).unwrap().scrub.mac, MacMode::ScrambleKeepOui);
    let text = GOOD.replace("[scrub]\n", "[scrub]\nmpls = \"guess\"\n");
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("scrub.mpls") && err.contains("ethernet"),
        "{err}"
    );
}

#[test]
fn slurm_backend_parses_with_defaults() {
    let c = parse(&GOOD.replace("slots = 3", "kind = \"slurm\"")).unwrap();
    assert_eq!(c.backend.kind, BackendKind::Slurm);
    assert_eq!(c.backend.slurm, Slurm::default());
    let text = GOOD.replace("slots = 3", "kind = \"slurm\"")
        + "\n[backend.slurm]\npartition = \"lander\"\ntime_limit = \"2:00:00\"\n\
           extra_args = [\"--qos=low\"]\nsbatch = \"/opt/slurm/bin/sbatch\"\n";
    let s = parse(&text).unwrap().backend.slurm;
    assert_eq!(s.partition.as_deref(), Some("lander"));
    assert_eq!(s.time_limit.as_deref(), Some("2:00:00"));
    assert_eq!(s.extra_args, ["--qos=low"]);
    assert_eq!(s.sbatch, "/opt/slurm/bin/sbatch");
    assert_eq!(s.squeue, "squeue");
}

#[test]
fn slurm_errors_name_field_and_line() {
    let text = GOOD.replace("slots = 3", "kind = \"pbs\"");
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("backend.kind") && err.contains("slurm"),
        "{err}"
    );
    let text = GOOD.to_owned() + "\n[backend.slurm]\nextra_args = [\"qos=low\"]\n";
    let err = parse(&text).unwrap_err();
    let ConfigError::Invalid {
        line, ref field, ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(field, "backend.slurm.extra_args");
    assert!(text
        .lines()
        .nth(line - 1)
        .unwrap()
        .starts_with("extra_args"));
    let text = GOOD.to_owned() + "\n[backend.slurm]\nsqueu = \"x\"\n";
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("squeu"), "{err}");
}

#[test]
fn sizes_parse_in_binary_and_decimal_units() {
    assert_eq!(parse_size("1000"), Ok(1000));
    assert_eq!(parse_size("50GiB"), Ok(50 << 30));
    assert_eq!(parse_size("50 g"), Ok(50 << 30));
    assert_eq!(parse_size("2TB"), Ok(2_000_000_000_000));
    assert_eq!(parse_size("1.5KiB"), Ok(1536));
    assert!(parse_size("5 parsecs").is_err());
    assert!(parse_size("GiB").is_err());
}

#[test]
fn retention_quota_and_timezone_are_read() {
    let text = GOOD.replace(
        "timeout_secs = 5",
        "timeout_secs = 5\nquota = \"2GiB\"\ntimezone = \"local\"",
    ) + "\n[retention]\nscrubbed_days = 30\nscrubbed_max = \"1TiB\"\nlogs_days = 7\n";
    let c = parse(&text).unwrap();
    assert_eq!(c.users["alice"].quota, Some(2 << 30));
    assert!(c.users["alice"].local_time);
    let r = &c.retention;
    assert_eq!(r.scrubbed.max_age, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(r.scrubbed.max_bytes, Some(1 << 40));
    assert_eq!(r.done, Rule::default());
    let bad = text.replace("\"1TiB\"", "\"lots\"");
    let err = parse(&bad).unwrap_err().to_string();
    assert!(err.contains("retention.scrubbed_max"), "{err}");
    let bad = text.replace("\"local\"", "\"mars\"");
    let err = parse(&bad).unwrap_err().to_string();
    assert!(
        err.contains("users.alice.timezone") && err.contains("utc"),
        "{err}"
    );
}

#[test]
fn shell_string_processor_is_rejected() {
    let text = GOOD.replace(
        "processor = [\"/bin/echo\", \"hello\"]",
        "processor = \"echo hi\"",
    );
    assert!(parse(&text).is_err());
}

#[test]
fn every_scrub_policy_name_is_checked_at_load_and_the_error_names_its_key() {
    let bad = [
        ("mapping", "cryptopan2"),
        ("payload", "keep:lots"),
        ("payload", "keep"),
        ("checksums", "fixed"),
        ("mac", "scramble-oui"),
        ("mpls", "guess"),
    ];
    for (key, value) in bad {
        let text = GOOD.replace("mapping = \"cryptopant\"\n", "");
        let text = text.replace("[scrub]\n", &format!("[scrub]\n{key} = \"{value}\"\n"));
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains(&format!("scrub.{key}")) && err.contains(value),
            "{key} = {value}: {err}"
        );
    }
}

#[test]
fn scrub_policies_load_as_types_and_print_as_written() {
    let text = GOOD.replace(
        "[scrub]\n",
        "[scrub]\npayload = \"keep:96\"\nchecksums = \"keep\"\nmpls = \"cut\"\n",
    );
    let s = parse(&text).unwrap().scrub;
    assert_eq!(s.payload, Payload::Keep(96));
    assert_eq!(s.checksums, Checksums::Keep);
    assert_eq!(s.mpls, MplsPolicy::Cut);
    assert_eq!(s.mapping, lander_anonymize::Mapping::CryptoPant);
    let printed = [
        s.payload.to_string(),
        s.checksums.to_string(),
        s.mpls.to_string(),
    ];
    assert_eq!(printed, ["keep:96", "keep", "cut"]);
}
