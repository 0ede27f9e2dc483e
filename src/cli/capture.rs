//! `lander capture`.

/// Arguments of `lander capture`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander capture`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander capture is not available in this build")
}
