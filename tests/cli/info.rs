//! `lander info` beside `capinfos` (Wireshark's), on the same files: the numbers agree.

use std::collections::HashMap;

use crate::*;

/// capinfos' machine-readable table (`-T -M`: every field, exact numbers) of `path`, by column name.
fn capinfos(path: &Path) -> HashMap<String, String> {
    let o = std::process::Command::new("capinfos")
        .args(["-T", "-M"])
        .arg(path)
        .output()
        .expect("capinfos must be installed (tshark's package; scripts/bootstrap.sh)");
    assert!(o.status.success(), "capinfos: {}", err(&o));
    let text = out(&o);
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let row: Vec<&str> = lines.next().unwrap().split('\t').collect();
    head.iter()
        .zip(row)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn close(ours: f64, theirs: &str, what: &str) {
    let theirs: f64 = theirs
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {theirs:?}"));
    // capinfos takes the duration from two Unix times as doubles (~0.2 us apart at today's
    // epoch), so its rates over a few milliseconds are that much off; it prints 2 decimals.
    let tolerance = 0.006_f64.max(theirs.abs() * 1e-4);
    assert!(
        (ours - theirs).abs() <= tolerance,
        "{what}: lander {ours}, capinfos {theirs}"
    );
}

fn compare(path: &Path) {
    let o = run(LANDER, &["info", "--json", "--hash", s(path)]);
    assert!(o.status.success(), "{}", err(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = capinfos(path);
    let (sum, rates) = (&j["summary"], &j["rates"]);
    assert_eq!(
        sum["packets"].to_string(),
        c["Number of packets"],
        "packets"
    );
    assert_eq!(
        sum["wire_bytes"].to_string(),
        c["Data size (bytes)"],
        "data size"
    );
    assert_eq!(j["size"].to_string(), c["File size (bytes)"], "file size");
    assert_eq!(
        j["hashes"]["sha256"].as_str().unwrap(),
        c["SHA256"],
        "sha256"
    );
    assert_eq!(
        j["precision"].as_str().unwrap(),
        c["File time precision"],
        "precision"
    );
    let secs = rates["duration_ns"].as_u64().unwrap() as f64 / 1e9;
    close(secs, &c["Capture duration (seconds)"], "duration");
    close(
        rates["average_packet_size"].as_f64().unwrap(),
        &c["Average packet size (bytes)"],
        "average size",
    );
    close(
        rates["data_byte_rate"].as_f64().unwrap(),
        &c["Data byte rate (bytes/sec)"],
        "byte rate",
    );
    close(
        rates["data_bit_rate"].as_f64().unwrap(),
        &c["Data bit rate (bits/sec)"],
        "bit rate",
    );
    close(
        rates["average_packet_rate"].as_f64().unwrap(),
        &c["Average packet rate (packets/sec)"],
        "packet rate",
    );
    let strict = if rates["strict_time_order"] == true {
        "True"
    } else {
        "False"
    };
    assert_eq!(strict, c["Strict time order"], "time order");
}

#[test]
fn info_agrees_with_capinfos_on_pcap_and_nanosecond_pcap() {
    let dir = tempfile::tempdir().unwrap();
    compare(&trace(dir.path(), "mixed", 3_000));
    let ns = dir.path().join("edge-ns.pcap");
    let o = run(
        LANDER,
        &[
            "-q",
            "gen",
            "edge",
            "-n",
            "500",
            "--format",
            "pcap-ns",
            "--out",
            s(&ns),
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    compare(&ns);
    compare(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats/tcpdump.pcap"));
}

#[test]
fn info_text_is_for_people_and_hashes_stdin_too() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), "mixed", 3_000);
    let o = run(LANDER, &["info", "--hash", s(&t)]);
    let text = out(&o);
    for needle in [
        "Time precision:       microseconds (6)",
        "Average packet size:",
        "Data byte rate:",
        "Packets:              3,000",
        "SHA256:",
        "BLAKE3:",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let bytes = std::fs::read(&t).unwrap();
    let piped = run_in(
        dir.path(),
        LANDER,
        &["info", "--json", "--hash", "-"],
        &bytes,
    );
    let j: serde_json::Value = serde_json::from_slice(&piped.stdout).unwrap();
    assert_eq!(
        j["hashes"]["blake3"],
        blake3::hash(&bytes).to_hex().to_string()
    );
}
