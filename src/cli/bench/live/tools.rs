//! The capture tools `lander bench live` compares: how each is started on the receiving
//! interface, how it says it is ready, and the drops it reports when it stops.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use crate::netns::Veth;
use anyhow::Context;
use serde::Serialize;

/// A capture tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// `lander-capture -i`.
    Lander,
    /// `tcpdump -w`.
    Tcpdump,
    /// `netsniff-ng --out`.
    NetsniffNg,
}

/// Drops a tool reported, by kind (`None`: the tool does not report that kind).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Drops {
    /// No room in the kernel's buffer or ring.
    pub kernel: Option<u64>,
    /// Dropped by the interface or driver.
    pub interface: Option<u64>,
    /// No free buffer between the capture and the writer (ours).
    pub ring: Option<u64>,
}

impl Drops {
    /// All reported drops.
    pub fn total(&self) -> u64 {
        self.kernel.unwrap_or(0) + self.interface.unwrap_or(0) + self.ring.unwrap_or(0)
    }
}

/// How a tool is run.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Kernel buffer (ring) size in bytes, the same for every tool.
    pub buffer: u64,
    /// Capture threads (PACKET_FANOUT), lander-capture only.
    pub threads: u32,
    /// lander-capture's binary.
    pub lander: PathBuf,
}

impl Tool {
    /// The name shown in reports.
    pub fn label(self, setup: &Setup) -> String {
        match self {
            Tool::Lander if setup.threads > 1 => {
                format!("lander-capture --threads {}", setup.threads)
            }
            Tool::Lander => "lander-capture".into(),
            Tool::Tcpdump => "tcpdump -w".into(),
            Tool::NetsniffNg => "netsniff-ng --out".into(),
        }
    }

    /// Starts the tool on the receiving interface, writing under `out`; its output goes to
    /// `log`.
    pub fn spawn(
        self,
        veth: &Veth,
        setup: &Setup,
        out: &Path,
        log: &Path,
    ) -> anyhow::Result<Child> {
        let mut cmd = match self {
            Tool::Lander => {
                let mut c = veth.rx_cmd(&setup.lander.to_string_lossy());
                c.args(["-i", &veth.rx, "--site", "bench", "--out-dir"])
                    .arg(out)
                    .args(["--buffer-size", &setup.buffer.to_string()])
                    .arg("--stats-json")
                    .arg(stats_path(out));
                if setup.threads > 1 {
                    c.args(["--threads", &setup.threads.to_string()]);
                }
                c
            }
            Tool::Tcpdump => {
                let mut c = veth.rx_cmd("tcpdump");
                c.args([
                    "-i",
                    &veth.rx,
                    "-n",
                    "-B",
                    &(setup.buffer >> 10).to_string(),
                ])
                .arg("-w")
                .arg(out.join("tcpdump.pcap"));
                c
            }
            Tool::NetsniffNg => {
                let mut c = veth.rx_cmd("netsniff-ng");
                c.args(["--in", &veth.rx, "--out"])
                    .arg(out.join("netsniff-ng.pcap"))
                    .args(["-s", "-S", &format!("{}KiB", setup.buffer >> 10)]);
                c
            }
        };
        let file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let name = self.label(setup);
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {name} (scripts/bootstrap.sh installs it)"))
    }

    /// The line in the tool's log that says it captures.
    pub fn ready_marker(self) -> &'static str {
        match self {
            Tool::Lander => "capturing from",
            Tool::Tcpdump => "listening on",
            Tool::NetsniffNg => "Running!",
        }
    }

    /// The drops the tool reported when it stopped.
    pub fn drops(self, out: &Path, log: &str) -> anyhow::Result<Drops> {
        match self {
            Tool::Lander => lander_drops(&stats_path(out)),
            Tool::Tcpdump => Ok(Drops {
                kernel: count_before(log, "packets dropped by kernel"),
                interface: count_before(log, "packets dropped by interface"),
                ring: None,
            }),
            Tool::NetsniffNg => Ok(Drops {
                kernel: count_before(log, "packets failed filter (out of space)"),
                interface: None,
                ring: None,
            }),
        }
    }
}

/// Where lander-capture writes its summary: beside `out`, not in it.
fn stats_path(out: &Path) -> PathBuf {
    out.with_extension("stats.json")
}

fn lander_drops(stats: &Path) -> anyhow::Result<Drops> {
    let text = std::fs::read(stats).with_context(|| format!("reading {}", stats.display()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", stats.display()))?;
    let c = &v["counters"];
    Ok(Drops {
        kernel: c["kernel_drops"].as_u64(),
        interface: c["interface_drops"].as_u64(),
        ring: c["ring_drops"].as_u64(),
    })
}

/// The number that starts the line ending in `what`.
fn count_before(log: &str, what: &str) -> Option<u64> {
    log.lines()
        .find(|l| l.trim_end().ends_with(what))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpdump_drops_are_read_from_its_summary() {
        let log = "listening on x\n200011 packets captured\n200011 packets received by filter\n\
                   7 packets dropped by kernel\n";
        let d = Tool::Tcpdump.drops(Path::new("/nonexistent"), log).unwrap();
        assert_eq!(d.kernel, Some(7));
        assert_eq!(d.interface, None);
    }

    #[test]
    fn netsniff_drops_are_read_from_its_summary() {
        let log =
            "      174458  packets incoming (0 unread on exit)\n      174458  packets passed \
                   filter\n           3  packets failed filter (out of space)\n";
        let d = Tool::NetsniffNg
            .drops(Path::new("/nonexistent"), log)
            .unwrap();
        assert_eq!(d.kernel, Some(3));
        assert_eq!(d.total(), 3);
    }
}
