//! `lander`: everything that is not capture or a single scrub job.

use clap::{Parser, Subcommand};
use lander::cli::{self, common};

#[derive(Debug, Parser)]
#[command(
    name = "lander",
    version,
    about = "LANDER-rs: trace ingestion, anonymization and dispatch"
)]
struct Cli {
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
}

fn main() {
    let cli = Cli::parse();
    common::init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Convert(a) => cli::convert::run(a),
        Command::Info(a) => cli::info::run(a),
        Command::Gen(a) => cli::gen::run(a),
        Command::Capture(a) => cli::capture::run(a),
        Command::Scrub(a) => cli::scrub::run(a),
        Command::Anon(a) => cli::anon::run(a),
        Command::Keygen(a) => cli::keygen::run(a),
        Command::Verify(a) => cli::verify::run(a),
        Command::Dispatch(a) => cli::dispatch::run(a),
        Command::User(a) => cli::user::run(a),
        Command::Jobs(a) => cli::jobs::run(a),
        Command::Status(a) => cli::status::run(a),
        Command::Monitor(a) => cli::monitor::run(a),
        Command::Clean(a) => cli::clean::run(a),
        Command::Quota(a) => cli::quota::run(a),
        Command::Demo(a) => cli::demo::run(a),
        Command::Bench(a) => cli::bench::run(a),
    };
    common::exit_with(result)
}
