//! `lander-scrub` / `lander scrub`: scrub payloads and anonymize addresses in trace files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use lander_anonymize::key::{Key, Mapping};
use lander_anonymize::mapping::{Anonymizer, MapOptions};
use lander_anonymize::scrub::{self, Provenance, ScrubConfig, ScrubSummary};
use lander_anonymize::walker::{Checksums, MacKey, MacMode, MplsPolicy, Payload, Policy};
use lander_anonymize::PrefixList;
use lander_spool::manifest::manifest_path;
use lander_spool::publish::is_temp_name;
use lander_trace::Format;

/// The address mapping options shared by `scrub` and `anon ip`.
#[derive(Debug, Clone, clap::Args)]
pub struct MappingArgs {
    /// Address mapping: cryptopan, cryptopant or libtrace.
    #[arg(long, default_value = "cryptopan")]
    pub mapping: Mapping,
    /// Key file (see `lander keygen`); must not be readable by group or others.
    #[arg(long)]
    pub key: PathBuf,
    /// High IPv4 bits passed unchanged.
    #[arg(long, default_value_t = 0)]
    pub pass4: u8,
    /// High IPv6 bits passed unchanged.
    #[arg(long, default_value_t = 0)]
    pub pass6: u8,
    /// Prefix passed unchanged (don't-scramble list); repeatable.
    #[arg(long = "keep-prefix", value_name = "ADDR/LEN")]
    pub keep_prefix: Vec<String>,
}

impl MappingArgs {
    /// Reads the key and builds the mapping; returns it with its key.
    pub fn build(&self) -> anyhow::Result<(Anonymizer, Key)> {
        let key = Key::read(self.mapping, &self.key)?;
        let mut keep = PrefixList::default();
        for p in &self.keep_prefix {
            keep.add(p)?;
        }
        let opts = MapOptions {
            pass4: self.pass4,
            pass6: self.pass6,
            keep,
        };
        Ok((Anonymizer::new(&key, &opts)?, key))
    }

    fn settings(&self) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        s.insert("pass4".into(), self.pass4.to_string());
        s.insert("pass6".into(), self.pass6.to_string());
        if !self.keep_prefix.is_empty() {
            s.insert("keep_prefixes".into(), self.keep_prefix.join(","));
        }
        s
    }
}

/// Arguments of `lander-scrub` and `lander scrub`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input trace file (omit with --in-dir).
    pub input: Option<PathBuf>,
    /// Output trace file (omit with --out-dir).
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
    /// Worker threads (default: all cores).
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
    let (anon, key) = args.mapping.build()?;
    let config = config(&args, &key);
    let provenance = Provenance {
        key_id: key.id(),
        settings: args.mapping.settings(),
    };
    for (input, output) in jobs(&args)? {
        if !args.force && output.exists() && manifest_path(&output).exists() {
            tracing::info!("{} is already scrubbed; skipping", output.display());
            continue;
        }
        let (summary, _) = scrub::scrub_file(&input, &output, &anon, &config, &provenance)
            .with_context(|| format!("scrubbing {}", input.display()))?;
        report(&input, &output, &summary);
    }
    Ok(())
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
        threads: args.threads.unwrap_or_else(default_threads),
        format: args.format,
        input_format: args.input_format,
        fsync: args.fsync,
        hash_source: args.hash_source,
    }
}

/// All available cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn jobs(args: &Args) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    match (&args.input, &args.output, &args.in_dir, &args.out_dir) {
        (Some(i), Some(o), None, None) => Ok(vec![(i.clone(), o.clone())]),
        (None, None, Some(i), Some(o)) => dir_jobs(i, o),
        _ => bail!("give IN OUT, or --in-dir and --out-dir"),
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
    eprintln!(
        "{} -> {}: {} packets in, {} out, {} dropped; {} -> {} bytes",
        input.display(),
        output.display(),
        s.packets_in,
        s.packets_out,
        s.dropped,
        s.bytes_in,
        s.bytes_out
    );
    for (reason, n) in &s.reasons {
        eprintln!("  {reason}: {n}");
    }
    for (kind, n) in &s.neutralised {
        eprintln!("  neutralised {kind}: {n}");
    }
}
