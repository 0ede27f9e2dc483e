//! Publication of a scrubbed file: the output and a manifest that says how it was made,
//! published atomically (manifest first).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use lander_spool::manifest::{manifest_path, Anonymization, Manifest};
use lander_spool::publish::PendingFile;
use lander_trace::{Format, LinkType};

use super::read::scrub_read_file;
use super::types::io_at;
use super::types::{Provenance, ScrubConfig, ScrubError, ScrubSummary};
use crate::mapping::Anonymizer;

/// Scrubs the trace file `input` into `output`: the output and its manifest are published
/// atomically (manifest first). Memory stays bounded: the input is streamed, not mapped.
pub fn scrub_file(
    input: &Path,
    output: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
    provenance: &Provenance,
) -> Result<(ScrubSummary, Manifest), ScrubError> {
    let file = File::open(input).map_err(io_at(input))?;
    let source = Source {
        path: input,
        file: input.file_name().map(|n| n.to_string_lossy().into_owned()),
        raw: Manifest::read(&manifest_path(input)).ok(),
    };
    publish(source, file, output, anon, config, provenance)
}

/// Scrubs the trace read from the stream `input` (standard input, a pipe; named `name` in
/// errors) into `output`, published with its manifest as [`scrub_file`] publishes: the
/// manifest names no source file, and gives the stream's digest when `config.hash_source`.
pub fn scrub_stream_file<R: Read + Send + 'static>(
    name: &str,
    input: R,
    output: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
    provenance: &Provenance,
) -> Result<(ScrubSummary, Manifest), ScrubError> {
    let source = Source {
        path: Path::new(name),
        file: None,
        raw: None,
    };
    publish(source, input, output, anon, config, provenance)
}

/// Where a scrub's input comes from, as its manifest tells it.
struct Source<'a> {
    /// The input, as errors name it.
    path: &'a Path,
    /// The input's file name, for the manifest (none for a stream).
    file: Option<String>,
    /// The input's own manifest, when it has one.
    raw: Option<Manifest>,
}

fn publish<R: Read + Send + 'static>(
    source: Source<'_>,
    input: R,
    output: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
    provenance: &Provenance,
) -> Result<(ScrubSummary, Manifest), ScrubError> {
    let Source { path, file, raw } = source;
    let name = path.display().to_string();
    let recorded = raw
        .as_ref()
        .map(|m| m.blake3.clone())
        .filter(|d| !d.is_empty());
    let pending = PendingFile::create(output).map_err(io_at(output))?;
    // the pipeline writes whole chunks: no buffer in between
    let read = scrub_read_file(&name, input, &pending.file, output, anon, config)?;
    let (_, link, snaplen) = read.input;
    let (summary, format) = (read.summary, read.format);
    let source_blake3 = match (read.source_blake3, recorded) {
        (Some(computed), Some(recorded)) if computed != recorded => {
            return Err(ScrubError::SourceDigest {
                path: path.to_owned(),
                computed,
                recorded,
            })
        }
        (computed, recorded) => computed.or(recorded),
    };
    let mut manifest = build_manifest(raw, output, format, link, snaplen, &summary);
    manifest.anonymization = Some(Anonymization {
        mapping: anon.mapping().name().to_string(),
        payload: config.policy.payload.to_string(),
        checksums: config.policy.checksums.to_string(),
        key_id: provenance.key_id.clone(),
        settings: settings(config, provenance),
        counts: summary.reasons.clone(),
        neutralised: summary.neutralised.clone(),
        source_file: file,
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
    s: &ScrubSummary,
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
