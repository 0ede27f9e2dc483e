//! `lander-scrub`: one batch job: scrub and anonymize one trace file.

use lander::cli::app::ScrubCli;
use lander::cli::{exit, help, scrub};

fn main() {
    let cli: ScrubCli = help::parse();
    cli.verbosity.init();
    exit::exit_with(scrub::run(cli.args))
}
