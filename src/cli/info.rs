//! `lander info`.

/// Arguments of `lander info`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander info`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander info is not available in this build")
}
