//! The command lines of the binaries (`lander`, `lander-capture`, `lander-scrub`, and a
//! description of `lander-job`, which parses its own), here so that the man pages and the
//! shell completions are made from the very definitions the binaries parse.

use clap::{Command, Parser, Subcommand};

use super::common::Verbosity;
use super::help;
use crate::cli;

/// `lander`: everything that is not capture or a single scrub job.
#[derive(Debug, Parser)]
#[command(
    name = "lander",
    version,
    about = "LANDER-rs: trace ingestion, anonymization and dispatch"
)]
pub struct LanderCli {
    #[command(flatten)]
    pub verbosity: Verbosity,
    #[command(subcommand)]
    pub command: LanderCommand,
}

/// The subcommands of `lander`.
#[derive(Debug, Subcommand)]
pub enum LanderCommand {
    /// Convert a trace between pcap, pcap-ns, pcapng and ERF.
    Convert(cli::convert::Args),
    /// Summarize a trace file (like capinfos).
    Info(cli::info::Args),
    /// Generate deterministic synthetic traffic.
    Gen(cli::gen::Args),
    /// Capture into rotated, published trace files (same as `lander-capture`).
    Capture(cli::capture::Args),
    /// Scrub and anonymize trace files (same as `lander-scrub`).
    Scrub(cli::scrub::Args),
    /// Anonymize or de-anonymize single addresses.
    Anon(cli::anon::Args),
    /// Create a fresh anonymization key file (mode 0600).
    Keygen(cli::keygen::Args),
    /// Prove that no raw address or payload survived anonymization.
    Verify(cli::verify::Args),
    /// Run the scrub dispatcher over the spool.
    Dispatch(cli::dispatch::Args),
    /// Run a user's dispatcher over their incoming directory.
    User(cli::user::Args),
    /// Job control: list, show, logs, cancel, retry, pause, resume.
    Jobs(cli::jobs::Args),
    /// The status page: terminal, JSON, static HTML, or served (--serve); --check for cron.
    Status(cli::status::Args),
    /// Checks, events and notifications (run, once); `mail` formats a notification.
    Monitor(cli::monitor::Args),
    /// Remove old files by the configured retention (age and size).
    Clean(cli::clean::Args),
    /// Per-user disk use against the configured quotas.
    Quota(cli::quota::Args),
    /// The whole pipeline in a temporary spool, with no configuration.
    Demo(cli::demo::Args),
    /// End-to-end benchmarks beside the peer tools.
    Bench(cli::bench::Args),
    /// Shell completions for every binary, on stdout.
    Completions(cli::docs::CompletionsArgs),
    /// Man pages for every binary.
    Man(cli::docs::ManDir),
}

/// `lander-capture`: one per capture host; writes rotated, published trace files.
#[derive(Debug, Parser)]
#[command(
    name = "lander-capture",
    version,
    about = "Capture traffic into rotated, published trace files"
)]
pub struct CaptureCli {
    #[command(flatten)]
    pub verbosity: Verbosity,
    #[command(flatten)]
    pub args: cli::capture::Args,
}

/// `lander-scrub`: one batch job: scrub and anonymize one trace file.
#[derive(Debug, Parser)]
#[command(
    name = "lander-scrub",
    version,
    about = "Scrub payloads and anonymize addresses in trace files"
)]
pub struct ScrubCli {
    #[command(flatten)]
    pub verbosity: Verbosity,
    #[command(flatten)]
    pub args: cli::scrub::Args,
}

/// `lander-job`'s command line, as its `--help` says it (it parses its own, to start fast).
pub fn job_command() -> Command {
    Command::new("lander-job")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Run one dispatcher job attempt from its spec (the job wrapper)")
        .override_usage("lander-job SPEC\n       lander-job copy IN OUT")
        .arg(clap::Arg::new("spec").value_name("SPEC").help(
            "The job spec (JSON) the dispatcher wrote; the attempt's start marker and run \
             record are written beside it",
        ))
        .after_help(format!(
            "lander-job copy IN OUT is the stand-in scrub job of tests and benchmarks.\n\n{}",
            super::exit::HELP
        ))
}

/// Every binary's command, decorated as its `--help` shows it.
pub fn all_commands() -> Vec<Command> {
    vec![
        help::command::<LanderCli>(),
        help::command::<CaptureCli>(),
        help::command::<ScrubCli>(),
        job_command(),
    ]
}
