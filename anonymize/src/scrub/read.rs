//! The entry into a scrub: which path an input takes (pcap in place, or record by record).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use lander_trace::format::pcap::{FileHeaderRepr, HEADER_LEN};
use lander_trace::format::{Parsed, ReadError, RecordEncoder, TraceReader};
use lander_trace::{Format, LinkType};

use super::interfaces::Interfaces;
use super::pcap::PcapSource;
use super::pipeline;
use super::records::{HashingRead, RecordSource};
use super::types::{ReadSummary, ScrubConfig, ScrubError, ScrubSummary};
use crate::mapping::Anonymizer;

/// The snaplen written for an input that has none (a pcapng interface with snaplen 0).
const NO_SNAPLEN: u32 = 262_144;

/// Read buffer of the input stream (record path).
const READ_BUFFER: usize = 1 << 20;

/// Scrubs every record of `reader` into `out` (file header first). Returns the counts.
pub fn scrub_stream<W: Write + Send>(
    reader: TraceReader,
    out: &mut W,
    out_path: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
) -> Result<ScrubSummary, ScrubError> {
    stream_into(reader, out, None, out_path, anon, config)
}

/// [`scrub_stream`] into `out`, which is `file` where given.
fn stream_into<W: Write + Send>(
    reader: TraceReader,
    out: &mut W,
    file: Option<&File>,
    out_path: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
) -> Result<ScrubSummary, ScrubError> {
    let format = config.format.unwrap_or(reader.format());
    let encoder = encoder(format, reader.link_type(), reader.snaplen(), out_path)?.mixed();
    let interfaces =
        (format == Format::Pcapng).then(|| Interfaces::new(&reader, encoder.snaplen()));
    let (summary, _) = pipeline::run(
        RecordSource {
            reader,
            interfaces,
            ended: false,
        },
        out,
        file,
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

/// Scrubs the trace read from `input` (named `name` in errors) into `out`, hashing the input
/// on the way. A pcap input with a pcap output takes the in-place path; anything else goes
/// record by record.
pub fn scrub_read<R: Read + Send + 'static, W: Write + Send>(
    name: &str,
    input: R,
    out: &mut W,
    out_path: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
) -> Result<ReadSummary, ScrubError> {
    read_into(name, input, out, None, out_path, anon, config)
}

/// [`scrub_read`] into the new, empty file `out` (named `out_path` in errors): each chunk is
/// written at its offset, so the workers copy into the page cache side by side with the
/// ordered hashing rather than after it.
pub fn scrub_read_file<R: Read + Send + 'static>(
    name: &str,
    input: R,
    out: &File,
    out_path: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
) -> Result<ReadSummary, ScrubError> {
    read_into(name, input, &mut &*out, Some(out), out_path, anon, config)
}

fn read_into<R: Read + Send + 'static, W: Write + Send>(
    name: &str,
    mut input: R,
    out: &mut W,
    file: Option<&File>,
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
        let mut source = PcapSource::new(name, pcap, Box::new(input), format, encoder.snaplen());
        source.hash = config.hash_source;
        let (summary, digest) = pipeline::run(source, out, file, out_path, encoder, anon, config)?;
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
    let summary = stream_into(reader, out, file, out_path, anon, config)?;
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
