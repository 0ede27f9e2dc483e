//! Live capture on a veth pair between two network namespaces made by the test: a known trace
//! is sent across with tcpreplay while lander-capture and tcpdump capture the same interface;
//! the packets we wrote must be the ones sent. Needs root, iproute2, tcpreplay and tcpdump.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CAPTURE: &str = env!("CARGO_BIN_EXE_lander-capture");
const LANDER: &str = env!("CARGO_BIN_EXE_lander");
const PACKETS: u64 = 20_000;

struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip")
        .args(args)
        .status()
        .expect("iproute2 must be installed");
    assert!(st.success(), "ip {args:?} failed (tests need root)");
}

fn in_ns(ns: &str, cmd: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, cmd]);
    c
}

fn stop(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > end {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_frames(path: &Path) -> Vec<Vec<u8>> {
    let mut r = lander_capture::format::TraceReader::open(path).unwrap();
    let mut v = Vec::new();
    while let Some(rec) = r.next().unwrap() {
        v.push(rec.data.to_vec());
    }
    v
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

#[test]
fn veth_capture_writes_the_packets_sent() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pcap");
    assert!(Command::new(LANDER)
        .args(["gen", "syn-flood", "-n", &PACKETS.to_string(), "--out"])
        .arg(&input)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success());
    let id = std::process::id();
    let (rx_ns, tx_ns) = (format!("lcap-rx-{id}"), format!("lcap-tx-{id}"));
    let (a, b) = (format!("lca{id}"), format!("lcb{id}"));
    ip(&["netns", "add", &rx_ns]);
    let _guard = Netns(vec![rx_ns.clone(), tx_ns.clone()]);
    ip(&["netns", "add", &tx_ns]);
    ip(&[
        "link", "add", &a, "netns", &rx_ns, "type", "veth", "peer", "name", &b, "netns", &tx_ns,
    ]);
    for (ns, dev) in [(&rx_ns, &a), (&tx_ns, &b)] {
        let _ = in_ns(ns, "sysctl")
            .args(["-qw", "net.ipv6.conf.all.disable_ipv6=1"])
            .status();
        assert!(in_ns(ns, "ip")
            .args(["link", "set", dev, "up"])
            .status()
            .unwrap()
            .success());
    }
    let out = dir.path().join("out");
    let stats = dir.path().join("stats.json");
    let mut ours = in_ns(&rx_ns, CAPTURE)
        .args([
            "-i",
            &a,
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
    let mut td = in_ns(&rx_ns, "tcpdump")
        .args(["-i", &a, "-n", "-c", &PACKETS.to_string(), "-w"])
        .arg(&td_out)
        .arg("tcp")
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump must be installed");
    std::thread::sleep(Duration::from_millis(1500));
    let sent = in_ns(&tx_ns, "tcpreplay")
        .args(["-q", "--topspeed", "-i", &b])
        .arg(&input)
        .output()
        .expect("tcpreplay must be installed (apt-get install tcpreplay)");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
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
