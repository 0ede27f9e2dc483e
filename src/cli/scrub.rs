//! `lander scrub`.

/// Arguments of `lander scrub`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `lander scrub`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("lander scrub is not available in this build")
}
