//! `lander anon ip`: anonymize (or de-anonymize) single addresses.

use std::io::{self, BufRead, Write};
use std::net::IpAddr;

use anyhow::Context;
use clap::Subcommand;

use super::common::MappingArgs;

/// Arguments of `lander anon`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
}

#[derive(Debug, Subcommand)]
enum Which {
    /// Map addresses given as arguments, or one per line on stdin; one result per line.
    Ip(IpArgs),
}

/// Arguments of `lander anon ip`.
#[derive(Debug, clap::Args)]
pub struct IpArgs {
    #[command(flatten)]
    mapping: MappingArgs,
    /// Invert the mapping.
    #[arg(long)]
    reverse: bool,
    /// Addresses (default: read from stdin).
    addrs: Vec<String>,
}

/// Runs `lander anon`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Which::Ip(args) = args.which;
    let (anon, _) = args.mapping.build()?;
    let map = |text: &str| -> anyhow::Result<IpAddr> {
        let addr: IpAddr = text
            .trim()
            .parse()
            .with_context(|| format!("{text:?} is not an IP address"))?;
        Ok(match (addr, args.reverse) {
            (IpAddr::V4(a), false) => IpAddr::V4(anon.anon_v4(a.into()).into()),
            (IpAddr::V4(a), true) => IpAddr::V4(anon.deanon_v4(a.into()).into()),
            (IpAddr::V6(a), false) => IpAddr::V6(anon.anon_v6(a.into()).into()),
            (IpAddr::V6(a), true) => IpAddr::V6(anon.deanon_v6(a.into()).into()),
        })
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.addrs.is_empty() {
        for line in io::stdin().lock().lines() {
            let line = line?;
            if !line.trim().is_empty() {
                writeln!(out, "{}", map(&line)?)?;
            }
        }
    } else {
        for a in &args.addrs {
            writeln!(out, "{}", map(a)?)?;
        }
    }
    out.flush()?;
    Ok(())
}
