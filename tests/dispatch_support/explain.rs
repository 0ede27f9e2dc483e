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
