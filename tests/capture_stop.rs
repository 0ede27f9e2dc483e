//! Stopping a live capture loses nothing: on a veth pair between two network namespaces,
//! SIGTERM on a quiet link ends the capture promptly with every packet sent published; two
//! SIGTERMs in quick succession still publish everything read; interval rotation and the
//! heartbeat go on while the link is silent; at trafgen's top rate every packet the receiving
//! interface counted is written or reported as a drop, including those after the last
//! rotation. Needs root, iproute2, tcpreplay and trafgen (netsniff-ng).

mod capture_support;

use std::path::Path;
use std::time::{Duration, Instant};

use capture_support::*;

/// A generous bound for "promptly": a behaviour check, not a performance one.
const PROMPT: Duration = Duration::from_secs(3);

fn run_record(state: &Path) -> serde_json::Value {
    let dir = state.join("capture");
    let rec = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    serde_json::from_slice(&std::fs::read(rec).unwrap()).unwrap()
}

fn published_frames(out: &Path) -> Vec<Vec<u8>> {
    traces(out).iter().flat_map(|p| read_frames(p)).collect()
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until `done`, at most `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn sigterm_on_a_quiet_link_exits_promptly_with_every_packet_published() {
    let veth = Veth::new("q");
    let dir = tempfile::tempdir().unwrap();
    let input = gen_trace(dir.path(), 2000);
    let (out, state, log) = (
        dir.path().join("out"),
        dir.path().join("state"),
        dir.path().join("log"),
    );
    let mut child = veth.capture(
        &out,
        &log,
        &[
            "--filter",
            "tcp",
            "--stats-interval",
            "0.2",
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    veth.replay(&input);
    // The quiet gap: the heartbeat counts the packets read although no more arrive.
    let counted = wait_until(Duration::from_secs(3), || {
        run_record(&state)["counters"]["packets"] == 2000
    });
    assert!(
        counted,
        "the heartbeat shows the packets read on a quiet link: {}",
        run_record(&state)
    );
    let asked = Instant::now();
    signal(&child, libc::SIGTERM);
    let (st, in_time) = wait_for(&mut child, PROMPT);
    let took = asked.elapsed();
    assert!(
        in_time,
        "still running {took:?} after SIGTERM on a quiet link\n{}",
        log_of(&log)
    );
    assert!(st.success(), "{st:?}\n{}", log_of(&log));
    eprintln!("exited {took:?} after SIGTERM");
    assert!(
        published_frames(&out) == read_frames(&input),
        "every packet sent is published, in order"
    );
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
    let last = traces(&out).pop().unwrap();
    let m = manifest(&last);
    assert_eq!(m["drops"]["kernel"], 0, "the final kernel counters: {m}");
    assert_eq!(run_record(&state)["state"], "finished");
}

#[test]
fn two_sigterms_in_quick_succession_publish_everything_read() {
    let veth = Veth::new("t");
    let dir = tempfile::tempdir().unwrap();
    let input = gen_trace(dir.path(), 5000);
    let (out, log) = (dir.path().join("out"), dir.path().join("log"));
    let mut child = veth.capture(&out, &log, &["--filter", "tcp"]);
    std::thread::sleep(Duration::from_millis(1500));
    veth.replay(&input);
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(20));
    signal(&child, libc::SIGTERM);
    let (st, in_time) = wait_for(&mut child, PROMPT);
    assert!(in_time, "did not exit after two SIGTERMs\n{}", log_of(&log));
    assert!(st.success(), "{st:?}\n{}", log_of(&log));
    assert!(
        published_frames(&out) == read_frames(&input),
        "every packet read is published"
    );
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
}

#[test]
fn interval_rotation_goes_on_while_the_link_is_silent() {
    let veth = Veth::new("r");
    let dir = tempfile::tempdir().unwrap();
    let input = gen_trace(dir.path(), 1000);
    let (out, log) = (dir.path().join("out"), dir.path().join("log"));
    let mut child = veth.capture(&out, &log, &["--filter", "tcp", "--rotate-interval", "1"]);
    std::thread::sleep(Duration::from_millis(1500));
    veth.replay(&input);
    // No packet arrives after the burst: only the clock can close the file.
    let published = wait_until(Duration::from_secs(5), || {
        std::fs::read_dir(&out).is_ok() && published_frames(&out).len() == 1000
    });
    signal(&child, libc::SIGTERM);
    let (st, in_time) = wait_for(&mut child, PROMPT);
    assert!(
        published,
        "the interval closed the file on a silent link\n{}",
        log_of(&log)
    );
    assert!(in_time && st.success(), "{st:?}\n{}", log_of(&log));
    assert!(published_frames(&out) == read_frames(&input));
}

#[test]
fn at_trafgen_top_rate_every_packet_counted_is_written_or_reported_dropped() {
    let veth = Veth::new("g");
    let dir = tempfile::tempdir().unwrap();
    let (out, log, stats) = (
        dir.path().join("out"),
        dir.path().join("log"),
        dir.path().join("stats.json"),
    );
    let mut child = veth.capture(
        &out,
        &log,
        &[
            "--filter",
            "udp",
            "--snaplen",
            "96",
            "--rotate-size",
            "16MiB",
            "--buffer-size",
            "256MiB",
            "--stats-json",
            stats.to_str().unwrap(),
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let before = veth.rx_packets();
    veth.trafgen(dir.path(), 3);
    let counted = veth.rx_packets() - before;
    // Stop at once: the kernel buffer may still hold the last packets.
    signal(&child, libc::SIGTERM);
    let (st, in_time) = wait_for(&mut child, Duration::from_secs(60));
    assert!(in_time && st.success(), "{st:?}\n{}", log_of(&log));
    let files = traces(&out);
    let per_file: Vec<u64> = files.iter().map(|p| count_packets(p)).collect();
    let written: u64 = per_file.iter().sum();
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let kernel = s["counters"]["kernel_drops"].as_u64().unwrap();
    let ring = s["counters"]["ring_drops"].as_u64().unwrap();
    eprintln!(
        "counted {counted}, written {written} ({:.3} %) in {} files, kernel drops {kernel}, \
         ring drops {ring}",
        written as f64 * 100.0 / counted.max(1) as f64,
        files.len()
    );
    assert!(
        counted > 10_000,
        "trafgen sent too little to tell: {counted}"
    );
    assert!(files.len() > 1, "the capture rotated: {per_file:?}");
    assert!(*per_file.last().unwrap() > 0);
    let manifests: u64 = files
        .iter()
        .map(|p| manifest(p)["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(manifests, written, "manifests count what the files hold");
    assert_eq!(
        written + kernel + ring,
        counted,
        "every packet the interface counted is written or reported as a drop"
    );
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
}
