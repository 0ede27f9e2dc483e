//! `lander bench dispatch`: many small raw files through scrub, fan-out to two users and a
//! trivial processor on the local backend; reports the dispatcher's own time per file
//! (bookkeeping: claims, specs, records, history, publication, links; not the jobs' run time).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use lander_dispatch::config::Config;
use lander_dispatch::control;
use lander_dispatch::engine::PassReport;

use crate::cli::dispatch::wrapper_argv;

/// Arguments of `lander bench dispatch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of raw files.
    #[arg(long, default_value_t = 1000)]
    files: usize,
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
    bookkeeping_ms_per_file: f64,
    dispatcher_cpu_ms_per_file: f64,
    wall_ms_per_file: f64,
}

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

/// Runs `lander bench dispatch`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let tmp = tempfile_dir(args.dir.as_deref())?;
    let slots = args
        .slots
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = bench_config(&tmp, slots)?;
    make_raw(&config.spool.join("raw/bench"), args.files)?;
    let t0 = Instant::now();
    let cpu0 = own_cpu();
    let scrub = {
        let mut engine = control::scrub_engine(&config, wrapper_argv()?, PathBuf::new())?;
        engine.drain(usize::MAX)?
    };
    let mut users = Duration::ZERO;
    for user in ["alice", "bob"] {
        let mut engine = control::user_engine(&config, user, wrapper_argv()?)?;
        users += engine.drain(usize::MAX)?.busy;
    }
    let wall = t0.elapsed();
    let cpu = own_cpu().saturating_sub(cpu0);
    check(&config, args.files, &scrub)?;
    let n = args.files.max(1) as f64;
    let fig = Figures {
        files: args.files,
        slots,
        wall_secs: wall.as_secs_f64(),
        scrub_bookkeeping_secs: scrub.busy.as_secs_f64(),
        users_bookkeeping_secs: users.as_secs_f64(),
        bookkeeping_ms_per_file: (scrub.busy + users).as_secs_f64() * 1e3 / n,
        dispatcher_cpu_ms_per_file: cpu.as_secs_f64() * 1e3 / n,
        wall_ms_per_file: wall.as_secs_f64() * 1e3 / n,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&fig)?);
    } else {
        println!(
            "files {}  slots {}  wall {:.2} s ({:.2} ms/file)  bookkeeping: scrub {:.2} s + users {:.2} s = {:.3} ms/file  dispatcher CPU {:.3} ms/file",
            fig.files, fig.slots, fig.wall_secs, fig.wall_ms_per_file, fig.scrub_bookkeeping_secs,
            fig.users_bookkeeping_secs, fig.bookkeeping_ms_per_file, fig.dispatcher_cpu_ms_per_file
        );
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

fn tempfile_dir(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match dir {
        Some(d) => d.to_owned(),
        None => std::env::temp_dir().join(format!("lander-bench-dispatch-{}", std::process::id())),
    };
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path)
}

fn bench_config(dir: &Path, slots: usize) -> anyhow::Result<Config> {
    let exe = std::env::current_exe()?;
    let text = format!(
        "spool = {:?}\nstate_db = {:?}\nsites = [\"bench\"]\nfsync = false\n\
         [scrub]\ncommand = [{:?}, \"dispatch\", \"copy-job\"]\nargs = [\"{{in}}\", \"{{out}}\"]\n\
         [backend]\nslots = {slots}\n[queue]\nlimit = {}\n[monitor]\nrescan_secs = 5\n\
         [users.alice]\nsubscriptions = [\"bench\"]\nprocessor = [\"/bin/true\"]\non_success = \"remove\"\n\
         [users.bob]\nsubscriptions = [\"bench\"]\nprocessor = [\"/bin/true\"]\n",
        dir.join("spool"),
        dir.join("state/dispatch.sqlite"),
        exe,
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
