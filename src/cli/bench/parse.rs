//! `lander bench parse`.

/// Arguments of `lander bench parse`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander bench parse`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander bench parse is not available in this build")
}
