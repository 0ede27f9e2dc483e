//! `lander info FILE...`: what a trace holds, like `capinfos`.

use std::path::{Path, PathBuf};

use lander_spool::utc::format_ns;
use lander_trace::summary::TraceSummary;
use lander_trace::Format;
use serde::Serialize;

/// Arguments of `lander info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trace files (`-` for stdin).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print JSON (one object per file, one per line).
    #[arg(long)]
    pub json: bool,
    /// Input format, for ERF from a pipe (default: detected).
    #[arg(long)]
    pub format: Option<Format>,
}

/// What `lander info` reports about one file.
#[derive(Debug, Serialize)]
pub struct Info {
    /// The file.
    pub file: String,
    /// Its format.
    pub format: Format,
    /// Size in bytes (not for stdin).
    pub size: Option<u64>,
    /// Link type name of the first interface.
    pub link_type: String,
    /// Link type number.
    pub link_type_number: u32,
    /// Snapshot length.
    pub snaplen: u32,
    /// Counts, times and protocols.
    pub summary: TraceSummary,
    /// The read error that ended the file early, if any.
    pub error: Option<String>,
}

/// Runs `lander info`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut failed = 0;
    for file in &args.files {
        let info = match inspect(file, args.format) {
            Ok(info) => info,
            Err(e) => {
                eprintln!("{}", super::common::describe(&e));
                failed += 1;
                continue;
            }
        };
        failed += usize::from(info.error.is_some());
        if args.json {
            println!("{}", serde_json::to_string(&info)?);
        } else {
            print!("{}", render(&info));
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} files could not be read whole",
            args.files.len()
        );
    }
    Ok(())
}

/// Reads a whole trace into an [`Info`]; a read error mid-file is kept in `error`.
pub fn inspect(path: &Path, format: Option<Format>) -> anyhow::Result<Info> {
    let mut reader = super::common::open_input(path, format)?;
    let mut summary = TraceSummary::new();
    let error = loop {
        match reader.next() {
            Ok(Some(rec)) => summary.add(&rec),
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        }
    };
    Ok(Info {
        file: path.display().to_string(),
        format: reader.format(),
        size: std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len()),
        link_type: reader.link_type().name(),
        link_type_number: reader.link_type().0,
        snaplen: reader.snaplen(),
        summary,
        error,
    })
}

fn render(i: &Info) -> String {
    let s = &i.summary;
    let p = &s.protocols;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<22}{v}\n"));
    line("File name:", i.file.clone());
    line("File format:", i.format.to_string());
    if let Some(size) = i.size {
        line("File size:", format!("{size} bytes"));
    }
    line(
        "Link type:",
        format!("{} ({})", i.link_type, i.link_type_number),
    );
    line("Snaplen:", i.snaplen.to_string());
    line("Packets:", s.packets.to_string());
    line("Captured bytes:", s.bytes.to_string());
    line("Wire bytes:", s.wire_bytes.to_string());
    line("Cut by snaplen:", s.cut.to_string());
    line("Drops reported:", s.drops.to_string());
    line(
        "First packet:",
        s.first_ts_ns.map_or("n/a".into(), format_ns),
    );
    line("Last packet:", s.last_ts_ns.map_or("n/a".into(), format_ns));
    line("Duration:", format!("{:.9} s", s.duration_secs()));
    line("Out of order:", s.out_of_order.to_string());
    if s.duration_secs() > 0.0 {
        line(
            "Packet rate:",
            format!("{:.1} packets/s", s.packets as f64 / s.duration_secs()),
        );
    }
    let link_types: Vec<String> = s
        .link_types
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    line("Link types:", link_types.join(", "));
    line(
        "Protocols:",
        format!(
            "ethernet {} vlan {} arp {} ipv4 {} ipv6 {} tcp {} udp {} icmp {} icmpv6 {} other {}",
            p.ethernet, p.vlan, p.arp, p.ipv4, p.ipv6, p.tcp, p.udp, p.icmp, p.icmpv6, p.other
        ),
    );
    if let Some(e) = &i.error {
        line("Error:", e.clone());
    }
    out
}
