//! `lander info FILE...`: what a trace holds, at `capinfos` parity: format, link type,
//! timestamp precision, counts, sizes, times, duration, rates, average packet size, time order
//! and, with `--hash`, the file's SHA-256 and BLAKE3. Human-readable by default, exact with
//! `--json`.

mod digest;
mod render;

use std::io::Read;
use std::path::{Path, PathBuf};

use lander_trace::format::TraceReader;
use lander_trace::summary::Summary;
use lander_trace::Format;
use serde::Serialize;

use super::common::{is_stdio, not_a_directory, JsonArg};
use digest::{Digests, Finish, HashingRead};

/// Arguments of `lander info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trace files (`-` for stdin).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
    /// Input format, for ERF from a pipe (default: detected).
    #[arg(long)]
    pub format: Option<Format>,
    /// Hash each file as it is read: SHA-256 (as capinfos and sha256sum) and BLAKE3 (as the
    /// manifests).
    #[arg(long)]
    pub hash: bool,
}

/// What `lander info` reports about one file.
#[derive(Debug, Serialize)]
pub struct Info {
    /// The file.
    pub file: String,
    /// Its format.
    pub format: Format,
    /// Size in bytes (not for stdin).
    pub size: Option<u64>,
    /// Link type name of the first interface.
    pub link_type: String,
    /// Link type number.
    pub link_type_number: u32,
    /// Snapshot length.
    pub snaplen: u32,
    /// Timestamp precision: `microseconds`, `nanoseconds`, ... or `per-interface`.
    pub precision: String,
    /// Decimal digits of the timestamps, where one number says it (6 for microseconds).
    pub precision_digits: Option<u8>,
    /// Counts, times and protocols.
    pub summary: Summary,
    /// Rates and averages, as capinfos computes them.
    pub rates: Rates,
    /// SHA-256 and BLAKE3 of the file, with `--hash`.
    pub hashes: Option<Digests>,
    /// The read error that ended the file early, if any.
    pub error: Option<String>,
}

/// Rates and averages over the capture duration (earliest to latest timestamp), of the data
/// size as capinfos counts it: the packets' lengths on the wire (before any snaplen cut).
/// `None` where capinfos shows none (no packets, or a duration of zero).
#[derive(Debug, Serialize, PartialEq)]
pub struct Rates {
    /// Latest minus earliest timestamp, nanoseconds.
    pub duration_ns: u64,
    /// Wire bytes per second.
    pub data_byte_rate: Option<f64>,
    /// Wire bits per second.
    pub data_bit_rate: Option<f64>,
    /// Wire bytes per packet.
    pub average_packet_size: Option<f64>,
    /// Packets per second.
    pub average_packet_rate: Option<f64>,
    /// Every timestamp at or after the one before.
    pub strict_time_order: bool,
}

impl Rates {
    /// The rates of `s`.
    pub fn of(s: &Summary) -> Rates {
        let duration_ns = match (s.min_ts_ns, s.max_ts_ns) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        };
        let secs = duration_ns as f64 / 1e9;
        let per_second = |n: f64| (secs > 0.0).then(|| n / secs);
        Rates {
            duration_ns,
            data_byte_rate: per_second(s.wire_bytes as f64),
            data_bit_rate: per_second(s.wire_bytes as f64 * 8.0),
            average_packet_size: (s.packets > 0).then(|| s.wire_bytes as f64 / s.packets as f64),
            average_packet_rate: per_second(s.packets as f64),
            strict_time_order: s.out_of_order == 0,
        }
    }
}

/// Runs `lander info`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let [file] = args.files.as_slice() {
        return show(&inspect_with(file, args.format, args.hash)?, args.json);
    }
    let mut failed = 0;
    for file in &args.files {
        let info = match inspect_with(file, args.format, args.hash) {
            Ok(info) => info,
            Err(e) => {
                eprintln!("error: {}", super::exit::describe(&e));
                failed += 1;
                continue;
            }
        };
        failed += usize::from(show(&info, args.json).is_err());
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} files could not be read whole",
            args.files.len()
        );
    }
    Ok(())
}

/// Prints one file's info; an error when the file could not be read whole (the text says
/// where).
fn show(info: &Info, json: JsonArg) -> anyhow::Result<()> {
    match json.json {
        true => println!("{}", serde_json::to_string(info)?),
        false => print!("{}", render::text(info)),
    }
    match &info.error {
        Some(e) => anyhow::bail!("{e}"),
        None => Ok(()),
    }
}

/// Reads a whole trace into an [`Info`]; a read error mid-file is kept in `error`.
pub fn inspect(path: &Path, format: Option<Format>) -> anyhow::Result<Info> {
    inspect_with(path, format, false)
}

/// As [`inspect`], hashing the file on the way when `hash` is set.
pub fn inspect_with(path: &Path, format: Option<Format>, hash: bool) -> anyhow::Result<Info> {
    not_a_directory(path, "the input", "give a trace file")?;
    let hashing = hash.then(HashingRead::shared);
    let mut reader = match &hashing {
        Some(h) => open_hashed(path, format, h)?,
        None => super::common::open_input(path, format)?,
    };
    let mut summary = Summary::new();
    let error = loop {
        match reader.next() {
            Ok(Some(rec)) => summary.add(&rec),
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        }
    };
    let (precision, precision_digits) = precision(&reader);
    let hashes = hashing.map(|h| h.finish());
    Ok(Info {
        file: path.display().to_string(),
        format: reader.format(),
        size: std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len()),
        link_type: reader.link_type().name(),
        link_type_number: reader.link_type().0,
        snaplen: reader.snaplen(),
        precision,
        precision_digits,
        rates: Rates::of(&summary),
        summary,
        hashes,
        error,
    })
}

/// A reader over the file (or stdin) that hashes every byte the trace reader takes, so the
/// file is read once. The reader reads to the end before [`inspect_with`] takes the digests.
fn open_hashed(
    path: &Path,
    format: Option<Format>,
    hashing: &digest::Shared,
) -> anyhow::Result<TraceReader> {
    let (name, source): (String, Box<dyn Read + Send>) = match is_stdio(path) {
        true => ("<stdin>".into(), Box::new(std::io::stdin())),
        false => {
            let file = std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            (path.display().to_string(), Box::new(file))
        }
    };
    let stream = Box::new(HashingRead::new(source, hashing));
    let buffer = lander_trace::format::DEFAULT_STREAM_BUFFER;
    Ok(TraceReader::from_stream_with(
        &name, stream, format, buffer,
    )?)
}

/// The timestamp precision of what `reader` read, as capinfos names it.
fn precision(reader: &TraceReader) -> (String, Option<u8>) {
    use lander_trace::format::pcapng::TsResolution;
    let named = |digits: u8| {
        let name = match digits {
            0 => "seconds",
            3 => "milliseconds",
            6 => "microseconds",
            9 => "nanoseconds",
            _ => return (format!("10^-{digits} seconds"), Some(digits)),
        };
        (name.to_string(), Some(digits))
    };
    match reader.format() {
        Format::Pcap => named(6),
        Format::PcapNs => named(9),
        Format::Erf => ("2^-32 seconds (ERF)".to_string(), None),
        Format::Pcapng => {
            let mut resolutions = reader.interfaces().iter().map(|i| i.tsresol);
            let first = resolutions.next();
            match (first, resolutions.all(|r| Some(r) == first)) {
                (Some(TsResolution::Pow10(d)), true) => named(d),
                (Some(TsResolution::Pow2(b)), true) => (format!("2^-{b} seconds"), None),
                _ => ("per-interface".to_string(), None),
            }
        }
    }
}
