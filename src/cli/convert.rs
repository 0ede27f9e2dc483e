//! `lander convert`.

/// Arguments of `lander convert`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander convert`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander convert is not available in this build")
}
