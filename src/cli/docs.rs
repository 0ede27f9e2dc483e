//! `lander completions SHELL` and `lander man --out DIR`: shell completions and man pages for
//! every binary, made from the definitions the binaries parse.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Command;
use clap_complete::Shell;

use super::app::all_commands;

/// Arguments of `lander completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
    /// The binary: lander, lander-capture, lander-scrub or lander-job (default: lander on
    /// stdout, all four with --out-dir).
    #[arg(long, value_name = "NAME")]
    pub bin: Option<String>,
    /// Write one file per binary into this directory instead of stdout (`lander.bash`,
    /// `_lander`, `lander.fish`, ...).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Arguments of `lander man`.
#[derive(Debug, clap::Args)]
pub struct ManDir {
    /// Directory the pages are written into (`lander.1`, `lander-info.1`, ...).
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `lander completions`.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.out_dir {
        let why = "it is a directory; without --out-dir the completions go to stdout";
        super::common::no_stdio(dir, "--out-dir", why)?;
    }
    let bin = match (&args.bin, &args.out_dir) {
        (Some(bin), _) => Some(bin.as_str()),
        (None, None) => Some("lander"),
        (None, Some(_)) => None,
    };
    let commands = chosen(bin)?;
    for mut cmd in commands {
        let name = cmd.get_name().to_string();
        match &args.out_dir {
            Some(dir) => {
                let path = clap_complete::generate_to(args.shell, &mut cmd, &name, dir)
                    .with_context(|| format!("writing completions into {}", dir.display()))?;
                crate::say!("wrote {}", path.display());
            }
            None => {
                let mut out = std::io::stdout().lock();
                clap_complete::generate(args.shell, &mut cmd, name, &mut out);
                out.flush()?;
            }
        }
    }
    Ok(())
}

fn chosen(bin: Option<&str>) -> anyhow::Result<Vec<Command>> {
    let all = all_commands();
    let Some(bin) = bin else { return Ok(all) };
    let names: Vec<String> = all.iter().map(|c| c.get_name().to_string()).collect();
    let one: Vec<Command> = all.into_iter().filter(|c| c.get_name() == bin).collect();
    if one.is_empty() {
        let msg = format!("no binary {bin:?} (binaries: {})", names.join(", "));
        return Err(super::exit::ExitCode::usage(msg));
    }
    Ok(one)
}

/// Runs `lander man`: a page per binary and per subcommand (`lander-info.1`).
pub fn man(args: ManDir) -> anyhow::Result<()> {
    let why = "a page per binary and subcommand is written into a directory";
    super::common::no_stdio(&args.out, "--out", why)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut written = 0;
    for cmd in all_commands() {
        written += write_pages(cmd, &args.out)?;
    }
    crate::say!("wrote {written} man pages into {}", args.out.display());
    Ok(())
}

/// Writes the page of `cmd` and of each visible subcommand; returns how many.
fn write_pages(cmd: Command, dir: &Path) -> anyhow::Result<usize> {
    let mut cmd = cmd;
    cmd.build();
    let mut pages = 0;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{}-{}", cmd.get_name(), sub.get_name());
        pages += write_pages(sub.clone().name(name), dir)?;
    }
    let path = dir.join(format!("{}.1", cmd.get_name()));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page)?;
    lander_spool::publish::write_atomic(&path, &page, false)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(pages + 1)
}
