//! `lander bench capture`: `lander-capture --read` into rotated 64 MiB published files, with
//! the io_uring and the plain writer, beside `tcpdump -r IN -w OUT` on the same file; then the
//! durable variant (`--fsync`) beside `dd bs=1M conv=fsync` of the same bytes. Every tool runs
//! as a child process, timed from spawn to exit, best of `--runs`; output is removed and
//! `sync` run before each.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use lander_capture::engine::sys::peak_rss;
use lander_capture::synth::{self, Profile};
use lander_capture::Format;
use serde::Serialize;

/// Arguments of `lander bench capture`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Packets in the generated SYN flood.
    #[arg(long, default_value_t = 2_000_000)]
    pub packets: u64,
    /// Runs of each tool; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Rotation size of our output files.
    #[arg(long, default_value = "64MiB")]
    pub rotate_size: String,
    /// Ring size given to lander-capture.
    #[arg(long, default_value = "64MiB")]
    pub ring_size: String,
    /// Work directory (default: a temporary one under /var/tmp, removed after).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One measured line.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Group: `page-cache` or `fsync`.
    pub group: String,
    /// What was run.
    pub tool: String,
    /// Packets written.
    pub packets: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Wall-clock seconds (best run).
    pub seconds: f64,
    /// Million packets per second.
    pub mpps: f64,
    /// MB (10^6) per second written.
    pub mb_per_s: f64,
    /// Against the group's peer: packets/s over tcpdump's, or bandwidth over dd's.
    pub ratio: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
}

