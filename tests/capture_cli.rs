//! `lander-capture` end to end: ERF from a FIFO, SIGTERM, SIGKILL and salvage, ENOSPC on a
//! small tmpfs, both writers, every output read by tcpdump. Needs tcpdump (and root for the
//! tmpfs mount).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CAPTURE: &str = env!("CARGO_BIN_EXE_lander-capture");
const LANDER: &str = env!("CARGO_BIN_EXE_lander");

fn gen(dir: &Path, packets: u64, format: &str) -> PathBuf {
    let out = dir.join(format!("in-{packets}.{format}"));
    let st = Command::new(LANDER)
        .args([
            "gen",
            "syn-flood",
            "-n",
            &packets.to_string(),
            "--format",
            format,
            "--out",
        ])
        .arg(&out)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    out
}

fn capture(args: &[&str], out: &Path) -> Output {
    Command::new(CAPTURE)
        .args(args)
        .arg("--out-dir")
        .arg(out)
        .args(["--site", "t"])
        .output()
        .unwrap()
}

fn traces(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !n.starts_with('.') && !n.ends_with(".json")
        })
        .collect();
    v.sort();
    v
}

/// Packets tcpdump reads from a file; fails on any complaint (truncation, bad header).
fn tcpdump_count(path: &Path) -> usize {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(path)
        .output()
        .expect("tcpdump must be installed (apt-get install tcpdump)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tcpdump on {path:?}: {err}");
    assert!(!err.contains("truncated"), "tcpdump on {path:?}: {err}");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn manifest(trace: &Path) -> serde_json::Value {
    let mut p = trace.as_os_str().to_owned();
    p.push(".json");
    serde_json::from_slice(&std::fs::read(PathBuf::from(p)).unwrap()).unwrap()
}

fn total_packets(dir: &Path) -> usize {
    traces(dir).iter().map(|p| tcpdump_count(p)).sum()
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < end, "lander-capture did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

#[test]
fn every_output_format_is_read_by_tcpdump() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 20_000, "pcap");
    for format in ["pcap", "pcap-ns", "pcapng"] {
        let out = dir.path().join(format);
        let o = capture(
            &[
                "--read",
                input.to_str().unwrap(),
                "--format",
                format,
                "--rotate-size",
                "256KiB",
            ],
            &out,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(traces(&out).len() > 3);
        assert_eq!(total_packets(&out), 20_000, "{format}");
    }
}

#[test]
fn io_uring_and_sync_writers_produce_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 50_000, "pcap");
    let mut files = Vec::new();
    for io in ["uring", "sync"] {
        let out = dir.path().join(io);
        let o = capture(
            &[
                "--read",
                input.to_str().unwrap(),
                "--io",
                io,
                "--rotate-size",
                "1MiB",
            ],
            &out,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        let writer = if io == "uring" {
            "io_uring writer"
        } else {
            "sync writer"
        };
        assert!(err.contains(writer), "{err}");
        let bytes: Vec<(String, Vec<u8>)> = traces(&out)
            .iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(p).unwrap())
            })
            .collect();
        files.push(bytes);
    }
    assert!(files[0].len() > 3);
    assert!(
        files[0] == files[1],
        "the two writers wrote different files"
    );
}

#[test]
fn erf_stream_from_a_fifo_with_sigterm_publishes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 30_000, "erf");
    let fifo = dir.path().join("erf.fifo");
    mkfifo(&fifo);
    let out = dir.path().join("out");
    let stats = dir.path().join("stats.json");
    let mut child = Command::new(CAPTURE)
        .args(["--erf", fifo.to_str().unwrap(), "--site", "t", "--out-dir"])
        .arg(&out)
        .arg("--stats-json")
        .arg(&stats)
        .args(["--state-dir", dir.path().join("state").to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Feed the whole stream but keep the FIFO open: the capture is waiting for more.
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(&std::fs::read(&input).unwrap()).unwrap();
    w.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let st = wait_exit(&mut child, Duration::from_secs(20));
    drop(w);
    assert!(st.success(), "SIGTERM is a clean stop: {st:?}");
    assert_eq!(total_packets(&out), 30_000);
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(s["counters"]["packets"], 30_000);
    let rec_dir = dir.path().join("state/capture");
    let rec = std::fs::read_dir(&rec_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(rec).unwrap()).unwrap();
    assert_eq!(rec["state"], "finished");
}

#[test]
fn sigkill_mid_file_then_restart_salvages_whole_packets() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 50_000, "erf");
    let fifo = dir.path().join("erf.fifo");
    mkfifo(&fifo);
    let out = dir.path().join("out");
    let mut child = Command::new(CAPTURE)
        .args([
            "--erf",
            fifo.to_str().unwrap(),
            "--site",
            "t",
            "--ring-buffer",
            "64KiB",
        ])
        .args(["--ring-size", "1MiB", "--io", "sync", "--out-dir"])
        .arg(&out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let bytes = std::fs::read(&input).unwrap();
    // Cut the stream in the middle of a record.
    w.write_all(&bytes[..bytes.len() / 2 + 13]).unwrap();
    w.flush().unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let tmp_size = || {
        std::fs::read_dir(&out)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .map(|e| e.metadata().unwrap().len())
            .sum::<u64>()
    };
    while tmp_size() < 500_000 {
        assert!(Instant::now() < end, "the temporary file never grew");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    drop(w);
    assert!(
        traces(&out).is_empty(),
        "nothing was published before the crash"
    );
    // Restart: the leftover is salvaged before the new capture starts.
    let small = gen(dir.path(), 10, "pcap");
    let o = capture(&["--read", small.to_str().unwrap()], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = traces(&out);
    assert_eq!(files.len(), 2);
    let salvaged = &files[0];
    let m = manifest(salvaged);
    assert_eq!(m["recovered"], true);
    let n = tcpdump_count(salvaged);
    assert!(n > 1000 && n < 50_000, "{n}");
    assert_eq!(m["packets"], n);
    // the new run's file comes after it
    assert_eq!(tcpdump_count(&files[1]), 10);
    assert!(std::fs::read_dir(&out).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with('.')));
}

struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_publishes_the_written_part_as_partial_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 100_000, "pcap");
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("mount must be available (tests run as root)");
    assert!(st.success(), "cannot mount a tmpfs (tests need root)");
    let _guard = Tmpfs(mnt.clone());
    for io in ["uring", "sync"] {
        let out = mnt.join(io);
        let o = capture(
            &[
                "--read",
                input.to_str().unwrap(),
                "--io",
                io,
                "--rotate-size",
                "1MiB",
                "--ring-buffer",
                "256KiB",
            ],
            &out,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "disk full must fail the capture");
        assert!(err.contains("No space left"), "{err}");
        let files = traces(&out);
        assert!(!files.is_empty());
        let (whole, last) = files.split_at(files.len() - 1);
        for f in whole {
            assert!(manifest(f)["partial"].is_null());
            tcpdump_count(f);
        }
        let m = manifest(&last[0]);
        let reason = m["partial"].as_str().expect("the last file is partial");
        assert!(reason.contains("No space left"), "{reason}");
        assert_eq!(m["packets"], tcpdump_count(&last[0]));
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn rotate_packets_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 10_000, "pcap");
    let out = dir.path().join("out");
    let o = capture(
        &[
            "--read",
            input.to_str().unwrap(),
            "--rotate-packets",
            "3000",
        ],
        &out,
    );
    assert!(o.status.success());
    let counts: Vec<usize> = traces(&out).iter().map(|p| tcpdump_count(p)).collect();
    assert_eq!(counts, [3000, 3000, 3000, 1000]);
}
