//! `lander bench live`: live capture under attack load. A veth pair between two network
//! namespaces; trafgen (netsniff-ng) offers minimum-size or IMIX traffic at a sweep of rates
//! up to its top rate; lander-capture, `tcpdump -w` and `netsniff-ng --out` capture in turn,
//! one at a time, each with the same kernel buffer, the order rotated from one rate to the
//! next. For each tool and rate: packets offered (the receiving interface's `rx_packets`),
//! packets written (read back from the files), drops by kind as the tool reports them, the
//! rest unaccounted for, and CPU seconds per million packets written (the tool's own CPU time,
//! from its `rusage` when it is reaped). With `--rounds N` the whole sweep runs N times and
//! each point is reported as the median over the rounds with its spread (the lowest share
//! written, the most drops, the range of CPU times): one run of a few seconds on a busy host
//! can be 30 % off. Needs root, iproute2, trafgen, tcpdump, netsniff-ng.

pub mod tools;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netns::{wait_for, Send, Traffic, Veth};
use anyhow::{bail, Context};
use lander_capture::engine::sys::children_cpu_secs;
use serde::Serialize;
use tools::{Drops, Setup, Tool};

use super::capture::load_average;
use super::median;

/// Arguments of `lander bench live`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Offered rates in packets per second (`200k`, `1M`), `max` for trafgen's top rate.
    #[arg(long, value_delimiter = ',', value_parser = parse_rate,
          default_value = "200k,500k,1M,max")]
    pub rates: Vec<Rate>,
    /// Traffic mixes.
    #[arg(long, value_delimiter = ',', default_value = "min,imix")]
    pub traffic: Vec<Traffic>,
    /// Capture tools.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "lander,tcpdump,netsniff-ng"
    )]
    pub tools: Vec<Tool>,
    /// Seconds of traffic per point.
    #[arg(long, default_value_t = 3)]
    pub secs: u64,
    /// Times the whole sweep runs; each point is reported as the median and spread.
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Kernel buffer of every tool, e.g. 64MiB.
    #[arg(long, value_parser = lander_spool::size::parse_size, default_value = "64MiB")]
    pub buffer_size: u64,
    /// lander-capture's capture threads (PACKET_FANOUT over that many sockets).
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// Work directory (default: a temporary one under /var/tmp, removed after).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// An offered rate: packets per second, or as fast as trafgen goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Rate {
    /// This many packets per second.
    Pps(u64),
    /// trafgen's top rate.
    Max,
}

/// `200000`, `200k`, `1.5M` or `max`.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1e3),
        Some((i, 'm' | 'M')) => (&s[..i], 1e6),
        _ => (s, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v > 0.0 && (v * mult).is_finite() => Ok(Rate::Pps((v * mult).round() as u64)),
        _ => Err(format!(
            "{s:?}: a rate is a positive number (200k, 1M) or max"
        )),
    }
}

/// One tool at one rate in one round.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The round (from 0).
    pub round: u32,
    /// Traffic mix.
    pub traffic: Traffic,
    /// Rate asked of trafgen (`None`: its top rate).
    pub rate_asked: Option<u64>,
    /// The capture tool.
    pub tool: String,
    /// Packets the receiving interface counted while trafgen ran.
    pub offered: u64,
    /// Offered packets per second of trafgen's run.
    pub offered_pps: f64,
    /// Packets read back from the tool's files.
    pub written: u64,
    /// Written over offered, percent.
    pub written_pct: f64,
    /// Drops the tool reported, by kind.
    pub drops: Drops,
    /// Offered, not written and not reported as a drop (lost at stop, or never seen).
    pub unaccounted: i64,
    /// The tool's CPU seconds (user + system), start to exit.
    pub cpu_seconds: f64,
    /// CPU seconds per million packets written.
    pub cpu_s_per_mpkt: f64,
}

