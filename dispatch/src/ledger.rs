//! The history of job attempts in an embedded SQLite database on local disk (never on NFS:
//! SQLite's WAL needs a local filesystem). Writes of one dispatcher pass are collected and
//! applied in one short transaction at its end.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::record::JobRecord;

/// A database error, naming the database file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct LedgerError {
    /// The database file.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: rusqlite::Error,
}

/// One job attempt as the history knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRow {
    /// The job attempt.
    pub job_id: String,
    /// Stage name.
    pub stage: String,
    /// The item it works on.
    pub item: String,
    /// Attempt number.
    pub attempt: u32,
    /// `submitted`, `succeeded`, `retry`, `failed`, `ignored`, `lost`, `cancelled`.
    pub state: String,
    /// The backend's id.
    pub backend_id: Option<String>,
    /// Host it ran on.
    pub host: Option<String>,
    /// Unix times.
    pub submitted: Option<f64>,
    /// Start, from the run record.
    pub started: Option<f64>,
    /// End, from the run record.
    pub ended: Option<f64>,
    /// Exit status.
    pub exit_code: Option<i32>,
    /// Signal.
    pub signal: Option<i32>,
    /// Why it did not succeed.
    pub reason: Option<String>,
    /// Packets worked on.
    pub packets: Option<u64>,
    /// Bytes worked on.
    pub bytes: Option<u64>,
}

/// The job history.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    in_tx: bool,
    pending: Vec<Write>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    stage TEXT NOT NULL,
    item TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    backend_id TEXT,
    host TEXT,
    submitted REAL,
    started REAL,
    ended REAL,
    exit_code INTEGER,
    signal INTEGER,
    reason TEXT,
    packets INTEGER,
    bytes INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_item ON jobs(stage, item);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
";

/// How long a statement waits for another dispatcher's lock on the database.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

const COLUMNS: &str = "job_id, stage, item, attempt, state, backend_id, host, submitted, started, \
                       ended, exit_code, signal, reason, packets, bytes";

