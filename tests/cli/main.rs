//! The command line as a new user meets it: the exit-code contract on every binary, help with
//! examples, `-` for stdin and stdout, errors that say what, where and what to do (once),
//! verbosity and colour, completions and man pages, and `lander info` beside capinfos.

mod errors;
mod exit;
mod info;
mod stdio;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const LANDER: &str = env!("CARGO_BIN_EXE_lander");
pub const CAPTURE: &str = env!("CARGO_BIN_EXE_lander-capture");
pub const SCRUB: &str = env!("CARGO_BIN_EXE_lander-scrub");

/// Runs `bin` with `args` in `cwd`, `stdin` fed to it, colour and log settings of a user's
/// shell (no RUST_LOG, no NO_COLOR).
pub fn run_in(cwd: &Path, bin: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("LANDER_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let feed = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&feed);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Runs `bin` with `args` and no input.
pub fn run(bin: &str, args: &[&str]) -> Output {
    run_in(Path::new("."), bin, args, b"")
}

/// Standard error as text.
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output as text.
pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A path as the `&str` an argument list wants.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A synthetic trace of `packets` packets of `profile` in `dir`.
pub fn trace(dir: &Path, profile: &str, packets: u64) -> PathBuf {
    let path = dir.join(format!("{profile}-{packets}.pcap"));
    let o = run(
        LANDER,
        &[
            "-q",
            "gen",
            profile,
            "-n",
            &packets.to_string(),
            "--out",
            s(&path),
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    path
}

/// A fresh key for `mapping` in `dir`.
pub fn key(dir: &Path, mapping: &str) -> PathBuf {
    let path = dir.join(format!("{mapping}.key"));
    let o = run(
        LANDER,
        &["-q", "keygen", "--mapping", mapping, "--out", s(&path)],
    );
    assert!(o.status.success(), "{}", err(&o));
    path
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
