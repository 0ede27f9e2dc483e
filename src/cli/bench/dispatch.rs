//! `lander bench dispatch`: many small raw files through scrub, fan-out to two users and a
//! trivial processor on the local backend.
//!
//! Bookkeeping is the time the dispatchers spend inside their passes: listing and reading
//! claims, claiming, writing specs, submitting, reading start markers and run records, checking
//! and publishing results, linking into users' directories, the history database. It excludes
//! the time between passes, spent waiting for jobs to end. It is reported as wall time inside
//! passes (which on a loaded machine includes waiting for a CPU) and as CPU time of the
//! dispatcher's thread inside passes, per raw file, beside the load average.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use lander_dispatch::config::Config;
use lander_dispatch::control;
use lander_dispatch::engine::PassReport;

use crate::cli::common::{lean_job_program, wrapper_argv};

/// Arguments of `lander bench dispatch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Numbers of raw files, comma-separated: one run each (e.g. `1000,10000`).
    #[arg(long, default_value = "1000", value_delimiter = ',')]
    files: Vec<usize>,
    /// Jobs at once (default: number of CPUs).
    #[arg(long)]
    slots: Option<usize>,
    /// Directory for the spool and database (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// The figures of one run.
#[derive(Debug, serde::Serialize)]
struct Figures {
    files: usize,
    slots: usize,
    wall_secs: f64,
    scrub_bookkeeping_secs: f64,
    users_bookkeeping_secs: f64,
    /// Wall time inside passes, per file.
    bookkeeping_ms_per_file: f64,
    /// CPU time of the dispatcher threads inside passes, per file.
    bookkeeping_cpu_ms_per_file: f64,
    /// CPU time of the whole dispatcher process (passes and waiting), per file.
    dispatcher_cpu_ms_per_file: f64,
    wall_ms_per_file: f64,
    load_before: f64,
    load_after: f64,
}

/// The report: one run per size and, for two sizes or more, how time grew with files.
#[derive(Debug, serde::Serialize)]
struct Report {
    definition: &'static str,
    runs: Vec<Figures>,
    /// Per pair of consecutive sizes: (files ratio, bookkeeping ratio, wall ratio).
    scaling: Vec<Scaling>,
}

#[derive(Debug, serde::Serialize)]
struct Scaling {
    from_files: usize,
    to_files: usize,
    files_ratio: f64,
    bookkeeping_ratio: f64,
    bookkeeping_cpu_ratio: f64,
    wall_ratio: f64,
}

