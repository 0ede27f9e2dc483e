//! The file scrubber: a bounded parallel pipeline (reader thread, rayon workers, ordered
//! writer) with an in-place path for pcap files (one copy per packet, one write per chunk),
//! then the manifest and atomic publication.

mod digest;
mod interfaces;
mod pcap;
mod pipeline;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lander_spool::manifest::{manifest_path, Anonymization, Manifest};
use lander_spool::publish::PendingFile;
use lander_trace::format::pcap::{FileHeaderRepr, HEADER_LEN};
use lander_trace::format::{Parsed, ReadError, RecordEncoder, TraceReader, WriteError};
use lander_trace::{Format, LinkType};

use crate::mapping::Anonymizer;
use crate::walker::{Checksums, Payload, Policy};
use interfaces::Interfaces;
use pipeline::Source;

pub use pcap::BLOCK as PCAP_BLOCK;
pub use pipeline::{CHUNK_BYTES, CHUNK_RECORDS};

/// The snaplen written for an input that has none (a pcapng interface with snaplen 0).
const NO_SNAPLEN: u32 = 262_144;

/// Read buffer of the input stream (record path).
const READ_BUFFER: usize = 1 << 20;

/// How to scrub.
#[derive(Clone, Debug)]
pub struct ScrubConfig {
    /// Walker policy: payload, checksums, MACs.
    pub policy: Policy,
    /// Drop packets whose headers could not be parsed whole instead of cutting them.
    pub drop_unparsed: bool,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Output format; `None` keeps the input's.
    pub format: Option<Format>,
    /// Input format; `None` detects it (ERF has no magic and must be named).
    pub input_format: Option<Format>,
    /// fsync the output and its manifest before publishing.
    pub fsync: bool,
    /// Hash the input (BLAKE3, in parallel by the workers). [`scrub_file`] otherwise records
    /// the digest the raw file's manifest gives; with both, they must agree.
    pub hash_source: bool,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig {
            policy: Policy::default(),
            drop_unparsed: false,
            threads: 1,
            format: None,
            input_format: None,
            fsync: false,
            hash_source: false,
        }
    }
}

/// Why scrubbing failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// Reading the input failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Encoding the output failed.
    #[error("{path}: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: WriteError,
    },
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The input is not the file its manifest describes.
    #[error("{path}: BLAKE3 {computed} differs from {recorded} in its manifest")]
    SourceDigest {
        /// The input.
        path: PathBuf,
        /// What the input hashes to.
        computed: String,
        /// What its manifest says.
        recorded: String,
    },
    /// A worker thread panicked.
    #[error("a scrub worker panicked")]
    Panicked,
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> ScrubError + '_ {
    move |source| ScrubError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Counts of one scrub run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records read.
    pub packets_in: u64,
    /// Records written.
    pub packets_out: u64,
    /// Records dropped (`--drop-unparsed`).
    pub dropped: u64,
    /// Captured bytes read.
    pub bytes_in: u64,
    /// Captured bytes written.
    pub bytes_out: u64,
    /// Wire bytes of the records written.
    pub wire_bytes_out: u64,
    /// Packets cut or dropped, by reason name.
    pub reasons: BTreeMap<String, u64>,
    /// Packets with bytes replaced by zeros or padding, by kind.
    pub neutralised: BTreeMap<String, u64>,
    /// First and last timestamps written.
    pub first_ts_ns: Option<u64>,
    /// Last timestamp written.
    pub last_ts_ns: Option<u64>,
    /// Sum of the source's loss counters.
    pub source_drops: u64,
    /// Bytes of output (file header included).
    pub file_size: u64,
    /// BLAKE3 of the output.
    pub blake3: String,
}

/// Scrubs every record of `reader` into `out` (file header first). Returns the counts.
pub fn scrub_stream<W: Write>(
    reader: TraceReader,
    out: &mut W,
    out_path: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
) -> Result<Summary, ScrubError> {
    let format = config.format.unwrap_or(reader.format());
    let encoder = encoder(format, reader.link_type(), reader.snaplen(), out_path)?.mixed();
    let interfaces =
        (format == Format::Pcapng).then(|| Interfaces::new(&reader, encoder.snaplen()));
    let (summary, _) = pipeline::run(
        Source::Records(reader, interfaces),
        out,
        out_path,
        encoder,
        anon,
        config,
    )?;
    Ok(summary)
}

