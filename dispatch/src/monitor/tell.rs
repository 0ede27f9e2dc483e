//! What users are told besides problems: files that arrived for them (batched, at most once
//! per `arrival_batch_secs`) and jobs of theirs that failed for good. Only users with a
//! `[[notify]]` command for it are watched. The first pass for a user takes what is there as
//! already told, so starting the monitor does not flood anyone with the past.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::json;

use crate::config::{Config, NotifyKind};
use crate::fsutil::list_names;
use crate::layout::Spool;
use lander_spool::human;

use super::notify;
use super::store::{self, Store, StoreError};

/// Most file names listed in one arrival message (the count is always whole).
pub const MAX_LISTED: usize = 100;

/// Trace files the user has received: everything in incoming, in-process, done and failed.
fn received(spool: &Spool, user: &str, sites: &[String]) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for dir in [
        spool.incoming(user),
        spool.in_process(user),
        spool.done(user),
        spool.failed(user),
    ] {
        for site in sites {
            let d = dir.join(site);
            for name in list_names(&d).unwrap_or_default() {
                if name.ends_with(".json") {
                    continue;
                }
                let bytes = std::fs::symlink_metadata(d.join(&name)).map_or(0, |m| m.len());
                out.push((format!("{site}/{name}"), bytes));
            }
        }
    }
    out
}

/// Notes new arrivals and queues a batch message when one is due. Returns messages queued.
pub fn arrivals(config: &Config, store: &mut Store, now: f64) -> Result<usize, StoreError> {
    let spool = Spool::new(&config.spool);
    let mut queued = 0;
    for (user, cfg) in &config.users {
        let targets = notify::targets(config, NotifyKind::Arrival, Some(user));
        if targets.is_empty() {
            continue;
        }
        let files = received(&spool, user, &cfg.subscriptions);
        let cursor = format!("arrival:{user}");
        let batch = config.monitor.arrival_batch.as_secs_f64();
        let keep = config.monitor.history.as_secs_f64();
        let first = store.cursor(&cursor)?.is_none();
        queued += store.write(|tx| {
            let told = if first { Some(now) } else { None };
            for (item, bytes) in &files {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO monitor_seen (user, item, seen, bytes, told)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![user, item, now, *bytes as i64, told])?;
            }
            let last: Option<f64> = tx
                .query_row(
                    "SELECT value FROM monitor_cursor WHERE name = ?1",
                    [&cursor],
                    |r| r.get(0),
                )
                .optional()?;
            forget_gone(tx, user, &files, now - keep)?;
            if first {
                store::set_cursor(tx, &cursor, now)?;
                return Ok(0);
            }
            if last.is_some_and(|t| now - t < batch) {
                return Ok(0);
            }
            let mut stmt = tx.prepare(
                "SELECT item, bytes FROM monitor_seen WHERE user = ?1 AND told IS NULL ORDER BY item",
            )?;
            let new: Vec<(String, i64)> = stmt
                .query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if new.is_empty() {
                return Ok(0);
            }
            let payload = arrival_payload(user, &new, now);
            for t in &targets {
                store::enqueue(tx, t, &payload, now)?;
            }
            tx.execute(
                "UPDATE monitor_seen SET told = ?2 WHERE user = ?1 AND told IS NULL",
                params![user, now],
            )?;
            store::set_cursor(tx, &cursor, now)?;
            Ok(1)
        })?;
    }
    Ok(queued)
}

