//! What goes to the terminal besides results: verbosity (`-q` only errors, `-v` per file or
//! item, `-vv` per batch), colour (only on a terminal, never with `NO_COLOR`) and progress (a
//! bar on a terminal for work over [`BAR_AFTER`], a plain line every [`PLAIN_EVERY`]
//! otherwise).

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicI8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// -1 quiet, 0 default, 1 `-v`, 2 `-vv` and more.
static LEVEL: AtomicI8 = AtomicI8::new(0);

/// How often a progress line is written when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Work shorter than this shows no bar (a flash of a bar is noise).
pub const BAR_AFTER: Duration = Duration::from_millis(1500);

/// Records the verbosity the command line asked for.
pub fn set_verbosity(verbose: u8, quiet: bool) {
    let level = match quiet {
        true => -1,
        false => verbose.min(2) as i8,
    };
    LEVEL.store(level, Ordering::Relaxed);
}

/// `-q`: only errors.
pub fn is_quiet() -> bool {
    LEVEL.load(Ordering::Relaxed) < 0
}

/// `-v` or more: a line per file or item.
pub fn per_item() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 1
}

/// `-vv` or more: a line per batch.
pub fn per_batch() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 2
}

/// Colour on stderr: a terminal, and `NO_COLOR` unset or empty (<https://no-color.org>).
pub fn colour_on_stderr() -> bool {
    colour_allowed(
        std::env::var_os("NO_COLOR").as_deref(),
        io::stderr().is_terminal(),
    )
}

fn colour_allowed(no_colour: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_colour.is_none_or(|v| v.is_empty())
}

/// A summary line on stderr, unless `-q`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        if !$crate::cli::output::is_quiet() {
            $crate::cli::output::line(&format!($($arg)*));
        }
    };
}

/// The bar on screen, if any, so that lines are written above it, not through it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Writes a line to stderr, above the progress bar when one is shown.
pub fn line(text: &str) {
    let bar = BAR.lock().ok().and_then(|b| b.clone());
    match bar {
        Some(bar) => bar.suspend(|| eprintln!("{text}")),
        None => eprintln!("{text}"),
    }
}

/// Progress of one long piece of work, counted in `unit`s out of an optional total.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: Option<u64>,
    terminal: bool,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// A bar on a terminal (not with `-q`) once the work has taken [`BAR_AFTER`], else plain
    /// lines every [`PLAIN_EVERY`].
    pub fn new(label: &str, total: Option<u64>) -> Self {
        let now = Instant::now();
        Progress {
            label: label.to_string(),
            total,
            terminal: io::stderr().is_terminal() && !is_quiet(),
            bar: None,
            started: now,
            last_line: now,
        }
    }

    /// `done` of the total so far, with a word on what is going on.
    pub fn set(&mut self, done: u64, message: &str) {
        if self.terminal && self.bar.is_none() && self.started.elapsed() >= BAR_AFTER {
            let shown = bar(&self.label, self.total);
            if let Ok(mut on_screen) = BAR.lock() {
                *on_screen = Some(shown.clone());
            }
            self.bar = Some(shown);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(message.to_string());
            return;
        }
        if self.terminal || is_quiet() || self.last_line.elapsed() < PLAIN_EVERY {
            return;
        }
        self.last_line = Instant::now();
        eprintln!("{}", self.line(done, message));
    }

    fn line(&self, done: u64, message: &str) -> String {
        let elapsed = lander_spool::human::duration(self.started.elapsed().as_secs_f64());
        let share = match self.total {
            Some(t) if t > 0 => format!(" {:.1}%", done as f64 * 100.0 / t as f64),
            _ => String::new(),
        };
        format!("{}:{share} {message} ({elapsed})", self.label)
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
            if let Ok(mut shown) = BAR.lock() {
                *shown = None;
            }
        }
    }
}

/// A thread that calls `tick` on its state every 200 ms until the ticker is dropped, then
/// `finish`; the drop wakes it at once, so a short run never waits out a tick.
#[derive(Debug)]
pub struct Ticker {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// Starts ticking on `state`.
    pub fn start<S: Send + 'static>(
        mut state: S,
        mut tick: impl FnMut(&mut S) + Send + 'static,
        finish: impl FnOnce(S) + Send + 'static,
    ) -> Ticker {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(200))
            {
                tick(&mut state);
            }
            finish(state);
        });
        Ticker {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Progress of work that reads `total` bytes through `read(2)` (a scrub streams its input),
/// told from what the process has read so far (`rchar` of `/proc/self/io`), so the work
/// itself needs no hook. A thread updates it until [`ReadWatch::finish`].
#[derive(Debug)]
pub struct ReadWatch {
    _ticker: Option<Ticker>,
}

impl ReadWatch {
    /// Starts watching; `total` is the size of the input, when known.
    pub fn start(label: &str, total: Option<u64>) -> ReadWatch {
        let ticker = read_chars().map(|base| {
            let tick = move |shown: &mut Progress| {
                let read = read_chars().unwrap_or(base).saturating_sub(base);
                let read = total.map_or(read, |t| read.min(t));
                shown.set(read, &format!("{} read", lander_spool::human::bytes(read)));
            };
            Ticker::start(Progress::new(label, total), tick, Progress::finish)
        });
        ReadWatch { _ticker: ticker }
    }

    /// Stops the display (as dropping it does, also on an early return with an error).
    pub fn finish(self) {}
}

/// Bytes this process has read so far.
fn read_chars() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let line = text.lines().find(|l| l.starts_with("rchar:"))?;
    line["rchar:".len()..].trim().parse().ok()
}

fn bar(label: &str, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = match total {
        Some(_) => "{prefix} [{bar:30}] {percent:>3}% {msg} ({elapsed}, eta {eta})",
        None => "{prefix} {spinner} {msg} ({elapsed})",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn a_dropped_ticker_ends_with_one_last_call() {
        let calls = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (ticked, finished) = (std::sync::Arc::clone(&calls), std::sync::Arc::clone(&calls));
        let ticker = Ticker::start(
            (),
            move |_| ticked.lock().unwrap().push(false),
            move |_| finished.lock().unwrap().push(true),
        );
        drop(ticker);
        let calls = calls.lock().unwrap();
        assert_eq!(calls.last(), Some(&true), "{calls:?}");
        assert_eq!(calls.iter().filter(|&&last| last).count(), 1, "{calls:?}");
    }

    #[test]
    fn what_the_process_reads_is_counted() {
        let before = read_chars().expect("/proc/self/io");
        let bytes = std::fs::read("/proc/self/status").unwrap();
        let after = read_chars().unwrap();
        assert!(
            after >= before + bytes.len() as u64,
            "{before} + {} > {after}",
            bytes.len()
        );
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        assert!(colour_allowed(None, true));
        assert!(colour_allowed(Some(OsStr::new("")), true));
        assert!(!colour_allowed(Some(OsStr::new("1")), true));
        assert!(!colour_allowed(None, false));
    }
}
