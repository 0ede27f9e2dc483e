//! The monitor's tables, in the dispatcher's SQLite database (`state_db`, local disk): events
//! (one row per problem from when it began to when it cleared), the outbox of notifications
//! not yet delivered, what was delivered when (for the hourly limit), arrivals seen, cursors,
//! and the history samples of the charts.
//!
//! Every change of events and the notifications it causes are written in one transaction, so a
//! crash between them can neither lose a notification nor make one for a change not recorded.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};

pub use crate::ledger::LedgerError as StoreError;

use super::checks::Severity;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS monitor_events (
    id TEXT NOT NULL,
    began REAL NOT NULL,
    cleared REAL,
    check_name TEXT NOT NULL,
    subject TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    value REAL NOT NULL,
    limit_value REAL NOT NULL,
    user TEXT,
    last_seen REAL NOT NULL,
    last_told REAL,
    PRIMARY KEY (id, began)
);
CREATE INDEX IF NOT EXISTS monitor_events_open ON monitor_events(cleared);
CREATE TABLE IF NOT EXISTS monitor_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_at REAL
);
CREATE TABLE IF NOT EXISTS monitor_sent (target TEXT NOT NULL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS monitor_sent_target ON monitor_sent(target, time);
CREATE TABLE IF NOT EXISTS monitor_seen (
    user TEXT NOT NULL,
    item TEXT NOT NULL,
    seen REAL NOT NULL,
    bytes INTEGER NOT NULL,
    told REAL,
    PRIMARY KEY (user, item)
);
CREATE TABLE IF NOT EXISTS monitor_cursor (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS monitor_samples (
    time REAL NOT NULL,
    series TEXT NOT NULL,
    value REAL NOT NULL,
    hourly INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS monitor_samples_series ON monitor_samples(series, time);
";

/// One problem from when it began to when it cleared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable id of the problem (`<check>:<subject>`).
    pub id: String,
    /// The check.
    pub check: String,
    /// What it concerns.
    pub subject: String,
    /// How bad.
    pub severity: Severity,
    /// The latest message.
    pub message: String,
    /// The latest measured value.
    pub value: f64,
    /// The threshold.
    pub limit: f64,
    /// The user it concerns, if one.
    pub user: Option<String>,
    /// Unix time it was first seen.
    pub began: f64,
    /// Unix time it was first seen gone.
    pub cleared: Option<f64>,
    /// Unix time it was last seen.
    pub last_seen: f64,
    /// Unix time notifications were last made for it.
    pub last_told: Option<f64>,
}

/// A notification waiting to be delivered.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its number.
    pub seq: i64,
    /// Who: `operator` or `user:<name>`.
    pub target: String,
    /// The JSON given on standard input.
    pub payload: String,
    /// Delivery attempts so far.
    pub attempts: u32,
}

/// The monitor's tables.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const EVENT_COLUMNS: &str = "id, check_name, subject, severity, message, value, limit_value, \
                             user, began, cleared, last_seen, last_told";

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let severity: String = r.get(3)?;
    Ok(Event {
        id: r.get(0)?,
        check: r.get(1)?,
        subject: r.get(2)?,
        severity: severity.parse().unwrap_or(Severity::Warning),
        message: r.get(4)?,
        value: r.get(5)?,
        limit: r.get(6)?,
        user: r.get(7)?,
        began: r.get(8)?,
        cleared: r.get(9)?,
        last_seen: r.get(10)?,
        last_told: r.get(11)?,
    })
}

impl Store {
    /// Opens (creating if needed) the monitor's tables in the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let deadline = std::time::Instant::now() + crate::ledger::BUSY_TIMEOUT;
        loop {
            match Self::try_open(path) {
                Ok(conn) => {
                    return Ok(Store {
                        conn,
                        path: path.to_owned(),
                    })
                }
                Err(e) if busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(err(e)),
            }
        }
    }

    /// Opens an existing database read-only (the status page); `None` if there is none.
    pub fn open_read_only(path: &Path) -> Result<Option<Store>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError {
            path: path.to_owned(),
            source,
        })?;
        let _ = conn.busy_timeout(crate::ledger::BUSY_TIMEOUT);
        Ok(Some(Store {
            conn,
            path: path.to_owned(),
        }))
    }

    fn try_open(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(crate::ledger::BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.execute_batch(SCHEMA)?;
        Ok(conn)
    }

    pub(super) fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `f` in one immediate transaction (one monitor at a time changes events).
    pub(super) fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let out = f(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Events not cleared, critical first, then oldest first. Tables not made yet (a
    /// read-only store of a database no monitor has written) have none.
    pub fn open_events(&self) -> Result<Vec<Event>, StoreError> {
        self.events(
            "cleared IS NULL ORDER BY severity = 'critical' DESC, began, id",
            [],
        )
    }

    /// Events cleared since `since`, newest first.
    pub fn cleared_since(&self, since: f64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let lim = limit as i64;
        self.events(
            "cleared >= ?1 ORDER BY cleared DESC, id LIMIT ?2",
            params![since, lim],
        )
    }

    fn events(&self, filter: &str, p: impl rusqlite::Params) -> Result<Vec<Event>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM monitor_events WHERE {filter}");
        let mut stmt = match self.conn.prepare(&sql) {
            Ok(s) => s,
            Err(e) if no_table(&e) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let rows = stmt.query_map(p, event_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// A cursor's value.
    pub fn cursor(&self, name: &str) -> Result<Option<f64>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM monitor_cursor WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Notifications waiting, oldest first.
    pub fn outbox(&self) -> Result<Vec<Outgoing>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, target, payload, attempts FROM monitor_outbox ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Outgoing {
                    seq: r.get(0)?,
                    target: r.get(1)?,
                    payload: r.get(2)?,
                    attempts: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

pub(super) fn insert_event(tx: &Transaction<'_>, e: &Event) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO monitor_events (id, check_name, subject, severity, message, value,
         limit_value, user, began, cleared, last_seen, last_told)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        e.id,
        e.check,
        e.subject,
        e.severity.to_string(),
        e.message,
        e.value,
        e.limit,
        e.user,
        e.began,
        e.cleared,
        e.last_seen,
        e.last_told
    ])
    .map(drop)
}

pub(super) fn update_event(tx: &Transaction<'_>, e: &Event) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE monitor_events SET severity = ?3, message = ?4, value = ?5, limit_value = ?6,
         cleared = ?7, last_seen = ?8, last_told = ?9 WHERE id = ?1 AND began = ?2",
    )?
    .execute(params![
        e.id,
        e.began,
        e.severity.to_string(),
        e.message,
        e.value,
        e.limit,
        e.cleared,
        e.last_seen,
        e.last_told
    ])
    .map(drop)
}

/// Events of `tx`'s view that are open (read inside the writing transaction).
pub(super) fn open_in(tx: &Transaction<'_>) -> rusqlite::Result<Vec<Event>> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM monitor_events WHERE cleared IS NULL");
    let mut stmt = tx.prepare(&sql)?;
    let rows = stmt.query_map([], event_row)?;
    rows.collect()
}

pub(super) fn enqueue(
    tx: &Transaction<'_>,
    target: &str,
    payload: &str,
    now: f64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO monitor_outbox (target, payload, created) VALUES (?1, ?2, ?3)")?
        .execute(params![target, payload, now])
        .map(drop)
}

pub(super) fn set_cursor(tx: &Transaction<'_>, name: &str, value: f64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO monitor_cursor (name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![name, value])
    .map(drop)
}

fn busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

pub(super) fn no_table(e: &rusqlite::Error) -> bool {
    e.to_string().contains("no such table")
}
