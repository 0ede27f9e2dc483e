//! `lander keygen`.

/// Arguments of `lander keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander keygen`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander keygen is not available in this build")
}
