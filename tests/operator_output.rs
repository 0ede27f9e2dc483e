//! What an operator reads from the daemons: `lander dispatch run` and `lander user run` say
//! when they start, one info line per pass that did something, and a line at shutdown with
//! the totals; `-v` adds a line per item; with `monitor.in_dispatch` the monitor's passes are
//! logged beside the dispatcher's.

mod dispatch_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dispatch_support::*;

/// Runs `lander <args> run` until `done` holds (or 60 s), then TERM; returns stderr.
fn run_until(args: &[&str], config: &std::path::Path, done: impl Fn() -> bool) -> String {
    let child = Command::new(LANDER)
        .env("NO_COLOR", "1")
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn dispatch_run_logs_start_each_pass_that_did_something_and_shutdown() {
    let spool = Spool::new(Setup::default());
    let names = spool.add_raw(0..3);
    let text = std::fs::read_to_string(spool.config_path()).unwrap();
    let with_monitor = spool.root().join("with-monitor.toml");
    std::fs::write(
        &with_monitor,
        text.replace(
            "[monitor]\n",
            "[monitor]\nin_dispatch = true\npoll_secs = 1\n",
        ),
    )
    .unwrap();
    let scrubbed = spool.scrubbed_dir();
    let log = run_until(&["-v", "dispatch"], &with_monitor, || {
        names.iter().all(|n| scrubbed.join(n).exists())
    });
    let lines: Vec<&str> = log.lines().collect();
    assert!(log.contains("dispatcher started"), "{log}");
    assert!(log.contains("local backend, 2 slots"), "{log}");
    let info_passes: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(" INFO ") && l.contains("pass: submitted"))
        .collect();
    assert!(info_passes.len() >= 2, "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no terminal colours in a log that is not a terminal"
    );
    // -v: one line per item.
    for n in &names {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("submitted") && l.contains(n.as_str())),
            "{n}: {log}"
        );
    }
    assert!(log.contains("monitor pass:"), "{log}");
    let last = lines
        .iter()
        .rev()
        .find(|l| l.contains("dispatcher stopped"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(last.contains("succeeded 3"), "{last}");
}

#[test]
fn user_run_without_work_logs_start_and_shutdown_and_no_pass_lines() {
    let spool = Spool::new(Setup::default());
    let started = Instant::now();
    let log = run_until(&["user", "--user", "alice"], &spool.config_path(), || {
        started.elapsed() > Duration::from_secs(2)
    });
    assert!(log.contains("dispatcher started"), "{log}");
    assert!(
        log.contains("stage=\"user/alice\"") || log.contains("user/alice"),
        "{log}"
    );
    assert!(
        !log.contains("pass:"),
        "an idle pass is not news at info: {log}"
    );
    assert!(log.contains("dispatcher stopped after"), "{log}");
}
