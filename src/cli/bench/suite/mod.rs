//! `lander bench --quick | --full`: every path beside the tools users run today, in the same
//! run, paired and alternating (see [`runner`]): replay capture against `dd bs=1M` (the copy
//! limit), `tcpdump -r -w`, and, for rotation, `tracesplit -b` and `tcpdump -C`; the durable
//! variant against `dd conv=fsync`; scrub against `traceanon` over a thread sweep; the
//! snaplen cut against `editcap -s`; convert against `editcap -F`; info and verify against
//! `capinfos`. With `--full`, the live sweep of `lander bench live` too. The report is
//! Markdown, JSON and SVG plots (throughput against threads and against packet size, drops
//! against the offered rate).

pub mod plot;
pub mod report;
pub mod runner;

use std::path::{Path, PathBuf};

use anyhow::Context;
use lander_spool::synth::write_trace;
use lander_trace::synth::Profile;
use lander_trace::Format;
use runner::{Case, Group};

use super::capture::{load_average, sibling};

/// 32 printable bytes: traceanon's `-c` string and our raw key file alike.
const KEY: &str = "lander-rs-bench-suite-key-32byte";

/// Rounds of the live sweep with `--full` (each point reported as the median).
const LIVE_ROUNDS: u32 = 3;

/// Options of the suite (`lander bench --quick`, `lander bench --full`).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "suite")]
pub struct Args {
    /// Seconds: small traces, three rounds, no live capture (the CI smoke test's size).
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,
    /// The figures for the README: 2 M-packet SYN flood, 1 M mixed, seven rounds, the live
    /// sweep (three rounds; needs root).
    #[arg(long)]
    pub full: bool,
    /// Rounds of every pair (default: 3 quick, 7 full; the live sweep runs 3 with --full).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Also run the live sweep (on by default with --full).
    #[arg(long)]
    pub live: bool,
    /// Print the Markdown report (default: a plain summary).
    #[arg(long)]
    pub markdown: bool,
    /// Print the JSON report.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Write report.md, report.json and the SVG plots into this directory.
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Work directory (default: a temporary one under /var/tmp, removed after).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Sizes of one suite run.
#[derive(Debug, Clone)]
struct Plan {
    syn: u64,
    mixed: u64,
    rounds: usize,
    threads: Vec<usize>,
    live: bool,
}

impl Plan {
    fn of(args: &Args) -> Plan {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (syn, mixed, rounds) = match args.full {
            true => (2_000_000, 1_000_000, 7),
            false => (100_000, 50_000, 3),
        };
        Plan {
            syn,
            mixed,
            rounds: args.rounds.unwrap_or(rounds).max(1),
            threads: (1..=cores.max(2)).collect(),
            live: args.live || args.full,
        }
    }
}

/// The command that makes a report of this size (shown above every table).
fn invocation(args: &Args) -> String {
    let size = if args.full { "--full" } else { "--quick" };
    let mut s = format!("lander bench {size}");
    if let Some(r) = args.rounds {
        s.push_str(&format!(" --rounds {r}"));
    }
    if args.live && !args.full {
        s.push_str(" --live");
    }
    s
}

/// Runs the suite.
pub fn run(args: Args) -> anyhow::Result<()> {
    let plan = Plan::of(&args);
    let report = super::live::with_dir(args.dir.as_deref(), "suite", |dir| {
        measure(&args, &plan, dir)
    })?;
    if let Some(dir) = &args.report_dir {
        write_all(&report, dir)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.markdown {
        print!("{}", report::markdown(&report, Path::new("")));
    } else {
        print!("{}", report::summary(&report));
    }
    Ok(())
}

fn measure(args: &Args, plan: &Plan, dir: &Path) -> anyhow::Result<report::Report> {
    let load_before = load_average();
    let inputs = Inputs::make(plan, dir)?;
    let mut groups = Vec::new();
    let work = dir.join("work");
    for g in build_groups(plan, &inputs)? {
        tracing::info!(
            "{}: {} cases, {} rounds",
            g.name,
            g.cases.len(),
            plan.rounds
        );
        groups.push(runner::run_group(&g, plan.rounds, &work)?);
    }
    let live = match plan.live {
        true => Some(live_sweep(args, dir)?),
        false => None,
    };
    Ok(report::Report {
        command: invocation(args),
        load_before,
        load_after: load_average(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        groups,
        live,
    })
}

fn live_sweep(args: &Args, dir: &Path) -> anyhow::Result<super::live::Report> {
    let live = super::live::Args {
        rates: ["200k", "500k", "1M", "max"]
            .iter()
            .map(|r| super::live::parse_rate(r).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?,
        traffic: vec![crate::netns::Traffic::Min, crate::netns::Traffic::Imix],
        tools: vec![
            super::live::tools::Tool::Lander,
            super::live::tools::Tool::Tcpdump,
            super::live::tools::Tool::NetsniffNg,
        ],
        secs: if args.full { 4 } else { 1 },
        rounds: if args.full { LIVE_ROUNDS } else { 1 },
        buffer_size: 64 << 20,
        threads: 1,
        dir: None,
        json: true,
    };
    let live_dir = dir.join("live");
    std::fs::create_dir_all(&live_dir)?;
    super::live::measure(&live, &live_dir)
}

/// The traces and the key, made once per run.
struct Inputs {
    syn: (PathBuf, u64),
    mixed: (PathBuf, u64),
    key: PathBuf,
    mixed_anon: PathBuf,
    lander: String,
    capture: String,
}

impl Inputs {
    fn make(plan: &Plan, dir: &Path) -> anyhow::Result<Inputs> {
        let trace = |p: Profile, n: u64, name: &str| -> anyhow::Result<(PathBuf, u64)> {
            let path = dir.join(name);
            write_trace(p, 1, n, &path, Format::Pcap)
                .with_context(|| format!("generating {}", path.display()))?;
            Ok((path, n))
        };
        let key = dir.join("key");
        lander_spool::publish::write_atomic(&key, KEY.as_bytes(), false)?;
        set_private(&key)?;
        let inputs = Inputs {
            syn: trace(Profile::SynFlood, plan.syn, "syn-flood.pcap")?,
            mixed: trace(Profile::Mixed, plan.mixed, "mixed.pcap")?,
            mixed_anon: dir.join("mixed-anon.pcap"),
            key,
            lander: sibling("lander")?.to_string_lossy().into_owned(),
            capture: sibling("lander-capture")?.to_string_lossy().into_owned(),
        };
        inputs.scrub_for_verify()?;
        Ok(inputs)
    }

    /// The scrubbed mixed trace `lander verify` checks.
    fn scrub_for_verify(&self) -> anyhow::Result<()> {
        let st = std::process::Command::new(&self.lander)
            .args(["-q", "scrub", "--key"])
            .arg(&self.key)
            .arg(&self.mixed.0)
            .arg(&self.mixed_anon)
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(st.success(), "lander scrub of the mixed trace failed");
        Ok(())
    }
}

fn set_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| path.display().to_string())
}

fn build_groups(plan: &Plan, i: &Inputs) -> anyhow::Result<Vec<Group>> {
    let (l, c, key) = (&i.lander, &i.capture, i.key.to_string_lossy());
    let group = |name: &str, input: &(PathBuf, u64), baseline: &str, cases: Vec<Case>| Group {
        name: name.into(),
        input: input.0.clone(),
        packets: input.1,
        baseline: baseline.into(),
        cases,
    };
    let replay = || {
        vec![
            Case::new(
                "dd bs=1M",
                false,
                "dd if={in} of={out}/dd.pcap bs=1M status=none",
            ),
            Case::new(
                "lander-capture --read",
                true,
                &format!("{c} -q --read {{in}} --out-dir {{out}} --site bench --rotate-size 64MiB"),
            ),
            Case::new(
                "tcpdump -r -w",
                false,
                "tcpdump -Z root -r {in} -w {out}/t.pcap",
            ),
            Case::new(
                "tcpdump -C 64",
                false,
                "tcpdump -Z root -r {in} -w {out}/c.pcap -C 64",
            ),
            Case::new(
                "tracesplit -b 64MB",
                false,
                "tracesplit -b 64000000 pcapfile:{in} pcapfile:{out}/split.pcap",
            ),
        ]
    };
    let durable = vec![
        Case::new(
            "dd bs=1M conv=fsync",
            false,
            "dd if={in} of={out}/dd.pcap bs=1M conv=fsync status=none",
        ),
        Case::new(
            "lander-capture --read --fsync",
            true,
            &format!(
                "{c} -q --read {{in}} --out-dir {{out}} --site bench --rotate-size 64MiB --fsync"
            ),
        ),
    ];
    let scrub = |with_dd: bool| {
        let mut v = vec![Case::new(
            "traceanon",
            false,
            &format!("traceanon -c {KEY} -s -d pcapfile:{{in}} pcapfile:{{out}}/anon.pcap"),
        )];
        for &t in &plan.threads {
            let mut case = Case::new(
                &format!("lander scrub -j {t}"),
                true,
                &format!("{l} -q scrub --key {key} --threads {t} {{in}} {{out}}/anon.pcap"),
            );
            case.threads = Some(t);
            v.push(case);
        }
        if with_dd {
            v.push(Case::new(
                "dd bs=1M",
                false,
                "dd if={in} of={out}/dd.pcap bs=1M status=none",
            ));
        }
        v
    };
    let snaplen = vec![
        Case::new("editcap -s 64", false, "editcap -s 64 {in} {out}/e.pcap"),
        Case::new(
            "lander convert --snaplen 64",
            true,
            &format!("{l} -q convert --snaplen 64 {{in}} {{out}}/c.pcap"),
        ),
    ];
    let convert = vec![
        Case::new(
            "editcap -F pcapng",
            false,
            "editcap -F pcapng {in} {out}/e.pcapng",
        ),
        Case::new(
            "lander convert -f pcapng",
            true,
            &format!("{l} -q convert -f pcapng {{in}} {{out}}/c.pcapng"),
        ),
    ];
    let anon = i.mixed_anon.to_string_lossy();
    let info = vec![
        Case::new("capinfos", false, "capinfos {in}"),
        Case::new("lander info", true, &format!("{l} -q info {{in}}")),
        Case::new(
            "lander verify",
            true,
            &format!("{l} -q verify --key {key} {{in}} {anon}"),
        ),
    ];
    Ok(vec![
        group("replay syn-flood", &i.syn, "dd bs=1M", replay()),
        group("replay mixed", &i.mixed, "dd bs=1M", replay()),
        group(
            "replay durable syn-flood",
            &i.syn,
            "dd bs=1M conv=fsync",
            durable,
        ),
        group("scrub syn-flood", &i.syn, "traceanon", scrub(true)),
        group("scrub mixed", &i.mixed, "traceanon", scrub(false)),
        group("snaplen syn-flood", &i.syn, "editcap -s 64", snaplen),
        group("convert mixed", &i.mixed, "editcap -F pcapng", convert),
        group("info and verify mixed", &i.mixed, "capinfos", info),
    ])
}

/// Writes report.md, report.json and the plots into `dir`.
pub fn write_all(report: &report::Report, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let json = serde_json::to_vec_pretty(report)?;
    std::fs::write(dir.join("report.json"), json)?;
    std::fs::write(
        dir.join("report.md"),
        report::markdown(report, Path::new("")),
    )?;
    plot::threads(report, &dir.join(report::PLOTS[0]))?;
    plot::packet_size(report, &dir.join(report::PLOTS[1]))?;
    if report.live.is_some() {
        plot::live_drops(report, &dir.join(report::PLOTS[2]))?;
    }
    Ok(())
}