impl Ledger {
    /// Opens (creating if needed) the database at `path`.
    ///
    /// Several dispatchers may start at once on one database: every statement waits up to
    /// [`BUSY_TIMEOUT`] for a lock, and opening (journal mode, schema) is retried while
    /// SQLite reports the database busy or locked, for as long again.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match Self::try_open(path) {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(source) => {
                    return Err(LedgerError {
                        path: path.to_owned(),
                        source,
                    })
                }
                Ok(conn) => {
                    return Ok(Ledger {
                        conn,
                        path: path.to_owned(),
                        in_tx: false,
                        pending: Vec::new(),
                    })
                }
            }
        }
    }

    fn try_open(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(conn)
    }

    /// Whether commits and checkpoints reach the disk before they return (`synchronous =
    /// NORMAL`, the default) or are left to the kernel (`OFF`: the configuration's `fsync =
    /// false`; the history is a record, the spool's files are the truth).
    pub fn set_durable(&self, durable: bool) -> Result<(), LedgerError> {
        let mode = if durable { "NORMAL" } else { "OFF" };
        self.conn
            .pragma_update(None, "synchronous", mode)
            .map_err(|e| self.err(e))
    }

    fn err(&self, source: rusqlite::Error) -> LedgerError {
        LedgerError {
            path: self.path.clone(),
            source,
        }
    }

    /// Starts collecting writes; [`Ledger::commit`] applies them all in one short transaction
    /// (so the write lock is held for the commit only, not for a whole dispatcher pass).
    pub fn begin(&mut self) -> Result<(), LedgerError> {
        self.in_tx = true;
        Ok(())
    }

    /// Applies the writes collected since [`Ledger::begin`] in one transaction.
    pub fn commit(&mut self) -> Result<(), LedgerError> {
        self.in_tx = false;
        if self.pending.is_empty() {
            return Ok(());
        }
        let writes = std::mem::take(&mut self.pending);
        let path = self.path.clone();
        let err = |source| LedgerError { path, source };
        (|| {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for w in &writes {
                apply(&tx, w)?;
            }
            tx.commit()
        })()
        .map_err(err)
    }

    /// Drops the writes collected since [`Ledger::begin`].
    pub fn rollback(&mut self) {
        self.pending.clear();
        self.in_tx = false;
    }

    fn write(&mut self, w: Write) -> Result<(), LedgerError> {
        if self.in_tx {
            self.pending.push(w);
            return Ok(());
        }
        apply(&self.conn, &w).map_err(|e| self.err(e))
    }

    /// Notes a submitted attempt.
    pub fn submitted(&mut self, row: &JobRow) -> Result<(), LedgerError> {
        self.write(Write::Submitted(row.clone()))
    }

    /// Notes the end of an attempt from its run record, with the state it led to.
    pub fn finished(
        &mut self,
        rec: &JobRecord,
        state: &str,
        reason: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.write(Write::Finished(
            rec.clone(),
            state.to_owned(),
            reason.map(str::to_owned),
        ))
    }

    /// Sets the state of an attempt that left no record (lost, cancelled before start).
    pub fn set_state(&mut self, job: &JobRow) -> Result<(), LedgerError> {
        self.write(Write::State(job.clone()))
    }

    /// One attempt.
    pub fn get(&self, job_id: &str) -> Result<Option<JobRow>, LedgerError> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1");
        self.conn
            .query_row(&sql, [job_id], row)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Attempts, newest first, filtered by stage and state when given.
    pub fn list(
        &self,
        stage: Option<&str>,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JobRow>, LedgerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE (?1 IS NULL OR stage = ?1) AND (?2 IS NULL OR state = ?2)
             ORDER BY COALESCE(ended, started, submitted) DESC, job_id LIMIT ?3"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![stage, state, limit as i64], row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Number of attempts by state.
    pub fn counts(&self) -> Result<Vec<(String, u64)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

/// One write of the history, kept until the pass commits. An attempt that succeeded stays
/// succeeded: a second dispatcher acting on an older view of the same item (which finds the
/// results already moved on) cannot turn its row into a retry.
#[derive(Debug)]
enum Write {
    Submitted(JobRow),
    Finished(JobRecord, String, Option<String>),
    State(JobRow),
}

fn apply(conn: &Connection, w: &Write) -> rusqlite::Result<()> {
    match w {
        Write::Submitted(row) => {
            let sql = "INSERT INTO jobs (job_id, stage, item, attempt, state, backend_id, host,
                       submitted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                       ON CONFLICT(job_id) DO UPDATE SET backend_id = excluded.backend_id,
                       host = excluded.host, submitted = excluded.submitted";
            let p = params![
                row.job_id,
                row.stage,
                row.item,
                row.attempt,
                row.state,
                row.backend_id,
                row.host,
                row.submitted
            ];
            conn.prepare_cached(sql)?.execute(p).map(drop)
        }
        Write::Finished(rec, state, reason) => {
            let sql = "INSERT INTO jobs (job_id, stage, item, attempt, state, host, started,
                       ended, exit_code, signal, reason, packets, bytes)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                       ON CONFLICT(job_id) DO UPDATE SET state = excluded.state,
                       host = excluded.host, started = excluded.started, ended = excluded.ended,
                       exit_code = excluded.exit_code, signal = excluded.signal,
                       reason = excluded.reason, packets = excluded.packets, bytes = excluded.bytes
                       WHERE jobs.state != 'succeeded'";
            let p = params![
                rec.job.job_id,
                rec.job.stage,
                rec.job.item,
                rec.job.attempt,
                state,
                rec.host,
                rec.start,
                rec.end,
                rec.exit_code,
                rec.signal,
                reason,
                rec.packets.map(|v| v as i64),
                rec.bytes.map(|v| v as i64)
            ];
            conn.prepare_cached(sql)?.execute(p).map(drop)
        }
        Write::State(job) => {
            let sql = "INSERT INTO jobs (job_id, stage, item, attempt, state, reason)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                       ON CONFLICT(job_id) DO UPDATE SET state = excluded.state,
                       reason = excluded.reason WHERE jobs.state != 'succeeded'";
            let p = params![
                job.job_id,
                job.stage,
                job.item,
                job.attempt,
                job.state,
                job.reason
            ];
            conn.prepare_cached(sql)?.execute(p).map(drop)
        }
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        job_id: r.get(0)?,
        stage: r.get(1)?,
        item: r.get(2)?,
        attempt: r.get(3)?,
        state: r.get(4)?,
        backend_id: r.get(5)?,
        host: r.get(6)?,
        submitted: r.get(7)?,
        started: r.get(8)?,
        ended: r.get(9)?,
        exit_code: r.get(10)?,
        signal: r.get(11)?,
        reason: r.get(12)?,
        packets: r.get::<_, Option<i64>>(13)?.map(|v| v as u64),
        bytes: r.get::<_, Option<i64>>(14)?.map(|v| v as u64),
    })
}

impl JobRow {
    /// A row with only the identity and state filled in.
    pub fn new(job_id: &str, stage: &str, item: &str, attempt: u32, state: &str) -> JobRow {
        JobRow {
            job_id: job_id.to_owned(),
            stage: stage.to_owned(),
            item: item.to_owned(),
            attempt,
            state: state.to_owned(),
            backend_id: None,
            host: None,
            submitted: None,
            started: None,
            ended: None,
            exit_code: None,
            signal: None,
            reason: None,
            packets: None,
            bytes: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_dispatchers_opening_a_new_database_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db/dispatch.sqlite");
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for i in 0..8 {
                let (path, barrier) = (&path, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let mut ledger = Ledger::open(path).expect("open while others open");
                    ledger.begin().unwrap();
                    let row = JobRow::new(&format!("j{i}"), "scrub", "s/f", 1, "submitted");
                    ledger.submitted(&row).unwrap();
                    ledger.commit().unwrap();
                });
            }
        });
        let ledger = Ledger::open(&path).unwrap();
        assert_eq!(ledger.counts().unwrap(), vec![("submitted".to_owned(), 8)]);
    }
}
