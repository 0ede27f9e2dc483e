//! `lander demo`: the whole pipeline in a temporary spool, with no configuration, no hardware
//! and no network.
//!
//! 1. `lander gen` writes a syn-flood and a mixed trace;
//! 2. `lander-capture --read` replays each into a site's raw directory (rotated, published);
//! 3. `lander dispatch` runs one `lander-scrub` job per raw file on the local backend and
//!    hard-links each scrubbed file into the incoming directory of every subscribed user;
//! 4. `lander user` runs each user's processor (here: `lander info --json`) per file;
//! 5. the monitor makes one pass and the status page is written beside the spool;
//! 6. a summary says what went where, with packets and packets/s per stage, and ends with the
//!    path of the page (`--serve ADDR` then serves it until Ctrl-C).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use lander_dispatch::config::Config;
use lander_dispatch::control;
use lander_dispatch::monitor::run::Monitor;
use lander_dispatch::status::html::Refresh;
use lander_dispatch::status::serve::StatusServer;
use lander_spool::manifest::{is_manifest_name, Manifest};
use lander_spool::publish::is_temp_name;
use lander_spool::synth::write_trace;
use lander_trace::synth::Profile;
use lander_trace::Format;

use super::common::JsonArg;

/// Arguments of `lander demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the demo spool (must not exist yet); default: a new temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Packets in the syn-flood trace (the mixed trace gets a quarter of this).
    #[arg(long, default_value_t = 200_000)]
    pub packets: u64,
    /// Packets per rotated raw file.
    #[arg(long, default_value_t = 25_000)]
    pub rotate_packets: u64,
    #[command(flatten)]
    pub json: JsonArg,
    /// Then serve the status page on ADDR (default 127.0.0.1:8080) until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub serve: Option<String>,
}

/// One line of the summary.
#[derive(Debug, serde::Serialize)]
struct StageRow {
    stage: String,
    files: usize,
    packets: u64,
    seconds: f64,
    packets_per_second: f64,
}

impl StageRow {
    fn new(stage: &str, files: usize, packets: u64, elapsed: Duration) -> StageRow {
        let seconds = elapsed.as_secs_f64();
        StageRow {
            stage: stage.to_string(),
            files,
            packets,
            seconds,
            packets_per_second: packets as f64 / seconds.max(1e-9),
        }
    }
}

/// What the demo did, for `--json`.
#[derive(Debug, serde::Serialize)]
struct Report {
    dir: PathBuf,
    config: PathBuf,
    stages: Vec<StageRow>,
    protocols: BTreeMap<String, BTreeMap<String, u64>>,
    /// Problems the monitor found open.
    problems: Vec<String>,
    /// The status page.
    status_page: PathBuf,
}

/// The demo's two capture sites: which traffic each sees.
const SITES: [(&str, Profile); 2] = [("border", Profile::SynFlood), ("campus", Profile::Mixed)];

/// Runs `lander demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.dir {
        super::common::no_stdio(dir, "--dir", "the demo's spool is a directory")?;
    }
    let dir = demo_dir(args.dir.as_deref())?;
    let tools = Tools::beside_current_exe()?;
    let mut stages = Vec::new();

    let inputs = generate(&dir, args.packets, &mut stages)?;
    capture(&tools, &dir, &inputs, args.rotate_packets, &mut stages)?;
    let key = dir.join("key");
    tools.run(&["keygen", "--mapping", "cryptopan", "--out"], &[&key])?;
    let config_path = write_config(&dir, &key, &tools)?;
    let config = Config::load(&config_path)?;
    scrub(&tools, &config, &mut stages)?;
    let mut protocols = BTreeMap::new();
    for user in config.users.keys() {
        protocols.insert(user.clone(), process(&tools, &config, user, &mut stages)?);
    }
    let (problems, status_page) = monitor_and_page(&config, &dir)?;
    let report = Report {
        dir,
        config: config_path,
        stages,
        protocols,
        problems,
        status_page,
    };
    if args.json.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if let Some(addr) = &args.serve {
        let server = StatusServer::bind(&config, addr)?;
        let at = server.local_addr().map_or(addr.clone(), |a| a.to_string());
        eprintln!("serving the status page on http://{at}/ until Ctrl-C");
        let stop = super::common::stop_flag()?;
        server.run(&stop);
    }
    Ok(())
}

/// One monitor pass (events, history) and the status page as a static file.
fn monitor_and_page(config: &Config, dir: &Path) -> anyhow::Result<(Vec<String>, PathBuf)> {
    let pass = Monitor::open(config)?.once()?;
    let page = lander_dispatch::status::build(config)?;
    let path = dir.join("status.html");
    let html = lander_dispatch::status::html::render(&page, Refresh::Meta(60));
    lander_spool::publish::write_atomic(&path, html.as_bytes(), false)?;
    Ok((pass.status.problems, path))
}

