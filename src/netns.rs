//! A veth pair between two network namespaces, and trafgen (netsniff-ng) sending across it:
//! the live capture path without a NIC, for `lander bench live` and the live capture tests.
//! Needs root and iproute2; the namespaces are removed when the [`Veth`] is dropped.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A veth pair: `rx` in namespace `rx_ns` (where the capture runs), `tx` in `tx_ns`.
#[derive(Debug)]
pub struct Veth {
    /// Namespace of the receiving end.
    pub rx_ns: String,
    /// Namespace of the sending end.
    pub tx_ns: String,
    /// Receiving interface.
    pub rx: String,
    /// Sending interface.
    pub tx: String,
}

impl Drop for Veth {
    fn drop(&mut self) {
        for ns in [&self.rx_ns, &self.tx_ns] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `cmd` to be run inside namespace `ns` (`ip netns exec` execs in place: the child is `cmd`).
pub fn in_ns(ns: &str, cmd: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, cmd]);
    c
}

/// Runs `cmd`; an error with its stderr unless it succeeds.
fn checked(mut cmd: Command, what: &str) -> anyhow::Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what} (iproute2 installed?)"))?;
    if !out.status.success() {
        bail!(
            "{what} failed (needs root): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let mut c = Command::new("ip");
    c.args(args);
    checked(c, &format!("ip {}", args.join(" "))).map(drop)
}

impl Veth {
    /// A new pair, up, IPv6 off (no stray router solicitations); `tag` keeps the names of
    /// pairs made at once (tests, benches) apart, with the process id.
    pub fn new(tag: &str) -> anyhow::Result<Veth> {
        let id = std::process::id();
        let veth = Veth {
            rx_ns: format!("l{tag}-rx-{id}"),
            tx_ns: format!("l{tag}-tx-{id}"),
            rx: format!("l{tag}a{id}"),
            tx: format!("l{tag}b{id}"),
        };
        ip(&["netns", "add", &veth.rx_ns])?;
        ip(&["netns", "add", &veth.tx_ns])?;
        let (rx, tx) = (veth.rx.as_str(), veth.tx.as_str());
        let (rx_ns, tx_ns) = (veth.rx_ns.as_str(), veth.tx_ns.as_str());
        ip(&[
            "link", "add", rx, "netns", rx_ns, "type", "veth", "peer", "name", tx, "netns", tx_ns,
        ])?;
        for (ns, dev) in [(rx_ns, rx), (tx_ns, tx)] {
            let _ = in_ns(ns, "sysctl")
                .args(["-qw", "net.ipv6.conf.all.disable_ipv6=1"])
                .stderr(Stdio::null())
                .status();
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(veth)
    }

    /// `cmd` in the receiving namespace.
    pub fn rx_cmd(&self, cmd: &str) -> Command {
        in_ns(&self.rx_ns, cmd)
    }

    /// `cmd` in the sending namespace.
    pub fn tx_cmd(&self, cmd: &str) -> Command {
        in_ns(&self.tx_ns, cmd)
    }

    /// The receiving interface's counters so far.
    pub fn rx_counters(&self) -> anyhow::Result<IfCounters> {
        let read = |name: &str| -> anyhow::Result<u64> {
            let path = format!("/sys/class/net/{}/statistics/{name}", self.rx);
            let mut c = self.rx_cmd("cat");
            c.arg(&path);
            let out = checked(c, &format!("reading {path}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            text.trim()
                .parse()
                .with_context(|| format!("{path}: not a number: {text:?}"))
        };
        Ok(IfCounters {
            packets: read("rx_packets")?,
            dropped: read("rx_dropped")?,
        })
    }

    /// Sends with trafgen from the sending side, one CPU (the other is the capture's).
    pub fn trafgen(&self, conf: &Path, send: &Send) -> anyhow::Result<Sent> {
        let mut c = self.tx_cmd("timeout");
        c.args(["-s", "INT", &format!("{}", send.limit.as_secs().max(1))]);
        c.args(["trafgen", "-C", "-P", "1", "-o", &self.tx, "-i"])
            .arg(conf);
        if let Some(n) = send.packets {
            c.args(["-n", &n.to_string()]);
        }
        if let Some(pps) = send.rate_pps {
            c.args(["-b", &format!("{pps}pps")]);
        }
        let start = Instant::now();
        let out = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .context("cannot run trafgen (netsniff-ng, scripts/bootstrap.sh)")?;
        let seconds = start.elapsed().as_secs_f64();
        // 124: stopped by `timeout`, the normal end of a timed run.
        if !(out.status.success() || out.status.code() == Some(124)) {
            bail!(
                "trafgen failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Sent {
            seconds,
            packets: outgoing(&String::from_utf8_lossy(&out.stdout)),
        })
    }

    /// Sends a trace file across as fast as tcpreplay goes.
    pub fn replay(&self, trace: &Path) -> anyhow::Result<()> {
        let mut c = self.tx_cmd("tcpreplay");
        c.args(["-q", "--topspeed", "-i", &self.tx]).arg(trace);
        checked(c, "tcpreplay (scripts/bootstrap.sh installs it)").map(drop)
    }
}

/// Counters of the receiving interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfCounters {
    /// `rx_packets`: what the interface handed to the stack (and to capture sockets).
    pub packets: u64,
    /// `rx_dropped`.
    pub dropped: u64,
}

/// What trafgen sends.
#[derive(Clone, Debug)]
pub struct Send {
    /// Packets, or as many as fit in `limit`.
    pub packets: Option<u64>,
    /// Packets per second, or its top rate.
    pub rate_pps: Option<u64>,
    /// trafgen is stopped (SIGINT) after this long.
    pub limit: Duration,
}

/// What one trafgen run did.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    /// Wall-clock seconds from start to exit.
    pub seconds: f64,
    /// Packets trafgen says it sent (when it says).
    pub packets: Option<u64>,
}

/// trafgen's "N packets outgoing" line.
fn outgoing(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.contains("packets outgoing"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Traffic mixes for trafgen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Traffic {
    /// 64-byte frames (60 on the wire without the FCS): UDP over IPv4, the attack case.
    Min,
    /// Simple IMIX: 7 frames of 64 bytes, 4 of 576, 1 of 1500, in that rotation.
    Imix,
}

impl Traffic {
    /// The frame sizes of one rotation (FCS included, as IMIX is usually given).
    pub fn sizes(self) -> Vec<u32> {
        match self {
            Traffic::Min => vec![64],
            Traffic::Imix => [[64; 7].as_slice(), &[576; 4], &[1500]].concat(),
        }
    }

    /// Mean frame size as captured (without the FCS).
    pub fn mean_captured(self) -> f64 {
        let s = self.sizes();
        s.iter().map(|&n| f64::from(n - 4)).sum::<f64>() / s.len() as f64
    }

    /// trafgen's configuration: one packet block per frame of the rotation.
    pub fn trafgen_config(self) -> String {
        self.sizes().into_iter().map(|n| udp_frame(n - 4)).collect()
    }
}

/// A trafgen packet block: Ethernet, IPv4, UDP, filled up to `len` bytes (at least 60).
fn udp_frame(len: u32) -> String {
    const HEADERS: u32 = 14 + 20 + 8;
    format!(
        "{{ eth(da=02:00:00:00:00:02, sa=02:00:00:00:00:01), \
         ipv4(saddr=10.0.0.1, daddr=10.0.0.2), udp(sport=1234, dport=5678), \
         fill(0x41, {}) }}\n",
        len.max(60) - HEADERS
    )
}

/// Waits for `child` at most `limit`; kills it (SIGKILL) past that. The exit status and
/// whether it exited in time.
pub fn wait_for(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::io::Result<(std::process::ExitStatus, bool)> {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok((st, true));
        }
        if Instant::now() > end {
            let _ = child.kill();
            return Ok((child.wait()?, false));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imix_rotation_is_seven_four_one() {
        let s = Traffic::Imix.sizes();
        assert_eq!(s.len(), 12);
        assert_eq!(s.iter().filter(|&&n| n == 576).count(), 4);
        assert_eq!(Traffic::Imix.trafgen_config().lines().count(), 12);
    }

    #[test]
    fn min_frame_fills_to_sixty_bytes() {
        assert!(Traffic::Min.trafgen_config().contains("fill(0x41, 18)"));
    }

    #[test]
    fn trafgen_outgoing_count_is_read() {
        let text = "\n      200000 packets outgoing\n    12000000 bytes outgoing\n";
        assert_eq!(outgoing(text), Some(200000));
        assert_eq!(outgoing("nothing"), None);
    }
}
