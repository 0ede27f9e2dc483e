//! `lander dispatch`.

/// Arguments of `lander dispatch`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander dispatch`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander dispatch is not available in this build")
}
