//! The scrubber checked against real tools: Debian's `traceanon` (libtrace 3.0.22) as the
//! oracle of the reference Crypto-PAn mapping, and tshark's checksum validation.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use lander_spool::synth::write_trace;
use lander_trace::format::TraceReader;
use lander_trace::synth::Profile;
use lander_trace::Format;

/// 32 printable bytes: traceanon takes its `-c` string as the key bytes.
const KEY: &str = "lander-rs-traceanon-oracle-key!!";

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn raw_key(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("key");
    std::fs::write(&path, KEY).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn scrub(input: &Path, output: &Path, key: &Path, extra: &[&str]) {
    run(Command::new(env!("CARGO_BIN_EXE_lander-scrub"))
        .args(["-q", "--mapping", "cryptopan", "--key"])
        .arg(key)
        .args(extra)
        .arg(input)
        .arg(output));
}

/// IPv4 source and destination of every Ethernet/IPv4 record, `None` for others.
fn v4_addresses(path: &Path) -> Vec<Option<[u8; 8]>> {
    let mut reader = TraceReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = reader.next().unwrap() {
        let d = rec.data;
        let is_v4 = d.len() >= 34 && d[12..14] == [8, 0] && d[14] >> 4 == 4;
        out.push(is_v4.then(|| d[26..34].try_into().unwrap()));
    }
    out
}

#[test]
fn traceanon_agrees_on_every_ipv4_address() {
    let dir = tempfile::tempdir().unwrap();
    let key = raw_key(dir.path());
    for (profile, packets) in [(Profile::SynFlood, 20_000), (Profile::Mixed, 5_000)] {
        let raw = dir.path().join(format!("{}.pcap", profile.name()));
        write_trace(profile, 42, packets, &raw, Format::Pcap).unwrap();
        let ours = dir.path().join(format!("{}-ours.pcap", profile.name()));
        let theirs = dir
            .path()
            .join(format!("{}-traceanon.pcap", profile.name()));
        scrub(&raw, &ours, &key, &["-j", "2"]);
        run(Command::new("traceanon")
            .args(["-c", KEY, "-s", "-d"])
            .arg(format!("pcapfile:{}", raw.display()))
            .arg(format!("pcapfile:{}", theirs.display())));
        let (a, b) = (v4_addresses(&ours), v4_addresses(&theirs));
        assert_eq!(a.len(), b.len());
        let v4 = a.iter().filter(|x| x.is_some()).count();
        assert!(
            v4 > packets as usize / 3,
            "{profile:?}: only {v4} IPv4 packets"
        );
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x, y, "{profile:?} packet {i}");
        }
    }
}

fn bad_checksums(path: &Path) -> (usize, usize) {
    let out = run(Command::new("tshark").args(["-n", "-r"]).arg(path).args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-T",
        "fields",
        "-e",
        "ip.checksum.status",
        "-e",
        "tcp.checksum.status",
        "-e",
        "udp.checksum.status",
        "-e",
        "icmp.checksum.status",
        "-e",
        "icmpv6.checksum.status",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    let statuses = text.split(['\t', '\n', ',']);
    let (mut bad, mut good) = (0, 0);
    for s in statuses {
        match s.trim() {
            "0" => bad += 1,
            "1" => good += 1,
            _ => {}
        }
    }
    (bad, good)
}

#[test]
fn tshark_finds_every_checksum_valid() {
    let dir = tempfile::tempdir().unwrap();
    let key = raw_key(dir.path());
    for profile in [Profile::Mixed, Profile::Edge, Profile::SynFlood] {
        let raw = dir.path().join(format!("{}.pcap", profile.name()));
        write_trace(profile, 5, 3_000, &raw, Format::Pcap).unwrap();
        let (raw_bad, _) = bad_checksums(&raw);
        for payload in ["zero", "drop", "keep:8"] {
            let out = dir
                .path()
                .join(format!("{}-{payload}.pcap", profile.name()));
            scrub(&raw, &out, &key, &["--payload", payload]);
            let (bad, good) = bad_checksums(&out);
            assert!(
                good > 1_000,
                "{profile:?} {payload}: only {good} checksums checked"
            );
            assert!(
                bad <= raw_bad,
                "{profile:?} {payload}: {bad} bad checksums (raw had {raw_bad})"
            );
        }
    }
}
