//! `lander bench scrub`.

/// Arguments of `lander bench scrub`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander bench scrub`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander bench scrub is not available in this build")
}
