//! `lander quota`.

/// Arguments of `lander quota`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander quota`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander quota is not available in this build")
}
