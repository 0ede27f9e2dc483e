//! Live capture on a veth pair between two network namespaces made by the test: a known trace
//! is sent across with tcpreplay while lander-capture and tcpdump capture the same interface;
//! the packets we wrote must be the ones sent; and `lander bench live` runs its sweep. Needs
//! root, iproute2, tcpreplay, tcpdump and trafgen (netsniff-ng).

mod capture_support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use capture_support::*;

const PACKETS: u64 = 20_000;

fn stop(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > end {
            signal(child, libc::SIGTERM);
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn veth_capture_writes_the_packets_sent() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen_trace(dir.path(), PACKETS);
    let veth = Veth::new("v");
    let (rx_ns, a) = (&veth.rx_ns, &veth.rx);
    let out = dir.path().join("out");
    let stats = dir.path().join("stats.json");
    let mut ours = in_ns(rx_ns, CAPTURE)
        .args([
            "-i",
            a,
            "--filter",
            "tcp",
            "--site",
            "live",
            "--count",
            &PACKETS.to_string(),
        ])
        .arg("--out-dir")
        .arg(&out)
        .arg("--stats-json")
        .arg(&stats)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let td_out = dir.path().join("tcpdump.pcap");
    let mut td = in_ns(rx_ns, "tcpdump")
        .args(["-i", a, "-n", "-c", &PACKETS.to_string(), "-w"])
        .arg(&td_out)
        .arg("tcp")
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump must be installed");
    std::thread::sleep(Duration::from_millis(1500));
    veth.replay(&input);
    let st = stop(&mut ours, Duration::from_secs(10));
    let _ = stop(&mut td, Duration::from_secs(10));
    assert!(st.success(), "{st:?}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let ring = summary["counters"]["ring_drops"].as_u64().unwrap();
    let kernel = summary["counters"]["kernel_drops"].as_u64().unwrap();
    assert_eq!(ring, 0, "no ring drops");
    let got: Vec<Vec<u8>> = traces(&out).iter().flat_map(|p| read_frames(p)).collect();
    let want = read_frames(&input);
    let theirs = read_frames(&td_out);
    eprintln!(
        "sent {}, lander-capture {} (kernel drops {kernel}), tcpdump {}",
        want.len(),
        got.len(),
        theirs.len()
    );
    assert!(
        got.len() >= theirs.len(),
        "we kept fewer packets than tcpdump"
    );
    // every packet we wrote was sent, in the order sent
    let mut it = want.iter();
    for g in &got {
        assert!(
            it.any(|w| w == g),
            "a packet we wrote was not sent (or out of order)"
        );
    }
    if kernel == 0 {
        assert!(got == want, "no drops: every packet sent was written");
    }
}

/// `lander bench live` measures every tool at every rate asked, in every round, and reports
/// packets offered, written, drops by kind and CPU per packet, and each point's median and
/// spread over the rounds; the shape is checked, not the figures.
#[test]
fn bench_live_reports_every_tool_and_rate() {
    let out = std::process::Command::new(LANDER)
        .args(["-q", "bench", "live", "--rates", "20k,max", "--secs", "1"])
        .args(["--traffic", "imix", "--tools", "lander,tcpdump", "--json"])
        .args(["--rounds", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8, "two tools at two rates, twice");
    for r in rows {
        let offered = r["offered"].as_u64().unwrap();
        let written = r["written"].as_u64().unwrap();
        assert!(offered > 0, "{r}");
        assert!(
            written <= offered,
            "nothing written that was not offered: {r}"
        );
        assert!(r["cpu_s_per_mpkt"].as_f64().unwrap() >= 0.0);
        assert!(r["drops"].is_object());
    }
    let rounds: Vec<u64> = rows.iter().map(|r| r["round"].as_u64().unwrap()).collect();
    assert_eq!(rounds, [0, 0, 0, 0, 1, 1, 1, 1]);
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "two tools at two rates");
    for p in points {
        assert_eq!(p["rounds"], 2, "{p}");
        let [lo, hi] = [0, 1].map(|i| p["cpu_s_per_mpkt_range"][i].as_f64().unwrap());
        let median = p["cpu_s_per_mpkt"].as_f64().unwrap();
        assert!(lo <= median && median <= hi, "{p}");
    }
    let tools: Vec<&str> = points.iter().map(|p| p["tool"].as_str().unwrap()).collect();
    assert!(tools.contains(&"lander-capture") && tools.contains(&"tcpdump -w"));
    assert_eq!(points[0]["rate_asked"], 20_000);
    assert!(
        points[3]["rate_asked"].is_null(),
        "max is trafgen's top rate"
    );
}

/// `--threads 2`: two sockets in one PACKET_FANOUT group, each with its own ring and writer.
/// Every packet sent is written exactly once (no packet reaches both sockets), both threads
/// publish files, and every file keeps the spool's name with its own sequence number.
#[test]
fn fanout_threads_write_every_packet_once_under_spool_names() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen_trace(dir.path(), PACKETS);
    let veth = Veth::new("f");
    let (out, log) = (dir.path().join("out"), dir.path().join("log"));
    let stats = dir.path().join("stats.json");
    let stats_arg = stats.to_string_lossy().into_owned();
    let mut ours = veth.capture(
        &out,
        &log,
        &[
            "--filter",
            "tcp",
            "--threads",
            "2",
            "--stats-json",
            &stats_arg,
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    veth.replay(&input);
    std::thread::sleep(Duration::from_millis(500));
    signal(&ours, libc::SIGTERM);
    let (st, in_time) = wait_for(&mut ours, Duration::from_secs(20));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(in_time && st.success(), "{st:?}: {log_text}");
    let files = traces(&out);
    assert!(files.len() >= 2, "one file per thread at least: {files:?}");
    let mut seqs = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        let (site, _, seq) = lander_spool::naming::parse_trace_name(&name).expect("a spool name");
        assert_eq!(site, "live");
        seqs.push(seq);
        assert_eq!(manifest(f)["packets"].as_u64(), Some(count_packets(f)));
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), files.len(), "no sequence number twice");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let mut got: Vec<Vec<u8>> = files.iter().flat_map(|p| read_frames(p)).collect();
    let mut want = read_frames(&input);
    got.sort();
    want.sort();
    let before = got.len();
    got.dedup();
    assert_eq!(got.len(), before, "no packet written twice");
    if summary["counters"]["kernel_drops"] == 0 {
        assert_eq!(got, want, "no drops: every packet sent was written, once");
    }
}
