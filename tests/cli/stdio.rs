//! `-` is standard input or output wherever a trace is read or written, or is refused with a
//! reason where it cannot be; never a file named `-`.

use crate::*;

#[test]
fn gen_writes_a_trace_to_stdout_and_no_file_named_dash() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(
        dir.path(),
        LANDER,
        &["gen", "mixed", "-n", "20", "--out", "-"],
        b"",
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        &o.stdout[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "a pcap on stdout"
    );
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    let info = run_in(dir.path(), LANDER, &["info", "--json", "-"], &o.stdout);
    let j: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(j["summary"]["packets"], 20);
}

#[test]
fn scrub_reads_stdin_and_writes_stdout_in_every_combination() {
    let dir = tempfile::tempdir().unwrap();
    let raw = trace(dir.path(), "mixed", 200);
    let key = key(dir.path(), "cryptopan");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let bytes = std::fs::read(&raw).unwrap();
    let by_file = work.join("by-file.pcap");
    let o = run_in(
        &work,
        SCRUB,
        &["-q", "--key", s(&key), s(&raw), s(&by_file)],
        b"",
    );
    assert!(o.status.success(), "{}", err(&o));
    let expected = std::fs::read(&by_file).unwrap();

    let o = run_in(&work, SCRUB, &["-q", "--key", s(&key), s(&raw), "-"], b"");
    assert!(o.status.success(), "IN -: {}", err(&o));
    assert_eq!(o.stdout, expected, "IN - writes the same trace to stdout");

    let o = run_in(&work, SCRUB, &["-q", "--key", s(&key), "-", "-"], &bytes);
    assert!(o.status.success(), "- -: {}", err(&o));
    assert_eq!(o.stdout, expected);

    let from_stdin = work.join("from-stdin.pcap");
    let o = run_in(
        &work,
        SCRUB,
        &["-q", "--key", s(&key), "-", s(&from_stdin)],
        &bytes,
    );
    assert!(o.status.success(), "- OUT: {}", err(&o));
    assert_eq!(std::fs::read(&from_stdin).unwrap(), expected);
    // a file read from a stream is published with its manifest all the same: what it holds,
    // its digest and how it was anonymized; no source file, and the stream's digest when asked
    let manifest = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(format!("{}.json", p.display())).unwrap()).unwrap()
    };
    let (by_file_m, stdin_m) = (manifest(&by_file), manifest(&from_stdin));
    for field in [
        "blake3",
        "packets",
        "file_size",
        "first_ts_ns",
        "last_ts_ns",
    ] {
        assert_eq!(stdin_m[field], by_file_m[field], "{field}");
    }
    assert_eq!(stdin_m["file"], "from-stdin.pcap");
    let (a, b) = (&stdin_m["anonymization"], &by_file_m["anonymization"]);
    for field in ["mapping", "payload", "checksums", "key_id", "counts"] {
        assert_eq!(a[field], b[field], "anonymization.{field}");
    }
    assert!(a["source_file"].is_null(), "{a}");
    assert!(a["source_blake3"].is_null(), "{a}");
    let hashed = work.join("hashed.pcap");
    let o = run_in(
        &work,
        SCRUB,
        &["-q", "--key", s(&key), "--hash-source", "-", s(&hashed)],
        &bytes,
    );
    assert!(o.status.success(), "--hash-source - OUT: {}", err(&o));
    assert_eq!(
        manifest(&hashed)["anonymization"]["source_blake3"],
        blake3::hash(&bytes).to_hex().to_string()
    );
    std::fs::remove_file(&hashed).unwrap();
    std::fs::remove_file(work.join("hashed.pcap.json")).unwrap();

    let left = names(&work);
    assert!(
        !left.iter().any(|n| n.starts_with('-')),
        "a file named like `-`: {left:?}"
    );
    assert_eq!(
        left,
        [
            "by-file.pcap",
            "by-file.pcap.json",
            "from-stdin.pcap",
            "from-stdin.pcap.json"
        ]
    );
}

