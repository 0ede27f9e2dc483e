//! `lander dispatch`: the scrub dispatcher over the spool, and the job wrapper every job runs in.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use lander_dispatch::config::Config;
use lander_dispatch::control;
use lander_dispatch::engine::PassReport;
use lander_dispatch::wrapper::{self, Wrapped};

/// Arguments of `lander dispatch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
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
            let config = load(args.config.as_deref())?;
            let mut engine = control::scrub_engine(&config, wrapper_argv()?, default_scrub()?)?;
            let stop = stop_flag()?;
            engine.run(&stop, Duration::from_secs(2))?;
            Ok(())
        }
        Command::Once => {
            let config = load(args.config.as_deref())?;
            let mut engine = control::scrub_engine(&config, wrapper_argv()?, default_scrub()?)?;
            print_report(&engine.once()?, args.json)
        }
    }
}

/// Loads the configuration named by `--config`.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let path = path.context("--config FILE is required")?;
    Ok(Config::load(path)?)
}

/// The job wrapper, as the argv a backend runs (the spec path is appended): `lander-job`
/// beside this executable (a small program that starts fast), else `lander dispatch
/// job-wrapper`.
pub fn wrapper_argv() -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe().context("locating the lander executable")?;
    if let Some(lean) = lean_job_program()? {
        return Ok(vec![lean.to_string_lossy().into_owned()]);
    }
    Ok(vec![
        exe.to_string_lossy().into_owned(),
        "dispatch".into(),
        "job-wrapper".into(),
    ])
}

/// `lander-job` beside this executable, if it is there and not older than it (one left from
/// an earlier build may not speak the same protocol).
pub fn lean_job_program() -> anyhow::Result<Option<PathBuf>> {
    let exe = std::env::current_exe().context("locating the lander executable")?;
    let lean = exe.with_file_name("lander-job");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Ok(match (modified(&lean), modified(&exe)) {
        (Some(job), Some(me)) if job >= me => Some(lean),
        _ => None,
    })
}

fn default_scrub() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the lander executable")?;
    Ok(exe.with_file_name("lander-scrub"))
}

/// A flag set by TERM or INT.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// Prints one pass report.
pub fn print_report(r: &PassReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!(
        "submitted {}  running {}  pending {}  succeeded {}  failed attempts {}  lost {}  waiting {}  given up {}  stuck {}  errors {}  backlog {}{}{}",
        r.submitted, r.running, r.pending, r.succeeded, r.failed_attempts, r.lost, r.waiting,
        r.failed_items, r.stuck, r.errors, r.backlog,
        if r.over_limit { "  QUEUE OVER LIMIT" } else { "" },
        if r.held { "  (held: paused or outside its time windows)" } else { "" },
    );
    Ok(())
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
