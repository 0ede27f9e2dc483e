//! `lander convert IN OUT`: rewrite a trace in another format (or snaplen).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::common::{
    binary_to_stdout, is_stdio, not_a_directory, not_a_published_trace, not_the_input, open_input,
    publish_over,
};
use super::output::Progress;
use anyhow::Context;
use lander_spool::human;
use lander_spool::publish::PendingFile;
use lander_trace::format::{TraceReader, TraceWriter};
use lander_trace::{Format, LinkType};

/// Arguments of `lander convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input trace (`-` for stdin).
    pub input: PathBuf,
    /// Output trace (`-` for stdout); written under a temporary name, then renamed.
    pub output: PathBuf,
    /// Output format: pcap, pcap-ns, pcapng or erf (default: from OUT's extension, else the
    /// input's format).
    #[arg(long, short)]
    pub format: Option<Format>,
    /// Cut records to this many bytes (default: the input's snaplen).
    #[arg(long)]
    pub snaplen: Option<u32>,
    /// Input format, for ERF from a pipe (default: detected).
    #[arg(long)]
    pub input_format: Option<Format>,
    /// fsync the output before publishing it.
    #[arg(long)]
    pub fsync: bool,
    /// Replace OUT even when it is a published trace (its manifest beside it, which is then
    /// removed: it describes the file replaced).
    #[arg(long)]
    pub force: bool,
}

/// Runs `lander convert`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !is_stdio(&args.output) {
        let hint = "give a file name (the output is one file)";
        not_a_directory(&args.output, "OUT", hint)?;
    }
    not_the_input(&args.input, &args.output, "OUT")?;
    not_a_published_trace(&args.output, "OUT", args.force)?;
    binary_to_stdout(&args.output)?;
    let mut reader = open_input(&args.input, args.input_format)?;
    let size = std::fs::metadata(&args.input)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let mut progress = Progress::new("convert", size);
    let format = args
        .format
        .or_else(|| format_of_extension(&args.output))
        .unwrap_or(reader.format());
    let snaplen = args.snaplen.unwrap_or_else(|| output_snaplen(&reader));
    let link_type = reader.link_type();
    let (packets, bytes) = if args.output.as_os_str() == "-" {
        let stdout = io::stdout().lock();
        convert(
            &mut reader,
            stdout,
            format,
            link_type,
            snaplen,
            &mut progress,
        )?
        .1
    } else {
        let sink = Sink {
            format,
            snaplen,
            fsync: args.fsync,
            force: args.force,
        };
        write_published(&mut reader, &args.output, sink, &mut progress)?
    };
    progress.finish();
    let (packets, bytes) = (human::count(packets), human::bytes(bytes));
    tracing::info!(
        "converted {packets} packets ({bytes}, {format}) from {} to {}",
        args.input.display(),
        args.output.display()
    );
    Ok(())
}

/// The format a file name's extension names, if any.
pub fn format_of_extension(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()? {
        "pcap" | "cap" => Some(Format::Pcap),
        "pcapng" | "ntar" => Some(Format::Pcapng),
        "erf" => Some(Format::Erf),
        _ => None,
    }
}

/// The input's snaplen, or 262144 where it has none (pcapng snaplen 0).
fn output_snaplen(reader: &TraceReader) -> u32 {
    match reader.snaplen() {
        0 => 262_144,
        n => n,
    }
}

/// How the output is written.
struct Sink {
    format: Format,
    snaplen: u32,
    fsync: bool,
    /// Replace a published trace.
    force: bool,
}

fn write_published(
    reader: &mut TraceReader,
    output: &Path,
    sink: Sink,
    progress: &mut Progress,
) -> anyhow::Result<(u64, u64)> {
    let Sink {
        format,
        snaplen,
        fsync,
        force,
    } = sink;
    let mut pending = PendingFile::create(output)
        .with_context(|| format!("creating a temporary file for {}", output.display()))?;
    let link_type = reader.link_type();
    let outcome = convert(
        reader,
        &mut pending.file,
        format,
        link_type,
        snaplen,
        progress,
    );
    let (_, counts) = match outcome {
        Ok(done) => done,
        Err(e) => {
            let _ = pending.abort();
            return Err(e);
        }
    };
    publish_over(pending, fsync, "OUT", force)?;
    Ok(counts)
}

/// Copies every record of `reader` into a new trace on `sink`; returns the sink and the
/// packet and byte counts.
pub fn convert<W: Write>(
    reader: &mut TraceReader,
    sink: W,
    format: Format,
    link_type: LinkType,
    snaplen: u32,
    progress: &mut Progress,
) -> anyhow::Result<(W, (u64, u64))> {
    let mut writer = TraceWriter::new(sink, format, link_type, snaplen)?;
    loop {
        if writer.packets() % 65_536 == 0 {
            let packets = lander_spool::human::count(writer.packets());
            progress.set(reader.offset(), &format!("{packets} packets"));
        }
        let Some(rec) = reader.next()? else { break };
        if let Err(e) = writer.write(&rec) {
            let (path, offset) = (reader.path(), reader.offset());
            return Err(
                anyhow::Error::new(e).context(format!("{path}: record ending at offset {offset}"))
            );
        }
    }
    let counts = (writer.packets(), writer.bytes_written());
    Ok((writer.finish()?, counts))
}
