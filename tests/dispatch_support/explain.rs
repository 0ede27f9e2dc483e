//! When a chaos run loses or doubles a file: where each such digest is now (every path under
//! the spool, dot files included), every entry under the name it came in as (and the fresh
//! names given to it), the claims of those items and their history, and what the dispatchers
//! logged about them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::{Spool, USERS};

/// Every regular file under `dir` (symbolic links not followed), dot files included.
fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => all_files(&p, out),
            Ok(m) if m.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// Digest differences between what a user holds and what was expected, explained. `texts`
/// gives each expected digest's raw name and content; `log` is the dispatchers' log.
pub fn explain(
    spool: &Spool,
    user: &str,
    got: &BTreeMap<String, usize>,
    expected: &BTreeMap<String, usize>,
    texts: &BTreeMap<String, (String, String)>,
    log: &Path,
) -> String {
    let mut out = String::new();
    let mut files = Vec::new();
    all_files(&spool.root(), &mut files);
    let keys: BTreeSet<&String> = got.keys().chain(expected.keys()).collect();
    for d in keys {
        let (g, e) = (got.get(d).copied(), expected.get(d).copied());
        if g == e {
            continue;
        }
        let (name, text) = texts.get(d).cloned().unwrap_or_default();
        let _ = writeln!(
            out,
            "\n{user}: digest {d} ({name}: {text:?}) found {g:?} times, expected {e:?}; copies:"
        );
        for p in files.iter().filter(|p| digest_of(p).as_deref() == Some(d)) {
            let _ = writeln!(out, "  {}", p.display());
        }
        // The name without its sequence number also matches the fresh names given to it.
        let stem = name.rsplit_once('-').map_or(name.as_str(), |(s, _)| s);
        if !stem.is_empty() {
            explain_name(spool, stem, &files, texts, log, &mut out);
        }
    }
    out
}

/// Everything under the spool named like `stem`, its items' claims and history, its log.
fn explain_name(
    spool: &Spool,
    stem: &str,
    files: &[PathBuf],
    texts: &BTreeMap<String, (String, String)>,
    log: &Path,
    out: &mut String,
) {
    let _ = writeln!(out, "  entries named {stem}-*:");
    for p in files.iter().filter(|p| p.to_string_lossy().contains(stem)) {
        let what = digest_of(p)
            .and_then(|d| texts.get(&d).map(|t| format!("{:?}", t.1)))
            .unwrap_or_else(|| std::fs::read_to_string(p).unwrap_or_default());
        let what: String = what.split_whitespace().collect::<Vec<_>>().join(" ");
        let _ = writeln!(
            out,
            "    {}: {}",
            p.display(),
            what.chars().take(400).collect::<String>()
        );
    }
    let mut stages = vec![("scrub".to_owned(), spool.ledger())];
    stages.extend(USERS.iter().map(|u| (u.to_string(), spool.user_ledger(u))));
    for (stage, ledger) in stages {
        for row in ledger.list(None, None, 100_000).unwrap_or_default() {
            if row.item.contains(stem) {
                let _ = writeln!(
                    out,
                    "    {stage} history: {} {} attempt {} {} {:?}",
                    row.item, row.job_id, row.attempt, row.state, row.reason
                );
            }
        }
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let _ = writeln!(out, "  logged about {stem}-*:");
    for line in text.lines().filter(|l| l.contains(stem)) {
        let _ = writeln!(out, "    {line}");
    }
}

fn digest_of(p: &Path) -> Option<String> {
    let m = std::fs::symlink_metadata(p).ok()?;
    if m.len() > 4096 {
        return None;
    }
    Some(blake3::hash(&std::fs::read(p).ok()?).to_hex().to_string())
}

/// When temporaries (or other files of an attempt) are left at the end of a chaos run: for
/// each, its content, the writer a temporary's name gives (`.<final>.<host>.<pid>.<n>.tmp`) and
/// what that process is now (running, a zombie nobody reaped, gone), the attempt's other
/// files, what the dispatchers logged about the job, and every job wrapper of this spool still
/// running.
pub fn explain_temporaries(spool: &Spool, found: &[PathBuf], log: &Path) -> String {
    let mut out = String::new();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for p in found {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        let content = std::fs::read_to_string(p).unwrap_or_else(|e| format!("({e})"));
        let _ = writeln!(out, "\n{}: {content:?}", p.display());
        let final_name = match lander_spool::publish::parse_temp_name(&name) {
            Some((final_name, host, pid)) => {
                let now = process_state(pid);
                let _ = writeln!(out, "  written by pid {pid} on {host}, now {now}");
                final_name
            }
            None => name.into_owned(),
        };
        let job = final_name
            .trim_end_matches(".json")
            .trim_end_matches(".beat")
            .trim_end_matches(".start")
            .trim_end_matches(".spec")
            .to_owned();
        let _ = writeln!(out, "  files of {job}:");
        let mut files = Vec::new();
        all_files(&spool.root(), &mut files);
        for f in files.iter().filter(|f| f.to_string_lossy().contains(&job)) {
            let what = std::fs::read_to_string(f).unwrap_or_default();
            let what: String = what.split_whitespace().collect::<Vec<_>>().join(" ");
            let what: String = what.chars().take(400).collect();
            let _ = writeln!(out, "    {}: {what}", f.display());
        }
        let _ = writeln!(out, "  logged about {job}:");
        for line in text.lines().filter(|l| l.contains(&job)) {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = writeln!(out, "\njob wrappers of this spool still running:");
    for (pid, state, cmd) in wrappers_of(spool) {
        let _ = writeln!(out, "  {pid} {state} {cmd}");
    }
    out
}

/// What process `pid` is now: its state letter and command line, or that it is gone.
pub fn process_state(pid: u32) -> String {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return "gone".into();
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .unwrap_or("?");
    let comm = stat.split(['(', ')']).nth(1).unwrap_or("?");
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
    let parent = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
        .unwrap_or("?");
    match state {
        "Z" => format!("a zombie ({comm}, dead, not reaped by its parent {parent})"),
        s => format!("state {s} ({comm}, parent {parent}): {cmd}"),
    }
}

/// Processes (pid, state, command line) whose command line names a file of this spool's state
/// (job wrappers, and jobs given spool paths), zombies included.
pub fn wrappers_of(spool: &Spool) -> Vec<(u32, String, String)> {
    let root = spool.root().to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .unwrap_or("?")
            .to_owned();
        if cmd.contains(&root) && cmd.contains("job-wrapper") {
            out.push((pid, state, cmd));
        }
    }
    out
}
