//! `lander jobs`.

/// Arguments of `lander jobs`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander jobs`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander jobs is not available in this build")
}
