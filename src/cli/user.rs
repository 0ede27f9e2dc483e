//! `lander user`.

/// Arguments of `lander user`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander user`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander user is not available in this build")
}
