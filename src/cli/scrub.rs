//! `lander-scrub` / `lander scrub`: scrub payloads and anonymize addresses in trace files.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::Context;
use lander_anonymize::key::Key;
use lander_anonymize::mapping::Anonymizer;
use lander_anonymize::scrub::{self, Provenance, ScrubConfig, ScrubSummary};
use lander_anonymize::walker::{Checksums, MacKey, MacMode, MplsPolicy, Payload, Policy};
use lander_spool::human;
use lander_spool::manifest::manifest_path;
use lander_spool::publish::is_temp_name;
use lander_trace::Format;

use super::common::{
    binary_to_stdout, is_stdio, no_stdio, not_a_directory, not_the_input, ExitCode, MappingArgs,
};
use super::output::{self, ReadWatch};

/// Arguments of `lander-scrub` and `lander scrub`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input trace file, `-` for stdin (omit with --in-dir).
    pub input: Option<PathBuf>,
    /// Output trace file, published with its manifest, or `-` for stdout (the trace alone); omit with --out-dir.
    pub output: Option<PathBuf>,
    /// Scrub every trace file in this directory...
    #[arg(long, requires = "out_dir")]
    pub in_dir: Option<PathBuf>,
    /// ...into this directory, under the same names.
    #[arg(long, requires = "in_dir")]
    pub out_dir: Option<PathBuf>,
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// Payload policy: drop (cut after the last transport header), keep:N or zero.
    #[arg(long, default_value = "drop")]
    pub payload: Payload,
    /// Checksum policy: fix, zero or keep.
    #[arg(long, default_value = "fix")]
    pub checksums: Checksums,
    /// MAC addresses (Ethernet, ARP, Linux cooked headers): keep, zero, scramble (a keyed
    /// pseudorandom function of the address, with a key derived from the scrub key;
    /// broadcast, group and locally-administered bits kept) or scramble-keep-oui (as
    /// scramble, keeping the vendor's first 3 bytes).
    #[arg(long, default_value = "keep")]
    pub mac: MacMode,
    /// What follows an MPLS label stack: auto (decided by evidence: a control word means an
    /// Ethernet pseudowire, IP only with consistent lengths and checksum, else an Ethernet
    /// pseudowire if it parses, else cut), ip (by the first nibble), ethernet, or cut.
    #[arg(long, default_value = "auto")]
    pub mpls: MplsPolicy,
    /// Drop packets whose headers cannot be parsed whole (default: cut them there).
    #[arg(long)]
    pub drop_unparsed: bool,
    /// Threads, each reading, walking and writing chunks in turn (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Output format (default: the input's).
    #[arg(long)]
    pub format: Option<Format>,
    /// Input format (needed for ERF, which has no magic number).
    #[arg(long)]
    pub input_format: Option<Format>,
    /// fsync output files and manifests before publishing them.
    #[arg(long)]
    pub fsync: bool,
    /// Scrub again even when the output and its manifest exist.
    #[arg(long)]
    pub force: bool,
    /// Hash the input too (checked against the raw manifest's digest when there is one;
    /// without this flag the manifest's digest is recorded as the source's).
    #[arg(long)]
    pub hash_source: bool,
}

/// Runs `lander-scrub`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let jobs = jobs(&args)?;
    let (anon, key) = args.mapping.build()?;
    let config = config(&args, &key);
    let provenance = Provenance {
        key_id: key.id(),
        settings: args.mapping.settings(),
    };
    let many = jobs.len() > 1;
    let progress = ReadWatch::start("scrub", input_bytes(&jobs));
    let mut total = ScrubSummary::default();
    for (input, output) in &jobs {
        let summary = match (is_stdio(input), is_stdio(output)) {
            (false, false) => match scrub_one(&args, input, output, &anon, &config, &provenance)? {
                Some(summary) => summary,
                None => continue,
            },
            _ => scrub_streams(input, output, &anon, &config, &provenance)?,
        };
        if !many || output::per_item() {
            report(input, output, &summary);
        }
        add(&mut total, &summary);
    }
    progress.finish();
    if many {
        let files = format!("{} files", jobs.len());
        report(
            &args.in_dir.clone().unwrap_or_default(),
            Path::new(&files),
            &total,
        );
    }
    Ok(())
}

/// The bytes of all inputs, when all are regular files (for the progress bar).
fn input_bytes(jobs: &[(PathBuf, PathBuf)]) -> Option<u64> {
    let size = |p: &PathBuf| {
        let meta = std::fs::metadata(p).ok()?;
        meta.is_file().then_some(meta.len())
    };
    jobs.iter().map(|(input, _)| size(input)).sum()
}

