//! `lander keygen`: a fresh random key file, mode 0600.

use std::path::PathBuf;

use lander_anonymize::key::{Key, Mapping};

/// Arguments of `lander keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Mapping the key is for: cryptopan, cryptopant or libtrace.
    #[arg(long, default_value = "cryptopan")]
    pub mapping: Mapping,
    /// The key file to create (never overwritten).
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Runs `lander keygen`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let why = "a key is written only to a new file of mode 0600, never to a pipe or terminal";
    super::common::no_stdio(&args.out, "--out", why)?;
    let hint = format!(
        "give a new file name, e.g. {}",
        args.out.join("scrub.key").display()
    );
    super::common::not_a_directory(&args.out, "--out", &hint)?;
    if args.out.symlink_metadata().is_ok() {
        let msg = format!(
            "--out {} exists: a key is never overwritten (what was scrubbed with it could no \
             longer be checked); give a new name",
            args.out.display()
        );
        return Err(super::common::ExitCode::usage(msg));
    }
    let key = Key::generate(args.mapping).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
    key.write_new(&args.out)?;
    crate::say!(
        "wrote {} key {} to {}",
        args.mapping,
        key.id(),
        args.out.display()
    );
    Ok(())
}
