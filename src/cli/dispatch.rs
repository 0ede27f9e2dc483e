//! `lander dispatch`: the scrub dispatcher over the spool, and the job wrapper every job runs in.

use anyhow::Context;
use clap::Subcommand;
use lander_dispatch::control;
use lander_dispatch::wrapper::{self, Wrapped};
use std::path::{Path, PathBuf};

use super::common::{stop_flag, wrapper_argv, GlobalConfigArg, JsonArg, RunOnce};

/// Arguments of `lander dispatch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: GlobalConfigArg,
    #[command(flatten)]
    json: JsonArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Mode(RunOnce),
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
        Command::Mode(mode) => {
            let config = args.config.load()?;
            let mut engine = control::scrub_engine(&config, wrapper_argv()?, default_scrub()?)?;
            match mode {
                RunOnce::Run => {
                    let stop = stop_flag()?;
                    let monitor = super::daemon::monitor_beside(&config, &stop)?;
                    let result = super::daemon::run_logged(&mut engine, &config, &stop);
                    if let Some(m) = monitor {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                        let _ = m.join();
                    }
                    result
                }
                RunOnce::Once => mode.drive(&mut engine, &config, args.json),
            }
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
            tracing::debug!(job = record.job_id, outcome = %record.outcome, "job ended")
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
