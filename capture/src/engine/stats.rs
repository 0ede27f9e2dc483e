//! Counters shared by the source, the writer and the reporter; the run record and summary.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Counters updated by the engine threads (in batches, not per packet) and read by the
/// reporter.
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets taken from the source and put in the ring.
    pub packets: AtomicU64,
    /// Captured bytes of those packets.
    pub bytes: AtomicU64,
    /// Bytes on the wire of those packets.
    pub wire_bytes: AtomicU64,
    /// Kernel drops reported by the source so far.
    pub kernel_drops: AtomicU64,
    /// Whether the source reports kernel drops at all.
    pub kernel_drops_known: AtomicBool,
    /// Interface drops reported by the source so far.
    pub interface_drops: AtomicU64,
    /// Packets dropped for want of a free buffer.
    pub ring_drops: AtomicU64,
    /// Losses reported inside the records (ERF `lctr`).
    pub source_drops: AtomicU64,
    /// Files published.
    pub files: AtomicU64,
    /// Bytes written to trace files.
    pub file_bytes: AtomicU64,
    /// Name of the file being written.
    pub current_file: Mutex<Option<String>>,
}

impl Counters {
    /// A consistent-enough copy for a log line or run record.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            wire_bytes: self.wire_bytes.load(Relaxed),
            kernel_drops: self
                .kernel_drops_known
                .load(Relaxed)
                .then(|| self.kernel_drops.load(Relaxed)),
            interface_drops: self
                .kernel_drops_known
                .load(Relaxed)
                .then(|| self.interface_drops.load(Relaxed)),
            ring_drops: self.ring_drops.load(Relaxed),
            source_drops: self.source_drops.load(Relaxed),
            files: self.files.load(Relaxed),
            file_bytes: self.file_bytes.load(Relaxed),
            current_file: self.current_file.lock().map_or(None, |g| g.clone()),
        }
    }

    /// Names the file being written (or none).
    pub fn set_current(&self, name: Option<String>) {
        if let Ok(mut g) = self.current_file.lock() {
            *g = name;
        }
    }
}

/// The counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Packets captured.
    pub packets: u64,
    /// Captured bytes.
    pub bytes: u64,
    /// Bytes on the wire.
    pub wire_bytes: u64,
    /// Kernel drops, when the source reports them.
    pub kernel_drops: Option<u64>,
    /// Interface drops, when the source reports them.
    pub interface_drops: Option<u64>,
    /// Ring drops.
    pub ring_drops: u64,
    /// Losses reported by the source in its records.
    pub source_drops: u64,
    /// Files published.
    pub files: u64,
    /// Bytes written to trace files.
    pub file_bytes: u64,
    /// File being written.
    pub current_file: Option<String>,
}

/// The heartbeat and final record of one capture run, for the monitor and status page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always `capture`.
    pub kind: String,
    /// Host running the capture.
    pub host: String,
    /// Capture site.
    pub site: String,
    /// Process id.
    pub pid: u32,
    /// Source description (interface, file, stream).
    pub source: String,
    /// `running`, `finished` or `failed`.
    pub state: String,
    /// Start of the run, ns since the epoch.
    pub started_ns: u64,
    /// Time of this record, ns since the epoch.
    pub updated_ns: u64,
    /// Packets per second over the last period.
    pub pps: f64,
    /// Bits per second (on the wire) over the last period.
    pub bps: f64,
    /// Counters so far.
    pub counters: Snapshot,
    /// The error that ended the run, if one did.
    pub error: Option<String>,
}

/// Where the run record of `site` on `host` lives under a state directory.
pub fn run_record_path(state_dir: &Path, site: &str, host: &str) -> PathBuf {
    state_dir
        .join("capture")
        .join(format!("{site}-{host}.json"))
}

/// Writes the run record atomically (creating its directory).
pub fn write_run_record(state_dir: &Path, record: &RunRecord) -> std::io::Result<()> {
    let path = run_record_path(state_dir, &record.site, &record.host);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    json.push(b'\n');
    lander_spool::publish::write_atomic(&path, &json, false)
}

/// Rates between two snapshots `secs` apart: (packets/s, bits/s on the wire).
pub fn rates(before: &Snapshot, after: &Snapshot, secs: f64) -> (f64, f64) {
    if secs <= 0.0 {
        return (0.0, 0.0);
    }
    let p = after.packets.saturating_sub(before.packets) as f64 / secs;
    let b = after.wire_bytes.saturating_sub(before.wire_bytes) as f64 * 8.0 / secs;
    (p, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_a_period() {
        let a = Snapshot::default();
        let b = Snapshot {
            packets: 1000,
            wire_bytes: 64_000,
            ..Snapshot::default()
        };
        assert_eq!(rates(&a, &b, 2.0), (500.0, 256_000.0));
        assert_eq!(rates(&a, &b, 0.0), (0.0, 0.0));
    }

    #[test]
    fn kernel_drops_unknown_until_a_source_reports_them() {
        let c = Counters::default();
        c.kernel_drops.store(5, Relaxed);
        assert_eq!(c.snapshot().kernel_drops, None);
        c.kernel_drops_known.store(true, Relaxed);
        assert_eq!(c.snapshot().kernel_drops, Some(5));
    }
}
