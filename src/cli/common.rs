//! Pieces shared by every front end: the repeated `--config` argument, logging,
//! the exit path, and helpers more than one subcommand uses (the job wrapper's argv, the stop
//! flag, the pass report, opening a trace).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use lander_dispatch::config::Config;
use lander_dispatch::engine::PassReport;
use lander_trace::format::TraceReader;
use lander_trace::Format;

/// `--config FILE`, or `LANDER_CONFIG` in the environment: the dispatcher's configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The configuration file (default: $LANDER_CONFIG).
    #[arg(long, short, global = true, env = "LANDER_CONFIG")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    /// Loads and validates the configuration.
    pub fn load(&self) -> anyhow::Result<Config> {
        let path = self
            .config
            .as_deref()
            .context("--config FILE (or LANDER_CONFIG) is required")?;
        Ok(Config::load(path)?)
    }
}

/// Sets up `tracing` to stderr; `RUST_LOG` overrides the level given by `-v`/`-q`.
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false)
        .try_init();
}

/// Turns the outcome of a front end into the process exit code.
///
/// A broken pipe (the reader of our stdout went away, as with `| head`) is a clean exit.
pub fn exit_with(result: anyhow::Result<()>) -> ! {
    match result {
        Ok(()) => std::process::exit(0),
        Err(err) if is_broken_pipe(&err) => std::process::exit(0),
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            std::process::exit(exit_code_of(&err))
        }
    }
}

/// The error and its causes, each cause left out when the message before it already says it
/// (library errors often show their source in their own message).
pub fn describe(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

/// An error that carries its own exit code (for example `lander verify` finding a leak).
#[derive(Debug)]
pub struct ExitCode(pub i32, pub String);

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for ExitCode {}

fn exit_code_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<ExitCode>())
        .map_or(1, |c| c.0)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
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

/// Opens a trace file, or stdin for `-`.
pub fn open_input(path: &Path, format: Option<Format>) -> anyhow::Result<TraceReader> {
    let reader = if path.as_os_str() == "-" {
        TraceReader::from_stream_with(
            "<stdin>",
            Box::new(io::stdin()),
            format,
            lander_trace::format::DEFAULT_STREAM_BUFFER,
        )
    } else {
        match format {
            Some(f) => TraceReader::open_with_format(path, f),
            None => TraceReader::open(path),
        }
    };
    Ok(reader?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = io::Error::new(io::ErrorKind::NotFound, "x.pcap: gone");
        let err = anyhow::Error::new(io).context("cannot open the trace");
        assert_eq!(describe(&err), "cannot open the trace: x.pcap: gone");
        #[derive(Debug)]
        struct Wrapped(io::Error);
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "reading: {}", self.0)
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = anyhow::Error::new(Wrapped(io::Error::other("bad byte")));
        assert_eq!(describe(&err), "reading: bad byte");
    }
}