/// Everything one `lander bench live` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Load average (1, 5, 15 min) before the first point.
    pub load_before: [f64; 3],
    /// Load average after the last point.
    pub load_after: [f64; 3],
    /// Seconds of traffic per point.
    pub secs: u64,
    /// Kernel buffer of every tool, bytes.
    pub buffer_bytes: u64,
    /// Rounds of the whole sweep.
    pub rounds: u32,
    /// Every measurement, round by round.
    pub rows: Vec<Row>,
    /// Each point over the rounds, in the order measured.
    pub points: Vec<PointSummary>,
}

/// One tool at one rate over every round.
#[derive(Debug, Clone, Serialize)]
pub struct PointSummary {
    /// Traffic mix.
    pub traffic: Traffic,
    /// Rate asked of trafgen (`None`: its top rate).
    pub rate_asked: Option<u64>,
    /// The capture tool.
    pub tool: String,
    /// Rounds measured.
    pub rounds: usize,
    /// Median packets offered.
    pub offered: u64,
    /// Median offered packets per second.
    pub offered_pps: f64,
    /// Median packets written.
    pub written: u64,
    /// The lowest share written, percent.
    pub written_pct_min: f64,
    /// The most kernel drops the tool reported in a round.
    pub kernel_drops_max: Option<u64>,
    /// The most interface drops the tool reported in a round.
    pub interface_drops_max: Option<u64>,
    /// The most ring drops the tool reported in a round (lander-capture's own buffer ring).
    pub ring_drops_max: Option<u64>,
    /// The most packets unaccounted for in a round.
    pub unaccounted_max: i64,
    /// Median CPU seconds per million packets written.
    pub cpu_s_per_mpkt: f64,
    /// Lowest and highest CPU seconds per million packets written.
    pub cpu_s_per_mpkt_range: [f64; 2],
}

/// The rows grouped by traffic, rate and tool (in the order first measured), each group as
/// its median and spread.
pub fn summarize(rows: &[Row]) -> Vec<PointSummary> {
    let mut keys: Vec<(Traffic, Option<u64>, &str)> = Vec::new();
    for r in rows {
        let key = (r.traffic, r.rate_asked, r.tool.as_str());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(traffic, rate_asked, tool)| {
            let group: Vec<&Row> = rows
                .iter()
                .filter(|r| {
                    (r.traffic, r.rate_asked, r.tool.as_str()) == (traffic, rate_asked, tool)
                })
                .collect();
            let f = |get: fn(&Row) -> f64| group.iter().map(|r| get(r)).collect::<Vec<f64>>();
            let cpu = f(|r| r.cpu_s_per_mpkt);
            PointSummary {
                traffic,
                rate_asked,
                tool: tool.to_string(),
                rounds: group.len(),
                offered: median(&f(|r| r.offered as f64)).round() as u64,
                offered_pps: median(&f(|r| r.offered_pps)),
                written: median(&f(|r| r.written as f64)).round() as u64,
                written_pct_min: f(|r| r.written_pct)
                    .into_iter()
                    .fold(f64::INFINITY, f64::min),
                kernel_drops_max: group.iter().filter_map(|r| r.drops.kernel).max(),
                interface_drops_max: group.iter().filter_map(|r| r.drops.interface).max(),
                ring_drops_max: group.iter().filter_map(|r| r.drops.ring).max(),
                unaccounted_max: group.iter().map(|r| r.unaccounted).max().unwrap_or(0),
                cpu_s_per_mpkt: median(&cpu),
                cpu_s_per_mpkt_range: [
                    cpu.iter().copied().fold(f64::INFINITY, f64::min),
                    cpu.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                ],
            }
        })
        .collect()
}

