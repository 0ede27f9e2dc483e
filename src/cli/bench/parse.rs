//! `lander bench parse`: our trace reader beside `tcpdump -r FILE -w /dev/null`, same file,
//! same run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use lander_spool::synth::write_trace;
use lander_trace::format::TraceReader;
use lander_trace::synth::Profile;
use lander_trace::Format;
use serde::Serialize;

/// Arguments of `lander bench parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Packets in the generated SYN flood.
    #[arg(long, default_value_t = 2_000_000)]
    pub packets: u64,
    /// Keep the generated trace in this directory (default: a temporary one, removed after).
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Format of the generated trace.
    #[arg(long, default_value = "pcap")]
    pub format: Format,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One measured line.
#[derive(Debug, Serialize)]
pub struct Row {
    /// What was run.
    pub tool: String,
    /// Packets it read.
    pub packets: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Million packets per second.
    pub mpps: f64,
    /// Megabytes (10^6) of file per second.
    pub mb_per_s: f64,
    /// Packets per second relative to tcpdump.
    pub ratio: f64,
}

/// Runs `lander bench parse`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = match &args.keep {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("lander-bench-parse-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("syn-flood.{}", args.format.extension()));
    let outcome = measure(&args, &path);
    if args.keep.is_none() {
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

fn measure(args: &Args, path: &Path) -> anyhow::Result<Vec<Row>> {
    write_trace(Profile::SynFlood, 1, args.packets, path, args.format)
        .with_context(|| format!("generating {}", path.display()))?;
    super::cache_as_read(path)?;
    let size = std::fs::metadata(path)?.len();
    let mut raw = vec![
        timed("lander (mmap)", || read_mapped(path))?,
        timed("lander (stream)", || read_stream(path))?,
    ];
    if args.format != Format::Erf {
        raw.push(timed("tcpdump -r -w /dev/null", || {
            tcpdump(path, args.packets)
        })?);
    }
    let base = raw.last().map_or(1.0, |r| r.1 as f64 / r.2);
    Ok(raw
        .into_iter()
        .map(|(tool, packets, seconds)| Row {
            tool,
            packets,
            seconds,
            mpps: packets as f64 / seconds / 1e6,
            mb_per_s: size as f64 / seconds / 1e6,
            ratio: packets as f64 / seconds / base,
        })
        .collect())
}

fn timed(
    tool: &str,
    f: impl FnOnce() -> anyhow::Result<u64>,
) -> anyhow::Result<(String, u64, f64)> {
    let start = Instant::now();
    let packets = f()?;
    Ok((tool.to_string(), packets, start.elapsed().as_secs_f64()))
}

/// Counts records and touches their bytes so the reads cannot be optimized away.
fn drain(mut reader: TraceReader) -> anyhow::Result<u64> {
    let (mut packets, mut touch) = (0u64, 0u8);
    while let Some(rec) = reader.next()? {
        packets += 1;
        touch ^= rec.data.first().copied().unwrap_or(0) ^ rec.data.last().copied().unwrap_or(0);
    }
    std::hint::black_box(touch);
    Ok(packets)
}

fn read_mapped(path: &Path) -> anyhow::Result<u64> {
    drain(TraceReader::open(path)?)
}

fn read_stream(path: &Path) -> anyhow::Result<u64> {
    let file = std::fs::File::open(path)?;
    let name = path.display().to_string();
    drain(TraceReader::from_stream(&name, Box::new(file))?)
}

fn tcpdump(path: &Path, packets: u64) -> anyhow::Result<u64> {
    let status = Command::new("tcpdump")
        .arg("-r")
        .arg(path)
        .args(["-w", "/dev/null"])
        .stderr(Stdio::null())
        .status()
        .context("running tcpdump (is it installed?)")?;
    anyhow::ensure!(status.success(), "tcpdump failed: {status}");
    Ok(packets)
}

fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<26} {:>10} {:>9} {:>8} {:>9} {:>7}\n",
        "tool", "packets", "seconds", "Mpps", "MB/s", "ratio"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<26} {:>10} {:>9.3} {:>8.2} {:>9.1} {:>7.2}\n",
            r.tool, r.packets, r.seconds, r.mpps, r.mb_per_s, r.ratio
        ));
    }
    out
}