/// Scrubs one file into a published file and manifest; `None` when it already was.
fn scrub_one(
    args: &Args,
    input: &Path,
    output: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
    provenance: &Provenance,
) -> anyhow::Result<Option<ScrubSummary>> {
    if !args.force && output.exists() && manifest_path(output).exists() {
        tracing::info!("{} is already scrubbed; skipping", output.display());
        return Ok(None);
    }
    let (summary, _) = scrub::scrub_file(input, output, anon, config, provenance)
        .with_context(|| format!("scrubbing {}", input.display()))?;
    Ok(Some(summary))
}

/// Scrubs with `-` on one side or both: a file output is published whole with its manifest,
/// under its name only when complete (the manifest names no source file); stdout gets the
/// trace alone.
fn scrub_streams(
    input: &Path,
    output: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
    provenance: &Provenance,
) -> anyhow::Result<ScrubSummary> {
    let (name, source): (String, Box<dyn Read + Send>) = match is_stdio(input) {
        true => ("<stdin>".into(), Box::new(io::stdin())),
        false => {
            let file = File::open(input).with_context(|| input.display().to_string())?;
            (input.display().to_string(), Box::new(file))
        }
    };
    if is_stdio(output) {
        // the workers write in turn, so they share a descriptor of stdout (unbuffered, as
        // nothing else is written to it)
        io::stdout().flush()?;
        let mut out = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        let read = scrub::scrub_read(&name, source, &mut out, Path::new("<stdout>"), anon, config)?;
        return Ok(read.summary);
    }
    let (summary, _) = scrub::scrub_stream_file(&name, source, output, anon, config, provenance)?;
    Ok(summary)
}

fn add(total: &mut ScrubSummary, s: &ScrubSummary) {
    total.packets_in += s.packets_in;
    total.packets_out += s.packets_out;
    total.dropped += s.dropped;
    total.bytes_in += s.bytes_in;
    total.bytes_out += s.bytes_out;
    for (k, n) in &s.reasons {
        *total.reasons.entry(k.clone()).or_default() += n;
    }
    for (k, n) in &s.neutralised {
        *total.neutralised.entry(k.clone()).or_default() += n;
    }
}

/// The walker and pipeline settings of `args`.
pub fn config(args: &Args, key: &Key) -> ScrubConfig {
    let mac = args.mac.with_key(MacKey(key.mac_key()));
    ScrubConfig {
        policy: Policy {
            payload: args.payload,
            checksums: args.checksums,
            mac,
            mpls: args.mpls,
        },
        drop_unparsed: args.drop_unparsed,
        threads: args.threads.unwrap_or_else(super::common::default_threads),
        format: args.format,
        input_format: args.input_format,
        fsync: args.fsync,
        hash_source: args.hash_source,
    }
}

fn jobs(args: &Args) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    match (&args.input, &args.output, &args.in_dir, &args.out_dir) {
        (Some(i), Some(o), None, None) => {
            let dirs = "to scrub every file of a directory, give --in-dir and --out-dir";
            not_a_directory(i, "IN", dirs)?;
            not_a_directory(o, "OUT", dirs)?;
            not_the_input(i, o, "OUT")?;
            binary_to_stdout(o)?;
            Ok(vec![(i.clone(), o.clone())])
        }
        (None, None, Some(i), Some(o)) => {
            no_stdio(i, "--in-dir", "give a directory")?;
            no_stdio(o, "--out-dir", "give a directory")?;
            not_the_input(i, o, "--out-dir")?;
            dir_jobs(i, o)
        }
        (Some(_), None, None, None) => Err(ExitCode::usage(
            "OUT is missing: give IN OUT (`-` for stdin or stdout), or --in-dir and --out-dir",
        )),
        _ => Err(ExitCode::usage(
            "give IN OUT (`-` for stdin or stdout), or --in-dir and --out-dir",
        )),
    }
}

fn dir_jobs(in_dir: &Path, out_dir: &Path) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let mut jobs = Vec::new();
    for entry in std::fs::read_dir(in_dir).with_context(|| in_dir.display().to_string())? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_temp_name(&name) || name.ends_with(".json") || !entry.file_type()?.is_file() {
            continue;
        }
        jobs.push((entry.path(), out_dir.join(&name)));
    }
    jobs.sort();
    Ok(jobs)
}

fn report(input: &Path, output: &Path, s: &ScrubSummary) {
    let shown = |p: &Path| match is_stdio(p) {
        true => "-".to_string(),
        false => p.display().to_string(),
    };
    crate::say!(
        "{} -> {}: {} packets in, {} out, {} dropped; {} -> {}",
        shown(input),
        shown(output),
        human::count(s.packets_in),
        human::count(s.packets_out),
        human::count(s.dropped),
        human::bytes(s.bytes_in),
        human::bytes(s.bytes_out)
    );
    if !output::per_item() {
        return;
    }
    for (reason, n) in &s.reasons {
        eprintln!("  {reason}: {}", human::count(*n));
    }
    for (kind, n) in &s.neutralised {
        eprintln!("  neutralised {kind}: {}", human::count(*n));
    }
}
