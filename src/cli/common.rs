//! Pieces shared by every front end: the repeated `--config`, `--json` and `run|once`
//! arguments, logging, the key and mapping arguments, and helpers more than one subcommand uses (the job wrapper's argv, the stop
//! flag, the pass report, opening a trace).

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use lander_anonymize::key::{Key, Mapping};
use lander_anonymize::mapping::{Anonymizer, MapOptions};
use lander_anonymize::PrefixList;
use lander_dispatch::config::Config;
use lander_dispatch::engine::{Dispatcher, PassReport};
use lander_dispatch::stage::Stage;
use lander_spool::publish::PendingFile;
use lander_trace::format::TraceReader;
use lander_trace::Format;

pub use super::exit::{describe, exit_with, ExitCode};
use super::output;

/// `--config FILE`, or `LANDER_CONFIG` in the environment: the dispatcher's configuration,
/// required (clap says so in `--help` and in its usage error).
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The configuration file (required; or set LANDER_CONFIG).
    #[arg(
        long,
        short,
        env = "LANDER_CONFIG",
        value_name = "FILE",
        required = true
    )]
    config: PathBuf,
}

impl ConfigArg {
    /// Loads and validates the configuration.
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(&self.config)?)
    }
}

/// `--config` of a command with subcommands (`lander dispatch`, `user`, `jobs`): accepted
/// before or after the subcommand (clap cannot require a global argument, so a missing one is
/// a usage error, exit 2, when it is needed; the job wrapper needs none).
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalConfigArg {
    /// The configuration file (required; or set LANDER_CONFIG).
    #[arg(long, short, global = true, env = "LANDER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

impl GlobalConfigArg {
    /// Loads and validates the configuration; exit 2 when none was given.
    pub fn load(&self) -> anyhow::Result<Config> {
        let path = self
            .config
            .as_deref()
            .ok_or_else(|| ExitCode::usage("--config FILE (or LANDER_CONFIG) is required"))?;
        Ok(Config::load(path)?)
    }
}

/// `--json`: machine-readable output on stdout instead of text.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct JsonArg {
    /// Machine-readable output (JSON) on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

/// How a dispatcher runs: as a daemon, or one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum RunOnce {
    /// Run as a daemon: pass after pass until TERM or INT.
    Run,
    /// One pass (safe from cron, also when passes overlap).
    Once,
}

impl RunOnce {
    /// Runs `engine` as asked: pass after pass with a line per pass that did something (see
    /// [`super::daemon`]), or one pass that prints its report (as JSON with `json`).
    pub fn drive<S: Stage>(
        self,
        engine: &mut Dispatcher<S>,
        config: &Config,
        json: JsonArg,
    ) -> anyhow::Result<()> {
        match self {
            RunOnce::Run => {
                let stop = stop_flag()?;
                super::daemon::run_logged(engine, config, &stop)
            }
            RunOnce::Once => print_report(&engine.once()?, json.json),
        }
    }
}

/// `-v`/`-vv` and `-q`, the same on every binary.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Verbosity {
    /// More detail: -v a line per file or item, -vv per batch too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl Verbosity {
    /// Sets up logging and the output level as asked.
    pub fn init(self) {
        init_logging(self.verbose, self.quiet);
    }
}

/// Sets up `tracing` to stderr; `RUST_LOG` overrides the level given by `-v`/`-q`. Colour
/// only on a terminal and never with `NO_COLOR`.
pub fn init_logging(verbose: u8, quiet: bool) {
    output::set_verbosity(verbose, quiet);
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(output::colour_on_stderr())
        .with_target(false);
    // a person at a terminal knows when; a log file or the journal needs the time
    let _ = match io::stderr().is_terminal() {
        true => builder.without_time().try_init(),
        false => builder.try_init(),
    };
}

