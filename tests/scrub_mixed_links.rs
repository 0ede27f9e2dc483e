//! Traces of several link types (pcapng interfaces, ERF record types) scrub interface by
//! interface: the output keeps each record's interface and link type, tshark reads it with
//! the same packet count, and the verifier finds it clean.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lander_trace::format::{RecordEncoder, TraceReader};
use lander_trace::synth::{generate, Profile};
use lander_trace::{Format, LinkType, Record};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn key(dir: &Path) -> PathBuf {
    let k = dir.join("key");
    assert!(
        run(env!("CARGO_BIN_EXE_lander"), &["keygen", "--out", s(&k)])
            .status
            .success()
    );
    k
}

fn scrub(key: &Path, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["-q", "--key", s(key)];
    args.extend_from_slice(extra);
    args.extend([s(input), s(output)]);
    run(env!("CARGO_BIN_EXE_lander-scrub"), &args)
}

/// Per packet, tshark's interface id and encapsulation type (the display filter leaves out
/// what tshark shows of non-packet blocks, such as pcapng custom blocks, which a scrub drops).
fn tshark(path: &Path) -> Vec<String> {
    let fields = [
        "-T",
        "fields",
        "-e",
        "frame.interface_id",
        "-e",
        "frame.encap_type",
    ];
    let mut args = vec!["-r", s(path), "-Y", "frame.interface_id"];
    args.extend(fields);
    let out = run("tshark", &args);
    assert!(
        out.status.success(),
        "tshark on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Per record, our reader's interface and link type.
fn records(path: &Path, format: Option<Format>) -> Vec<(u32, LinkType)> {
    let mut r = match format {
        Some(f) => TraceReader::open_with_format(path, f),
        None => TraceReader::open(path),
    }
    .unwrap();
    std::iter::from_fn(|| r.next_owned().unwrap().map(|x| (x.interface, x.link_type))).collect()
}

#[test]
fn every_good_fixture_scrubs_and_keeps_its_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats");
    let mut names: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut scrubbed = 0;
    for input in names {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("bad-") {
            continue;
        }
        let format = name.ends_with(".erf").then_some(Format::Erf);
        let fmt: &[&str] = if format.is_some() {
            &["--input-format", "erf"]
        } else {
            &[]
        };
        let output = dir.path().join(&name);
        let out = scrub(&key, &input, &output, fmt);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(records(&input, format), records(&output, format), "{name}");
        assert_eq!(tshark(&input), tshark(&output), "{name}");
        let mut verify = vec!["verify", "--key", s(&key), s(&input), s(&output)];
        if format.is_some() {
            verify.extend(["--format", "erf"]);
        }
        let v = run(env!("CARGO_BIN_EXE_lander"), &verify);
        assert!(
            v.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&v.stdout)
        );
        scrubbed += 1;
    }
    assert!(scrubbed >= 9);
}

/// A pcapng file with an Ethernet and a raw-IP interface, records interleaved.
fn two_interfaces(path: &Path) -> usize {
    let enc = RecordEncoder::new(Format::Pcapng, LinkType::ETHERNET, 65_535)
        .unwrap()
        .mixed();
    let mut bytes = enc.file_header();
    bytes.extend(RecordEncoder::interface_block(LinkType::ETHERNET, 65_535));
    bytes.extend(RecordEncoder::interface_block(LinkType::RAW, 9_000));
    let mut n = 0;
    for (i, rec) in generate(Profile::Mixed, 2, 3_000).enumerate() {
        let (link, interface, data) = match i % 3 {
            0 => (LinkType::RAW, 1, &rec.data[14..]),
            _ => (LinkType::ETHERNET, 0, &rec.data[..]),
        };
        let wire_len = rec.wire_len - if interface == 1 { 14 } else { 0 };
        let r = Record {
            link_type: link,
            interface,
            wire_len,
            data,
            ..rec.as_record()
        };
        enc.encode(&r, &mut bytes).unwrap();
        n += 1;
    }
    std::fs::write(path, bytes).unwrap();
    n
}

#[test]
fn pcapng_with_ethernet_and_raw_interfaces_scrubs_to_pcapng_and_erf() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let raw = dir.path().join("two.pcapng");
    let n = two_interfaces(&raw);
    let out = dir.path().join("two-anon.pcapng");
    let o = scrub(&key, &raw, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = records(&raw, None);
    assert_eq!(before.len(), n);
    assert_eq!(before, records(&out, None));
    assert_eq!(tshark(&raw), tshark(&out));
    let v = run(
        env!("CARGO_BIN_EXE_lander"),
        &["verify", "--key", s(&key), s(&raw), s(&out)],
    );
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    // the same trace to ERF: each record gets the type of its link type
    let erf = dir.path().join("two-anon.erf");
    let o = scrub(&key, &raw, &erf, &["--format", "erf"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let links: Vec<LinkType> = records(&erf, Some(Format::Erf))
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(links, before.iter().map(|r| r.1).collect::<Vec<_>>());
    // and back from ERF to pcapng: one interface per (port, link type)
    let back = dir.path().join("back.pcapng");
    let o = scrub(
        &key,
        &erf,
        &back,
        &["--input-format", "erf", "--format", "pcapng"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(records(&back, None).len(), n);
    assert_eq!(tshark(&back).len(), n);
}

#[test]
fn mixed_trace_to_pcap_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let raw = dir.path().join("two.pcapng");
    two_interfaces(&raw);
    let out = dir.path().join("two.pcap");
    let o = scrub(&key, &raw, &out, &["--format", "pcap"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("RAW") && err.contains("EN10MB"), "{err}");
    assert!(!out.exists());
}
