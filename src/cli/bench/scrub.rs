//! `lander bench scrub`: scrub and anonymize beside `traceanon` in the same run.
//!
//! For each profile: generate the trace, scrub it with `--payload drop`, both addresses,
//! `--mapping cryptopan`, on one thread and on all threads, then run
//! `traceanon -c KEY -s -d pcapfile:IN pcapfile:OUT` on the same file, in `--repeat` rounds
//! that interleave the tools (best run of each kept, so a busy moment of a shared machine
//! does not fall on one tool only). Prints a table
//! (or JSON with `--json`) of packets per second, the ratio to traceanon, our peak resident
//! memory and the load average the runs started under (the machine may be shared).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use lander_anonymize::scrub::{scrub_file, Provenance, ScrubConfig};
use lander_anonymize::{Anonymizer, Key, MapOptions, Mapping};
use lander_spool::synth::write_trace;
use lander_trace::synth::Profile;
use lander_trace::Format;
use serde::Serialize;

/// 32 printable bytes, the `-c` string of traceanon and our raw key file alike.
const KEY: &[u8; 32] = b"lander-rs-bench-scrub-key-32byte";

/// Arguments of `lander bench scrub`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Packets per trace.
    #[arg(long, short = 'n', default_value_t = 2_000_000)]
    pub packets: u64,
    /// Profiles to run.
    #[arg(long, value_delimiter = ',', default_value = "syn-flood,mixed")]
    pub profiles: Vec<Profile>,
    /// Threads for the parallel run (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Directory for the traces (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Skip traceanon.
    #[arg(long)]
    pub no_peer: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Runs of each measurement; the fastest counts.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

/// One measured run.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Traffic profile.
    pub profile: String,
    /// What ran.
    pub tool: String,
    /// Threads used.
    pub threads: usize,
    /// Packets.
    pub packets: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Million packets per second.
    pub mpps: f64,
    /// Ratio to traceanon in the same run.
    pub vs_traceanon: Option<f64>,
    /// Peak resident memory of the run (MiB), ours only: it runs in this process.
    pub peak_rss_mib: Option<f64>,
    /// One-minute load average when the runs started.
    pub load_avg: f64,
}

/// Runs `lander bench scrub`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = &base.join(format!("lander-bench-scrub-{}", std::process::id()));
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let result = measure(&args, dir);
    let _ = std::fs::remove_dir_all(dir);
    print(&result?, args.json)
}

fn measure(args: &Args, dir: &Path) -> anyhow::Result<Vec<Row>> {
    let key = Key::Pan {
        mapping: Mapping::CryptoPan,
        bytes: *KEY,
    };
    let anon = Anonymizer::new(&key, &MapOptions::default())?;
    let all = args
        .threads
        .unwrap_or_else(crate::cli::common::default_threads);
    let mut rows = Vec::new();
    for profile in &args.profiles {
        let raw = dir.join(format!("{}.pcap", profile.name()));
        write_trace(*profile, 1, args.packets, &raw, Format::Pcap)
            .with_context(|| format!("generating {}", raw.display()))?;
        super::cache_as_read(&raw)?;
        let settings = dedup([1, all]);
        // (best seconds, peak RSS MiB, load average at the start)
        let mut ours_best = vec![(f64::MAX, 0.0, load_avg()); settings.len()];
        let mut peer_best = (f64::MAX, load_avg());
        // rounds interleave the tools, so that each sees the machine's quiet moments
        for _ in 0..args.repeat.max(1) {
            for (best, &threads) in ours_best.iter_mut().zip(&settings) {
                let out = dir.join(format!("{}-{threads}.pcap", profile.name()));
                settle();
                reset_peak_rss();
                let seconds = ours(&raw, &out, &anon, threads)?;
                *best = (best.0.min(seconds), peak_rss_mib().max(best.1), best.2);
            }
            if !args.no_peer {
                let out = dir.join(format!("{}-traceanon.pcap", profile.name()));
                settle();
                peer_best.0 = peer_best.0.min(traceanon(&raw, &out)?);
            }
        }
        let mut runs = Vec::new();
        for (&(seconds, rss, load), &threads) in ours_best.iter().zip(&settings) {
            let mut r = row(
                profile,
                "lander-scrub",
                threads,
                args.packets,
                seconds,
                load,
            );
            r.peak_rss_mib = Some(rss);
            runs.push(r);
        }
        if !args.no_peer {
            let peer = row(
                profile,
                "traceanon",
                1,
                args.packets,
                peer_best.0,
                peer_best.1,
            );
            for r in &mut runs {
                r.vs_traceanon = Some(r.mpps / peer.mpps);
            }
            runs.push(peer);
        }
        rows.extend(runs);
    }
    Ok(rows)
}

fn dedup(threads: [usize; 2]) -> Vec<usize> {
    let mut v = threads.to_vec();
    v.dedup();
    v
}

fn row(
    profile: &Profile,
    tool: &str,
    threads: usize,
    packets: u64,
    seconds: f64,
    load_avg: f64,
) -> Row {
    Row {
        profile: profile.name().to_string(),
        tool: tool.to_string(),
        threads,
        packets,
        seconds,
        mpps: packets as f64 / seconds / 1e6,
        vs_traceanon: None,
        peak_rss_mib: None,
        load_avg,
    }
}

/// Writes back the previous run's output first, so its writeback does not fall into the
/// next timed run.
fn settle() {
    let _ = Command::new("sync").status();
}

/// The one-minute load average (0 where /proc is not there).
fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Resets this process's peak resident set size (Linux `clear_refs` value 5).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident set size since the last reset, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn ours(raw: &Path, out: &Path, anon: &Anonymizer, threads: usize) -> anyhow::Result<f64> {
    let config = ScrubConfig {
        threads,
        ..ScrubConfig::default()
    };
    let start = Instant::now();
    scrub_file(raw, out, anon, &config, &Provenance::default())?;
    Ok(start.elapsed().as_secs_f64())
}

fn traceanon(raw: &Path, out: &Path) -> anyhow::Result<f64> {
    let key = std::str::from_utf8(KEY)?;
    let start = Instant::now();
    let status = Command::new("traceanon")
        .args(["-c", key, "-s", "-d"])
        .arg(format!("pcapfile:{}", raw.display()))
        .arg(format!("pcapfile:{}", out.display()))
        .status()
        .context("running traceanon (Debian package libtrace-tools)")?;
    if !status.success() {
        bail!("traceanon failed: {status}");
    }
    Ok(start.elapsed().as_secs_f64())
}

fn print(rows: &[Row], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    println!(
        "{:<10} {:<13} {:>7} {:>10} {:>9} {:>8} {:>13} {:>9} {:>6}",
        "profile",
        "tool",
        "threads",
        "packets",
        "seconds",
        "Mpps",
        "x traceanon",
        "peak MiB",
        "load"
    );
    for r in rows {
        let ratio = r.vs_traceanon.map_or("-".into(), |x| format!("{x:.1}"));
        let rss = r.peak_rss_mib.map_or("-".into(), |x| format!("{x:.0}"));
        println!(
            "{:<10} {:<13} {:>7} {:>10} {:>9.3} {:>8.2} {:>13} {:>9} {:>6.2}",
            r.profile, r.tool, r.threads, r.packets, r.seconds, r.mpps, ratio, rss, r.load_avg
        );
    }
    Ok(())
}
