//! `lander quota`: per-user disk use against the configured quotas.

use lander_dispatch::quota::{self, QuotaReport};

use crate::cli::common::{ConfigArg, ExitCode, JsonArg};

/// Arguments of `lander quota`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    json: JsonArg,
    /// Exit with status 1 when a user is over quota.
    #[arg(long)]
    check: bool,
}

/// Runs `lander quota`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let report = quota::usage(&config)?;
    if args.json.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    if args.check && !report.hogs.is_empty() {
        let msg = format!("over quota: {}", report.hogs.join(", "));
        return Err(ExitCode(1, msg).into());
    }
    Ok(())
}

fn print_text(r: &QuotaReport) {
    println!(
        "{:<16} {:>8} {:>14} {:>14} {:>14} {:>6}",
        "user", "files", "bytes", "shared", "quota", "use"
    );
    for u in &r.users {
        let (quota, pct) = match u.quota {
            Some(q) => (
                q.to_string(),
                format!("{:.0}%", u.bytes as f64 * 100.0 / q as f64),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let flag = if u.over { "  OVER QUOTA" } else { "" };
        println!(
            "{:<16} {:>8} {:>14} {:>14} {:>14} {:>6}{flag}",
            u.user, u.files, u.bytes, u.shared_with_scrubbed, quota, pct
        );
    }
    println!("(shared: bytes also linked from scrubbed/, freed only when both let go)");
    if !r.hogs.is_empty() {
        println!("over quota: {}", r.hogs.join(", "));
    }
}