/// Runs `lander bench live`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let report = with_dir(args.dir.as_deref(), "live", |dir| measure(&args, dir))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// Runs `f` in `dir`, or in a temporary directory under /var/tmp removed after.
pub fn with_dir<T>(
    dir: Option<&Path>,
    what: &str,
    f: impl FnOnce(&Path) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let tmp = PathBuf::from("/var/tmp").join(format!("lander-bench-{what}-{}", std::process::id()));
    let path = dir.unwrap_or(&tmp);
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    let outcome = f(path);
    if dir.is_none() {
        let _ = std::fs::remove_dir_all(path);
    }
    outcome
}

/// The whole sweep: every traffic mix, every rate, every tool.
pub fn measure(args: &Args, dir: &Path) -> anyhow::Result<Report> {
    if args.secs == 0 || args.tools.is_empty() || args.rates.is_empty() {
        bail!("--secs, --tools and --rates must not be empty or zero");
    }
    let load_before = load_average();
    let veth = Veth::new("bench")?;
    let setup = Setup {
        buffer: args.buffer_size,
        threads: args.threads.max(1),
        lander: super::capture::sibling("lander-capture")?,
    };
    let mut rows = Vec::new();
    let mut turn = 0;
    let rounds = args.rounds.max(1);
    for round in 0..rounds {
        for &traffic in &args.traffic {
            let conf = dir.join(format!("{traffic:?}.cfg").to_lowercase());
            std::fs::write(&conf, traffic.trafgen_config())?;
            for &rate in &args.rates {
                let mut order = args.tools.clone();
                let first = turn % order.len();
                order.rotate_left(first);
                turn += 1;
                for tool in order {
                    let point = Point {
                        traffic,
                        rate,
                        tool,
                    };
                    let mut row = point.measure(&veth, &setup, &conf, args.secs, dir)?;
                    row.round = round;
                    tracing::info!(
                        "round {} {:?} {:?} {}: offered {}, written {}",
                        round + 1,
                        traffic,
                        rate,
                        row.tool,
                        row.offered,
                        row.written
                    );
                    rows.push(row);
                }
            }
        }
    }
    Ok(Report {
        load_before,
        load_after: load_average(),
        secs: args.secs,
        buffer_bytes: args.buffer_size,
        rounds,
        points: summarize(&rows),
        rows,
    })
}

/// One tool capturing one traffic mix at one rate.
struct Point {
    traffic: Traffic,
    rate: Rate,
    tool: Tool,
}

impl Point {
    fn measure(
        &self,
        veth: &Veth,
        setup: &Setup,
        conf: &Path,
        secs: u64,
        dir: &Path,
    ) -> anyhow::Result<Row> {
        let out = dir.join("out");
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_file(out.with_extension("stats.json"));
        std::fs::create_dir_all(&out)?;
        let log = dir.join("capture.log");
        let mut child = self.tool.spawn(veth, setup, &out, &log)?;
        let outcome = self.offer_and_stop(veth, &mut child, conf, secs, &log);
        if outcome.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let (offered, seconds, cpu) = outcome?;
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        let drops = self.tool.drops(&out, &log_text)?;
        let written = written(&out)?;
        Ok(self.row(setup, offered, seconds, written, drops, cpu))
    }