/// Forgets files told of before `before` that are no longer there (a file still there stays
/// known however old, so it is never told of twice).
fn forget_gone(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    files: &[(String, u64)],
    before: f64,
) -> rusqlite::Result<()> {
    let present: std::collections::HashSet<&str> = files.iter().map(|f| f.0.as_str()).collect();
    let old: Vec<String> = tx
        .prepare(
            "SELECT item FROM monitor_seen WHERE user = ?1 AND seen < ?2 AND told IS NOT NULL",
        )?
        .query_map(params![user, before], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for item in old.iter().filter(|i| !present.contains(i.as_str())) {
        tx.execute(
            "DELETE FROM monitor_seen WHERE user = ?1 AND item = ?2",
            params![user, item],
        )?;
    }
    Ok(())
}

fn arrival_payload(user: &str, files: &[(String, i64)], now: f64) -> String {
    let total: u64 = files.iter().map(|f| f.1.max(0) as u64).sum();
    let summary = format!(
        "[LANDER] {} new files for {user} ({})",
        human::count(files.len() as u64),
        human::bytes(total)
    );
    let mut text = format!("{summary}\n\n");
    for (item, bytes) in files.iter().take(MAX_LISTED) {
        text += &format!("  {item}  {}\n", human::bytes(bytes.max(&0).unsigned_abs()));
    }
    if files.len() > MAX_LISTED {
        text += &format!("  ... and {} more\n", files.len() - MAX_LISTED);
    }
    let mut v = serde_json::json!({
        "kind": "arrival",
        "time": now,
        "time_iso": human::iso8601(now as i64),
        "host": crate::sys::hostname(),
        "summary": summary,
        "text": text,
    });
    v["user"] = json!(user);
    v["count"] = json!(files.len());
    v["bytes"] = json!(total);
    let listed: Vec<_> = files
        .iter()
        .take(MAX_LISTED)
        .map(|(item, bytes)| json!({"item": item, "bytes": bytes}))
        .collect();
    v["files"] = json!(listed);
    v.to_string()
}

/// A failed job of a user, from their job history.
struct Failed {
    job_id: String,
    item: String,
    reason: Option<String>,
    ended: f64,
}

fn failures_since(db: &Path, stage: &str, since: f64) -> rusqlite::Result<Vec<Failed>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(crate::ledger::BUSY_TIMEOUT)?;
    let mut stmt = conn.prepare(
        "SELECT job_id, item, reason, COALESCE(ended, started, submitted, 0) AS t FROM jobs
         WHERE stage = ?1 AND state = 'failed' AND t > ?2 ORDER BY t, job_id LIMIT 1000",
    )?;
    let rows = stmt.query_map(params![stage, since], |r| {
        Ok(Failed {
            job_id: r.get(0)?,
            item: r.get(1)?,
            reason: r.get(2)?,
            ended: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Queues one message per job of a watched user that failed for good since the last pass.
pub fn failures(config: &Config, store: &mut Store, now: f64) -> Result<usize, StoreError> {
    let mut queued = 0;
    for user in config.users.keys() {
        let targets = notify::targets(config, NotifyKind::Failure, Some(user));
        if targets.is_empty() {
            continue;
        }
        let cursor = format!("failure:{user}");
        let Some(since) = store.cursor(&cursor)? else {
            store.write(|tx| store::set_cursor(tx, &cursor, now))?;
            continue;
        };
        let db = config.user_db(user);
        let stage = format!("user/{user}");
        let found = if db.exists() {
            match failures_since(&db, &stage, since) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(user, "cannot read {}: {e}", db.display());
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        let Some(last) = found.last().map(|f| f.ended) else {
            continue;
        };
        queued += found.len();
        store.write(|tx| {
            for f in &found {
                let payload = failure_payload(user, f, now);
                for t in &targets {
                    store::enqueue(tx, t, &payload, now)?;
                }
            }
            store::set_cursor(tx, &cursor, last)
        })?;
    }
    Ok(queued)
}

fn failure_payload(user: &str, f: &Failed, now: f64) -> String {
    let reason = f.reason.as_deref().unwrap_or("no reason recorded");
    let summary = format!("[LANDER] job failed for {user}: {}", f.item);
    let logs = format!("lander jobs logs {}", f.job_id);
    let text = format!(
        "{summary}\n\nreason: {reason}\nended: {}\njob: {}\nlogs: {logs}\n",
        human::iso8601(f.ended as i64),
        f.job_id
    );
    json!({
        "kind": "failure",
        "time": now,
        "time_iso": human::iso8601(now as i64),
        "host": crate::sys::hostname(),
        "summary": summary,
        "text": text,
        "user": user,
        "job_id": f.job_id,
        "item": f.item,
        "reason": f.reason,
        "ended": f.ended,
        "logs_command": logs,
    })
    .to_string()
}
