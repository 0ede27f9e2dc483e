//! `lander status`: the monitor's view of every stage, as text, JSON or a static HTML page.

use std::path::PathBuf;

use lander_dispatch::monitor;

use super::common::ConfigArg;

/// Arguments of `lander status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Also write a static HTML status page here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Exit with status 2 when there are problems (for cron and monitoring).
    #[arg(long)]
    check: bool,
}

/// Runs `lander status`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let st = monitor::status(&config)?;
    if let Some(path) = &args.html {
        lander_spool::publish::write_atomic(path, monitor::html(&st).as_bytes(), false)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        println!(
            "{:<16} {:>6} {:>8} {:>10} {:>7} {:>11} {:>8} {:>7} {:>6} {:>11}",
            "STAGE",
            "PAUSED",
            "WAITING",
            "OLDEST(s)",
            "ACTIVE",
            "NOT-STARTED",
            "RETRYING",
            "FAILED",
            "STUCK",
            "QUARANTINED"
        );
        for s in &st.stages {
            println!(
                "{:<16} {:>6} {:>8} {:>10.0} {:>7} {:>11} {:>8} {:>7} {:>6} {:>11}",
                s.stage,
                s.paused,
                s.waiting_files,
                s.oldest_waiting_secs,
                s.active,
                s.not_started,
                s.retrying,
                s.failed,
                s.stuck,
                s.quarantined
            );
        }
        for q in &st.quarantine {
            println!(
                "QUARANTINED: {} {}/{:?}: {} (as {})",
                q.stage,
                q.dir.display(),
                q.name,
                q.reason,
                q.id
            );
        }
        for p in &st.problems {
            println!("PROBLEM: {p}");
        }
    }
    if args.check && !st.problems.is_empty() {
        return Err(super::common::ExitCode(2, format!("{} problems", st.problems.len())).into());
    }
    Ok(())
}
