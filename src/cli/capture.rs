//! `lander-capture` and `lander capture`: capture into rotated, published trace files.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{bail, Context};
use lander_capture::engine::rotate::RotatePolicy;
use lander_capture::engine::salvage::{
    salvage_dir_with, LeftoverPolicy, SalvageConfig, SalvageOutcome,
};
use lander_capture::engine::source::erf_stream::ErfStreamSource;
use lander_capture::engine::source::fanout::{open_group, FanoutMode};
use lander_capture::engine::source::file::FileSource;
use lander_capture::engine::source::live::{LiveConfig, LiveSource};
use lander_capture::engine::writer::IoMode;
use lander_capture::engine::{self, CaptureSummary, Control, EngineConfig};
use lander_capture::privdrop::{can_write, Account};

use super::common::no_stdio;
use super::exit::ExitCode;
use lander_spool::human;
use lander_spool::perms::Perms;
use lander_spool::size::parse_size;
use lander_trace::Format;

/// Arguments of `lander-capture` / `lander capture`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["interface", "erf", "read"])))]
pub struct Args {
    /// Capture live from this network interface (libpcap).
    #[arg(long, short = 'i')]
    pub interface: Option<String>,
    /// Read a DAG ERF record stream from a file, FIFO, or stdin (`-`).
    #[arg(long)]
    pub erf: Option<PathBuf>,
    /// Replay a pcap, pcapng or ERF file.
    #[arg(long, short = 'r')]
    pub read: Option<PathBuf>,
    /// With --read: replay at the recorded speed instead of as fast as possible.
    #[arg(long, requires = "read")]
    pub pace: bool,
    /// BPF filter (live capture).
    #[arg(long)]
    pub filter: Option<String>,
    /// Bytes kept of each packet.
    #[arg(long, short = 's', default_value_t = 262_144)]
    pub snaplen: u32,
    /// Leave the interface out of promiscuous mode (by default it is put in it, as tcpdump
    /// does).
    #[arg(long, short = 'p')]
    pub no_promisc: bool,
    /// Promiscuous mode (the default; kept for old command lines).
    #[arg(long, hide = true, conflicts_with = "no_promisc")]
    pub promisc: bool,
    /// Drop root for this user (its groups, gid and uid) once the capture handle and the
    /// output directory are open, as tcpdump's -Z; the output and state directories must be
    /// writable by it. To run without root at all, see `setcap` in the README.
    #[arg(long, short = 'Z', value_name = "USER")]
    pub user: Option<String>,
    /// Kernel capture buffer size (live), e.g. 64MiB.
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    pub buffer_size: u64,
    /// Read timeout in milliseconds (live): packets never wait longer in a kernel block.
    #[arg(long, default_value_t = 100)]
    pub timeout_ms: u32,
    /// Hand over every packet at once (libpcap immediate mode).
    #[arg(long)]
    pub immediate: bool,
    /// Output format: pcap, pcap-ns, pcapng or erf.
    #[arg(long, short = 'F', default_value = "pcap")]
    pub format: Format,
    /// Directory the trace files are published in (the spool's `raw/<site>`).
    #[arg(long, short = 'o')]
    pub out_dir: PathBuf,
    /// Site name used in file names and manifests (default: the host name).
    #[arg(long)]
    pub site: Option<String>,
    /// Rotate before a file would exceed this size, e.g. 64MiB.
    #[arg(long, value_parser = parse_size)]
    pub rotate_size: Option<u64>,
    /// Rotate at multiples of this many seconds on the clock (300: at :00, :05, ...);
    /// accepts 300, 300s, 5m, 1h.
    #[arg(long, value_parser = parse_seconds)]
    pub rotate_interval: Option<u64>,
    /// Rotate after this many packets.
    #[arg(long)]
    pub rotate_packets: Option<u64>,
    /// fsync every file and its directory when publishing.
    #[arg(long)]
    pub fsync: bool,
    /// Write path: uring, sync, or auto (io_uring when the kernel allows it). A replay of a
    /// pcap file written as it is goes in blocks on two threads with plain writes, unless
    /// uring is asked for.
    #[arg(long, default_value = "auto")]
    pub io: IoMode,
    /// Write everything through the page cache. By default the ring's whole pages go straight
    /// to the device (O_DIRECT) where the file system says it takes direct writes at page
    /// offsets (ext4, XFS), which saves a copy of every byte; elsewhere (tmpfs, or any file
    /// system that does not say so) files are written through the page cache either way.
    #[arg(long)]
    pub no_direct: bool,
    /// Total size of the buffer ring, e.g. 64MiB.
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    pub ring_size: u64,
    /// Size of each ring buffer (one write each), e.g. 1MiB.
    #[arg(long, value_parser = parse_size, default_value = "1MiB")]
    pub ring_buffer: u64,
    /// Remove leftover temporary files from a crash (and the orphan manifests of
    /// interrupted publications) instead of salvaging them.
    #[arg(long)]
    pub discard_partial: bool,
    /// Mode of raw trace files and manifests, octal (never any bit for others); the output
    /// directory gets the same with x wherever r is set (0640 -> 0750).
    #[arg(long, value_parser = parse_raw_mode, default_value = "0640")]
    pub raw_mode: u32,
    /// Group of raw trace files, manifests and the output directory (a name or a gid), set
    /// before a file is published; default: the process's.
    #[arg(long)]
    pub raw_group: Option<String>,
    /// The spool's state directory, for the run record the monitor reads.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Write the final summary as JSON to this file (`-` for stdout).
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// Seconds between progress lines and run record updates.
    #[arg(long, default_value_t = 5.0)]
    pub stats_interval: f64,
    /// Stop after this many packets (with --threads: per thread).
    #[arg(long, short = 'c')]
    pub count: Option<u64>,
    /// Live capture over this many sockets of one PACKET_FANOUT group, each with its own
    /// thread, ring (--ring-size each) and writer: one per NIC receive queue and core.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// How --threads spreads packets: hash (by flow) or cpu (by receiving CPU, i.e. RSS queue).
    #[arg(long, default_value = "hash")]
    pub fanout: FanoutMode,
}