const DEFINITION: &str = "bookkeeping = time the dispatchers spend inside their passes \
(claims, specs, submission, markers, run records, checks, publication, links, history), \
excluding the waits for jobs between passes; wall = elapsed, cpu = the dispatcher thread's CPU";

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (100 ticks/s).
fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_ascii_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Runs `lander bench dispatch`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let slots = args
        .slots
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut runs = Vec::new();
    let mut dirs = Vec::new();
    // Spools are removed after the last run: mass deletion right before a run would slow the
    // run's file creation (ext4 without a journal skips recently freed inodes when allocating).
    let result = (|| {
        for &files in &args.files {
            let dir = bench_dir(args.dir.as_deref(), files)?;
            dirs.push(dir.clone());
            let fig = run_once(&dir, files, slots)?;
            if !args.json {
                print_run(&fig);
            }
            runs.push(fig);
        }
        anyhow::Ok(())
    })();
    if args.dir.is_none() {
        for dir in &dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    result?;
    let scaling = runs.windows(2).map(|w| scaling(&w[0], &w[1])).collect();
    let report = Report {
        definition: DEFINITION,
        runs,
        scaling,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

fn run_once(dir: &Path, files: usize, slots: usize) -> anyhow::Result<Figures> {
    let config = bench_config(dir, slots)?;
    make_raw(&config.spool.join("raw/bench"), files)?;
    let load_before = load_average();
    let t0 = Instant::now();
    let cpu0 = own_cpu();
    let scrub = {
        let mut engine = control::scrub_engine(&config, wrapper_argv()?, PathBuf::new())?;
        engine.drain(usize::MAX)?
    };
    let mut users = PassReport::default();
    for user in ["alice", "bob"] {
        let mut engine = control::user_engine(&config, user, wrapper_argv()?)?;
        let r = engine.drain(usize::MAX)?;
        users.busy += r.busy;
        users.cpu += r.cpu;
    }
    let wall = t0.elapsed();
    let cpu = own_cpu().saturating_sub(cpu0);
    check(&config, files, &scrub)?;
    let n = files.max(1) as f64;
    Ok(Figures {
        files,
        slots,
        wall_secs: wall.as_secs_f64(),
        scrub_bookkeeping_secs: scrub.busy.as_secs_f64(),
        users_bookkeeping_secs: users.busy.as_secs_f64(),
        bookkeeping_ms_per_file: (scrub.busy + users.busy).as_secs_f64() * 1e3 / n,
        bookkeeping_cpu_ms_per_file: (scrub.cpu + users.cpu).as_secs_f64() * 1e3 / n,
        dispatcher_cpu_ms_per_file: cpu.as_secs_f64() * 1e3 / n,
        wall_ms_per_file: wall.as_secs_f64() * 1e3 / n,
        load_before,
        load_after: load_average(),
    })
}

fn scaling(a: &Figures, b: &Figures) -> Scaling {
    let busy = |f: &Figures| f.scrub_bookkeeping_secs + f.users_bookkeeping_secs;
    let cpu = |f: &Figures| f.bookkeeping_cpu_ms_per_file * f.files as f64;
    Scaling {
        from_files: a.files,
        to_files: b.files,
        files_ratio: b.files as f64 / a.files.max(1) as f64,
        bookkeeping_ratio: busy(b) / busy(a),
        bookkeeping_cpu_ratio: cpu(b) / cpu(a),
        wall_ratio: b.wall_secs / a.wall_secs,
    }
}

fn print_run(f: &Figures) {
    println!(
        "files {}  slots {}  wall {:.2} s ({:.2} ms/file)  bookkeeping: scrub {:.2} s + users {:.2} s = {:.3} ms/file wall, {:.3} ms/file CPU  dispatcher process CPU {:.3} ms/file  load {:.2} -> {:.2}",
        f.files, f.slots, f.wall_secs, f.wall_ms_per_file, f.scrub_bookkeeping_secs,
        f.users_bookkeeping_secs, f.bookkeeping_ms_per_file, f.bookkeeping_cpu_ms_per_file,
        f.dispatcher_cpu_ms_per_file, f.load_before, f.load_after
    );
}

fn print_summary(r: &Report) {
    println!("({})", r.definition);
    for s in &r.scaling {
        println!(
            "{} -> {} files ({:.1}x): bookkeeping {:.2}x (CPU {:.2}x), wall {:.2}x",
            s.from_files,
            s.to_files,
            s.files_ratio,
            s.bookkeeping_ratio,
            s.bookkeeping_cpu_ratio,
            s.wall_ratio
        );
    }
}

fn bench_dir(dir: Option<&Path>, files: usize) -> anyhow::Result<PathBuf> {
    let path = match dir {
        Some(d) => d.join(files.to_string()),
        None => std::env::temp_dir().join(format!(
            "lander-bench-dispatch-{}-{files}",
            std::process::id()
        )),
    };
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path)
}

/// The stand-in scrub job: `lander-job copy` beside this executable when there is one (it
/// starts fast), else `lander dispatch copy-job`.
fn copy_command() -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    Ok(match lean_job_program()? {
        Some(lean) => format!("[{lean:?}, \"copy\"]"),
        None => format!("[{exe:?}, \"dispatch\", \"copy-job\"]"),
    })
}

fn bench_config(dir: &Path, slots: usize) -> anyhow::Result<Config> {
    let text = format!(
        "spool = {:?}\nstate_db = {:?}\nsites = [\"bench\"]\nfsync = false\n\
         [scrub]\ncommand = {}\nargs = [\"{{in}}\", \"{{out}}\"]\n\
         [backend]\nslots = {slots}\n[queue]\nlimit = {}\n[monitor]\nrescan_secs = 5\n\
         [users.alice]\nsubscriptions = [\"bench\"]\nprocessor = [\"/bin/true\"]\non_success = \"remove\"\n\
         [users.bob]\nsubscriptions = [\"bench\"]\nprocessor = [\"/bin/true\"]\n",
        dir.join("spool"),
        dir.join("state/dispatch.sqlite"),
        copy_command()?,
        slots * 2,
    );
    Ok(Config::parse(&dir.join("bench.toml"), &text)?)
}

fn make_raw(dir: &Path, files: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for i in 0..files {
        let name = format!("bench-20240101-{:06}-{i}.pcap", i % 240_000);
        let manifest = format!("{{\"packets\": 1, \"bytes\": {}}}\n", 60 + i % 7);
        std::fs::write(dir.join(format!("{name}.json")), manifest)?;
        std::fs::write(dir.join(&name), format!("small trace {i}\n"))?;
    }
    Ok(())
}

fn check(config: &Config, files: usize, scrub: &PassReport) -> anyhow::Result<()> {
    let count = |p: PathBuf| std::fs::read_dir(p).map_or(0, |d| d.count());
    let scrubbed = count(config.spool.join("scrubbed/bench")) - 1; // minus .work
    let bob_done = count(config.spool.join("users/bob/done"));
    anyhow::ensure!(
        scrubbed == 2 * files,
        "{scrubbed} scrubbed files and manifests, expected {}",
        2 * files
    );
    anyhow::ensure!(
        bob_done == 2 * files,
        "{bob_done} files in bob's done/, expected {}",
        2 * files
    );
    anyhow::ensure!(
        scrub.failed_items == 0,
        "{} files failed",
        scrub.failed_items
    );
    Ok(())
}
