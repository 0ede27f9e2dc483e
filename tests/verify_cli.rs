//! `lander verify` as a user runs it: exit codes 0/1/2/3, the JSON report, the help.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lander_spool::synth::write_trace;
use lander_trace::format::{TraceReader, TraceWriter};
use lander_trace::synth::Profile;
use lander_trace::{Format, LinkType};

fn lander(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lander"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A raw mixed trace and its scrubbed form (payload zeroed); the key is `dir/key`.
fn scrubbed(dir: &Path) -> (PathBuf, PathBuf) {
    let raw = dir.join("raw.pcap");
    let anon = dir.join("anon.pcap");
    write_trace(Profile::Mixed, 7, 2_000, &raw, Format::Pcap).unwrap();
    let key = dir.join("key");
    assert!(lander(&["keygen", "--out", s(&key)]).status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_lander-scrub"))
        .args([
            "-q",
            "--payload",
            "zero",
            "--key",
            s(&key),
            s(&raw),
            s(&anon),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (raw, anon)
}

/// `anon` with the raw source address of record 0 pasted into the zeroed payload of
/// record `index`, at an odd offset.
fn plant(raw: &Path, anon: &Path, index: usize, out: &Path) {
    let mut r = TraceReader::open(raw).unwrap();
    let first = r.next_owned().unwrap().unwrap().data[26..30].to_vec();
    let mut a = TraceReader::open(anon).unwrap();
    let file = std::fs::File::create(out).unwrap();
    let mut w = TraceWriter::new(file, Format::Pcap, LinkType::ETHERNET, 65_535).unwrap();
    let mut i = 0;
    while let Some(mut rec) = a.next_owned().unwrap() {
        if i == index {
            let n = rec.data.len();
            rec.data[n - 5..n - 1].copy_from_slice(&first);
        }
        w.write(&rec.as_record()).unwrap();
        i += 1;
    }
    w.finish().unwrap();
}

#[test]
fn clean_is_0_and_json_has_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, anon) = scrubbed(dir.path());
    let key = dir.path().join("key");
    let v = lander(&["verify", "--json", "--key", s(&key), s(&raw), s(&anon)]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
    let j: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(j["clean"], true);
    assert_eq!(j["report"]["anon_packets"], 2_000);
    assert_eq!(j["report"]["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn leaks_are_1_with_frame_offset_and_kind_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, anon) = scrubbed(dir.path());
    // a frame after the first whose zeroed payload is long enough
    let mut a = TraceReader::open(&anon).unwrap();
    a.next_owned().unwrap();
    let mut index = 1;
    while a.next_owned().unwrap().unwrap().data.len() < 500 {
        index += 1;
    }
    let bad = dir.path().join("bad.pcap");
    plant(&raw, &anon, index, &bad);
    let key = dir.path().join("key");
    let v = lander(&["verify", "--json", "--key", s(&key), s(&raw), s(&bad)]);
    assert_eq!(
        v.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(j["clean"], false);
    let f = &j["report"]["findings"][0];
    assert_eq!(f["frame"], index as u64 + 1, "{f}");
    assert_eq!(f["kind"], "address", "{f}");
    assert!(f["offset"].as_u64().is_some(), "{f}");
    assert!(f["detail"].as_str().unwrap().contains("raw frame 1"), "{f}");
    // the text form says the same
    let t = lander(&["verify", "--key", s(&key), s(&raw), s(&bad)]);
    assert_eq!(t.status.code(), Some(1));
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(text.contains(&format!("frame {} ", index + 1)), "{text}");
    assert!(text.contains(": address: "), "{text}");
}

#[test]
fn usage_errors_are_2_and_input_errors_3() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, anon) = scrubbed(dir.path());
    assert_eq!(lander(&["verify", s(&raw)]).status.code(), Some(2));
    assert_eq!(
        lander(&["verify", "--bogus", s(&raw), s(&anon)])
            .status
            .code(),
        Some(2)
    );
    let missing = dir.path().join("missing.pcap");
    assert_eq!(
        lander(&["verify", s(&raw), s(&missing)]).status.code(),
        Some(3)
    );
    let garbage = dir.path().join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a trace at all").unwrap();
    let v = lander(&["verify", s(&garbage), s(&anon)]);
    assert_eq!(v.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&v.stderr).contains("garbage.pcap"));
    let mut cut = std::fs::read(&anon).unwrap();
    cut.truncate(cut.len() - 3);
    let truncated = dir.path().join("truncated.pcap");
    std::fs::write(&truncated, cut).unwrap();
    assert_eq!(
        lander(&["verify", s(&raw), s(&truncated)]).status.code(),
        Some(3)
    );
}

#[test]
fn help_documents_the_exit_codes_and_kinds() {
    let h = lander(&["verify", "--help"]);
    let text = String::from_utf8_lossy(&h.stdout);
    for needle in [
        "Exit status 1 means leaks were found",
        "  1  the check found something (leaks, open problems, over quota)",
        "  2  usage error",
        "  3  input or I/O error",
        "unexplained-header-byte",
        "--json",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
