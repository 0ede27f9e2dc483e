//! `lander-scrub`: one batch job: scrub and anonymize one trace file.

use clap::Parser;
use lander::cli::{common, scrub};

#[derive(Debug, Parser)]
#[command(
    name = "lander-scrub",
    version,
    about = "Scrub payloads and anonymize addresses in trace files"
)]
struct Cli {
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    args: scrub::Args,
}

fn main() {
    let cli = Cli::parse();
    common::init_logging(cli.verbose, cli.quiet);
    common::exit_with(scrub::run(cli.args))
}
