//! `lander gen`.

/// Arguments of `lander gen`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander gen`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander gen is not available in this build")
}