    /// Waits until the tool captures, offers the traffic, stops the tool. Packets offered,
    /// trafgen's seconds, the tool's CPU seconds.
    fn offer_and_stop(
        &self,
        veth: &Veth,
        child: &mut std::process::Child,
        conf: &Path,
        secs: u64,
        log: &Path,
    ) -> anyhow::Result<(u64, f64, f64)> {
        wait_ready(child, log, self.tool.ready_marker())?;
        let before = veth.rx_counters()?;
        let sent = veth.trafgen(conf, &self.send(secs))?;
        std::thread::sleep(Duration::from_millis(300));
        let offered = veth.rx_counters()?.packets - before.packets;
        signal_int(child.id())?;
        let cpu_before = children_cpu_secs();
        let (status, in_time) = wait_for(child, Duration::from_secs(60))?;
        let cpu = children_cpu_secs() - cpu_before;
        if !in_time {
            bail!("{:?} did not stop within 60 s of SIGINT", self.tool);
        }
        // tcpdump and netsniff-ng exit 0 on SIGINT; so does lander-capture.
        if !status.success() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{:?} failed ({status}): {}", self.tool, text.trim());
        }
        Ok((offered, sent.seconds, cpu))
    }

    fn send(&self, secs: u64) -> Send {
        match self.rate {
            Rate::Pps(pps) => Send {
                packets: Some(pps * secs),
                rate_pps: Some(pps),
                limit: Duration::from_secs(secs * 3 + 5),
            },
            Rate::Max => Send {
                packets: None,
                rate_pps: None,
                limit: Duration::from_secs(secs),
            },
        }
    }

    fn row(&self, setup: &Setup, offered: u64, secs: f64, written: u64, d: Drops, cpu: f64) -> Row {
        let pct = |n: u64| 100.0 * n as f64 / offered.max(1) as f64;
        Row {
            round: 0,
            traffic: self.traffic,
            rate_asked: match self.rate {
                Rate::Pps(p) => Some(p),
                Rate::Max => None,
            },
            tool: self.tool.label(setup),
            offered,
            offered_pps: offered as f64 / secs.max(1e-9),
            written,
            written_pct: pct(written),
            drops: d,
            unaccounted: offered as i64 - written as i64 - d.total() as i64,
            cpu_seconds: cpu,
            cpu_s_per_mpkt: cpu / (written.max(1) as f64 / 1e6),
        }
    }
}

/// Waits until the tool's log says it captures (and a little more for its ring to be set up).
fn wait_ready(child: &mut std::process::Child, log: &Path, marker: &str) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if let Some(st) = child.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!("capture tool exited at start ({st}): {}", text.trim());
        }
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(marker)) {
            std::thread::sleep(Duration::from_millis(300));
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("capture tool did not say {marker:?} within 20 s")
}

/// SIGINT to `pid` (through kill(1): the bench keeps to safe code).
fn signal_int(pid: u32) -> anyhow::Result<()> {
    let st = std::process::Command::new("kill")
        .args(["-s", "INT", &pid.to_string()])
        .status()
        .context("cannot run kill")?;
    if !st.success() {
        bail!("kill -s INT {pid} failed");
    }
    Ok(())
}

/// Packets in the trace files under `out` (dot files and manifests left out).
pub fn written(out: &Path) -> anyhow::Result<u64> {
    let mut n = 0;
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') || name.ends_with(".json") || !path.is_file() {
            continue;
        }
        let mut r = lander_trace::format::TraceReader::open(&path)
            .with_context(|| format!("reading back {}", path.display()))?;
        while r
            .next()
            .with_context(|| format!("reading back {}", path.display()))?
            .is_some()
        {
            n += 1;
        }
    }
    Ok(n)
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |n| n.to_string())
}

fn rate_label(r: Option<u64>) -> String {
    r.map_or("max".into(), lander_spool::human::count)
}

