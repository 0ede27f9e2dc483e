//! `lander-job` as a person or a backend runs it: help, version, loud failures, the exit-code
//! contract (0 ok, 2 usage, 3 input or I/O).

use std::process::{Command, Output};

const JOB: &str = env!("CARGO_BIN_EXE_lander-job");

fn job(args: &[&str]) -> Output {
    Command::new(JOB).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_and_version_answer_and_exit_0() {
    for flag in ["--help", "-h"] {
        let out = job(&[flag]);
        assert_eq!(out.status.code(), Some(0));
        let help = text(&out.stdout);
        assert!(help.contains("Usage: lander-job SPEC"), "{help}");
        assert!(help.contains("  3  input or I/O error"), "{help}");
    }
    for flag in ["--version", "-V"] {
        let out = job(&[flag]);
        assert_eq!(out.status.code(), Some(0));
        let version = text(&out.stdout);
        assert_eq!(
            version.trim(),
            concat!("lander-job ", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn bad_arguments_are_usage_errors_2_and_said() {
    for args in [
        &[][..],
        &["--bogus"][..],
        &["a", "b"][..],
        &["copy", "in"][..],
    ] {
        let out = job(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("error: ") && err.contains("usage: lander-job"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_missing_or_foreign_spec_is_an_input_error_3_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent.spec.json");
    let out = job(&[missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains("nonexistent.spec.json"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    let foreign = dir.path().join("notes.json");
    std::fs::write(&foreign, "{\"hello\": 1}").unwrap();
    let out = job(&[foreign.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("not a job spec"),
        "{}",
        text(&out.stderr)
    );
}
