//! The file scrubber end to end: thread-count independence, leak verification, manifests,
//! bad key files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lander_anonymize::scrub::{scrub_stream, ScrubConfig};
use lander_anonymize::{Anonymizer, Key, MapOptions, Mapping};
use lander_spool::manifest::{manifest_path, Manifest};
use lander_spool::synth::write_trace;
use lander_trace::format::TraceReader;
use lander_trace::synth::Profile;
use lander_trace::Format;

mod mount_support;
use mount_support::{small_ext4, small_tmpfs};

fn lander(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lander"))
        .args(args)
        .output()
        .unwrap()
}

fn scrub_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lander-scrub"))
}

fn keygen(dir: &Path, mapping: &str) -> PathBuf {
    let key = dir.join(format!("{mapping}.key"));
    let out = lander(&[
        "keygen",
        "--mapping",
        mapping,
        "--out",
        key.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    key
}

#[test]
fn one_and_many_threads_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("mixed.pcapng");
    write_trace(Profile::Mixed, 3, 40_000, &raw, Format::Pcapng).unwrap();
    let key = Key::generate(Mapping::CryptoPant).unwrap();
    let anon = Anonymizer::new(&key, &MapOptions::default()).unwrap();
    let outputs: Vec<Vec<u8>> = [1, 2, 5]
        .iter()
        .map(|&threads| {
            let config = ScrubConfig {
                threads,
                ..ScrubConfig::default()
            };
            let mut out = Vec::new();
            let reader = TraceReader::open(&raw).unwrap();
            let s = scrub_stream(reader, &mut out, Path::new("mem"), &anon, &config).unwrap();
            assert_eq!(s.packets_out, 40_000);
            out
        })
        .collect();
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn edge_traffic_scrubbed_then_verified_clean_for_every_mapping_and_format() {
    let dir = tempfile::tempdir().unwrap();
    for (mapping, format) in [
        ("cryptopan", "pcap"),
        ("cryptopant", "pcapng"),
        ("libtrace", "pcap"),
    ] {
        let key = keygen(dir.path(), mapping);
        let raw = dir.path().join(format!("edge-{mapping}.{format}"));
        let out = dir.path().join(format!("edge-{mapping}-anon.{format}"));
        let f: Format = format.parse().unwrap();
        write_trace(Profile::Edge, 9, 4_200, &raw, f).unwrap();
        let status = scrub_cmd()
            .args([
                "-q",
                "--mapping",
                mapping,
                "--key",
                key.to_str().unwrap(),
                "--mac",
                "scramble",
            ])
            .args(["--payload", "zero"])
            .arg(&raw)
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        let (r, o, k) = (
            raw.to_str().unwrap(),
            out.to_str().unwrap(),
            key.to_str().unwrap(),
        );
        // with the key: a fixed point of a random key is no leak
        let v = lander(&["verify", "--key", k, r, o]);
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
        let m = Manifest::read(&manifest_path(&out)).unwrap();
        let a = m.anonymization.unwrap();
        assert_eq!(a.mapping, mapping);
        assert_eq!(a.payload, "zero");
        assert_eq!(a.key_id.len(), 32);
        assert!(a.counts["truncated-ipv4"] > 0);
        assert_eq!(m.packets, 4_200);
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(m.blake3, blake3::hash(&bytes).to_hex().to_string());
        let key_text = std::fs::read_to_string(&key).unwrap();
        let json = std::fs::read_to_string(manifest_path(&out)).unwrap();
        assert!(!json.contains(key_text.trim()));
    }
}

#[test]
fn verify_reports_the_raw_trace_itself_as_leaking() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("mixed.pcap");
    write_trace(Profile::Mixed, 1, 500, &raw, Format::Pcap).unwrap();
    let v = lander(&["verify", raw.to_str().unwrap(), raw.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stdout).contains("frame 1 "));
}

#[test]
fn drop_unparsed_drops_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "cryptopan");
    let raw = dir.path().join("edge.pcap");
    let out = dir.path().join("edge-anon.pcap");
    write_trace(Profile::Edge, 2, 2_100, &raw, Format::Pcap).unwrap();
    let status = scrub_cmd()
        .args(["-q", "--drop-unparsed", "--key", key.to_str().unwrap()])
        .arg(&raw)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let m = Manifest::read(&manifest_path(&out)).unwrap();
    let dropped: u64 = m.anonymization.unwrap().counts.values().sum();
    assert!(dropped > 0);
    assert_eq!(m.packets + dropped, 2_100);
    let (r, o, k) = (
        raw.to_str().unwrap(),
        out.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    let v = lander(&["verify", "--key", k, r, o]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn bad_key_files_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("syn.pcap");
    write_trace(Profile::SynFlood, 1, 10, &raw, Format::Pcap).unwrap();
    let key = keygen(dir.path(), "cryptopan");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let short = dir.path().join("short.key");
    std::fs::write(&short, "0123\n").unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pant = keygen(dir.path(), "cryptopant");
    for (k, mapping, says) in [
        (&key, "cryptopan", "group or others"),
        (&short, "cryptopan", "64 hex digits"),
        (&pant, "cryptopan", "64 hex digits"),
        (&short, "cryptopant", "fields"),
        (&dir.path().join("missing"), "libtrace", "No such file"),
    ] {
        let out = scrub_cmd()
            .args(["--mapping", mapping, "--key", k.to_str().unwrap()])
            .arg(&raw)
            .arg(dir.path().join("out.pcap"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{mapping} {}: {err}", k.display());
    }
    assert!(!dir.path().join("out.pcap").exists());
}

#[test]
fn keygen_writes_mode_0600_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "libtrace");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = lander(&["keygen", "--out", key.to_str().unwrap()]);
    assert!(!again.status.success());
}

/// A key from a seeded generator with an IPv4 fixed point, and that point: the flip of bit
/// `len` depends only on the top `len` bits, so the search descends only into prefixes
/// whose flip is 0.
fn key_with_fixed_point() -> (Key, u32) {
    fn search(anon: &Anonymizer, prefix: u32, len: u32) -> Option<u32> {
        if len == 32 {
            return Some(prefix);
        }
        let bit = 31 - len;
        if (anon.anon_v4(prefix) ^ prefix) >> bit & 1 == 1 {
            return None;
        }
        search(anon, prefix, len + 1).or_else(|| search(anon, prefix | 1 << bit, len + 1))
    }
    let mut state = 0xfeed_beef_u64;
    loop {
        let mut bytes = [0u8; 32];
        for b in bytes.chunks_mut(8) {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            b.copy_from_slice(&(state ^ state >> 29).to_le_bytes());
        }
        let key = Key::Pan {
            mapping: Mapping::CryptoPan,
            bytes,
        };
        let anon = Anonymizer::new(&key, &MapOptions::default()).unwrap();
        if let Some(addr) = search(&anon, 0, 0) {
            return (key, addr);
        }
    }
}

#[test]
fn verify_with_the_key_tells_fixed_points_of_the_mapping_from_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let (key, point) = key_with_fixed_point();
    let key_path = dir.path().join("fixed.key");
    key.write_new(&key_path).unwrap();
    let raw = dir.path().join("syn.pcap");
    let records: Vec<_> = lander_trace::synth::generate(Profile::SynFlood, 4, 50).collect();
    let file = std::fs::File::create(&raw).unwrap();
    let mut w = lander_trace::format::TraceWriter::new(
        file,
        Format::Pcap,
        lander_trace::LinkType::ETHERNET,
        65_535,
    )
    .unwrap();
    for (i, rec) in records.iter().enumerate() {
        let mut rec = rec.clone();
        if i == 7 {
            rec.data[26..30].copy_from_slice(&point.to_be_bytes());
        }
        w.write(&rec.as_record()).unwrap();
    }
    w.finish().unwrap();
    let out = dir.path().join("syn-anon.pcap");
    let status = scrub_cmd()
        .args(["-q", "--key", key_path.to_str().unwrap()])
        .arg(&raw)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let (r, o) = (raw.to_str().unwrap(), out.to_str().unwrap());
    let without = lander(&["verify", r, o]);
    assert_eq!(without.status.code(), Some(1));
    let text = String::from_utf8_lossy(&without.stdout);
    assert!(
        text.contains("frame 8 ") && text.contains("fixed point"),
        "{text}"
    );
    let with = lander(&["verify", r, o, "--key", key_path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&with.stdout);
    assert!(with.status.success(), "{text}");
    assert!(text.contains("1 fixed points"), "{text}");
    let other = keygen(dir.path(), "cryptopan");
    let wrong = lander(&["verify", r, o, "--key", other.to_str().unwrap()]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("key id"));
}

/// `lander scrub` of `raw` into `out` with `threads` threads, in `format`.
fn scrub_onto(key: &Path, raw: &Path, out: &Path, threads: &str, format: &str) -> Output {
    lander(&[
        "scrub",
        "--key",
        key.to_str().unwrap(),
        "--threads",
        threads,
        "--format",
        format,
        raw.to_str().unwrap(),
        out.to_str().unwrap(),
    ])
}

/// The scrub allocates room ahead of its writes; a disk with room for the output but not for
/// that gets the output all the same, ending with its last byte (tmpfs refuses an allocation
/// whole; ext4 makes what it can of it, growing the file).
#[test]
fn a_disk_with_room_for_the_output_only_gets_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("mixed.pcap");
    write_trace(Profile::Mixed, 3, 40_000, &raw, Format::Pcap).unwrap();
    let key = keygen(dir.path(), "cryptopan");
    let scrub = |out: &Path, threads: &str, format: &str| {
        let o = scrub_onto(&key, &raw, out, threads, format);
        let case = format!("{}, {threads} threads", out.display());
        assert!(
            o.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let bytes = std::fs::read(out).unwrap();
        let manifest = Manifest::read(&manifest_path(out)).unwrap();
        assert_eq!(manifest.file_size, bytes.len() as u64, "{case}");
        bytes
    };
    let (tmpfs, _t) = small_tmpfs(dir.path(), "small", "5m");
    let (ext4, _e) = small_ext4(dir.path(), 8);
    for format in ["pcap", "pcapng"] {
        let roomy = scrub(&dir.path().join(format!("roomy.{format}")), "2", format);
        assert!(roomy.len() > 2 << 20, "{format}: {} bytes", roomy.len());
        for threads in ["1", "2", "5"] {
            for mnt in [&tmpfs, &ext4] {
                let out = mnt.join(format!("anon.{format}"));
                let got = scrub(&out, threads, format);
                assert!(got == roomy, "{}, {threads} threads", out.display());
                std::fs::remove_file(&out).unwrap();
                std::fs::remove_file(manifest_path(&out)).unwrap();
            }
        }
    }
}

/// A disk that fills up under the scrub's writes (the chunks written at their offsets,
/// outside the lock): the scrub fails naming the output, the offset and the cause,
/// whatever the threads, and leaves nothing in the output directory: no output, no manifest,
/// no temporary file.
#[test]
fn a_full_disk_fails_the_scrub_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("mixed.pcap");
    write_trace(Profile::Mixed, 3, 60_000, &raw, Format::Pcap).unwrap();
    let key = keygen(dir.path(), "cryptopan");
    let (mnt, _guard) = small_tmpfs(dir.path(), "small", "1m");
    for threads in ["1", "2", "5"] {
        for format in ["pcap", "pcapng"] {
            let out = mnt.join(format!("anon-{threads}.{format}"));
            let o = scrub_onto(&key, &raw, &out, threads, format);
            let stderr = String::from_utf8_lossy(&o.stderr);
            let case = format!("{threads} threads, {format}");
            assert!(!o.status.success(), "{case}: {stderr}");
            assert!(stderr.contains(out.to_str().unwrap()), "{case}: {stderr}");
            assert!(stderr.contains("No space left"), "{case}: {stderr}");
            // the chunks are written at offsets outside the lock: the offset is named
            assert!(stderr.contains(" bytes at byte "), "{case}: {stderr}");
            let left: Vec<_> = std::fs::read_dir(&mnt)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "{case}: left behind {left:?}");
        }
    }
}