#[test]
fn dash_is_refused_with_a_reason_where_a_pipe_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let raw = trace(dir.path(), "mixed", 20);
    for (bin, args, needle) in [
        (
            LANDER,
            vec!["verify", "-", s(&raw)],
            "reads both traces more than once",
        ),
        (LANDER, vec!["keygen", "--out", "-"], "mode 0600"),
        (
            CAPTURE,
            vec!["--read", s(&raw), "--out-dir", "-"],
            "into a directory",
        ),
        (CAPTURE, vec!["--read", "-", "--out-dir", "d"], "--erf -"),
        (LANDER, vec!["man", "--out", "-"], "into a directory"),
        (
            LANDER,
            vec!["completions", "bash", "--out-dir", "-"],
            "go to stdout",
        ),
        (LANDER, vec!["demo", "--dir", "-"], "is a directory"),
    ] {
        let o = run_in(dir.path(), bin, &args, b"");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(
            err(&o).contains("cannot be `-`") && err(&o).contains(needle),
            "{args:?}: {}",
            err(&o)
        );
    }
    assert!(!names(dir.path()).iter().any(|n| n == "-" || n == "d"));
}

#[test]
fn an_output_that_is_the_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let raw = trace(dir.path(), "mixed", 50);
    let key = key(dir.path(), "cryptopan");
    let before = std::fs::read(&raw).unwrap();
    let link = dir.path().join("link.pcap");
    std::fs::hard_link(&raw, &link).unwrap();
    for (bin, args) in [
        (SCRUB, vec!["--key", s(&key), s(&raw), s(&raw)]),
        (SCRUB, vec!["--key", s(&key), s(&raw), s(&link)]),
        (
            SCRUB,
            vec![
                "--key",
                s(&key),
                "--in-dir",
                s(dir.path()),
                "--out-dir",
                s(dir.path()),
            ],
        ),
        (LANDER, vec!["convert", s(&raw), s(&link)]),
    ] {
        let o = run(bin, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(err(&o).contains("is the input"), "{args:?}: {}", err(&o));
    }
    assert_eq!(std::fs::read(&raw).unwrap(), before);
    let o = run(LANDER, &["keygen", "--out", s(&key)]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("never overwritten"), "{}", err(&o));
}

/// A published trace (a file with its manifest beside it) is not replaced by `convert` or
/// `gen` unless `--force` says so, and then its manifest goes too; a plain file is replaced,
/// as tcpdump -w replaces one.
#[test]
fn a_published_trace_is_not_replaced_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let raw = trace(dir.path(), "mixed", 50);
    let archived = dir.path().join("archived.pcap");
    std::fs::copy(&raw, &archived).unwrap();
    std::fs::write(dir.path().join("archived.pcap.json"), b"{}").unwrap();
    let before = std::fs::read(&archived).unwrap();
    for args in [
        vec!["convert", "--format", "pcapng", s(&raw), s(&archived)],
        vec!["gen", "syn-flood", "-n", "5", "--out", s(&archived)],
    ] {
        let o = run(LANDER, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(
            err(&o).contains("is a published trace"),
            "{args:?}: {}",
            err(&o)
        );
        assert_eq!(std::fs::read(&archived).unwrap(), before, "{args:?}");
    }
    let o = run(
        LANDER,
        &[
            "gen",
            "syn-flood",
            "-n",
            "5",
            "--out",
            s(&archived),
            "--force",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_ne!(std::fs::read(&archived).unwrap(), before);
    // the manifest described the file replaced: it goes with it
    assert!(!dir.path().join("archived.pcap.json").exists());
    // --force replaces no published trace where there is no file: a manifest alone stays
    let lone = dir.path().join("lone.pcap.json");
    std::fs::write(&lone, b"{}").unwrap();
    let out = dir.path().join("lone.pcap");
    let o = run(
        LANDER,
        &["gen", "syn-flood", "-n", "5", "--out", s(&out), "--force"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(lone.exists());
    // a plain file is replaced
    let plain = dir.path().join("plain.pcap");
    std::fs::write(&plain, b"old").unwrap();
    let o = run(LANDER, &["convert", s(&raw), s(&plain)]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(std::fs::read(&plain).unwrap(), std::fs::read(&raw).unwrap());
}

#[test]
fn a_binary_trace_is_never_written_to_a_terminal() {
    for args in ["gen mixed -n 5 --out -", "convert /dev/null -"] {
        let o = std::process::Command::new("script")
            .args(["-qec", &format!("{LANDER} {args}"), "/dev/null"])
            .output()
            .expect("script (bsdutils) gives the test a terminal");
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(2), "{args}: {text}");
        assert!(
            text.contains("refusing to write a binary trace to a terminal"),
            "{text}"
        );
    }
}
