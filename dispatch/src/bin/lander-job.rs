//! `lander-job SPEC`: the job wrapper alone (as `lander dispatch job-wrapper SPEC`), a small
//! program that starts fast, since every job attempt pays for its start. `lander-job copy IN
//! OUT` is the stand-in scrub job of tests and benchmarks (as `lander dispatch copy-job`).

use std::path::Path;
use std::process::ExitCode;

use lander_dispatch::{standin, wrapper};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let result = match args.as_slice() {
        [spec] => wrapper::run_file(Path::new(spec)).map(drop),
        [cmd, input, output] if cmd == "copy" => {
            standin::copy_job(Path::new(input), Path::new(output))
        }
        _ => {
            eprintln!("usage: lander-job SPEC | lander-job copy IN OUT");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lander-job: {e}");
            ExitCode::FAILURE
        }
    }
}
