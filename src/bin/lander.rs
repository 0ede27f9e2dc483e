//! `lander`: everything that is not capture or a single scrub job.

use lander::cli::app::{LanderCli, LanderCommand as C};
use lander::cli::{self, exit, help};

fn main() {
    let cli: LanderCli = help::parse();
    cli.verbosity.init();
    let result = match cli.command {
        C::Convert(a) => cli::convert::run(a),
        C::Info(a) => cli::info::run(a),
        C::Gen(a) => cli::gen::run(a),
        C::Capture(a) => cli::capture::run(a),
        C::Scrub(a) => cli::scrub::run(a),
        C::Anon(a) => cli::anon::run(a),
        C::Keygen(a) => cli::keygen::run(a),
        C::Verify(a) => cli::verify::run(a),
        C::Dispatch(a) => cli::dispatch::run(a),
        C::User(a) => cli::user::run(a),
        C::Jobs(a) => cli::jobs::run(a),
        C::Status(a) => cli::status::run(a),
        C::Monitor(a) => cli::monitor::run(a),
        C::Clean(a) => cli::clean::run(a),
        C::Quota(a) => cli::quota::run(a),
        C::Demo(a) => cli::demo::run(a),
        C::Bench(a) => cli::bench::run(a),
        C::Completions(a) => cli::docs::completions(a),
        C::Man(a) => cli::docs::man(a),
    };
    exit::exit_with(result)
}
