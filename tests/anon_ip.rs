//! `lander anon ip` and the mappings' properties: prefix preservation, reverse round trips.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use lander_anonymize::{Anonymizer, Key, MapOptions, Mapping};
use proptest::prelude::*;

fn common_prefix(a: u128, b: u128, bits: u32) -> u32 {
    ((a ^ b) << (128 - bits)).leading_zeros().min(bits)
}

proptest! {
    #[test]
    fn prefixes_are_preserved(a in any::<u32>(), b in any::<u32>(), c in any::<u128>(), d in any::<u128>(), m in 0usize..3) {
        let key = Key::generate(Mapping::ALL[m]).unwrap();
        let anon = Anonymizer::new(&key, &MapOptions::default()).unwrap();
        // share a random-length prefix
        let b = (a & 0xffff_0000) | (b & 0xffff);
        let (x, y) = (anon.anon_v4(a), anon.anon_v4(b));
        prop_assert_eq!(common_prefix(a.into(), b.into(), 32), common_prefix(x.into(), y.into(), 32));
        let d = (c & (u128::MAX << 64)) | (d >> 64);
        let (x, y) = (anon.anon_v6(c), anon.anon_v6(d));
        prop_assert_eq!(common_prefix(c, d, 128), common_prefix(x, y, 128));
        prop_assert_eq!(anon.deanon_v4(anon.anon_v4(a)), a);
        prop_assert_eq!(anon.deanon_v6(anon.anon_v6(c)), c);
    }
}

fn anon_ip(key: &std::path::Path, mapping: &str, extra: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lander"))
        .args([
            "anon",
            "ip",
            "--mapping",
            mapping,
            "--key",
            key.to_str().unwrap(),
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn anon_ip_round_trips_through_reverse_for_every_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let input = "192.0.2.1\n10.1.2.3\n2001:db8::1\n::ffff:1.2.3.4\n";
    for mapping in ["cryptopan", "cryptopant", "libtrace"] {
        let key = dir.path().join(mapping);
        let st = Command::new(env!("CARGO_BIN_EXE_lander"))
            .args([
                "keygen",
                "--mapping",
                mapping,
                "--out",
                key.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(st.success());
        let forward = anon_ip(&key, mapping, &["--pass4", "8"], input);
        assert_eq!(forward.lines().count(), 4);
        assert!(forward.starts_with("192."));
        let back = anon_ip(&key, mapping, &["--pass4", "8", "--reverse"], &forward);
        let want: Vec<IpAddr> = input.lines().map(|l| l.parse().unwrap()).collect();
        let got: Vec<IpAddr> = back.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(got, want, "{mapping}");
    }
}

#[test]
fn anon_ip_matches_the_published_vector() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    std::fs::write(
        &key,
        "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202\n",
    )
    .unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lander"))
        .args([
            "anon",
            "ip",
            "--key",
            key.to_str().unwrap(),
            "128.11.68.132",
            "129.118.74.4",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "135.242.180.132\n134.136.186.123\n"
    );
}