/// Runs a capture: salvage leftovers, capture until the source ends or a signal, summarize.
pub fn run(args: Args) -> anyhow::Result<()> {
    no_stdio(
        &args.out_dir,
        "--out-dir",
        "trace files are published into a directory",
    )?;
    if let Some(read) = &args.read {
        let why = "--read replays a file; for an ERF stream on stdin give --erf -";
        no_stdio(read, "--read", why)?;
    }
    let account = args
        .user
        .as_deref()
        .map(Account::lookup)
        .transpose()
        .map_err(|e| ExitCode::usage(e.to_string()))?;
    let config = engine_config(&args)?;
    config
        .perms
        .ensure_dir(&config.out_dir)
        .context("cannot create the output directory")?;
    salvage(&args, &config)?;
    let control = Control::default();
    install_signals(&control)?;
    let summary = capture(&args, &config, &control, account.as_ref())?;
    report(&args, &summary)?;
    match &summary.error {
        Some(e) => bail!("capture failed: {e}"),
        None => Ok(()),
    }
}

fn engine_config(args: &Args) -> anyhow::Result<EngineConfig> {
    let site = args
        .site
        .clone()
        .unwrap_or_else(lander_spool::manifest::hostname);
    if site.is_empty() || site.contains(['/', '.']) || site.starts_with('-') {
        return Err(ExitCode::usage(format!(
            "--site {site:?}: use a name without '/' or '.'"
        )));
    }
    if args.ring_buffer < 64 << 10 || args.ring_size < 2 * args.ring_buffer {
        return Err(ExitCode::usage(
            "--ring-buffer must be at least 64KiB and --ring-size at least two buffers",
        ));
    }
    if args.threads > 1 && args.interface.is_none() {
        bail!("--threads needs a live interface (-i)");
    }
    if args.rotate_interval == Some(0) || args.rotate_packets == Some(0) {
        return Err(ExitCode::usage("rotation limits must be positive"));
    }
    let mut config = EngineConfig::new(args.out_dir.clone(), site);
    config.format = args.format;
    config.snaplen = Some(args.snaplen);
    config.rotate = RotatePolicy {
        size: args.rotate_size,
        interval_ns: args.rotate_interval.map(|s| s * 1_000_000_000),
        packets: args.rotate_packets,
    };
    config.fsync = args.fsync;
    config.io = args.io;
    config.direct = !args.no_direct;
    config.ring_bytes = args.ring_size as usize;
    config.buffer_bytes = args.ring_buffer as usize;
    config.state_dir = args.state_dir.clone();
    config.stats_interval = Duration::from_secs_f64(args.stats_interval.max(0.1));
    config.max_packets = args.count;
    config.perms = Perms {
        mode: args.raw_mode,
        gid: args.raw_group.as_deref().map(group).transpose()?,
    };
    Ok(config)
}

fn salvage(args: &Args, config: &EngineConfig) -> anyhow::Result<()> {
    let policy = if args.discard_partial {
        LeftoverPolicy::Discard
    } else {
        LeftoverPolicy::Recover
    };
    let salvage = SalvageConfig {
        policy,
        fsync: config.fsync,
        perms: config.perms,
    };
    for outcome in salvage_dir_with(&config.out_dir, &salvage)? {
        match outcome {
            SalvageOutcome::Recovered { path, packets } => {
                eprintln!("recovered {} ({packets} packets)", path.display());
            }
            SalvageOutcome::Removed { path, why } if !why.is_empty() => {
                eprintln!("removed {}: {why}", path.display());
            }
            SalvageOutcome::Removed { .. } => {}
            SalvageOutcome::Kept { path, why } => {
                eprintln!("left {} for the next start: {why}", path.display());
            }
        }
    }
    Ok(())
}

