//! History for the charts: one sample per series per monitor pass (`backlog:<stage>`,
//! `throughput:<stage>` in files per hour, `pps:<site>`, `drops:<site>`), kept
//! `history_days`; samples older than a day are folded into one mean per hour, so the table
//! stays bounded whatever the poll period.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};
use serde::Serialize;

use super::store::{self, Store, StoreError};
use super::Status;

/// Samples younger than this are kept as taken.
pub const FULL_RESOLUTION_SECS: f64 = 86_400.0;

/// Files and bytes a stage finished in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Files (succeeded jobs).
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
}

/// Succeeded jobs of `stage` that ended after `since`, from a job history database (read
/// only; none when it does not exist or cannot be read).
pub fn throughput(db: &Path, stage: &str, since: f64) -> Throughput {
    let read = || -> rusqlite::Result<Throughput> {
        let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(crate::ledger::BUSY_TIMEOUT)?;
        conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM jobs
             WHERE stage = ?1 AND state = 'succeeded' AND ended >= ?2",
            params![stage, since],
            |r| {
                Ok(Throughput {
                    files: r.get::<_, i64>(0)?.max(0) as u64,
                    bytes: r.get::<_, i64>(1)?.max(0) as u64,
                })
            },
        )
    };
    if !db.exists() {
        return Throughput::default();
    }
    read().unwrap_or_default()
}

/// The samples of one pass.
pub fn samples(st: &Status, hourly: &[(String, Throughput)]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for s in &st.stages {
        out.push((format!("backlog:{}", s.stage), s.waiting_files as f64));
    }
    for (stage, t) in hourly {
        out.push((format!("throughput:{stage}"), t.files as f64));
    }
    for s in &st.sites {
        out.push((format!("pps:{}", s.site), s.pps));
        out.push((format!("drops:{}", s.site), s.drops as f64));
    }
    out
}

/// Records samples taken at `now`, folds those older than a day into hourly means and drops
/// those (and events cleared) older than `keep` seconds.
pub fn record(
    store: &mut Store,
    samples: &[(String, f64)],
    now: f64,
    keep: f64,
) -> Result<(), StoreError> {
    store.write(|tx| {
        for (series, value) in samples {
            tx.prepare_cached(
                "INSERT INTO monitor_samples (time, series, value, hourly) VALUES (?1, ?2, ?3, 0)",
            )?
            .execute(params![now, series, value])?;
        }
        // Whole hours only, each folded once: the hour ending before a day ago.
        let cut = ((now - FULL_RESOLUTION_SECS) / 3600.0).floor() * 3600.0;
        tx.execute(
            "INSERT INTO monitor_samples (time, series, value, hourly)
             SELECT CAST(time / 3600 AS INTEGER) * 3600 + 1800, series, AVG(value), 1
             FROM monitor_samples WHERE hourly = 0 AND time < ?1
             GROUP BY series, CAST(time / 3600 AS INTEGER)",
            [cut],
        )?;
        tx.execute(
            "DELETE FROM monitor_samples WHERE hourly = 0 AND time < ?1",
            [cut],
        )?;
        tx.execute("DELETE FROM monitor_samples WHERE time < ?1", [now - keep])?;
        // Events cleared longer ago than the history go with it.
        tx.execute(
            "DELETE FROM monitor_events WHERE cleared IS NOT NULL AND cleared < ?1",
            [now - keep],
        )?;
        Ok(())
    })
}

/// One series: `(unix time, value)` in time order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    /// Its name: `backlog:scrub`, `pps:border`, ...
    pub name: String,
    /// Points in time order.
    pub points: Vec<(f64, f64)>,
}

/// Every series with points after `since`.
pub fn series(store: &Store, since: f64) -> Result<Vec<Series>, StoreError> {
    let conn = store.conn();
    let mut stmt = match conn.prepare(
        "SELECT series, time, value FROM monitor_samples WHERE time >= ?1 ORDER BY series, time",
    ) {
        Ok(s) => s,
        Err(e) if store::no_table(&e) => return Ok(Vec::new()),
        Err(e) => return Err(store.err(e)),
    };
    let rows = stmt
        .query_map([since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })
        .map_err(|e| store.err(e))?;
    let mut out: Vec<Series> = Vec::new();
    for row in rows {
        let (name, t, v) = row.map_err(|e| store.err(e))?;
        match out.last_mut() {
            Some(s) if s.name == name => s.points.push((t, v)),
            _ => out.push(Series {
                name,
                points: vec![(t, v)],
            }),
        }
    }
    Ok(out)
}

/// Rows in the samples table (for tests of the bound).
pub fn sample_count(store: &Store) -> Result<u64, StoreError> {
    store
        .conn()
        .query_row("SELECT COUNT(*) FROM monitor_samples", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n.max(0) as u64)
        .map_err(|e| store.err(e))
}