fn encoder(
    format: Format,
    link: LinkType,
    snaplen: u32,
    out_path: &Path,
) -> Result<RecordEncoder, ScrubError> {
    let snaplen = match snaplen {
        0 => NO_SNAPLEN,
        n => n,
    };
    RecordEncoder::new(format, link, snaplen).map_err(|source| ScrubError::Write {
        path: out_path.to_owned(),
        source,
    })
}

/// What [`scrub_read`] found and did.
#[derive(Clone, Debug)]
pub struct ReadSummary {
    /// The counts.
    pub summary: Summary,
    /// BLAKE3 of the input, when [`ScrubConfig::hash_source`] asked for it.
    pub source_blake3: Option<String>,
    /// Format, link type and snaplen of the input.
    pub input: (Format, LinkType, u32),
    /// Format of the output.
    pub format: Format,
}

/// Scrubs the trace read from `input` (named `name` in errors) into `out`, hashing the input
/// on the way. A pcap input with a pcap output takes the in-place path; anything else goes
/// record by record.
pub fn scrub_read<R: Read + Send + 'static, W: Write>(
    name: &str,
    mut input: R,
    out: &mut W,
    out_path: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
) -> Result<ReadSummary, ScrubError> {
    let mut head = Vec::with_capacity(HEADER_LEN);
    (&mut input)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|source| ReadError::Io {
            path: name.to_string(),
            offset: Some(0),
            source,
        })?;
    if let Some(pcap) = pcap_header(&head, config) {
        let header = pcap.0;
        let format = config.format.unwrap_or(header.format);
        let encoder = encoder(format, header.link_type, header.snaplen, out_path)?;
        let mut source =
            pcap::PcapSource::new(name, pcap, Box::new(input), format, encoder.snaplen());
        source.hash = config.hash_source;
        let (summary, digest) = pipeline::run(
            Source::Pcap(Box::new(source)),
            out,
            out_path,
            encoder,
            anon,
            config,
        )?;
        return Ok(ReadSummary {
            summary,
            source_blake3: digest.map(|h| h.to_hex().to_string()),
            input: (header.format, header.link_type, header.snaplen),
            format,
        });
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(&head);
    let hasher = Arc::new(Mutex::new(hasher));
    let stream = io::Cursor::new(head).chain(input);
    let stream: Box<dyn Read + Send> = match config.hash_source {
        true => Box::new(HashingRead {
            inner: stream,
            hasher: Arc::clone(&hasher),
        }),
        false => Box::new(stream),
    };
    let reader = TraceReader::from_stream_with(name, stream, config.input_format, READ_BUFFER)?;
    let input = (reader.format(), reader.link_type(), reader.snaplen());
    let format = config.format.unwrap_or(input.0);
    let summary = scrub_stream(reader, out, out_path, anon, config)?;
    let source_blake3 = match config.hash_source {
        true => hasher
            .lock()
            .ok()
            .map(|h| h.finalize().to_hex().to_string()),
        false => None,
    };
    Ok(ReadSummary {
        summary,
        source_blake3,
        input,
        format,
    })
}

/// The pcap file header at the start of `head`, when the in-place path applies: the input is
/// pcap (as named or detected) and so is the output.
fn pcap_header(head: &[u8], config: &ScrubConfig) -> Option<(FileHeaderRepr, [u8; HEADER_LEN])> {
    let Ok(Parsed::Done { item, .. }) = FileHeaderRepr::parse(head) else {
        return None;
    };
    let pcap = |f: Format| matches!(f, Format::Pcap | Format::PcapNs);
    let input_ok = config.input_format.is_none_or(pcap);
    let bytes = head.try_into().ok()?;
    (input_ok && pcap(config.format.unwrap_or(item.format))).then_some((item, bytes))
}

/// A reader that hashes what passes through it (the record path: the reader owns it).
struct HashingRead<R> {
    inner: R,
    hasher: Arc<Mutex<blake3::Hasher>>,
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// What the manifest of a scrubbed file says about how it was made.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// Key id (digest of the key).
    pub key_id: String,
    /// Other settings that change the output.
    pub settings: BTreeMap<String, String>,
}

