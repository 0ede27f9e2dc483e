//! `lander anon`.

/// Arguments of `lander anon`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander anon`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander anon is not available in this build")
}
