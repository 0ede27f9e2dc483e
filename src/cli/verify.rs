//! `lander verify RAW ANON`: proves that no raw address and no raw payload run survived.

use std::path::PathBuf;

use anyhow::Context;
use lander_anonymize::verify;
use lander_capture::format::TraceReader;
use lander_capture::Format;

use super::common::ExitCode;

/// Arguments of `lander verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The raw trace.
    pub raw: PathBuf,
    /// Its scrubbed form.
    pub anon: PathBuf,
    /// Format of both traces (needed for ERF).
    #[arg(long)]
    pub format: Option<Format>,
    /// Leaks listed at most.
    #[arg(long, default_value_t = 50)]
    pub max_report: usize,
}

fn open(path: &std::path::Path, format: Option<Format>) -> anyhow::Result<TraceReader> {
    let r = match format {
        Some(f) => TraceReader::open_with_format(path, f),
        None => TraceReader::open(path),
    };
    r.with_context(|| format!("opening {}", path.display()))
}

/// Runs `lander verify`; exits with status 2 when something leaked.
pub fn run(args: Args) -> anyhow::Result<()> {
    let raw = open(&args.raw, args.format)?;
    let anon = open(&args.anon, args.format)?;
    let report = verify::verify(raw, anon, args.max_report)?;
    for leak in &report.leaks {
        println!("packet {} (ts {}): {}", leak.index, leak.ts_ns, leak.what);
    }
    let summary = format!(
        "{} raw packets, {} scrubbed, {} unmatched, {} with leaks",
        report.raw_packets, report.anon_packets, report.unmatched, report.leaky_packets
    );
    if report.clean() {
        println!("clean: {summary}");
        return Ok(());
    }
    Err(ExitCode(2, format!("leaks found: {summary}")).into())
}
