//! `lander user`: a user's dispatcher over their `incoming/` (runs as the user).

use lander_dispatch::control;

use super::common::{wrapper_argv, GlobalConfigArg, JsonArg, RunOnce};

/// Arguments of `lander user`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: GlobalConfigArg,
    /// The user (default: $USER).
    #[arg(long, short, global = true)]
    user: Option<String>,
    #[command(flatten)]
    json: JsonArg,
    #[command(subcommand)]
    mode: RunOnce,
}

/// Runs `lander user`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let user = match args.user {
        Some(u) => u,
        None => std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .map_err(|_| {
                super::common::ExitCode::usage("--user NAME is required ($USER is not set)")
            })?,
    };
    let mut engine = control::user_engine(&config, &user, wrapper_argv()?)?;
    args.mode.drive(&mut engine, &config, args.json)
}
