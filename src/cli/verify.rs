//! `lander verify`.

/// Arguments of `lander verify`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander verify`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander verify is not available in this build")
}