fn demo_dir(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir(d).with_context(|| format!("creating {}", d.display()))?;
            d.to_owned()
        }
        None => {
            let base = std::env::temp_dir().join(format!("lander-demo-{}", std::process::id()));
            std::fs::create_dir_all(&base)
                .with_context(|| format!("creating {}", base.display()))?;
            base
        }
    };
    Ok(dir.canonicalize()?)
}

/// The sibling executables of the running `lander`.
struct Tools {
    lander: PathBuf,
    capture: PathBuf,
}

impl Tools {
    fn beside_current_exe() -> anyhow::Result<Tools> {
        let lander = std::env::current_exe().context("locating the lander executable")?;
        let capture = lander.with_file_name("lander-capture");
        for exe in [&capture, &lander.with_file_name("lander-scrub")] {
            if !exe.exists() {
                bail!(
                    "{} not found: build all binaries (cargo build --release --bins)",
                    exe.display()
                );
            }
        }
        Ok(Tools { lander, capture })
    }

    fn run(&self, args: &[&str], paths: &[&Path]) -> anyhow::Result<()> {
        let mut cmd = Command::new(&self.lander);
        cmd.args(["-q"]).args(args).args(paths);
        check(cmd)
    }
}

fn check(mut cmd: Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn generate(dir: &Path, packets: u64, stages: &mut Vec<StageRow>) -> anyhow::Result<Vec<PathBuf>> {
    let input = dir.join("input");
    std::fs::create_dir_all(&input)?;
    let t0 = Instant::now();
    let mut files = Vec::new();
    let mut total = 0;
    for (site, profile) in SITES {
        let n = if profile == Profile::SynFlood {
            packets
        } else {
            packets / 4
        };
        let path = input.join(format!("{site}-{profile}.pcap"));
        write_trace(profile, 1, n, &path, Format::Pcap)?;
        files.push(path);
        total += n;
    }
    stages.push(StageRow::new("gen", files.len(), total, t0.elapsed()));
    Ok(files)
}

fn capture(
    tools: &Tools,
    dir: &Path,
    inputs: &[PathBuf],
    rotate_packets: u64,
    stages: &mut Vec<StageRow>,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    for ((site, _), input) in SITES.iter().zip(inputs) {
        let raw = dir.join("spool/raw").join(site);
        std::fs::create_dir_all(&raw)?;
        let mut cmd = Command::new(&tools.capture);
        cmd.arg("-q")
            .arg("--read")
            .arg(input)
            .arg("--out-dir")
            .arg(&raw);
        cmd.args([
            "--site",
            site,
            "--rotate-packets",
            &rotate_packets.to_string(),
        ]);
        cmd.arg("--state-dir").arg(dir.join("spool/state"));
        check(cmd)?;
    }
    let elapsed = t0.elapsed();
    let (files, packets) = published(&dir.join("spool/raw"))?;
    stages.push(StageRow::new("capture", files, packets, elapsed));
    Ok(())
}

fn write_config(dir: &Path, key: &Path, tools: &Tools) -> anyhow::Result<PathBuf> {
    let lander = tools.lander.to_string_lossy();
    let processor =
        format!(r#"["/bin/sh", "-c", "exec \"$0\" info --json \"$LANDER_FILE\"", {lander:?}]"#);
    let text = format!(
        r#"# LANDER demo configuration (written by `lander demo`).
spool = {spool:?}
state_db = {db:?}
user_state_db = {user_db:?}
sites = ["border", "campus"]

[scrub]
mapping = "cryptopan"
key_file = {key:?}
payload = "drop"
checksums = "fix"
raw_after = "archive"

[users.alice]
subscriptions = ["border", "campus"]
processor = {processor}
on_success = "archive"

[users.bob]
subscriptions = ["campus"]
processor = {processor}
on_success = "archive"

[backend]
slots = 2
"#,
        spool = dir.join("spool").to_string_lossy(),
        db = dir.join("local/dispatch.sqlite").to_string_lossy(),
        user_db = dir.join("local/user-{user}.sqlite").to_string_lossy(),
        key = key.to_string_lossy(),
    );
    std::fs::create_dir_all(dir.join("local"))?;
    let path = dir.join("lander.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn scrub(tools: &Tools, config: &Config, stages: &mut Vec<StageRow>) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let wrapper = wrapper_argv(tools);
    let scrub_exe = tools.lander.with_file_name("lander-scrub");
    let mut engine = control::scrub_engine(config, wrapper, scrub_exe)?;
    let report = engine.drain(100_000)?;
    if report.failed_attempts > 0 || report.lost > 0 {
        bail!("scrub stage: {report:?}");
    }
    let (files, packets) = published(&config.spool.join("scrubbed"))?;
    stages.push(StageRow::new("scrub", files, packets, t0.elapsed()));
    Ok(())
}

fn process(
    tools: &Tools,
    config: &Config,
    user: &str,
    stages: &mut Vec<StageRow>,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let t0 = Instant::now();
    let mut engine = control::user_engine(config, user, wrapper_argv(tools))?;
    let report = engine.drain(100_000)?;
    if report.failed_attempts > 0 || report.lost > 0 {
        bail!("user {user}: {report:?}");
    }
    let elapsed = t0.elapsed();
    let logs = config.spool.join("users").join(user).join("logs");
    let (files, packets, protocols) = processor_outputs(&logs)?;
    stages.push(StageRow::new(
        &format!("user {user}"),
        files,
        packets,
        elapsed,
    ));
    Ok(protocols)
}

fn wrapper_argv(tools: &Tools) -> Vec<String> {
    vec![
        tools.lander.to_string_lossy().into_owned(),
        "dispatch".into(),
        "job-wrapper".into(),
    ]
}

/// Files and packets published under `dir` (recursively), from their manifests.
fn published(dir: &Path) -> anyhow::Result<(usize, u64)> {
    let mut files = 0;
    let mut packets = 0;
    for path in walk(dir)? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if is_manifest_name(name) && !is_temp_name(name) {
            packets += Manifest::read(&path)?.packets;
            files += 1;
        }
    }
    Ok((files, packets))
}

/// Sums what the processors printed (`lander info --json`): files, packets, protocols.
fn processor_outputs(logs: &Path) -> anyhow::Result<(usize, u64, BTreeMap<String, u64>)> {
    let mut files = 0;
    let mut packets = 0;
    let mut protocols = BTreeMap::new();
    for path in walk(logs)? {
        if path.extension().and_then(|e| e.to_str()) != Some("out") {
            continue;
        }
        let text = std::fs::read(&path)?;
        let Ok(info) = serde_json::from_slice::<serde_json::Value>(&text) else {
            continue;
        };
        let info = if info.is_array() {
            info[0].clone()
        } else {
            info
        };
        files += 1;
        packets += info["summary"]["packets"].as_u64().unwrap_or(0);
        if let Some(map) = info["summary"]["protocols"].as_object() {
            for (k, v) in map {
                *protocols.entry(k.clone()).or_insert(0) += v.as_u64().unwrap_or(0);
            }
        }
    }
    protocols.retain(|_, v| *v > 0);
    Ok((files, packets, protocols))
}

fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "LANDER demo in {}\n", r.dir.display());
    let _ = writeln!(
        s,
        "{:<12} {:>6} {:>10} {:>9} {:>12}",
        "stage", "files", "packets", "seconds", "packets/s"
    );
    for row in &r.stages {
        let _ = writeln!(
            s,
            "{:<12} {:>6} {:>10} {:>9.2} {:>12.0}",
            row.stage, row.files, row.packets, row.seconds, row.packets_per_second
        );
    }
    let _ = writeln!(
        s,
        "\npackets per protocol, as each user's processor counted them:"
    );
    for (user, protocols) in &r.protocols {
        let list: Vec<String> = protocols.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  {user:<6} {}", list.join(", "));
    }
    let spool = r.dir.join("spool");
    let _ = writeln!(s, "\nwhere to look:");
    let _ = writeln!(
        s,
        "  raw traces (archived after scrubbing)  {}",
        spool.join("archive").display()
    );
    let _ = writeln!(
        s,
        "  scrubbed traces + manifests            {}",
        spool.join("scrubbed").display()
    );
    let _ = writeln!(
        s,
        "  users' processed files and logs        {}",
        spool.join("users").display()
    );
    let _ = writeln!(
        s,
        "  configuration                          {}",
        r.config.display()
    );
    let _ = writeln!(
        s,
        "  job history    lander jobs --config {} list",
        r.config.display()
    );
    let _ = writeln!(
        s,
        "  status         lander status --config {} [--serve]",
        r.config.display()
    );
    match r.problems.len() {
        0 => s.push_str("\nmonitor: no problem open\n"),
        n => {
            let _ = writeln!(s, "\nmonitor: {n} problems open:");
            for p in &r.problems {
                let _ = writeln!(s, "  {p}");
            }
        }
    }
    let _ = writeln!(s, "\nstatus page: {}", r.status_page.display());
    s
}
