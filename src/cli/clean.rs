//! `lander clean`: retention of old files by the configuration's `[retention]` (age and size
//! per class), and leftovers of interrupted writers and attempts.

use lander_dispatch::clean::{self, CleanReport};

use super::common::{ConfigArg, JsonArg};

/// Arguments of `lander clean`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// Only say what would be removed.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    json: JsonArg,
}

/// Runs `lander clean`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let report = clean::clean(&config, args.dry_run)?;
    if args.json.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    anyhow::ensure!(
        report.errors.is_empty(),
        "{} files could not be removed",
        report.errors.len()
    );
    Ok(())
}

fn print_text(r: &CleanReport) {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    for rm in &r.removed {
        let first = rm.paths.first().map(|p| p.display().to_string());
        let more = rm.paths.len().saturating_sub(1);
        let with = if more > 0 {
            format!(" (+{more} companion files)")
        } else {
            String::new()
        };
        println!(
            "{verb} {} [{}, {}, {:.1} days old, {} bytes]{with}",
            first.unwrap_or_default(),
            rm.class,
            rm.why,
            rm.age_secs / 86_400.0,
            rm.bytes
        );
    }
    for e in &r.errors {
        eprintln!("error: {e}");
    }
    println!(
        "{verb} {} units, {} bytes; kept {} in use by a claim",
        r.removed.len(),
        r.bytes,
        r.kept_in_use
    );
}
