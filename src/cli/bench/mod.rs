//! `lander bench`: end-to-end benchmarks, each beside its peer tool in the same run.

use clap::Subcommand;

pub mod capture;
pub mod dispatch;
pub mod live;
pub mod parse;
pub mod scrub;
pub mod suite;

/// Arguments of `lander bench`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    which: Option<Which>,
    /// The whole suite (when no benchmark is named).
    #[command(flatten)]
    suite: suite::Args,
}

#[derive(Debug, Subcommand)]
enum Which {
    /// Parse a trace beside `tcpdump -r FILE -w /dev/null`.
    Parse(parse::Args),
    /// Replay into rotated, published files beside `tcpdump -r IN -w OUT` and `dd conv=fsync`.
    Capture(capture::Args),
    /// Scrub and anonymize beside `traceanon`.
    Scrub(scrub::Args),
    /// Dispatch many small files end to end on the local backend.
    Dispatch(dispatch::Args),
    /// Live capture on a veth pair under trafgen load beside `tcpdump -w` and `netsniff-ng`.
    Live(live::Args),
}

/// Runs one benchmark, or the suite (`lander bench --quick`, `--full`).
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        None => suite::run(args.suite),
        Some(Which::Parse(a)) => parse::run(a),
        Some(Which::Capture(a)) => capture::run(a),
        Some(Which::Scrub(a)) => scrub::run(a),
        Some(Which::Dispatch(a)) => dispatch::run(a),
        Some(Which::Live(a)) => live::run(a),
    }
}

/// Makes the page cache hold the input `path` as it holds a file read from disk: written back,
/// dropped, and read once. Every tool of a comparison then reads the same cached pages, in the
/// large folios the kernel's readahead makes, whatever way the file was written. Measured with
/// `dd bs=1M of=/dev/null` on a 2-core VM: 24-27 GB/s out of the cache once read back from
/// disk, falling to 13 GB/s within half an hour of other work and to 8 GB/s after hours, and
/// 20 GB/s for a file just written; for the 369 MB mixed trace the difference (0.03 s) is
/// 40 % of our scrub's time and 3 % of traceanon's. The suite does this before each group.
pub fn cache_as_read(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut file = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    lander_spool::os::drop_cached(&file)
        .and_then(|()| std::io::copy(&mut file, &mut std::io::sink()))
        .with_context(|| format!("reading {} into the page cache", path.display()))?;
    Ok(())
}

/// The median (the mean of the middle two for an even count); 0 for none.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(super::median(&[]), 0.0);
    }
}