/// Runs `lander bench capture`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| {
        PathBuf::from("/var/tmp").join(format!("lander-bench-capture-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let outcome = measure(&args, &dir);
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let rows = outcome?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

fn measure(args: &Args, dir: &Path) -> anyhow::Result<Vec<Row>> {
    let input = dir.join("syn-flood.pcap");
    synth::write_trace(Profile::SynFlood, 1, args.packets, &input, Format::Pcap)
        .with_context(|| format!("generating {}", input.display()))?;
    let size = std::fs::metadata(&input)?.len();
    let out = dir.join("out");
    let tool = |name: &str, fsync: bool, io: &str| Tool {
        name: name.to_string(),
        fsync,
        io: io.to_string(),
    };
    let mut rows = Vec::new();
    let tcpdump = best(args.runs, &out, || run_tcpdump(&input, &out))?;
    rows.push(row(
        "page-cache",
        "tcpdump -r IN -w OUT",
        args.packets,
        size,
        tcpdump,
    ));
    for t in [
        tool("lander-capture --io uring", false, "uring"),
        tool("lander-capture --io sync", false, "sync"),
    ] {
        let m = best(args.runs, &out, || run_lander(args, &input, &out, &t))?;
        rows.push(row("page-cache", &t.name, args.packets, size, m));
    }
    let dd = best(args.runs, &out, || run_dd(&input, &out))?;
    rows.push(row("fsync", "dd bs=1M conv=fsync", args.packets, size, dd));
    for t in [
        tool("lander-capture --fsync --io uring", true, "uring"),
        tool("lander-capture --fsync --io sync", true, "sync"),
    ] {
        let m = best(args.runs, &out, || run_lander(args, &input, &out, &t))?;
        rows.push(row("fsync", &t.name, args.packets, size, m));
    }
    set_ratios(&mut rows);
    Ok(rows)
}

struct Tool {
    name: String,
    fsync: bool,
    io: String,
}

#[derive(Clone, Copy)]
struct Measured {
    seconds: f64,
    rss: u64,
}

fn row(group: &str, tool: &str, packets: u64, bytes: u64, m: Measured) -> Row {
    Row {
        group: group.into(),
        tool: tool.into(),
        packets,
        bytes,
        seconds: m.seconds,
        mpps: packets as f64 / m.seconds / 1e6,
        mb_per_s: bytes as f64 / m.seconds / 1e6,
        ratio: 1.0,
        peak_rss_mib: m.rss as f64 / (1 << 20) as f64,
    }
}

fn set_ratios(rows: &mut [Row]) {
    let peer = |group: &str, rows: &[Row]| {
        rows.iter()
            .find(|r| r.group == group)
            .map_or(1.0, |r| r.seconds)
    };
    let (pc, fs) = (peer("page-cache", rows), peer("fsync", rows));
    for r in rows.iter_mut() {
        let base = if r.group == "fsync" { fs } else { pc };
        r.ratio = base / r.seconds;
    }
}

/// Best (fastest) of `runs`, each after clearing `out` and flushing dirty pages.
fn best(
    runs: u32,
    out: &Path,
    mut once: impl FnMut() -> anyhow::Result<Measured>,
) -> anyhow::Result<Measured> {
    let mut best: Option<Measured> = None;
    for _ in 0..runs.max(1) {
        let _ = std::fs::remove_dir_all(out);
        std::fs::create_dir_all(out)?;
        let _ = Command::new("sync").status();
        let m = once()?;
        if best.map_or(true, |b| m.seconds < b.seconds) {
            best = Some(m);
        }
    }
    Ok(best.expect("at least one run"))
}

fn timed(mut cmd: Command, what: &str) -> anyhow::Result<(f64, std::process::Output)> {
    let start = Instant::now();
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what} (is it installed?)"))?;
    let secs = start.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok((secs, output))
}

fn run_tcpdump(input: &Path, out: &Path) -> anyhow::Result<Measured> {
    let mut cmd = Command::new("tcpdump");
    cmd.arg("-r")
        .arg(input)
        .arg("-w")
        .arg(out.join("tcpdump.pcap"));
    let (seconds, _) = timed(cmd, "tcpdump")?;
    // Children's peak so far: the bench runs tcpdump first, so this is tcpdump's.
    Ok(Measured {
        seconds,
        rss: peak_rss(true),
    })
}

fn run_dd(input: &Path, out: &Path) -> anyhow::Result<Measured> {
    let mut cmd = Command::new("dd");
    cmd.arg(format!("if={}", input.display()))
        .arg(format!("of={}", out.join("dd.pcap").display()))
        .args(["bs=1M", "conv=fsync", "status=none"]);
    let (seconds, _) = timed(cmd, "dd")?;
    Ok(Measured { seconds, rss: 0 })
}

fn run_lander(args: &Args, input: &Path, out: &Path, t: &Tool) -> anyhow::Result<Measured> {
    let exe = sibling("lander-capture")?;
    let stats = out.with_extension("stats.json");
    let mut cmd = Command::new(exe);
    cmd.arg("-q")
        .arg("--read")
        .arg(input)
        .arg("--out-dir")
        .arg(out)
        .args(["--site", "bench", "--rotate-size", &args.rotate_size])
        .args(["--ring-size", &args.ring_size, "--io", &t.io])
        .arg("--stats-json")
        .arg(&stats);
    if t.fsync {
        cmd.arg("--fsync");
    }
    let (seconds, _) = timed(cmd, &t.name)?;
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats)?)?;
    let packets = summary["counters"]["packets"].as_u64().unwrap_or(0);
    if packets != args.packets {
        bail!(
            "{} wrote {packets} packets, expected {}",
            t.name,
            args.packets
        );
    }
    Ok(Measured {
        seconds,
        rss: summary["peak_rss"].as_u64().unwrap_or(0),
    })
}

/// A binary installed beside this one.
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    if !path.exists() {
        bail!("{} not found beside {}", name, me.display());
    }
    Ok(path)
}

fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<10} {:<36} {:>9} {:>8} {:>9} {:>7} {:>9}\n",
        "group", "tool", "seconds", "Mpps", "MB/s", "ratio", "RSS MiB"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<10} {:<36} {:>9.3} {:>8.2} {:>9.0} {:>6.2}x {:>9.1}\n",
            r.group, r.tool, r.seconds, r.mpps, r.mb_per_s, r.ratio, r.peak_rss_mib
        ));
    }
    s.push_str(
        "ratio: page-cache rows over tcpdump's packets/s (bar >= 3x); fsync rows over dd's \
         bandwidth (bar >= 0.85x)\n",
    );
    s
}
