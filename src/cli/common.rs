//! Pieces shared by every front end: logging and the exit path.

use std::io;

/// Sets up `tracing` to stderr; `RUST_LOG` overrides the level given by `-v`/`-q`.
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false)
        .try_init();
}

/// Turns the outcome of a front end into the process exit code.
///
/// A broken pipe (the reader of our stdout went away, as with `| head`) is a clean exit.
pub fn exit_with(result: anyhow::Result<()>) -> ! {
    match result {
        Ok(()) => std::process::exit(0),
        Err(err) if is_broken_pipe(&err) => std::process::exit(0),
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            std::process::exit(exit_code_of(&err))
        }
    }
}

/// The error and its causes, each cause left out when the message before it already says it
/// (library errors often show their source in their own message).
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

/// An error that carries its own exit code (for example `lander verify` finding a leak).
#[derive(Debug)]
pub struct ExitCode(pub i32, pub String);

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for ExitCode {}

fn exit_code_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<ExitCode>())
        .map_or(1, |c| c.0)
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
