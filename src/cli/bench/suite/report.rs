//! The suite's report: JSON as measured, Markdown tables (the command that made them above
//! each), a plain summary, and the plots beside them.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::runner::GroupReport;
use crate::cli::bench::live;

/// Everything one suite run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The `lander bench` command that made it.
    pub command: String,
    /// Load average (1, 5, 15 min) before the first run.
    pub load_before: [f64; 3],
    /// Load average after the last run.
    pub load_after: [f64; 3],
    /// CPUs of the machine.
    pub cores: usize,
    /// The paired groups.
    pub groups: Vec<GroupReport>,
    /// The live sweep, when it ran.
    pub live: Option<live::Report>,
}

/// The plots' file names, as the Markdown links them.
pub const PLOTS: [&str; 3] = [
    "bench-threads.svg",
    "bench-packet-size.svg",
    "bench-live-drops.svg",
];

fn load(l: [f64; 3]) -> String {
    format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
}

/// The report as Markdown; plots are linked under `plots` (relative to where it is read).
pub fn markdown(r: &Report, plots: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Measured on {} cores shared with other work (load average {} before, {} after): \
         medians of paired, alternating runs, spread = (max - min) / median; every run \
         writes into a fresh, empty directory.\n",
        r.cores,
        load(r.load_before),
        load(r.load_after)
    );
    for g in &r.groups {
        group_table(&mut s, &r.command, g);
    }
    if let Some(l) = &r.live {
        live_table(&mut s, &r.command, l);
    }
    for (i, name) in PLOTS.iter().enumerate() {
        if i == 2 && r.live.is_none() {
            continue;
        }
        let _ = writeln!(s, "![{name}]({})\n", plots.join(name).display());
    }
    s
}

fn group_table(s: &mut String, command: &str, g: &GroupReport) {
    let _ = writeln!(
        s,
        "#### {}: {} packets, {}\n\n`{command}`\n",
        g.name,
        lander_spool::human::count(g.packets),
        lander_spool::human::bytes(g.bytes)
    );
    let _ = writeln!(
        s,
        "| tool | median s | spread | Mpps | MB/s | vs {} |\n|---|---:|---:|---:|---:|---:|",
        g.baseline
    );
    for c in &g.cases {
        let name = if c.ours {
            format!("**{}**", c.name)
        } else {
            c.name.clone()
        };
        let _ = writeln!(
            s,
            "| {name} | {:.3} | {:.0} % | {:.2} | {:.0} | {:.2}x |",
            c.median,
            c.spread * 100.0,
            c.mpps,
            c.mb_per_s,
            c.speedup_vs_baseline
        );
    }
    s.push('\n');
}

fn live_table(s: &mut String, command: &str, l: &live::Report) {
    let _ = writeln!(
        s,
        "#### live capture, veth pair, trafgen: {} s per point, {}, kernel buffer {}\n\n`{command}`\n",
        l.secs,
        live::rounds_label(l.rounds),
        lander_spool::human::bytes(l.buffer_bytes)
    );
    s.push_str(
        "| traffic | asked | tool | offered | Mpps | written % (lowest) | kernel drops | ring drops | unaccounted | CPU s/Mpkt (median) | CPU range |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let opt = |v: Option<u64>| v.map_or("-".into(), |k| k.to_string());
    for p in &l.points {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.3} | {:.3} | {} | {} | {} | {:.2} | {} |",
            format!("{:?}", p.traffic).to_lowercase(),
            p.rate_asked
                .map_or("max".into(), lander_spool::human::count),
            p.tool,
            p.offered,
            p.offered_pps / 1e6,
            p.written_pct_min,
            opt(p.kernel_drops_max),
            opt(p.ring_drops_max),
            p.unaccounted_max,
            p.cpu_s_per_mpkt,
            live::cpu_range(p)
        );
    }
    s.push_str("\nDrops and unaccounted: the most in any round.\n\n");
}

/// A few lines for the terminal.
pub fn summary(r: &Report) -> String {
    let mut s = format!(
        "{}: load average {} before, {} after\n",
        r.command,
        load(r.load_before),
        load(r.load_after)
    );
    for g in &r.groups {
        let _ = writeln!(s, "{} (vs {}):", g.name, g.baseline);
        for c in &g.cases {
            let _ = writeln!(
                s,
                "  {:<32} {:>8.3} s  {:>7.2} Mpps  {:>6.2}x",
                c.name, c.median, c.mpps, c.speedup_vs_baseline
            );
        }
    }
    if let Some(l) = &r.live {
        s.push_str(&live::table(l));
    }
    s
}
