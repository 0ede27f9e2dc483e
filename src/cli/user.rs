//! `lander user`: a user's dispatcher over their `incoming/` (runs as the user).

use anyhow::Context;
use clap::Subcommand;
use lander_dispatch::control;

use super::common::{print_report, stop_flag, wrapper_argv, ConfigArg};

/// Arguments of `lander user`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// The user (default: $USER).
    #[arg(long, short, global = true)]
    user: Option<String>,
    /// Print the pass report as JSON (`once`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run as a daemon: pass after pass until TERM or INT.
    Run,
    /// One pass (safe from cron, also when passes overlap).
    Once,
}

/// Runs `lander user`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let user = match args.user {
        Some(u) => u,
        None => std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .context("--user NAME is required ($USER is not set)")?,
    };
    let mut engine = control::user_engine(&config, &user, wrapper_argv()?)?;
    match args.command {
        Command::Run => {
            let stop = stop_flag()?;
            super::daemon::run_logged(&mut engine, &config, &stop)
        }
        Command::Once => print_report(&engine.once()?, args.json),
    }
}
