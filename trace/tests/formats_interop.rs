//! Interoperability with tcpdump and tshark: they read every file we write (same packet
//! count, no complaints), and we read files they wrote the way tshark does (count and
//! timestamps). Needs tcpdump and tshark installed (Debian: tcpdump, tshark).

use std::path::Path;
use std::process::{Command, Output};

use lander_trace::format::{TraceReader, TraceWriter};
use lander_trace::synth::{self, Profile};
use lander_trace::{Format, LinkType, OwnedRecord};

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed for this test: {e}"))
}

/// stderr lines beyond the usual notices.
fn complaints(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| !l.starts_with("reading from file"))
        .filter(|l| !l.starts_with("Running as user \"root\""))
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn records() -> Vec<OwnedRecord> {
    synth::generate(Profile::Mixed, 7, 300).collect()
}

fn write(path: &Path, format: Format, recs: &[OwnedRecord]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = TraceWriter::new(file, format, LinkType::ETHERNET, 65535).unwrap();
    for r in recs {
        w.write(&r.as_record()).unwrap();
    }
    w.finish().unwrap();
}

fn read(path: &Path, format: Option<Format>) -> Vec<OwnedRecord> {
    let mut r = match format {
        Some(f) => TraceReader::open_with_format(path, f).unwrap(),
        None => TraceReader::open(path).unwrap(),
    };
    let mut out = Vec::new();
    while let Some(rec) = r.next_owned().unwrap() {
        out.push(rec);
        assert!(out.len() < 1_000_000, "no end");
    }
    out
}

/// Timestamps tshark reports, in ns, one per packet (tshark also lists non-packet pcapng
/// blocks it does not know, with neither time nor interface: those are left out).
fn tshark_times(path: &Path) -> Vec<u64> {
    let p = path.to_str().unwrap();
    let fields = [
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
        "-e",
        "frame.interface_id",
    ];
    let out = run("tshark", &[&["-r", p][..], &fields[..]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        complaints(&out.stderr),
        Vec::<String>::new(),
        "{}",
        path.display()
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_epoch(l.split('\t').next().unwrap_or("")))
        .collect()
}

/// `secs.frac` as ns; an empty field (a packet without a timestamp) is 0.
fn parse_epoch(s: &str) -> u64 {
    if s.trim().is_empty() {
        return 0;
    }
    let (secs, frac) = s.trim().split_once('.').unwrap_or((s.trim(), "0"));
    let frac = format!("{frac:0<9}");
    secs.parse::<u64>().unwrap() * 1_000_000_000 + frac[..9].parse::<u64>().unwrap()
}

fn count_lines(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn tcpdump_and_tshark_read_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records();
    for format in Format::ALL {
        let path = dir
            .path()
            .join(format!("out-{}.{}", format.name(), format.extension()));
        write(&path, format, &recs);
        let p = path.to_str().unwrap();
        if format != Format::Erf {
            // libpcap has no ERF file reader
            let out = run("tcpdump", &["-n", "-r", p]);
            assert!(out.status.success(), "tcpdump {format}: {:?}", out);
            assert_eq!(
                complaints(&out.stderr),
                Vec::<String>::new(),
                "tcpdump {format}"
            );
            assert_eq!(count_lines(&out), recs.len(), "tcpdump {format}");
        }
        let times = tshark_times(&path);
        assert_eq!(times.len(), recs.len(), "tshark {format}");
        let res = format.resolution_ns();
        for (t, r) in times.iter().zip(&recs) {
            assert_eq!(*t, r.ts_ns / res * res, "tshark {format}");
        }
    }
}

#[test]
fn tshark_agrees_on_files_others_wrote() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/formats");
    for name in [
        "tcpdump.pcap",
        "editcap.pcapng",
        "pcapng-le.pcapng",
        "pcapng-be.pcapng",
    ] {
        let path = fixtures.join(name);
        let ours = read(&path, None);
        let theirs = tshark_times(&path);
        assert_eq!(ours.len(), theirs.len(), "{name}");
        for (r, t) in ours.iter().zip(&theirs) {
            // tshark prints no time for Simple Packet Blocks
            if r.ts_ns != 0 {
                assert_eq!(r.ts_ns, *t, "{name}");
            }
        }
    }
}

#[test]
fn files_tcpdump_and_editcap_write_from_ours_read_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records();
    let ours = dir.path().join("ours.pcap");
    write(&ours, Format::PcapNs, &recs);
    let by_tcpdump = dir.path().join("tcpdump.pcap");
    let by_editcap = dir.path().join("editcap.pcapng");
    let o = ours.to_str().unwrap();
    let out = run("tcpdump", &["-r", o, "-w", by_tcpdump.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let out = run(
        "editcap",
        &["-F", "pcapng", o, by_editcap.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    for path in [&by_tcpdump, &by_editcap] {
        let res = TraceReader::open(path).unwrap().format().resolution_ns();
        let back = read(path, None);
        assert_eq!(back.len(), recs.len(), "{}", path.display());
        for (b, r) in back.iter().zip(&recs) {
            assert_eq!(b.data, r.data, "{}", path.display());
            assert_eq!(b.ts_ns, r.ts_ns / res * res, "{}", path.display());
        }
    }
}
