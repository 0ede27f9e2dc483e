//! `lander clean`.

/// Arguments of `lander clean`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander clean`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander clean is not available in this build")
}
