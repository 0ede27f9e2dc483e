//! `lander demo`.

/// Arguments of `lander demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander demo`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander demo is not available in this build")
}
