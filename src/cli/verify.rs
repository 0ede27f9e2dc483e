//! `lander verify RAW ANON`: proves, with its own header recogniser, that no raw address and
//! no raw payload run survived and that every kept header byte is understood.
//!
//! With `--key`, the mapping the scrub used is rebuilt (mapping and settings taken from the
//! manifest beside ANON when there is one, the key checked against its key id), so a raw
//! address the mapping maps to itself, its legitimate output, is not reported as a leak.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use lander_anonymize::key::{Key, Mapping};
use lander_anonymize::mapping::{Anonymizer, MapOptions};
use lander_anonymize::verify::{self, Progress, Report, VerifyError, VerifyOptions};
use lander_anonymize::PrefixList;
use lander_spool::manifest::{manifest_path, Anonymization, Manifest};
use lander_trace::Format;

use super::common::{no_stdio, JsonArg};
use super::exit::{ExitCode, INPUT, USAGE};
use super::output::Progress as Shown;

const AFTER_HELP: &str = "\
Checks (each finding names the 1-based frame of ANON, as tshark counts, the byte offset and the kind):
  address                  a raw address (4 or 16 bytes, any alignment) found in ANON: the packet's
                           own anywhere, any raw packet's outside the understood headers or in an
                           address field
  address-unchanged        an address field left as it was (with --key: unless a fixed point)
  payload-run              8 bytes of raw payload (own packet's, or any packet's, second pass)
  unexplained-header-byte  a header byte the verifier does not understand that is not zero/padding
  unmatched                an ANON record with no raw record of its timestamp and wire length

Exit status 1 means leaks were found.";

/// Arguments of `lander verify`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The raw trace.
    pub raw: PathBuf,
    /// Its scrubbed form.
    pub anon: PathBuf,
    /// Format of both traces (needed for ERF).
    #[arg(long)]
    pub format: Option<Format>,
    /// Findings listed at most (all are counted).
    #[arg(long, default_value_t = 50)]
    pub max_report: usize,
    #[command(flatten)]
    pub json: JsonArg,
    /// Worker threads (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
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

fn fail(code: i32, err: anyhow::Error) -> anyhow::Error {
    ExitCode(code, super::exit::describe(&err)).into()
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
        (None, Some(n)) => n.parse().map_err(|e| fail(INPUT, anyhow::anyhow!("{e}")))?,
        (None, None) => Mapping::CryptoPan,
    };
    let key = Key::read(mapping, key_path).map_err(|e| fail(INPUT, e.into()))?;
    if let Some(a) = &recorded {
        if a.key_id != key.id() {
            let msg = format!(
                "{}: key id {} differs from the manifest's {} (not the key this file was scrubbed with)",
                key_path.display(),
                key.id(),
                a.key_id
            );
            return Err(ExitCode(USAGE, msg).into());
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
            .try_for_each(|p| keep.add(&p))
            .map_err(|e| fail(INPUT, e.into()))?,
        false => args
            .keep_prefix
            .iter()
            .try_for_each(|p| keep.add(p))
            .map_err(|e| fail(USAGE, e.into()))?,
    }
    let options = MapOptions {
        pass4: pass(args.pass4, "pass4").map_err(|e| fail(USAGE, e))?,
        pass6: pass(args.pass6, "pass6").map_err(|e| fail(USAGE, e))?,
        keep,
    };
    Anonymizer::new(&key, &options).map_err(|e| fail(USAGE, e.into()))
}

/// Shows the pass, packets and share of the file on stderr while the ticker lives: a bar on
/// a terminal, a plain line now and then otherwise.
fn show_progress(progress: Arc<Progress>, sizes: [u64; 2]) -> crate::cli::output::Ticker {
    let tick = move |shown: &mut Shown| {
        let pass = progress.pass.load(Ordering::Relaxed);
        let packets = progress.packets.load(Ordering::Relaxed);
        let bytes = progress.bytes.load(Ordering::Relaxed);
        let size = if pass == 2 { sizes[1] } else { sizes[0] };
        let share = (bytes.saturating_mul(1000) / size.max(1)).min(1000);
        let what = match pass {
            1 => "collecting raw addresses",
            2 => "checking pairs",
            _ => "searching payload runs file-wide",
        };
        let packets = lander_spool::human::count(packets);
        shown.set(share, &format!("pass {pass}/3 {what}: {packets} packets"));
    };
    crate::cli::output::Ticker::start(Shown::new("verify", Some(1000)), tick, Shown::finish)
}

fn print_text(report: &Report, checked: bool) {
    for f in &report.findings {
        let raw = f
            .raw_frame
            .map(|r| format!(" (raw frame {r})"))
            .unwrap_or_default();
        let offset = f.offset.map(|o| format!(" offset {o}")).unwrap_or_default();
        println!(
            "frame {}{raw}{offset}: {}: {}",
            f.frame,
            f.kind.name(),
            f.detail
        );
    }
    if report.findings_total > report.findings.len() as u64 {
        println!(
            "... {} more findings",
            report.findings_total - report.findings.len() as u64
        );
    }
    let fixed = match checked {
        true => format!(", {} fixed points of the mapping", report.fixed_points),
        false => String::new(),
    };
    let verdict = if report.clean() {
        "clean"
    } else {
        "leaks found"
    };
    println!(
        "{verdict}: {} raw packets, {} scrubbed, {} unmatched, {} with findings ({} findings), {} raw IPv4 and {} IPv6 addresses, {} address collisions{fixed}",
        report.raw_packets,
        report.anon_packets,
        report.unmatched,
        report.leaky_packets,
        report.findings_total,
        report.raw_v4_addresses,
        report.raw_v6_addresses,
        report.collisions,
    );
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Runs `lander verify`; exit status 1 when something leaked, 2 on a usage error, 3 when an
/// input could not be read (the contract of [`super::exit`]).
pub fn run(args: Args) -> anyhow::Result<()> {
    let why = "the verifier reads both traces more than once; save a stream to a file first";
    no_stdio(&args.raw, "RAW", why)?;
    no_stdio(&args.anon, "ANON", why)?;
    let anonymizer = args.key.as_deref().map(|k| mapping(&args, k)).transpose()?;
    let checked = anonymizer.is_some();
    let progress = Arc::new(Progress::default());
    let options = VerifyOptions {
        limit: args.max_report,
        threads: args.threads,
        mapping: anonymizer,
        progress: Some(Arc::clone(&progress)),
        ..VerifyOptions::default()
    };
    let shower = show_progress(Arc::clone(&progress), [size(&args.raw), size(&args.anon)]);
    let result = verify::verify_files(&args.raw, &args.anon, args.format, &options);
    drop(shower);
    let report = result.map_err(|e: VerifyError| fail(INPUT, e.into()))?;
    match args.json.json {
        true => {
            let json = serde_json::json!({
                "raw": args.raw,
                "anon": args.anon,
                "clean": report.clean(),
                "report": report,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        false => print_text(&report, checked),
    }
    match report.clean() {
        true => Ok(()),
        false => Err(ExitCode::found(format!(
            "leaks found in {}",
            args.anon.display()
        ))),
    }
}
