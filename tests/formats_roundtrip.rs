//! Round trips through every format keep every packet's bytes and timestamp (to the
//! precision of the coarsest format on the way), through the library and `lander convert`.

use std::path::Path;
use std::process::Command;

use lander_spool::synth::write_trace;
use lander_trace::format::{TraceReader, TraceWriter};
use lander_trace::synth::Profile;
use lander_trace::{Format, OwnedRecord};

fn read(path: &Path) -> Vec<OwnedRecord> {
    let mut r = TraceReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_owned().unwrap() {
        out.push(rec);
        assert!(out.len() < 1_000_000, "no end");
    }
    out
}

fn copy(from: &Path, to: &Path, format: Format) {
    let mut r = TraceReader::open(from).unwrap();
    let file = std::fs::File::create(to).unwrap();
    let mut w = TraceWriter::new(file, format, r.link_type(), 65535).unwrap();
    while let Some(rec) = r.next().unwrap() {
        w.write(&rec).unwrap();
    }
    w.finish().unwrap();
}

/// Same packets; `via_erf`: ERF has no caplen, so a record cut by the snaplen comes back
/// with the zeros that pad it to 8 bytes (up to 7, never beyond its wire length).
fn assert_same(got: &[OwnedRecord], want: &[OwnedRecord], res: u64, via_erf: bool) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if via_erf && w.data.len() < w.wire_len as usize {
            assert_eq!(g.data[..w.data.len()], w.data, "#{i}");
            assert!(g.data[w.data.len()..].iter().all(|b| *b == 0), "#{i}");
            assert!(g.data.len() - w.data.len() < 8, "#{i}");
        } else {
            assert_eq!(g.data, w.data, "#{i}");
        }
        assert_eq!(g.wire_len, w.wire_len, "#{i}");
        assert_eq!(g.ts_ns, w.ts_ns / res * res, "#{i}");
    }
}

#[test]
fn pcap_to_pcapng_to_erf_to_pcap_keeps_packets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for profile in [Profile::Mixed, Profile::SynFlood, Profile::Edge] {
        let start = d.join("a.pcap");
        write_trace(profile, 3, 400, &start, Format::PcapNs).unwrap();
        let original = read(&start);
        copy(&start, &d.join("b.pcapng"), Format::Pcapng);
        copy(&d.join("b.pcapng"), &d.join("c.erf"), Format::Erf);
        copy(&d.join("c.erf"), &d.join("d.pcap"), Format::Pcap);
        assert_same(&read(&d.join("b.pcapng")), &original, 1, false);
        assert_same(&read(&d.join("c.erf")), &original, 1, true);
        assert_same(&read(&d.join("d.pcap")), &original, 1_000, true);
    }
}

#[test]
fn lander_convert_round_trips_and_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let start = d.join("a.pcap");
    write_trace(Profile::Mixed, 9, 250, &start, Format::PcapNs).unwrap();
    let original = read(&start);
    let lander = env!("CARGO_BIN_EXE_lander");
    let convert = |args: &[&Path]| {
        let out = Command::new(lander)
            .arg("-q")
            .arg("convert")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    convert(&[&start, &d.join("b.pcapng")]);
    convert(&[&d.join("b.pcapng"), &d.join("c.erf")]);
    convert(&[&d.join("c.erf"), &d.join("d.pcap")]);
    assert_same(&read(&d.join("c.erf")), &original, 1, true);
    assert_same(&read(&d.join("d.pcap")), &original, 1_000, true);
    let stdin = std::fs::File::open(d.join("b.pcapng")).unwrap();
    let out = Command::new(lander)
        .args([
            "-q",
            "convert",
            "-",
            d.join("e.pcap").to_str().unwrap(),
            "--format",
            "pcap-ns",
        ])
        .stdin(stdin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same(&read(&d.join("e.pcap")), &original, 1, false);
    let names: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.iter().all(|n| !n.to_string_lossy().starts_with('.')),
        "{names:?}"
    );
}

#[test]
fn snaplen_cuts_and_keeps_wire_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let start = d.join("a.pcap");
    write_trace(Profile::Mixed, 1, 100, &start, Format::Pcap).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lander"))
        .args(["-q", "convert", "--snaplen", "64"])
        .arg(&start)
        .arg(d.join("cut.pcapng"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = read(&start);
    let cut = read(&d.join("cut.pcapng"));
    for (c, o) in cut.iter().zip(&original) {
        assert_eq!(c.data, o.data[..o.data.len().min(64)]);
        assert_eq!(c.wire_len, o.wire_len);
    }
}

#[test]
fn lander_info_reports_counts_as_json() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats/pcapng-be.pcapng");
    let out = Command::new(env!("CARGO_BIN_EXE_lander"))
        .args(["info", "--json"])
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["packets"], 4);
    assert_eq!(v["format"], "pcapng");
    assert_eq!(v["summary"]["protocols"]["ipv6"], 1);
    let bad = fixture.with_file_name("bad-truncated-record.pcap");
    let out = Command::new(env!("CARGO_BIN_EXE_lander"))
        .arg("info")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("offset 292: truncated at end"));
}

/// Each failing file operation names its path and the operating system's error once, however
/// many layers carry it (the path travels as a typed error whose source is the OS error).
#[test]
fn cli_errors_name_the_path_and_the_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.pcap");
    write_trace(Profile::Mixed, 1, 10, &input, Format::Pcap).unwrap();
    let missing_out = dir.path().join("no-such-dir/out.pcap");
    let runs: [&[&std::ffi::OsStr]; 2] = [
        &["info".as_ref(), "/nonexistent/lander-trace.pcap".as_ref()],
        &["convert".as_ref(), input.as_ref(), missing_out.as_ref()],
    ];
    for args in runs {
        let out = Command::new(env!("CARGO_BIN_EXE_lander"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
        let path = args.last().unwrap().to_string_lossy();
        let dir_of = Path::new(path.as_ref()).parent().unwrap().to_string_lossy();
        assert!(err.contains(dir_of.as_ref()), "{err}");
    }
}
