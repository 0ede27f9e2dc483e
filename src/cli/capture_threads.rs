//! `lander-capture -i IF --threads N`: N sockets in one `PACKET_FANOUT` group, each read by
//! its own thread into its own ring and written by its own writer, into the same directory.
//! One sequence-number allocator serves them all, so every file keeps the spool's name
//! (`<site>-<date>-<time>-<seq>`) and no number is given twice; the files are not merged.
//! Only the first thread writes the run record (the monitor's heartbeat).

use std::sync::atomic::Ordering::Relaxed;

use anyhow::Context;
use lander_capture::engine::source::fanout::FanoutSource;
use lander_capture::engine::stats::Snapshot;
use lander_capture::engine::{self, CaptureSummary, Control, EngineConfig};

/// Captures from the sockets of one fanout group (see
/// [`open_group`](lander_capture::engine::source::fanout::open_group)); one summary for all.
pub fn capture(
    sources: Vec<FanoutSource>,
    config: &EngineConfig,
    control: &Control,
) -> anyhow::Result<CaptureSummary> {
    let seqs = engine::open_seqs(config)?;
    let summaries = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .into_iter()
            .enumerate()
            .map(|(i, mut source)| {
                let mut config = config.clone();
                if i > 0 {
                    config.state_dir = None;
                }
                let seqs = seqs.clone();
                std::thread::Builder::new()
                    .name(format!("lander-capture-{i}"))
                    .spawn_scoped(scope, move || {
                        let run = engine::run_with_seqs(&config, &mut source, control, seqs);
                        if run.as_ref().map_or(true, |s| s.error.is_some()) {
                            // The others stop too, publishing what they read.
                            control.stop.store(true, Relaxed);
                        }
                        run
                    })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.context("cannot start a capture thread")?
                    .join()
                    .map_err(|_| anyhow::anyhow!("a capture thread panicked"))?
                    .map_err(anyhow::Error::from)
            })
            .collect::<anyhow::Result<Vec<CaptureSummary>>>()
    });
    Ok(merge(summaries?))
}

/// One summary for the threads: counters added, files in name order, the longest run.
fn merge(summaries: Vec<CaptureSummary>) -> CaptureSummary {
    let mut it = summaries.into_iter();
    let mut all = it.next().expect("at least one thread");
    for s in it {
        add(&mut all.counters, &s.counters);
        all.files.extend(s.files);
        all.elapsed_secs = all.elapsed_secs.max(s.elapsed_secs);
        all.error = all.error.or(s.error);
    }
    all.files.sort_by(|a, b| a.path.cmp(&b.path));
    all.counters.files = all.files.len() as u64;
    all.counters.current_file = None;
    let secs = all.elapsed_secs.max(1e-9);
    all.pps = all.counters.packets as f64 / secs;
    all.bps = all.counters.wire_bytes as f64 * 8.0 / secs;
    all
}

fn add(a: &mut Snapshot, b: &Snapshot) {
    let sum = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0) + y.unwrap_or(0)),
    };
    a.packets += b.packets;
    a.bytes += b.bytes;
    a.wire_bytes += b.wire_bytes;
    a.kernel_drops = sum(a.kernel_drops, b.kernel_drops);
    a.interface_drops = sum(a.interface_drops, b.interface_drops);
    a.ring_drops += b.ring_drops;
    a.source_drops += b.source_drops;
    a.file_bytes += b.file_bytes;
}
