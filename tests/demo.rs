//! `lander demo`: the README's main command runs the whole pipeline on its built-in default,
//! and every packet arrives where it should, scrubbed.

use std::path::Path;
use std::process::Command;

fn stage<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {report}"))
}

#[test]
fn demo_moves_every_packet_through_every_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_lander"))
        .args([
            "demo",
            "--packets",
            "8000",
            "--rotate-packets",
            "3000",
            "--json",
            "--dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The monitor ran and the status page was written beside the spool.
    let page = std::path::PathBuf::from(report["status_page"].as_str().unwrap());
    assert_eq!(page, dir.canonicalize().unwrap().join("status.html"));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("LANDER status") && html.contains("user/bob"),
        "{html}"
    );
    assert!(report["problems"].is_array());

    let packets = |name: &str| stage(&report, name)["packets"].as_u64().unwrap();
    let files = |name: &str| stage(&report, name)["files"].as_u64().unwrap();
    assert_eq!(packets("gen"), 8000 + 2000);
    assert_eq!(packets("capture"), 10_000);
    assert_eq!(
        files("capture"),
        3 + 1,
        "8000 packets in files of 3000, and 2000 in one"
    );
    assert_eq!(packets("scrub"), 10_000);
    assert_eq!(files("scrub"), 4);
    assert_eq!(packets("user alice"), 10_000, "alice takes both sites");
    assert_eq!(packets("user bob"), 2000, "bob takes the campus site only");
    assert_eq!(
        report["protocols"]["bob"]["ipv6"].as_u64().map(|n| n > 0),
        Some(true)
    );

    let spool = dir.join("spool");
    for site in ["border", "campus"] {
        // Only the site's sequence mark stays in raw/.
        let left: Vec<String> = std::fs::read_dir(spool.join("raw").join(site))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !lander_spool::seq::is_mark_name(n))
            .collect();
        assert!(left.is_empty(), "raw {site} drained: {left:?}");
        for entry in std::fs::read_dir(spool.join("scrubbed").join(site)).unwrap() {
            let scrubbed = entry.unwrap().path();
            let name = scrubbed.file_name().unwrap().to_string_lossy();
            if name.starts_with('.') || name.ends_with(".json") {
                continue;
            }
            let raw = spool
                .join("archive")
                .join(site)
                .join(scrubbed.file_name().unwrap());
            let verify = Command::new(env!("CARGO_BIN_EXE_lander"))
                .args(["verify", "--mapping", "cryptopan", "--key"])
                .arg(dir.join("key"))
                .args([&raw, &scrubbed])
                .output()
                .unwrap();
            assert!(
                verify.status.success(),
                "{}{}",
                String::from_utf8_lossy(&verify.stdout),
                String::from_utf8_lossy(&verify.stderr)
            );
        }
    }
    assert_eq!(
        count(&spool.join("users/alice/done/border"))
            + count(&spool.join("users/alice/done/campus")),
        4 * 2,
        "trace + manifest each, in a directory per site"
    );
    assert_eq!(count(&spool.join("users/bob/incoming/campus")), 0);
    assert!(
        !spool.join("users/bob/incoming/border").exists(),
        "bob takes campus only"
    );
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}
