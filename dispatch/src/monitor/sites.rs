//! A capture site's state: the heartbeat its capture writes (`<spool>/state/capture/
//! <site>-<host>.json`, refreshed every stats period) and its raw directory.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::list_names;
use crate::layout::Spool;
use crate::sys;

use super::age_secs;

/// One capture site.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SiteStatus {
    /// The site.
    pub site: String,
    /// Host of the newest heartbeat.
    pub host: Option<String>,
    /// `running`, `finished`, `failed` (the heartbeat's), or `none` without one.
    pub state: String,
    /// Seconds since the newest heartbeat was written.
    pub heartbeat_age_secs: Option<f64>,
    /// Packets per second over the capture's last period (0 unless running).
    pub pps: f64,
    /// Bits per second on the wire over the last period (0 unless running).
    pub bps: f64,
    /// Packets captured by the run.
    pub packets: u64,
    /// Packets lost by the run: kernel, interface, ring and in-record drops.
    pub drops: u64,
    /// `drops / (packets + drops)`.
    pub drop_fraction: f64,
    /// File being written.
    pub current_file: Option<String>,
    /// Newest finished file: in `raw/`, else the newest scrubbed one.
    pub last_file: Option<String>,
    /// Raw files waiting in `raw/`.
    pub raw_files: usize,
    /// Seconds since the last sign of life: a heartbeat, a raw file, a change of `raw/`.
    pub quiet_secs: f64,
    /// A heartbeat that could not be read, with why.
    pub heartbeat_error: Option<String>,
}

/// The part of the capture's run record the monitor reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Heartbeat {
    /// Host running the capture.
    pub host: String,
    /// Capture site.
    pub site: String,
    /// `running`, `finished` or `failed`.
    pub state: String,
    /// Time of this record, ns since the epoch.
    pub updated_ns: u64,
    /// Packets per second over the last period.
    pub pps: f64,
    /// Bits per second over the last period.
    pub bps: f64,
    /// Counters so far.
    pub counters: Counters,
}

/// Counters of a heartbeat.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Packets captured.
    pub packets: u64,
    /// Kernel drops.
    pub kernel_drops: Option<u64>,
    /// Interface drops.
    pub interface_drops: Option<u64>,
    /// Ring drops.
    pub ring_drops: u64,
    /// In-record drops.
    pub source_drops: u64,
    /// File being written.
    pub current_file: Option<String>,
}

impl Counters {
    fn drops(&self) -> u64 {
        self.kernel_drops.unwrap_or(0)
            + self.interface_drops.unwrap_or(0)
            + self.ring_drops
            + self.source_drops
    }
}

/// The directory of capture heartbeats.
pub fn heartbeat_dir(spool: &Spool) -> PathBuf {
    spool.root().join("state").join("capture")
}

/// The newest heartbeat of `site` (over all hosts), or the reason none could be read.
fn newest_heartbeat(spool: &Spool, site: &str) -> (Option<Heartbeat>, Option<String>) {
    let dir = heartbeat_dir(spool);
    let Ok(names) = list_names(&dir) else {
        return (None, None);
    };
    let prefix = format!("{site}-");
    let mut best: Option<Heartbeat> = None;
    let mut error = None;
    for name in names
        .iter()
        .filter(|n| n.starts_with(&prefix) && n.ends_with(".json"))
    {
        match read_heartbeat(&dir.join(name)) {
            Ok(hb) if hb.site == site => {
                if best.as_ref().is_none_or(|b| hb.updated_ns > b.updated_ns) {
                    best = Some(hb);
                }
            }
            Ok(_) => {}
            Err(e) => error = Some(e),
        }
    }
    (best, error)
}

fn read_heartbeat(path: &Path) -> Result<Heartbeat, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() || meta.len() > 1 << 20 {
        return Err(format!("{}: not a small regular file", path.display()));
    }
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The newest trace file (by modification time) in `dir`.
fn newest_trace(dir: &Path) -> Option<String> {
    list_names(dir)
        .ok()?
        .into_iter()
        .filter(|n| !n.ends_with(".json"))
        .map(|n| (age_secs(&dir.join(&n)), n))
        .min_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
        .map(|(_, n)| n)
}

/// The site's state, and its raw trace files as `(path, "<site>/<name>")`.
pub(super) fn site_status(
    spool: &Spool,
    site: &str,
) -> io::Result<(SiteStatus, Vec<(PathBuf, String)>)> {
    let raw = spool.raw(site);
    let names = list_names(&raw)?;
    let mut traces: Vec<(f64, String)> = names
        .into_iter()
        .filter(|n| !n.ends_with(".json"))
        .map(|n| (age_secs(&raw.join(&n)), n))
        .collect();
    traces.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    let (hb, heartbeat_error) = newest_heartbeat(spool, site);
    let mut s = SiteStatus {
        site: site.to_owned(),
        state: "none".into(),
        raw_files: traces.len(),
        last_file: traces
            .first()
            .map(|t| t.1.clone())
            .or_else(|| newest_trace(&spool.scrubbed(site))),
        heartbeat_error,
        ..Default::default()
    };
    let mut quiet = traces.first().map_or(f64::INFINITY, |t| t.0);
    if raw.exists() {
        quiet = quiet.min(age_secs(&raw));
    }
    if let Some(hb) = hb {
        let age = (sys::now() - hb.updated_ns as f64 / 1e9).max(0.0);
        quiet = quiet.min(age);
        let running = hb.state == "running";
        s.host = Some(hb.host);
        s.state = hb.state;
        s.heartbeat_age_secs = Some(age);
        s.pps = if running { hb.pps } else { 0.0 };
        s.bps = if running { hb.bps } else { 0.0 };
        s.packets = hb.counters.packets;
        s.drops = hb.counters.drops();
        let seen = s.packets.saturating_add(s.drops);
        s.drop_fraction = if seen == 0 {
            0.0
        } else {
            s.drops as f64 / seen as f64
        };
        s.current_file = hb.counters.current_file.filter(|_| running);
    }
    s.quiet_secs = quiet;
    let items = traces
        .into_iter()
        .map(|(_, n)| (raw.join(&n), format!("{site}/{n}")))
        .collect();
    Ok((s, items))
}
