//! Notifications: each `[[notify]]` command gets one JSON message on standard input per
//! change. Messages wait in the outbox until delivered: a command that fails or times out is
//! tried again next pass (up to [`MAX_ATTEMPTS`]), one over its hourly limit waits its turn,
//! and two monitors at once deliver each message once (a row is claimed before it runs).

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::params;
use serde::Serialize;
use serde_json::json;

use crate::config::{Config, Notify, NotifyKind};
use lander_spool::human;

use super::events::{Change, Transition};
use super::store::{Store, StoreError};

/// Delivery attempts of one message before it is dropped (with an error in the log).
pub const MAX_ATTEMPTS: u32 = 10;

/// The outbox key of a command: a digest of its user and argv, so a message stays with the
/// command it was made for even when `[[notify]]` tables are reordered.
pub fn key(n: &Notify) -> String {
    let mut h = blake3::Hasher::new();
    h.update(n.user.as_deref().unwrap_or("").as_bytes());
    for a in &n.command {
        h.update(b"\0");
        h.update(a.as_bytes());
    }
    h.finalize().to_hex()[..16].to_owned()
}

/// Keys of the commands told of `kind` concerning `user`: operators' commands (no `user`)
/// for problems, the user's own commands for everything of theirs.
pub fn targets(config: &Config, kind: NotifyKind, user: Option<&str>) -> Vec<String> {
    config
        .notify
        .iter()
        .filter(|n| n.kinds.contains(&kind))
        .filter(|n| match &n.user {
            None => kind == NotifyKind::Problem,
            Some(u) => Some(u.as_str()) == user,
        })
        .map(key)
        .collect()
}

fn envelope(kind: &str, summary: String, text: String, now: f64) -> serde_json::Value {
    json!({
        "kind": kind,
        "time": now,
        "time_iso": human::iso8601(now as i64),
        "host": crate::sys::hostname(),
        "summary": summary,
        "text": text,
    })
}

/// The message of a problem's change.
pub fn problem_payload(c: &Change, now: f64) -> String {
    let e = &c.event;
    let what = match c.transition {
        Transition::Began => "began",
        Transition::Cleared => "cleared",
        Transition::Reminder => "still open",
    };
    let summary = format!("[LANDER] {} {what}: {}", e.severity, e.message);
    let mut text = format!(
        "{}\n\nproblem: {}\nseverity: {}\nbegan: {} ({})\n",
        e.message,
        e.id,
        e.severity,
        human::iso8601(e.began as i64),
        human::ago(e.began as i64, now as i64)
    );
    if let Some(t) = e.cleared {
        text += &format!(
            "cleared: {} after {}\n",
            human::iso8601(t as i64),
            human::duration(t - e.began)
        );
    }
    text += "\nSee `lander status` for the whole picture.\n";
    let mut v = envelope("problem", summary, text, now);
    v["transition"] = json!(c.transition);
    v["event"] = json!(e);
    v.to_string()
}

/// What a pass of delivery did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delivery {
    /// Messages delivered.
    pub sent: usize,
    /// Messages whose command failed (tried again next pass).
    pub failed: usize,
    /// Messages held back by the hourly limit.
    pub held: usize,
    /// Messages dropped: their command is no longer configured, or failed too often.
    pub dropped: usize,
}

/// Delivers what the outbox holds.
pub fn deliver(config: &Config, store: &mut Store, now: f64) -> Result<Delivery, StoreError> {
    let mut d = Delivery::default();
    let timeout = config.monitor.notify_timeout;
    let hour_ago = now - 3600.0;
    store.write(|tx| tx.execute("DELETE FROM monitor_sent WHERE time < ?1", [hour_ago]))?;
    for msg in store.outbox()? {
        let Some(cmd) = config.notify.iter().find(|n| key(n) == msg.target) else {
            tracing::warn!(
                target = msg.target,
                "notification for a command no longer configured: dropped"
            );
            store.write(|tx| tx.execute("DELETE FROM monitor_outbox WHERE seq = ?1", [msg.seq]))?;
            d.dropped += 1;
            continue;
        };
        let sent: u32 = store
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM monitor_sent WHERE target = ?1 AND time >= ?2",
                params![msg.target, hour_ago],
                |r| r.get(0),
            )
            .map_err(|e| store.err(e))?;
        if sent >= config.monitor.max_per_hour {
            d.held += 1;
            continue;
        }
        let stale = now - 2.0 * timeout.as_secs_f64();
        let claimed = store.write(|tx| {
            tx.execute(
                "UPDATE monitor_outbox SET claimed_at = ?2, attempts = attempts + 1
                 WHERE seq = ?1 AND (claimed_at IS NULL OR claimed_at < ?3)",
                params![msg.seq, now, stale],
            )
        })?;
        if claimed == 0 {
            continue; // another monitor has it
        }
        match run(&cmd.command, &msg.payload, timeout) {
            Ok(()) => {
                store.write(|tx| {
                    tx.execute("DELETE FROM monitor_outbox WHERE seq = ?1", [msg.seq])?;
                    tx.execute(
                        "INSERT INTO monitor_sent (target, time) VALUES (?1, ?2)",
                        params![msg.target, now],
                    )
                })?;
                d.sent += 1;
            }
            Err(why) if msg.attempts + 1 >= MAX_ATTEMPTS => {
                tracing::error!(command = ?cmd.command, "notification dropped after {} attempts: {why}", msg.attempts + 1);
                store.write(|tx| {
                    tx.execute("DELETE FROM monitor_outbox WHERE seq = ?1", [msg.seq])
                })?;
                d.dropped += 1;
            }
            Err(why) => {
                tracing::warn!(command = ?cmd.command, "notification failed (tried again next pass): {why}");
                store.write(|tx| {
                    tx.execute(
                        "UPDATE monitor_outbox SET claimed_at = NULL WHERE seq = ?1",
                        [msg.seq],
                    )
                })?;
                d.failed += 1;
            }
        }
    }
    Ok(d)
}

/// Runs `argv` with `payload` on standard input; an error says why it did not succeed.
pub fn run(argv: &[String], payload: &str, timeout: Duration) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let mut stdin = child.stdin.take();
    let body = payload.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(mut s) = stdin.take() {
            let _ = s.write_all(&body);
        }
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = writer.join();
                return Err(format!(
                    "{program}: still running after {}: killed",
                    human::duration(timeout.as_secs_f64())
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{program}: {e}")),
        }
    };
    let _ = writer.join();
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program}: {status}"))
    }
}
