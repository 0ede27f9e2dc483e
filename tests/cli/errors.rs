//! Errors say what, where and what to do, once.

use crate::*;

#[test]
fn a_missing_file_says_the_os_error_once_and_no_offset() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(dir.path(), LANDER, &["info", "nofile.pcap"], b"");
    assert_eq!(o.status.code(), Some(3));
    let e = err(&o);
    assert!(e.contains("nofile.pcap"), "{e}");
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    assert!(!e.contains("offset -"), "{e}");
}

#[test]
fn a_text_file_is_not_a_pcap_pcapng_or_erf_file() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello, this is not a trace\n").unwrap();
    let o = run(LANDER, &["info", s(&notes)]);
    assert_eq!(o.status.code(), Some(3));
    let e = err(&o);
    assert!(
        e.contains("notes.txt: not a pcap, pcapng or ERF file (starts with \"hello, t\")"),
        "{e}"
    );
    assert!(!e.contains("[68, 65"), "{e}");
}

#[test]
fn a_directory_where_a_file_is_expected_names_the_right_flag() {
    let dir = tempfile::tempdir().unwrap();
    let raw = trace(dir.path(), "mixed", 20);
    let key = key(dir.path(), "cryptopan");
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let o = run(LANDER, &["gen", "mixed", "--out", s(&out_dir)]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("is a directory") && err(&o).contains("out/trace.pcap"),
        "{}",
        err(&o)
    );
    let o = run(SCRUB, &["--key", s(&key), s(&raw), s(&out_dir)]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("--out-dir"), "{}", err(&o));
    assert!(!err(&o).contains(".tmp."), "{}", err(&o));
    let o = run(SCRUB, &["--key", s(&key), s(dir.path()), "x.pcap"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("--in-dir"), "{}", err(&o));
    let o = run(LANDER, &["convert", s(&raw), s(&out_dir)]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(names(&out_dir).is_empty(), "{:?}", names(&out_dir));
}

#[test]
fn a_key_of_another_mapping_names_the_mapping_it_looks_like() {
    let dir = tempfile::tempdir().unwrap();
    let raw = trace(dir.path(), "mixed", 20);
    let pant = key(dir.path(), "cryptopant");
    let o = run(
        SCRUB,
        &[
            "--mapping",
            "cryptopan",
            "--key",
            s(&pant),
            s(&raw),
            "x.pcap",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    let e = err(&o);
    assert!(
        e.contains("cryptopant.key") && e.contains("give --mapping cryptopant"),
        "{e}"
    );
}

#[test]
fn quiet_hides_summaries_and_pipes_get_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pcap");
    let o = run(
        LANDER,
        &["-q", "gen", "mixed", "-n", "10", "--out", s(&path)],
    );
    assert!(o.status.success());
    assert_eq!(err(&o), "", "-q: only errors");
    let o = run(
        LANDER,
        &[
            "-vv",
            "gen",
            "mixed",
            "-n",
            "10",
            "--out",
            s(&dir.path().join("u.pcap")),
        ],
    );
    assert!(o.status.success());
    assert!(
        !err(&o).contains('\x1b'),
        "colour escapes into a pipe: {:?}",
        err(&o)
    );
    let o = run(LANDER, &["-q", "-v", "info", s(&path)]);
    assert_eq!(o.status.code(), Some(2), "-q and -v conflict");
}

#[test]
fn verbose_shows_per_file_detail_in_a_directory_scrub() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, out) = (dir.path().join("raw"), dir.path().join("out"));
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    trace(&raw, "mixed", 30);
    trace(&raw, "edge", 30);
    let key = key(dir.path(), "cryptopan");
    let args = |v: &'static str| {
        vec![
            v,
            "--key",
            s(&key),
            "--in-dir",
            s(&raw),
            "--out-dir",
            s(&out),
            "--force",
        ]
    };
    let plain = run(SCRUB, &args("-j1")[1..]);
    assert!(plain.status.success(), "{}", err(&plain));
    assert_eq!(
        err(&plain).lines().count(),
        1,
        "one total line: {}",
        err(&plain)
    );
    let verbose = run(SCRUB, &args("-v"));
    assert!(verbose.status.success(), "{}", err(&verbose));
    let e = err(&verbose);
    assert!(
        e.contains("mixed-30.pcap ->") && e.contains("edge-30.pcap ->"),
        "{e}"
    );
    let quiet = run(SCRUB, &args("-q"));
    assert_eq!(err(&quiet), "");
}

/// Runs `lander args` under `script`, which gives it a terminal, with `env` set.
fn on_a_terminal(args: &str, env: &[(&str, &str)]) -> String {
    let o = std::process::Command::new("script")
        .args(["-qec", &format!("{LANDER} {args}"), "/dev/null"])
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .output()
        .expect("script (bsdutils) gives the test a terminal");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), "mixed", 10);
    let args = format!("-v convert {} {}", s(&t), s(&dir.path().join("c.pcapng")));
    let shown = on_a_terminal(&args, &[]);
    assert!(shown.contains("\x1b["), "a terminal gets colour: {shown:?}");
    assert!(shown.contains("converted 10 packets"), "{shown:?}");
    let args = format!("-v convert {} {}", s(&t), s(&dir.path().join("d.pcapng")));
    let plain = on_a_terminal(&args, &[("NO_COLOR", "1")]);
    assert!(plain.contains("converted 10 packets"), "{plain:?}");
    assert!(
        !plain.contains("\x1b["),
        "NO_COLOR, and no bar for work this short: {plain:?}"
    );
}
