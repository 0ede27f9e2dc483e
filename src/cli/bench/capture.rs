//! `lander bench capture`.

/// Arguments of `lander bench capture`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander bench capture`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander bench capture is not available in this build")
}
