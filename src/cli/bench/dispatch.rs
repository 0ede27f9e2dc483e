//! `lander bench dispatch`.

/// Arguments of `lander bench dispatch`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander bench dispatch`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander bench dispatch is not available in this build")
}