/// The address mapping options shared by `scrub` and `anon ip`.
#[derive(Debug, Clone, clap::Args)]
pub struct MappingArgs {
    /// Address mapping: cryptopan, cryptopant or libtrace.
    #[arg(long, default_value = "cryptopan")]
    pub mapping: Mapping,
    /// Key file (see `lander keygen`); must not be readable by group or others.
    #[arg(long)]
    pub key: PathBuf,
    /// High IPv4 bits passed unchanged.
    #[arg(long, default_value_t = 0)]
    pub pass4: u8,
    /// High IPv6 bits passed unchanged.
    #[arg(long, default_value_t = 0)]
    pub pass6: u8,
    /// Prefix passed unchanged (don't-scramble list); repeatable.
    #[arg(long = "keep-prefix", value_name = "ADDR/LEN")]
    pub keep_prefix: Vec<String>,
}

impl MappingArgs {
    /// Reads the key and builds the mapping; returns it with its key.
    pub fn build(&self) -> anyhow::Result<(Anonymizer, Key)> {
        let key = Key::read(self.mapping, &self.key)?;
        let mut keep = PrefixList::default();
        for p in &self.keep_prefix {
            keep.add(p)?;
        }
        let opts = MapOptions {
            pass4: self.pass4,
            pass6: self.pass6,
            keep,
        };
        Ok((Anonymizer::new(&key, &opts)?, key))
    }

    /// The mapping settings recorded in a scrubbed file's manifest.
    pub fn settings(&self) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        s.insert("pass4".into(), self.pass4.to_string());
        s.insert("pass6".into(), self.pass6.to_string());
        if !self.keep_prefix.is_empty() {
            s.insert("keep_prefixes".into(), self.keep_prefix.join(","));
        }
        s
    }
}

/// All available cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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

/// True for `-`: standard input or output.
pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Refuses `-` for `what` where it cannot be a pipe, saying `why` (a usage error).
pub fn no_stdio(path: &Path, what: &str, why: &str) -> anyhow::Result<()> {
    match is_stdio(path) {
        true => Err(ExitCode::usage(format!("{what} cannot be `-`: {why}"))),
        false => Ok(()),
    }
}

/// Refuses an existing directory where a file is expected (a usage error that says what to
/// give instead, `hint`).
pub fn not_a_directory(path: &Path, what: &str, hint: &str) -> anyhow::Result<()> {
    match path.is_dir() {
        true => Err(ExitCode::usage(format!(
            "{what} {} is a directory, not a file: {hint}",
            path.display()
        ))),
        false => Ok(()),
    }
}

/// Refuses an output that is the input itself (the same file or directory, under any name,
/// through any link): publishing it would replace the input before it was read whole.
pub fn not_the_input(input: &Path, output: &Path, what: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    match (is_stdio(input) || is_stdio(output), id(input), id(output)) {
        (false, Some(a), Some(b)) if a == b => Err(ExitCode::usage(format!(
            "{what} {} is the input {}: it would be replaced before it was read whole",
            output.display(),
            input.display()
        ))),
        _ => Ok(()),
    }
}

/// Refuses, unless `force`, an output that is a published trace: a file with its manifest
/// beside it (an archived or scrubbed trace, the record of what was captured). A plain file
/// is replaced, as tcpdump -w replaces one. Checked before the work starts, and again by
/// [`publish_over`] just before the new file takes the name.
pub fn not_a_published_trace(output: &Path, what: &str, force: bool) -> anyhow::Result<()> {
    let manifest = lander_spool::manifest::manifest_path(output);
    match published(output) && !force {
        true => Err(ExitCode::usage(format!(
            "{what} {} is a published trace (its manifest {} is beside it): it is not \
             replaced; give --force to replace it",
            output.display(),
            manifest.display()
        ))),
        false => Ok(()),
    }
}

/// Whether `output` is a published trace: a file (or link) with its manifest beside it.
fn published(output: &Path) -> bool {
    let manifest = lander_spool::manifest::manifest_path(output);
    !is_stdio(output)
        && std::fs::symlink_metadata(output).is_ok()
        && std::fs::symlink_metadata(manifest).is_ok()
}

