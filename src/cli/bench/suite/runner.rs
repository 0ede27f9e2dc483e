//! Paired runs: every case of a group runs once per round, the order rotated from round to
//! round, each into a fresh, empty output directory (no truncation of an old file on anyone's
//! side), timed from spawn to exit. Medians, spreads and ratios come from those rounds.

use crate::cli::bench::median;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;

/// One command to time; `{in}` and `{out}` in its arguments are replaced by the input file
/// and a fresh output directory.
#[derive(Debug, Clone)]
pub struct Case {
    /// Shown in reports.
    pub name: String,
    /// Ours, or a peer tool.
    pub ours: bool,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Parameter swept by this case (threads), for the plots.
    pub threads: Option<usize>,
}

impl Case {
    /// A case from a command line split on spaces.
    pub fn new(name: &str, ours: bool, line: &str) -> Case {
        Case {
            name: name.into(),
            ours,
            argv: line.split_whitespace().map(String::from).collect(),
            threads: None,
        }
    }

    fn command(&self, input: &Path, out: &Path) -> Command {
        let fill = |a: &String| {
            a.replace("{in}", &input.to_string_lossy())
                .replace("{out}", &out.to_string_lossy())
        };
        let mut c = Command::new(fill(&self.argv[0]));
        c.args(self.argv[1..].iter().map(fill));
        c
    }

    /// The command line as run, for the report.
    pub fn line(&self) -> String {
        self.argv.join(" ")
    }
}

/// Cases compared over one input.
#[derive(Debug, Clone)]
pub struct Group {
    /// Group name (`replay`, `scrub syn-flood`, ...).
    pub name: String,
    /// The input file.
    pub input: PathBuf,
    /// Packets in the input.
    pub packets: u64,
    /// The case the ratios are taken against.
    pub baseline: String,
    /// The cases.
    pub cases: Vec<Case>,
}

/// What one case measured over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// The case's name.
    pub name: String,
    /// Ours or a peer.
    pub ours: bool,
    /// The command line, `{in}` and `{out}` standing for the input and output.
    pub command: String,
    /// Threads, where swept.
    pub threads: Option<usize>,
    /// Seconds of every round.
    pub seconds: Vec<f64>,
    /// Median of the rounds.
    pub median: f64,
    /// (max - min) / median of the rounds.
    pub spread: f64,
    /// Million packets per second at the median.
    pub mpps: f64,
    /// MB (10^6 bytes) of input per second at the median.
    pub mb_per_s: f64,
    /// The baseline's median over this one's: above 1, this case is faster.
    pub speedup_vs_baseline: f64,
}

/// A group's results.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// Group name.
    pub name: String,
    /// Packets in the input.
    pub packets: u64,
    /// Bytes of the input.
    pub bytes: u64,
    /// The case the ratios are taken against.
    pub baseline: String,
    /// Rounds run.
    pub rounds: usize,
    /// The cases, in the group's order.
    pub cases: Vec<Measured>,
}

/// Runs every case of `group` `rounds` times, alternating; `work` holds the output dirs.
pub fn run_group(group: &Group, rounds: usize, work: &Path) -> anyhow::Result<GroupReport> {
    // read as from disk, just before: the cached pages of a file read long ago slow down
    crate::cli::bench::cache_as_read(&group.input)?;
    let n = group.cases.len();
    let mut times = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds.max(1) {
        for k in 0..n {
            let i = (k + round) % n;
            times[i].push(run_once(&group.cases[i], &group.input, work)?);
        }
    }
    let bytes = std::fs::metadata(&group.input)
        .with_context(|| group.input.display().to_string())?
        .len();
    let mut cases: Vec<Measured> = group
        .cases
        .iter()
        .zip(times)
        .map(|(c, t)| measured(c, t, group.packets, bytes))
        .collect();
    let base = cases
        .iter()
        .find(|m| m.name == group.baseline)
        .map_or(f64::NAN, |m| m.median);
    for m in &mut cases {
        m.speedup_vs_baseline = base / m.median;
    }
    Ok(GroupReport {
        name: group.name.clone(),
        packets: group.packets,
        bytes,
        baseline: group.baseline.clone(),
        rounds: rounds.max(1),
        cases,
    })
}

fn measured(c: &Case, seconds: Vec<f64>, packets: u64, bytes: u64) -> Measured {
    let med = median(&seconds);
    let (lo, hi) = seconds
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &s| (lo.min(s), hi.max(s)));
    Measured {
        name: c.name.clone(),
        ours: c.ours,
        command: c.line(),
        threads: c.threads,
        median: med,
        spread: (hi - lo) / med.max(1e-12),
        mpps: packets as f64 / med.max(1e-12) / 1e6,
        mb_per_s: bytes as f64 / med.max(1e-12) / 1e6,
        speedup_vs_baseline: 1.0,
        seconds,
    }
}

/// One timed run into a fresh `work/out`, after `sync` (dirty pages of the last run are not
/// this run's to write).
fn run_once(case: &Case, input: &Path, work: &Path) -> anyhow::Result<f64> {
    let out = work.join("out");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    let _ = Command::new("sync").status();
    let mut cmd = case.command(input, &out);
    let start = Instant::now();
    let result = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {} (scripts/bootstrap.sh)", case.argv[0]))?;
    let secs = start.elapsed().as_secs_f64();
    if !result.status.success() {
        bail!(
            "{} failed ({}): {}",
            case.line(),
            result.status,
            String::from_utf8_lossy(&result.stderr).trim()
        );
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_and_ratios_are_against_the_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::write(&input, b"x").unwrap();
        let group = Group {
            name: "g".into(),
            input: input.clone(),
            packets: 1,
            baseline: "cp".into(),
            cases: vec![
                Case::new("cp", false, "cp {in} {out}/copy"),
                Case::new("true", true, "true"),
            ],
        };
        let r = run_group(&group, 3, dir.path()).unwrap();
        assert_eq!(r.cases.len(), 2);
        assert!(r.cases.iter().all(|c| c.seconds.len() == 3));
        assert_eq!(r.cases[0].speedup_vs_baseline, 1.0);
        assert_eq!(r.bytes, 1);
    }

    #[test]
    fn a_failing_peer_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in"), b"x").unwrap();
        let group = Group {
            name: "g".into(),
            input: dir.path().join("in"),
            packets: 1,
            baseline: "f".into(),
            cases: vec![Case::new("f", false, "false")],
        };
        let e = run_group(&group, 1, dir.path()).unwrap_err();
        assert!(e.to_string().contains("false"), "{e}");
    }
}
