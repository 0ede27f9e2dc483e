//! The mappings without published vectors, checked against vectors computed by an independent
//! implementation of their construction: `libtrace` (Crypto-PAn with the pad used raw) over
//! IPv4 and IPv6, and `cryptopan` extended to all 128 bits of IPv6.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const KEY: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";

fn pairs(file: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/vectors")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().to_string())
        })
        .collect()
}

fn anon(mapping: &str, key: &Path, addrs: &[String]) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lander"))
        .args(["anon", "ip", "--mapping", mapping, "--key"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(addrs.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn key_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("key");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    writeln!(f, "{KEY}").unwrap();
    path
}

fn check(mapping: &str, file: &str, min: usize) {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let vectors = pairs(file);
    assert!(vectors.len() >= min, "{file}: {} vectors", vectors.len());
    let raw: Vec<String> = vectors.iter().map(|(r, _)| r.clone()).collect();
    let got = anon(mapping, &key, &raw);
    for ((raw, want), got) in vectors.iter().zip(&got) {
        assert_eq!(got, want, "{mapping} {raw}");
    }
    assert_eq!(got.len(), vectors.len());
}

#[test]
fn libtrace_mapping_matches_derived_vectors() {
    check("libtrace", "libtrace-derived.txt", 77);
}

#[test]
fn cryptopan_ipv6_matches_derived_vectors() {
    check("cryptopan", "cryptopan-ipv6-derived.txt", 7);
}
