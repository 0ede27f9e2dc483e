//! `lander dispatch`: the scrub dispatcher over the spool, and the job wrapper every job runs in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use lander_dispatch::control;
use lander_dispatch::wrapper::{self, Wrapped};

use super::common::{print_report, stop_flag, wrapper_argv, ConfigArg};

/// Arguments of `lander dispatch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// Print the pass report as JSON (`once`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run as a daemon: pass after pass until TERM or INT.
    Run,
    /// One pass (safe from cron, also when passes overlap).
    Once,
    /// Run one job attempt from its spec and write its start marker and run record.
    #[command(hide = true)]
    JobWrapper {
        /// The job spec (JSON).
        spec: PathBuf,
    },
    /// A stand-in scrub job: copy IN to OUT and publish a manifest (tests and benchmarks).
    #[command(hide = true)]
    CopyJob {
        /// Input trace.
        input: PathBuf,
        /// Output trace.
        output: PathBuf,
    },
}

/// Runs `lander dispatch`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::JobWrapper { spec } => job_wrapper(&spec),
        Command::CopyJob { input, output } => copy_job(&input, &output),
        Command::Run => {
            let config = args.config.load()?;
            let mut engine = control::scrub_engine(&config, wrapper_argv()?, default_scrub()?)?;
            let stop = stop_flag()?;
            engine.run(&stop, Duration::from_secs(2))?;
            Ok(())
        }
        Command::Once => {
            let config = args.config.load()?;
            let mut engine = control::scrub_engine(&config, wrapper_argv()?, default_scrub()?)?;
            print_report(&engine.once()?, args.json)
        }
    }
}

fn default_scrub() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the lander executable")?;
    Ok(exe.with_file_name("lander-scrub"))
}

fn job_wrapper(spec_path: &Path) -> anyhow::Result<()> {
    let ran = wrapper::run_file(spec_path)
        .with_context(|| format!("job wrapper for {}", spec_path.display()))?;
    match ran {
        Some(Wrapped::Ran(record)) => {
            tracing::debug!(job = record.job.job_id, outcome = %record.outcome, "job ended")
        }
        Some(Wrapped::Superseded) | None => {
            tracing::info!(spec = %spec_path.display(), "superseded: not running")
        }
    }
    Ok(())
}

/// Copies `input` to `output` and publishes a manifest beside it (manifest first), carrying
/// over the input's manifest if it has one.
fn copy_job(input: &Path, output: &Path) -> anyhow::Result<()> {
    Ok(lander_dispatch::standin::copy_job(input, output)?)
}
