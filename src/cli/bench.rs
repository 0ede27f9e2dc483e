//! `lander bench`.

/// Arguments of `lander bench`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander bench`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander bench is not available in this build")
}