/// The report as a plain-text table: each point's median over the rounds, the lowest share
/// written, the most drops, and the range of CPU times.
pub fn table(report: &Report) -> String {
    let load = |l: [f64; 3]| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
    let mut s = format!(
        "load average before {}, after {}; {} s per point, {}, kernel buffer {}\n",
        load(report.load_before),
        load(report.load_after),
        report.secs,
        rounds_label(report.rounds),
        lander_spool::human::bytes(report.buffer_bytes)
    );
    s.push_str(&format!(
        "{:<7} {:>7} {:<28} {:>10} {:>8} {:>10} {:>8} {:>8} {:>6} {:>6} {:>8} {:>9} {:>11}\n",
        "traffic",
        "asked",
        "tool",
        "offered",
        "Mpps",
        "written",
        "% (min)",
        "kernel",
        "if",
        "ring",
        "unacct",
        "CPU s/Mp",
        "CPU range"
    ));
    for p in &report.points {
        s.push_str(&format!(
            "{:<7} {:>7} {:<28} {:>10} {:>8.3} {:>10} {:>8.3} {:>8} {:>6} {:>6} {:>8} {:>9.2} {:>11}\n",
            format!("{:?}", p.traffic).to_lowercase(),
            rate_label(p.rate_asked),
            p.tool,
            p.offered,
            p.offered_pps / 1e6,
            p.written,
            p.written_pct_min,
            opt(p.kernel_drops_max),
            opt(p.interface_drops_max),
            opt(p.ring_drops_max),
            p.unaccounted_max,
            p.cpu_s_per_mpkt,
            cpu_range(p)
        ));
    }
    s.push_str(
        "offered: rx_packets of the receiving veth while trafgen ran; written: read back \
         from the files; unacct: offered - written - reported drops; CPU: the tool's user + \
         system time per million packets written. Medians over the rounds; % the lowest, \
         drops and unacct the most in a round\n",
    );
    s
}

/// `1 round`, or `3 rounds (medians)`.
pub fn rounds_label(rounds: u32) -> String {
    match rounds {
        1 => "1 round".into(),
        n => format!("{n} rounds (medians)"),
    }
}

/// `0.26-0.31`: the lowest and highest CPU seconds per million packets over the rounds.
pub fn cpu_range(p: &PointSummary) -> String {
    format!(
        "{:.2}-{:.2}",
        p.cpu_s_per_mpkt_range[0], p.cpu_s_per_mpkt_range[1]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_suffixes_and_max() {
        assert_eq!(parse_rate("200k"), Ok(Rate::Pps(200_000)));
        assert_eq!(parse_rate("1.5M"), Ok(Rate::Pps(1_500_000)));
        assert_eq!(parse_rate("MAX"), Ok(Rate::Max));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("k").is_err());
    }

    fn row(round: u32, tool: &str, rate: Option<u64>, written: u64, cpu: f64) -> Row {
        Row {
            round,
            traffic: Traffic::Min,
            rate_asked: rate,
            tool: tool.into(),
            offered: 1000,
            offered_pps: 100.0,
            written,
            written_pct: written as f64 / 10.0,
            drops: Drops {
                kernel: Some(1000 - written),
                interface: None,
                ring: None,
            },
            unaccounted: 0,
            cpu_seconds: cpu / 1000.0,
            cpu_s_per_mpkt: cpu,
        }
    }

    #[test]
    fn points_are_the_median_and_spread_of_their_rounds() {
        let rows = vec![
            row(0, "a", None, 1000, 0.30),
            row(0, "b", None, 990, 0.50),
            row(0, "a", Some(5), 1000, 0.20),
            row(1, "a", None, 998, 0.26),
            row(1, "b", None, 1000, 0.40),
            row(1, "a", Some(5), 1000, 0.22),
            row(2, "a", None, 1000, 0.90),
            row(2, "b", None, 1000, 0.45),
            row(2, "a", Some(5), 1000, 0.21),
        ];
        let points = summarize(&rows);
        let keys: Vec<_> = points
            .iter()
            .map(|p| (p.tool.as_str(), p.rate_asked))
            .collect();
        assert_eq!(keys, [("a", None), ("b", None), ("a", Some(5))]);
        let a = &points[0];
        assert_eq!(a.rounds, 3);
        assert_eq!(a.cpu_s_per_mpkt, 0.30, "the median, not the mean");
        assert_eq!(a.cpu_s_per_mpkt_range, [0.26, 0.90]);
        assert_eq!(a.written_pct_min, 99.8);
        assert_eq!(a.kernel_drops_max, Some(2));
        assert_eq!(a.interface_drops_max, None);
        assert_eq!(rounds_label(1), "1 round");
        assert_eq!(points[1].written_pct_min, 99.0);
        assert_eq!(points[1].cpu_s_per_mpkt, 0.45);
    }
}
