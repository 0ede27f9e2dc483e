//! `lander verify RAW ANON`: proves that no raw address and no raw payload run survived.
//!
//! With `--key`, the mapping the scrub used is rebuilt (mapping and settings taken from the
//! manifest beside ANON when there is one, the key checked against its key id), so a raw
//! address the mapping maps to itself, its legitimate output, is not reported as a leak.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use lander_anonymize::key::{Key, Mapping};
use lander_anonymize::mapping::{Anonymizer, MapOptions};
use lander_anonymize::{verify, PrefixList};
use lander_capture::format::TraceReader;
use lander_capture::manifest::{manifest_path, Anonymization, Manifest};
use lander_capture::Format;

use super::common::ExitCode;

/// Arguments of `lander verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The raw trace.
    pub raw: PathBuf,
    /// Its scrubbed form.
    pub anon: PathBuf,
    /// Format of both traces (needed for ERF).
    #[arg(long)]
    pub format: Option<Format>,
    /// Leaks listed at most.
    #[arg(long, default_value_t = 50)]
    pub max_report: usize,
    /// The key the scrub used: raw addresses the mapping maps to themselves are then no leak.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The mapping the scrub used (default: the manifest's, else cryptopan).
    #[arg(long, requires = "key")]
    pub mapping: Option<Mapping>,
    /// High IPv4 bits passed unchanged (default: the manifest's, else 0).
    #[arg(long, requires = "key")]
    pub pass4: Option<u8>,
    /// High IPv6 bits passed unchanged (default: the manifest's, else 0).
    #[arg(long, requires = "key")]
    pub pass6: Option<u8>,
    /// Prefix passed unchanged; repeatable (default: the manifest's).
    #[arg(long = "keep-prefix", value_name = "ADDR/LEN", requires = "key")]
    pub keep_prefix: Vec<String>,
}

fn open(path: &Path, format: Option<Format>) -> anyhow::Result<TraceReader> {
    let r = match format {
        Some(f) => TraceReader::open_with_format(path, f),
        None => TraceReader::open(path),
    };
    r.with_context(|| format!("opening {}", path.display()))
}

/// The mapping of `--key`, with the settings of the manifest beside `anon` where not given.
fn mapping(args: &Args, key_path: &Path) -> anyhow::Result<Anonymizer> {
    let recorded: Option<Anonymization> = Manifest::read(&manifest_path(&args.anon))
        .ok()
        .and_then(|m| m.anonymization);
    let setting = |name: &str| {
        recorded
            .as_ref()
            .and_then(|a| a.settings.get(name).cloned())
    };
    let name = recorded.as_ref().map(|a| a.mapping.clone());
    let mapping = match (args.mapping, name) {
        (Some(m), _) => m,
        (None, Some(n)) => n.parse()?,
        (None, None) => Mapping::CryptoPan,
    };
    let key = Key::read(mapping, key_path)?;
    if let Some(a) = &recorded {
        if a.key_id != key.id() {
            bail!(
                "{}: key id {} differs from the manifest's {} (not the key this file was scrubbed with)",
                key_path.display(),
                key.id(),
                a.key_id
            );
        }
    }
    let pass = |given: Option<u8>, name: &str| -> anyhow::Result<u8> {
        match (given, setting(name)) {
            (Some(p), _) => Ok(p),
            (None, Some(text)) => text.parse().with_context(|| format!("manifest {name}")),
            (None, None) => Ok(0),
        }
    };
    let mut keep = PrefixList::default();
    let listed = setting("keep_prefixes").unwrap_or_default();
    let from_manifest = listed.split(',').filter(|p| !p.is_empty());
    match args.keep_prefix.is_empty() {
        true => from_manifest
            .map(str::to_string)
            .try_for_each(|p| keep.add(&p))?,
        false => args.keep_prefix.iter().try_for_each(|p| keep.add(p))?,
    }
    let options = MapOptions {
        pass4: pass(args.pass4, "pass4")?,
        pass6: pass(args.pass6, "pass6")?,
        keep,
    };
    Ok(Anonymizer::new(&key, &options)?)
}

/// Runs `lander verify`; exits with status 2 when something leaked.
pub fn run(args: Args) -> anyhow::Result<()> {
    let anonymizer = args.key.as_deref().map(|k| mapping(&args, k)).transpose()?;
    let raw = open(&args.raw, args.format)?;
    let anon = open(&args.anon, args.format)?;
    let report = verify::verify(raw, anon, args.max_report, anonymizer.as_ref())?;
    for leak in &report.leaks {
        println!("packet {} (ts {}): {}", leak.index, leak.ts_ns, leak.what);
    }
    let fixed = match anonymizer {
        Some(_) => format!(", {} fixed points of the mapping", report.fixed_points),
        None => String::new(),
    };
    let summary = format!(
        "{} raw packets, {} scrubbed, {} unmatched, {} with leaks{fixed}",
        report.raw_packets, report.anon_packets, report.unmatched, report.leaky_packets
    );
    if report.clean() {
        println!("clean: {summary}");
        return Ok(());
    }
    Err(ExitCode(2, format!("leaks found: {summary}")).into())
}
