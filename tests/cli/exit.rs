//! The exit-code contract, per binary, and what every `--help` ends with.

use crate::*;

#[test]
fn every_binary_says_the_exit_codes_and_examples_in_its_help() {
    for bin in [LANDER, CAPTURE, SCRUB] {
        let o = run(bin, &["--help"]);
        assert_eq!(o.status.code(), Some(0));
        let help = out(&o);
        for needle in [
            "Examples:",
            "Exit status:",
            "  0  ok",
            "  2  usage error",
            "  3  input or I/O error",
        ] {
            assert!(help.contains(needle), "{bin}: {needle}: {help}");
        }
    }
    for sub in [
        "info", "convert", "gen", "scrub", "verify", "keygen", "dispatch", "status", "quota",
    ] {
        let help = out(&run(LANDER, &[sub, "--help"]));
        assert!(help.contains("Exit status:"), "{sub}: {help}");
        assert!(
            help.contains(&format!("lander {sub}")),
            "{sub} examples: {help}"
        );
    }
}

#[test]
fn usage_errors_are_2_on_every_binary() {
    for (bin, args) in [
        (LANDER, &[][..]),
        (LANDER, &["info"][..]),
        (LANDER, &["gen", "mixed", "--bogus"][..]),
        (CAPTURE, &[][..]),
        (CAPTURE, &["-i", "lo"][..]),
        (SCRUB, &[][..]),
        (SCRUB, &["--key", "k", "only-in.pcap"][..]),
        (LANDER, &["status"][..]),
        (LANDER, &["dispatch", "once"][..]),
    ] {
        let o = run(bin, args);
        assert_eq!(o.status.code(), Some(2), "{bin} {args:?}: {}", err(&o));
        assert!(!err(&o).is_empty(), "{bin} {args:?} said nothing");
    }
}

#[test]
fn config_is_required_and_taken_from_lander_config() {
    let o = run(LANDER, &["clean"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("--config <FILE>"), "{}", err(&o));
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let o = std::process::Command::new(LANDER)
        .args(["clean", "--dry-run"])
        .env("LANDER_CONFIG", &missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(err(&o).contains("missing.toml"), "{}", err(&o));
}

#[test]
fn input_errors_are_3_on_every_binary() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path(), "cryptopan");
    let missing = dir.path().join("missing.pcap");
    let out_dir = dir.path().join("raw");
    for (bin, args) in [
        (LANDER, vec!["info", s(&missing)]),
        (LANDER, vec!["convert", s(&missing), "x.pcap"]),
        (SCRUB, vec!["--key", s(&key), s(&missing), "out.pcap"]),
        (SCRUB, vec!["--key", s(&missing), s(&missing), "out.pcap"]),
        (
            CAPTURE,
            vec!["--read", s(&missing), "--out-dir", s(&out_dir)],
        ),
    ] {
        let o = run_in(dir.path(), bin, &args, b"");
        assert_eq!(o.status.code(), Some(3), "{bin} {args:?}: {}", err(&o));
        assert!(
            err(&o).contains("missing.pcap"),
            "{bin} {args:?}: {}",
            err(&o)
        );
    }
}

#[test]
fn a_clean_run_is_0() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), "mixed", 50);
    assert_eq!(run(LANDER, &["info", s(&t)]).status.code(), Some(0));
}

#[test]
fn completions_for_every_binary_and_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(LANDER, &["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        let lander_only = run(LANDER, &["completions", shell, "--bin", "lander"]);
        assert_eq!(
            out(&o),
            out(&lander_only),
            "{shell}: stdout gets lander's only"
        );
        for bin in ["lander-capture", "lander-scrub", "lander-job"] {
            let o = run(LANDER, &["completions", shell, "--bin", bin]);
            assert!(
                o.status.success() && out(&o).contains(bin),
                "{shell}: {bin}"
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        LANDER,
        &["-q", "completions", "bash", "--out-dir", s(dir.path())],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        names(dir.path()),
        [
            "lander-capture.bash",
            "lander-job.bash",
            "lander-scrub.bash",
            "lander.bash"
        ]
    );
    let o = run(LANDER, &["completions", "bash", "--bin", "tcpdump"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("lander-capture"), "{}", err(&o));
}

#[test]
fn man_pages_for_every_binary_and_subcommand_render() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(LANDER, &["-q", "man", "--out", s(dir.path())]);
    assert!(o.status.success(), "{}", err(&o));
    let pages = names(dir.path());
    for page in [
        "lander.1",
        "lander-info.1",
        "lander-anon-ip.1",
        "lander-capture.1",
        "lander-scrub.1",
        "lander-job.1",
    ] {
        assert!(pages.contains(&page.to_string()), "{page}: {pages:?}");
    }
    assert!(
        !pages.iter().any(|p| p.contains("job-wrapper")),
        "hidden commands have no page"
    );
    let info = std::fs::read_to_string(dir.path().join("lander-info.1")).unwrap();
    assert!(
        info.contains("Exit status") && info.contains("hash"),
        "{info}"
    );
    let o = std::process::Command::new("man")
        .args(["-l", "-Tutf8"])
        .arg(dir.path().join("lander.1"))
        .output()
        .expect("man-db must be installed (scripts/bootstrap.sh)");
    assert!(o.status.success(), "man -l: {}", err(&o));
    assert!(out(&o).contains("lander"), "{}", out(&o));
}
