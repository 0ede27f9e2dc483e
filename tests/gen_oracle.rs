//! `lander gen` output checked by tshark: every profile's packets parse and carry valid
//! IPv4, TCP, UDP, ICMP and ICMPv6 checksums, and the same seed gives the same file.

use std::path::Path;
use std::process::Command;

fn lander(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_lander"))
        .args(args)
        .output()
        .expect("run lander");
    assert!(
        out.status.success(),
        "lander {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tshark_count(file: &Path, filter: Option<&str>) -> usize {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    for pref in [
        "tcp.check_checksum:TRUE",
        "udp.check_checksum:TRUE",
        "ip.check_checksum:TRUE",
    ] {
        cmd.args(["-o", pref]);
    }
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    let out = cmd
        .output()
        .expect("tshark must be installed (scripts/bootstrap.sh)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

const BAD_CHECKSUM: &str = "ip.checksum.status==0 || tcp.checksum.status==0 || \
     udp.checksum.status==0 || icmp.checksum.status==0 || icmpv6.checksum.status==0";

#[test]
fn every_profile_has_valid_checksums_per_tshark() {
    let dir = tempfile::tempdir().unwrap();
    for profile in ["syn-flood", "udp-amplification", "mixed", "edge"] {
        let file = dir.path().join(format!("{profile}.pcap"));
        lander(&[
            "gen",
            profile,
            "-n",
            "2100",
            "--out",
            file.to_str().unwrap(),
            "-q",
        ]);
        assert_eq!(tshark_count(&file, None), 2100, "{profile}");
        assert_eq!(tshark_count(&file, Some(BAD_CHECKSUM)), 0, "{profile}");
    }
}

#[test]
fn same_seed_gives_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.pcapng"),
        dir.path().join("b.pcapng"),
        dir.path().join("c.pcapng"),
    );
    for (f, seed) in [(&a, "9"), (&b, "9"), (&c, "10")] {
        lander(&[
            "gen",
            "mixed",
            "-n",
            "500",
            "--seed",
            seed,
            "--out",
            f.to_str().unwrap(),
            "-q",
        ]);
    }
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(read(&a), read(&b));
    assert_ne!(read(&a), read(&c));
}
