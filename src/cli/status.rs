//! `lander status`.

/// Arguments of `lander status`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander status`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander status is not available in this build")
}
