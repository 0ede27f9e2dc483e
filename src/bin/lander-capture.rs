//! `lander-capture`: one per capture host; writes rotated, published trace files.

use clap::Parser;
use lander::cli::{capture, common};

#[derive(Debug, Parser)]
#[command(
    name = "lander-capture",
    version,
    about = "Capture traffic into rotated, published trace files"
)]
struct Cli {
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    args: capture::Args,
}

fn main() {
    let cli = Cli::parse();
    common::init_logging(cli.verbose, cli.quiet);
    common::exit_with(capture::run(cli.args))
}
