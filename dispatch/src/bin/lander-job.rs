//! `lander-job SPEC`: the job wrapper alone (as `lander dispatch job-wrapper SPEC`), a small
//! program that starts fast, since every job attempt pays for its start. `lander-job copy IN
//! OUT` is the stand-in scrub job of tests and benchmarks (as `lander dispatch copy-job`).
//!
//! It parses its own few arguments (no argument parser to load); exit status as every
//! LANDER-rs binary: 0 ok, 2 usage error, 3 input or I/O error.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use lander_dispatch::{standin, wrapper};

const USAGE: &str =
    "usage: lander-job SPEC | lander-job copy IN OUT | lander-job --help | --version";

const HELP: &str = "\
Run one dispatcher job attempt from its spec (the job wrapper)

Usage: lander-job SPEC
       lander-job copy IN OUT

Arguments:
  SPEC  The job spec (JSON) the dispatcher wrote; the attempt's start marker and run record
        are written beside it

Options:
  -h, --help     Print help
  -V, --version  Print version

lander-job copy IN OUT is the stand-in scrub job of tests and benchmarks.

Exit status:
  0  ok
  1  the check found something (leaks, open problems, over quota)
  2  usage error
  3  input or I/O error";

/// What the command line asks for.
enum Ask<'a> {
    Help,
    Version,
    Spec(&'a Path),
    Copy(&'a Path, &'a Path),
    Usage(String),
}

fn ask(args: &[OsString]) -> Ask<'_> {
    let is = |a: &OsString, names: &[&str]| names.iter().any(|n| a == n);
    match args {
        [a] if is(a, &["-h", "--help"]) => Ask::Help,
        [a] if is(a, &["-V", "--version"]) => Ask::Version,
        [a, ..] if a.to_string_lossy().starts_with('-') && a != "-" => {
            Ask::Usage(format!("unknown option {}", a.to_string_lossy()))
        }
        [spec] => Ask::Spec(Path::new(spec)),
        [cmd, input, output] if cmd == "copy" => Ask::Copy(Path::new(input), Path::new(output)),
        [] => Ask::Usage("a job spec is required".into()),
        _ => Ask::Usage(format!("{} arguments: expected one", args.len())),
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = match ask(&args) {
        Ask::Help => return say(HELP),
        Ask::Version => return say(concat!("lander-job ", env!("CARGO_PKG_VERSION"))),
        Ask::Usage(what) => {
            eprintln!("error: {what}\n{USAGE}");
            return ExitCode::from(2);
        }
        Ask::Spec(spec) => run_spec(spec),
        Ask::Copy(input, output) => standin::copy_job(input, output).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
    }
}

fn run_spec(spec: &Path) -> Result<(), String> {
    let shown = spec.display();
    if let Err(e) = std::fs::metadata(spec) {
        return Err(format!("{shown}: {e}; nothing was run"));
    }
    match wrapper::run_file(spec) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!(
            "{shown}: not a job spec (JSON as the dispatcher writes it)"
        )),
        Err(e) => Err(format!("{shown}: {e}")),
    }
}

fn say(text: &str) -> ExitCode {
    println!("{text}");
    ExitCode::SUCCESS
}