/// Publishes `pending` under its name: refused (and the temporary file removed) if a
/// published trace took the name meanwhile, unless `force`; with `force`, the manifest of the
/// trace replaced goes first (its digest, counts and provenance describe that file), so a
/// crash in between leaves the old trace as a plain file, never the new one under the old
/// manifest.
///
/// Where nothing has the name, the file takes it by a step that cannot replace anything
/// (`RENAME_NOREPLACE`): a trace published in the moment between the check and the rename
/// keeps its name, and is judged as one found there.
pub fn publish_over(
    mut pending: PendingFile,
    fsync: bool,
    what: &str,
    force: bool,
) -> anyhow::Result<()> {
    let output = pending.dest_path().to_path_buf();
    let free =
        matches!(std::fs::symlink_metadata(&output), Err(e) if e.kind() == io::ErrorKind::NotFound);
    if free {
        match pending.commit_new(fsync) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            // a filesystem with neither: the checks below, then a plain rename
            Err(e) => tracing::debug!("{}: {e}", output.display()),
        }
    }
    if let Err(e) = not_a_published_trace(&output, what, force) {
        let _ = pending.abort();
        return Err(e);
    }
    if published(&output) {
        let manifest = lander_spool::manifest::manifest_path(&output);
        match std::fs::remove_file(&manifest) {
            Ok(()) => tracing::info!(
                "removed {}: it described the trace replaced",
                manifest.display()
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                let _ = pending.abort();
                return Err(e).with_context(|| format!("removing {}", manifest.display()));
            }
        }
    }
    pending
        .commit(fsync)
        .with_context(|| format!("publishing {}", output.display()))?;
    Ok(())
}

/// Refuses to write a binary trace to a terminal (`-` with stdout not redirected).
pub fn binary_to_stdout(output: &Path) -> anyhow::Result<()> {
    match is_stdio(output) && io::stdout().is_terminal() {
        true => Err(ExitCode::usage(
            "refusing to write a binary trace to a terminal: redirect stdout, or pipe it \
             (`| tcpdump -nr -`)",
        )),
        false => Ok(()),
    }
}

/// Opens a trace file, or stdin for `-`.
pub fn open_input(path: &Path, format: Option<Format>) -> anyhow::Result<TraceReader> {
    not_a_directory(path, "the input", "give a trace file")?;
    let reader = if is_stdio(path) {
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

    fn pending_with(dest: &Path, bytes: &[u8]) -> PendingFile {
        let mut p = PendingFile::create(dest).unwrap();
        std::io::Write::write_all(&mut p.file, bytes).unwrap();
        p
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_trace_published_while_the_output_was_written_is_not_replaced_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.pcap");
        let manifest = lander_spool::manifest::manifest_path(&out);
        let pending = pending_with(&out, b"new");
        // published by another program while the new file was being written
        std::fs::write(&out, b"archived").unwrap();
        std::fs::write(&manifest, b"{}").unwrap();
        assert!(publish_over(pending, false, "OUT", false).is_err());
        assert_eq!(std::fs::read(&out).unwrap(), b"archived");
        assert_eq!(std::fs::read(&manifest).unwrap(), b"{}");
        assert_eq!(leftovers(dir.path()), ["t.pcap", "t.pcap.json"]);

        let pending = pending_with(&out, b"new");
        publish_over(pending, false, "OUT", true).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert!(!manifest.exists(), "the replaced trace's manifest is gone");
        assert_eq!(leftovers(dir.path()), ["t.pcap"]);
    }

    #[test]
    fn a_manifest_alone_is_left_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.pcap");
        let manifest = lander_spool::manifest::manifest_path(&out);
        std::fs::write(&manifest, b"{}").unwrap();
        publish_over(pending_with(&out, b"new"), false, "OUT", true).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert_eq!(std::fs::read(&manifest).unwrap(), b"{}");
    }
}
