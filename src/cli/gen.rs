//! `lander gen`: deterministic synthetic traffic.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use lander_spool::synth::write_pending;
use lander_trace::synth::{write_to, Profile};
use lander_trace::Format;

use super::common::{
    binary_to_stdout, is_stdio, not_a_directory, not_a_published_trace, publish_over,
};

/// Arguments of `lander gen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Traffic profile: syn-flood, udp-amplification, mixed or edge.
    pub profile: Profile,
    /// How many packets to write.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    pub packets: u64,
    /// Output file (written under a temporary name, then renamed), or `-` for stdout.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Output format; by default taken from the extension of --out (pcap if none fits).
    #[arg(long, short)]
    pub format: Option<Format>,
    /// Seed of the random stream: the same seed gives the same packets.
    #[arg(long, short, default_value_t = 1)]
    pub seed: u64,
    /// Replace --out even when it is a published trace (its manifest beside it, which is then
    /// removed: it describes the file replaced).
    #[arg(long)]
    pub force: bool,
}

/// Runs `lander gen`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let format = args
        .format
        .unwrap_or_else(|| format_from_extension(&args.out));
    let bytes = match is_stdio(&args.out) {
        true => {
            binary_to_stdout(&args.out)?;
            write_stdout(&args, format)?
        }
        false => {
            let hint = format!(
                "give a file name, e.g. {}",
                args.out.join("trace.pcap").display()
            );
            not_a_directory(&args.out, "--out", &hint)?;
            not_a_published_trace(&args.out, "--out", args.force)?;
            let (pending, bytes) =
                write_pending(args.profile, args.seed, args.packets, &args.out, format)
                    .with_context(|| format!("writing {}", args.out.display()))?;
            publish_over(pending, false, "--out", args.force)?;
            bytes
        }
    };
    let to = match is_stdio(&args.out) {
        true => "stdout".into(),
        false => args.out.display().to_string(),
    };
    crate::say!(
        "wrote {} packets of {} ({}, {format}) to {to}",
        lander_spool::human::count(args.packets),
        args.profile,
        lander_spool::human::bytes(bytes),
    );
    Ok(())
}

fn write_stdout(args: &Args, format: Format) -> anyhow::Result<u64> {
    let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let (bytes, mut out) = write_to(args.profile, args.seed, args.packets, out, format)?;
    out.flush()?;
    Ok(bytes)
}

/// The format a file name's extension suggests (pcap when none does).
pub fn format_from_extension(path: &std::path::Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("pcapng") => Format::Pcapng,
        Some("erf") => Format::Erf,
        _ => Format::Pcap,
    }
}
