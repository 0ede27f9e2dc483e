//! The daemon loop of `lander dispatch run` and `lander user run`: a start line, one info line
//! per pass that did something (`-v`: every pass, and each item), a shutdown line with the
//! totals; with `monitor.in_dispatch`, the monitor runs beside the scrub dispatcher.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use lander_dispatch::config::{BackendKind, Config};
use lander_dispatch::engine::{Dispatcher, PassReport};
use lander_dispatch::monitor::run::{describe, Monitor};
use lander_dispatch::stage::Stage;

/// Sums over the passes of one run.
#[derive(Debug, Default)]
struct Totals {
    passes: u64,
    submitted: usize,
    succeeded: usize,
    failed: usize,
    lost: usize,
    gave_up: usize,
}

impl Totals {
    fn add(&mut self, r: &PassReport) {
        self.passes += 1;
        self.submitted += r.submitted;
        self.succeeded += r.succeeded;
        self.failed += r.failed_attempts;
        self.lost += r.lost;
        self.gave_up += r.gave_up;
    }
}

/// Runs `engine` until `stop`, logging as described above.
pub fn run_logged<S: Stage>(
    engine: &mut Dispatcher<S>,
    config: &Config,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let name = engine.stage().name().to_owned();
    let backend = match config.backend.kind {
        BackendKind::Local => format!("local backend, {} slots", config.backend.slots),
        BackendKind::Slurm => "Slurm backend".to_owned(),
    };
    tracing::info!(
        stage = name,
        "dispatcher started: spool {}, {} sites, {backend}, queue limit {}",
        config.spool.display(),
        config.sites.len(),
        config.queue_limit
    );
    let mut totals = Totals::default();
    let result = engine.run_with(stop, Duration::from_secs(2), &mut |r| {
        totals.add(r);
        if r.did_something() {
            tracing::info!(stage = name, "pass: {}", r.summary());
        } else {
            tracing::debug!(stage = name, "pass: {}", r.summary());
        }
    });
    tracing::info!(
        stage = name,
        "dispatcher stopped after {} passes: submitted {}, succeeded {}, failed {}, lost {}, gave up {}",
        totals.passes,
        totals.submitted,
        totals.succeeded,
        totals.failed,
        totals.lost,
        totals.gave_up
    );
    Ok(result?)
}

/// Starts the monitor in a thread when `monitor.in_dispatch` is set; it stops with `stop`.
pub fn monitor_beside(
    config: &Config,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    if !config.monitor.in_dispatch {
        return Ok(None);
    }
    let mut monitor = Monitor::open(config)?;
    let stop = Arc::clone(stop);
    tracing::info!(
        "monitor started beside the dispatcher: every {}",
        lander_spool::human::duration(config.monitor.poll.as_secs_f64())
    );
    Ok(Some(std::thread::spawn(move || {
        monitor.run(&stop, |s| tracing::info!("{}", describe(s)));
    })))
}
