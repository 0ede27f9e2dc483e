//! Why Slurm keeps jobs pending: for jobs submitted and not started past the start timeout,
//! one `squeue -h -j <ids> -o '%A|%r'` call over all stages, and the reasons counted per stage.
//! Backend ids come from the job histories; a history or `squeue` that cannot be read leaves
//! the reasons out (the problem is reported all the same).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

use rusqlite::{Connection, OpenFlags};

use crate::config::{BackendKind, Config};

use super::StageStatus;

/// Most jobs asked about in one pass.
pub const MAX_ASKED: usize = 500;

/// Backend ids of `jobs` in a job history.
fn backend_ids(db: &Path, jobs: &[String]) -> HashMap<String, String> {
    let read = || -> rusqlite::Result<HashMap<String, String>> {
        let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(crate::ledger::BUSY_TIMEOUT)?;
        let mut stmt = conn.prepare("SELECT backend_id FROM jobs WHERE job_id = ?1")?;
        let mut out = HashMap::new();
        for job in jobs {
            let id: Option<String> = stmt.query_row([job], |r| r.get(0)).unwrap_or(None);
            if let Some(id) = id {
                out.insert(id, job.clone());
            }
        }
        Ok(out)
    };
    if !db.exists() {
        return HashMap::new();
    }
    read().unwrap_or_default()
}

/// Parses `%A|%r` lines into backend id -> reason.
pub fn parse_reasons(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| {
            let (id, reason) = l.trim().split_once('|')?;
            let reason = reason.trim();
            (!id.trim().is_empty() && !reason.is_empty())
                .then(|| (id.trim().to_owned(), reason.to_owned()))
        })
        .collect()
}

/// Fills `pending_reasons` of the stages with late jobs, when the backend is Slurm.
pub fn annotate(config: &Config, stages: &mut [StageStatus]) {
    if config.backend.kind != BackendKind::Slurm {
        return;
    }
    let mut ids: Vec<(usize, String)> = Vec::new();
    for (i, s) in stages.iter().enumerate() {
        if s.late_jobs.is_empty() {
            continue;
        }
        let db = match s.stage.strip_prefix("user/") {
            Some(user) => config.user_db(user),
            None => config.state_db.clone(),
        };
        let jobs = &s.late_jobs[..s.late_jobs.len().min(MAX_ASKED)];
        ids.extend(backend_ids(&db, jobs).into_keys().map(|id| (i, id)));
    }
    ids.truncate(MAX_ASKED);
    if ids.is_empty() {
        return;
    }
    let list: Vec<&str> = ids.iter().map(|(_, id)| id.as_str()).collect();
    let squeue = &config.backend.slurm.squeue;
    let out = Command::new(squeue)
        .args(["-h", "-j", &list.join(","), "-o", "%A|%r"])
        .output();
    let reasons = match out {
        Ok(o) if o.status.success() => parse_reasons(&String::from_utf8_lossy(&o.stdout)),
        Ok(o) => {
            tracing::debug!("{squeue}: {}", String::from_utf8_lossy(&o.stderr).trim());
            return;
        }
        Err(e) => {
            tracing::debug!("{squeue}: {e}");
            return;
        }
    };
    let mut counts: BTreeMap<usize, BTreeMap<String, usize>> = BTreeMap::new();
    for (i, id) in &ids {
        if let Some(r) = reasons.get(id) {
            *counts.entry(*i).or_default().entry(r.clone()).or_default() += 1;
        }
    }
    for (i, by_reason) in counts {
        let mut list: Vec<(String, usize)> = by_reason.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        stages[i].pending_reasons = list;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_read_from_squeue_lines_and_junk_is_skipped() {
        let r = parse_reasons("123|Priority\n 124 | Resources \n\ngarbage\n|x\n125|\n");
        assert_eq!(r.len(), 2);
        assert_eq!(r["123"], "Priority");
        assert_eq!(r["124"], "Resources");
    }
}