/// Opens the source, drops root if asked, captures.
fn capture(
    args: &Args,
    config: &EngineConfig,
    control: &Control,
    account: Option<&Account>,
) -> anyhow::Result<CaptureSummary> {
    if let Some(path) = &args.read {
        let mut source = FileSource::open(path)?;
        if args.pace {
            source = source.paced(control.stop.clone());
        }
        drop_root(account, config)?;
        return Ok(engine::run(config, &mut source, control)?);
    }
    if let Some(path) = &args.erf {
        let mut source = ErfStreamSource::open(path, control.stop.clone())?;
        drop_root(account, config)?;
        return Ok(engine::run(config, &mut source, control)?);
    }
    let interface = args.interface.clone().context("no source given")?;
    let live = LiveConfig {
        interface,
        filter: args.filter.clone(),
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
        buffer_size: Some(args.buffer_size.min(i32::MAX as u64) as u32),
        timeout_ms: args.timeout_ms,
        immediate: args.immediate,
    };
    if args.threads > 1 {
        let sources = open_group(&live, args.threads, args.fanout)?;
        drop_root(account, config)?;
        return super::capture_threads::capture(sources, config, control);
    }
    let mut source = LiveSource::open(live)?;
    drop_root(account, config)?;
    Ok(engine::run(config, &mut source, control)?)
}

/// Switches to `account` (if given), then checks that it can write where the capture writes.
fn drop_root(account: Option<&Account>, config: &EngineConfig) -> anyhow::Result<()> {
    let Some(account) = account else {
        return Ok(());
    };
    account.switch_to()?;
    let dirs = std::iter::once(&config.out_dir).chain(config.state_dir.as_ref());
    if let Some(dir) = dirs.into_iter().find(|d| d.exists() && !can_write(d)) {
        bail!(
            "--user {}: cannot write to {} after dropping root; make it writable by that user \
             (e.g. `chown {} {}`, or --raw-group with a group it is in)",
            account.name,
            dir.display(),
            account.name,
            dir.display()
        );
    }
    tracing::info!(
        "dropped root: running as {} (uid {}, gid {})",
        account.name,
        account.uid,
        account.gid
    );
    Ok(())
}

/// SIGINT and SIGTERM stop: what the kernel still holds is read, everything read is written
/// and published, with the final drop counters. A second SIGINT or SIGTERM skips reading the
/// kernel's buffer but still writes and publishes what was read. SIGHUP rotates.
fn install_signals(control: &Control) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let control = control.clone();
    std::thread::Builder::new()
        .name("lander-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    control.rotate.store(true, Relaxed);
                } else if control.stop.swap(true, Relaxed) {
                    if !control.hurry.swap(true, Relaxed) {
                        tracing::info!("second stop request: publishing what was read");
                    }
                } else {
                    tracing::info!(
                        "stop requested: reading what the kernel holds, then publishing"
                    );
                }
            }
        })?;
    Ok(())
}

fn group(name: &str) -> anyhow::Result<u32> {
    lander_spool::os::group_id(name).with_context(|| format!("--raw-group {name:?}"))
}

fn parse_raw_mode(s: &str) -> Result<u32, String> {
    Perms::parse_mode(s).map_err(|e| e.to_string())
}

fn report(args: &Args, s: &CaptureSummary) -> anyhow::Result<()> {
    let c = &s.counters;
    let kernel = c.kernel_drops.map_or("-".to_string(), human::count);
    crate::say!(
        "{} packets ({}) from {} in {}: {}, {}; {} files, kernel drops {kernel}, ring drops {}, \
         source drops {}; {} writer, peak RSS {}",
        human::count(c.packets),
        human::bytes(c.bytes),
        s.source,
        human::duration(s.elapsed_secs),
        human::rate(s.pps, "packets/s"),
        human::rate(s.bps, "bit/s"),
        s.files.len(),
        human::count(c.ring_drops),
        human::count(c.source_drops),
        s.writer,
        human::bytes(s.peak_rss)
    );
    if let Some(path) = &args.stats_json {
        let mut json = serde_json::to_vec_pretty(s)?;
        json.push(b'\n');
        if path.as_os_str() == "-" {
            std::io::stdout().write_all(&json)?;
        } else {
            lander_spool::publish::write_atomic(path, &json, false)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

/// Parses seconds: `300`, `300s`, `5m`, `1h`, `1d`.
pub fn parse_seconds(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("bad duration unit in {s:?} (use s, m, h or d)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("300"), Ok(300));
        assert_eq!(parse_seconds("5m"), Ok(300));
        assert_eq!(parse_seconds("1h"), Ok(3600));
        assert!(parse_seconds("5 fortnights").is_err());
    }
}