/// Scrubs the trace file `input` into `output`: the output and its manifest are published
/// atomically (manifest first). Memory stays bounded: the input is streamed, not mapped.
pub fn scrub_file(
    input: &Path,
    output: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
    provenance: &Provenance,
) -> Result<(Summary, Manifest), ScrubError> {
    let file = File::open(input).map_err(io_at(input))?;
    let name = input.display().to_string();
    let raw = Manifest::read(&manifest_path(input)).ok();
    let recorded = raw
        .as_ref()
        .map(|m| m.blake3.clone())
        .filter(|d| !d.is_empty());
    let mut pending = PendingFile::create(output).map_err(io_at(output))?;
    // the pipeline writes whole chunks: no buffer in between
    let read = scrub_read(&name, file, &mut pending.file, output, anon, config)?;
    let (_, link, snaplen) = read.input;
    let (summary, format) = (read.summary, read.format);
    let source_blake3 = match (read.source_blake3, recorded) {
        (Some(computed), Some(recorded)) if computed != recorded => {
            return Err(ScrubError::SourceDigest {
                path: input.to_owned(),
                computed,
                recorded,
            })
        }
        (computed, recorded) => computed.or(recorded),
    };
    let mut manifest = build_manifest(raw, output, format, link, snaplen, &summary);
    manifest.anonymization = Some(Anonymization {
        mapping: anon.mapping().name().to_string(),
        payload: payload_name(config.policy.payload),
        checksums: checksums_name(config.policy.checksums).to_string(),
        key_id: provenance.key_id.clone(),
        settings: settings(config, provenance),
        counts: summary.reasons.clone(),
        neutralised: summary.neutralised.clone(),
        source_file: input.file_name().map(|n| n.to_string_lossy().into_owned()),
        source_blake3,
    });
    if config.fsync {
        pending.file.sync_all().map_err(io_at(output))?;
    }
    manifest
        .publish(&manifest_path(output), config.fsync)
        .map_err(io_at(output))?;
    pending.commit(config.fsync).map_err(io_at(output))?;
    Ok((summary, manifest))
}

fn build_manifest(
    raw: Option<Manifest>,
    output: &Path,
    format: Format,
    link: LinkType,
    snaplen: u32,
    s: &Summary,
) -> Manifest {
    let file = output.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut m = Manifest::new(&file.unwrap_or_default(), format, link, snaplen);
    if let Some(raw) = raw {
        m.site = raw.site;
        m.interface = raw.interface;
        m.seq = raw.seq;
        m.drops = raw.drops;
    }
    m.drops.source = m.drops.source.max(s.source_drops);
    m.packets = s.packets_out;
    m.bytes = s.bytes_out;
    m.wire_bytes = s.wire_bytes_out;
    m.file_size = s.file_size;
    m.first_ts_ns = s.first_ts_ns;
    m.last_ts_ns = s.last_ts_ns;
    m.blake3 = s.blake3.clone();
    m
}

fn settings(config: &ScrubConfig, provenance: &Provenance) -> BTreeMap<String, String> {
    let mut s = provenance.settings.clone();
    s.insert("mac".into(), config.policy.mac.name().into());
    s.insert("mpls".into(), config.policy.mpls.name().into());
    s.insert("drop_unparsed".into(), config.drop_unparsed.to_string());
    if config.drop_unparsed {
        s.insert("unparsed".into(), "dropped".into());
    }
    s
}

/// The name of a payload policy, as on the command line.
pub fn payload_name(p: Payload) -> String {
    match p {
        Payload::Drop => "drop".into(),
        Payload::Keep(n) => format!("keep:{n}"),
        Payload::Zero => "zero".into(),
    }
}

/// The name of a checksum policy.
pub fn checksums_name(c: Checksums) -> &'static str {
    match c {
        Checksums::Fix => "fix",
        Checksums::Zero => "zero",
        Checksums::Keep => "keep",
    }
}

/// Parses `drop`, `keep:N` or `zero`.
pub fn parse_payload(s: &str) -> Result<Payload, String> {
    match s {
        "drop" => Ok(Payload::Drop),
        "zero" => Ok(Payload::Zero),
        _ => s
            .strip_prefix("keep:")
            .and_then(|n| n.parse().ok())
            .map(Payload::Keep)
            .ok_or_else(|| format!("bad payload policy {s:?} (expected drop, keep:N or zero)")),
    }
}

/// Parses `fix`, `zero` or `keep`.
pub fn parse_checksums(s: &str) -> Result<Checksums, String> {
    match s {
        "fix" => Ok(Checksums::Fix),
        "zero" => Ok(Checksums::Zero),
        "keep" => Ok(Checksums::Keep),
        _ => Err(format!(
            "bad checksum policy {s:?} (expected fix, zero or keep)"
        )),
    }
}

#[cfg(test)]
mod tests;
