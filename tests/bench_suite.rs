//! The CI smoke test of `lander bench --quick`: the report's shape, never its figures. Needs
//! the peer tools (tcpdump, tracesplit and traceanon from libtrace-tools, editcap and
//! capinfos from tshark: scripts/bootstrap.sh).

use std::process::Command;

const LANDER: &str = env!("CARGO_BIN_EXE_lander");

#[test]
fn quick_suite_writes_every_group_as_json_markdown_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("report");
    let out = Command::new(LANDER)
        .args([
            "-q",
            "bench",
            "--quick",
            "--rounds",
            "2",
            "--json",
            "--report-dir",
        ])
        .arg(&reports)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["command"], "lander bench --quick --rounds 2");
    let groups = report["groups"].as_array().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    for want in [
        "replay syn-flood",
        "replay durable syn-flood",
        "scrub syn-flood",
        "scrub mixed",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for g in groups {
        let cases = g["cases"].as_array().unwrap();
        assert!(cases.iter().any(|c| c["ours"] == true), "{}", g["name"]);
        assert!(
            cases.iter().any(|c| c["ours"] == false),
            "a peer in {}",
            g["name"]
        );
        let baseline = g["baseline"].as_str().unwrap();
        for c in cases {
            assert_eq!(c["seconds"].as_array().unwrap().len(), 2, "two rounds");
            assert!(c["median"].as_f64().unwrap() > 0.0);
            if c["name"] == baseline {
                assert_eq!(c["speedup_vs_baseline"].as_f64(), Some(1.0));
            }
        }
    }
    let scrub = groups
        .iter()
        .find(|g| g["name"] == "scrub syn-flood")
        .unwrap();
    let threads: Vec<u64> = scrub["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["threads"].as_u64())
        .collect();
    assert!(
        threads.len() >= 2 && threads[0] == 1,
        "a thread sweep: {threads:?}"
    );
    let md = std::fs::read_to_string(reports.join("report.md")).unwrap();
    assert!(
        md.contains("`lander bench --quick --rounds 2`"),
        "the command above each table"
    );
    assert!(md.contains("| tool | median s |"));
    for svg in ["bench-threads.svg", "bench-packet-size.svg"] {
        let text = std::fs::read_to_string(reports.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.contains("</svg>"), "{svg}");
        assert!(md.contains(svg), "the report links {svg}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["groups"], report["groups"]);
}
