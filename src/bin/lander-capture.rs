//! `lander-capture`: one per capture host; writes rotated, published trace files.

use lander::cli::app::CaptureCli;
use lander::cli::{capture, exit, help};

fn main() {
    let cli: CaptureCli = help::parse();
    cli.verbosity.init();
    exit::exit_with(capture::run(cli.args))
}
