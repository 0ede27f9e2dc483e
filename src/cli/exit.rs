//! The exit-code contract every binary follows, in one place:
//!
//! | code | meaning                                                        |
//! |------|----------------------------------------------------------------|
//! | 0    | ok                                                             |
//! | 1    | the check found something (leaks, open problems, over quota)   |
//! | 2    | usage error (bad or missing arguments, as clap's own)          |
//! | 3    | input or I/O error (a file missing, unreadable or malformed)   |
//!
//! A front end returns `anyhow::Result<()>`; an error carries its code as an [`ExitCode`]
//! anywhere in its chain, else it is an input or I/O error. A broken pipe on stdout (`| head`)
//! is a clean exit.

use std::io;

/// Everything went as asked.
pub const OK: i32 = 0;
/// The check found something: leaks, open problems, over quota.
pub const FOUND: i32 = 1;
/// A usage error: bad or missing arguments (clap exits with the same code).
pub const USAGE: i32 = 2;
/// An input or I/O error.
pub const INPUT: i32 = 3;

/// The contract as `--help` shows it.
pub const HELP: &str = "\
Exit status:
  0  ok
  1  the check found something (leaks, open problems, over quota)
  2  usage error
  3  input or I/O error";

/// An error that carries its own exit code (for example `lander verify` finding a leak).
#[derive(Debug)]
pub struct ExitCode(pub i32, pub String);

impl ExitCode {
    /// The check found something (exit 1).
    pub fn found(message: impl Into<String>) -> anyhow::Error {
        ExitCode(FOUND, message.into()).into()
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        ExitCode(USAGE, message.into()).into()
    }
}

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for ExitCode {}

/// Turns the outcome of a front end into the process exit code, printing the error once.
pub fn exit_with(result: anyhow::Result<()>) -> ! {
    match result {
        Ok(()) => std::process::exit(OK),
        Err(err) if is_broken_pipe(&err) => std::process::exit(OK),
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            std::process::exit(code_of(&err))
        }
    }
}

/// The exit code an error stands for: its own [`ExitCode`], else [`INPUT`].
pub fn code_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<ExitCode>())
        .map_or(INPUT, |c| c.0)
}

/// The error and its causes, each cause left out when the message before it already says it
/// (library errors often show their source in their own message), so an OS error is said once.
pub fn describe(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_without_a_code_is_an_input_error() {
        let err = anyhow::Error::new(io::Error::other("gone")).context("reading x");
        assert_eq!(code_of(&err), INPUT);
    }

    #[test]
    fn a_code_anywhere_in_the_chain_wins() {
        assert_eq!(code_of(&ExitCode::found("leaks").context("verify")), FOUND);
        assert_eq!(code_of(&ExitCode::usage("give IN OUT")), USAGE);
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = io::Error::new(io::ErrorKind::NotFound, "x.pcap: gone");
        let err = anyhow::Error::new(io).context("cannot open the trace");
        assert_eq!(describe(&err), "cannot open the trace: x.pcap: gone");
        #[derive(Debug)]
        struct Wrapped(io::Error);
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "reading: {}", self.0)
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = anyhow::Error::new(Wrapped(io::Error::other("bad byte")));
        assert_eq!(describe(&err), "reading: bad byte");
    }
}
