//! `lander-capture` end to end: ERF from a FIFO, SIGTERM, SIGHUP, interval rotation of a
//! silent FIFO, paced replay, link type changes, SIGKILL and salvage, ENOSPC on a small ext4
//! (direct writes) and a small
//! tmpfs, both writers and the fallback when io_uring is blocked (seccomp), every output read
//! by tcpdump. Needs tcpdump (and root for the tmpfs mount).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lander_trace::format::{pcapng, TraceWriter};
use lander_trace::synth::{generate, Profile};
use lander_trace::{Format, LinkType, OwnedRecord};

mod mount_support;
use mount_support::{small_ext4, small_tmpfs};

const CAPTURE: &str = env!("CARGO_BIN_EXE_lander-capture");
const LANDER: &str = env!("CARGO_BIN_EXE_lander");

fn gen(dir: &Path, packets: u64, format: &str) -> PathBuf {
    let out = dir.join(format!("in-{packets}.{format}"));
    let st = Command::new(LANDER)
        .args([
            "gen",
            "syn-flood",
            "-n",
            &packets.to_string(),
            "--format",
            format,
            "--out",
        ])
        .arg(&out)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    out
}

fn capture(args: &[&str], out: &Path) -> Output {
    Command::new(CAPTURE)
        .args(args)
        .arg("--out-dir")
        .arg(out)
        .args(["--site", "t"])
        .output()
        .unwrap()
}

fn traces(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !n.starts_with('.') && !n.ends_with(".json")
        })
        .collect();
    v.sort();
    v
}

/// Packets tcpdump reads from a file; fails on any complaint (truncation, bad header).
fn tcpdump_count(path: &Path) -> usize {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(path)
        .output()
        .expect("tcpdump must be installed (apt-get install tcpdump)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tcpdump on {path:?}: {err}");
    assert!(!err.contains("truncated"), "tcpdump on {path:?}: {err}");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn manifest(trace: &Path) -> serde_json::Value {
    let mut p = trace.as_os_str().to_owned();
    p.push(".json");
    serde_json::from_slice(&std::fs::read(PathBuf::from(p)).unwrap()).unwrap()
}

fn total_packets(dir: &Path) -> usize {
    traces(dir).iter().map(|p| tcpdump_count(p)).sum()
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < end, "lander-capture did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Bytes in the temporary files of `dir` (none if it does not exist yet).
fn tmp_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

#[test]
fn every_output_format_is_read_by_tcpdump() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 20_000, "pcap");
    for format in ["pcap", "pcap-ns", "pcapng"] {
        let out = dir.path().join(format);
        let o = capture(
            &[
                "--read",
                input.to_str().unwrap(),
                "--format",
                format,
                "--rotate-size",
                "256KiB",
            ],
            &out,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(traces(&out).len() > 3);
        assert_eq!(total_packets(&out), 20_000, "{format}");
    }
}

#[test]
fn io_uring_and_sync_writers_produce_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 50_000, "pcap");
    let mut files = Vec::new();
    for io in ["uring", "sync"] {
        let out = dir.path().join(io);
        let o = capture(
            &[
                "--read",
                input.to_str().unwrap(),
                "--io",
                io,
                "--rotate-size",
                "1MiB",
            ],
            &out,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        let writer = if io == "uring" {
            "io_uring writer"
        } else {
            "sync writer"
        };
        assert!(err.contains(writer), "{err}");
        let bytes: Vec<(String, Vec<u8>)> = traces(&out)
            .iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(p).unwrap())
            })
            .collect();
        files.push(bytes);
    }
    assert!(files[0].len() > 3);
    assert!(
        files[0] == files[1],
        "the two writers wrote different files"
    );
}

#[test]
fn erf_stream_from_a_fifo_with_sigterm_publishes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 30_000, "erf");
    let fifo = dir.path().join("erf.fifo");
    mkfifo(&fifo);
    let out = dir.path().join("out");
    let stats = dir.path().join("stats.json");
    let mut child = Command::new(CAPTURE)
        .args(["--erf", fifo.to_str().unwrap(), "--site", "t", "--out-dir"])
        .arg(&out)
        .arg("--stats-json")
        .arg(&stats)
        .args(["--state-dir", dir.path().join("state").to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Feed the whole stream but keep the FIFO open: the capture is waiting for more.
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(&std::fs::read(&input).unwrap()).unwrap();
    w.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let st = wait_exit(&mut child, Duration::from_secs(20));
    drop(w);
    assert!(st.success(), "SIGTERM is a clean stop: {st:?}");
    assert_eq!(total_packets(&out), 30_000);
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(s["counters"]["packets"], 30_000);
    let rec_dir = dir.path().join("state/capture");
    let rec = std::fs::read_dir(&rec_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(rec).unwrap()).unwrap();
    assert_eq!(rec["state"], "finished");
}

/// What the FIFO holds when the stop comes was sent before it: it is written, and the one
/// record the stop cut (its writer was still sending it) is reported, not taken for a broken
/// stream. The capture is held still while the FIFO fills, so the stop finds it full.
#[test]
fn erf_fifo_stop_writes_every_record_the_fifo_held() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 2_000, "erf");
    let bytes = std::fs::read(&input).unwrap();
    let out = dir.path().join("out");
    let (mut child, mut w) = erf_capture(dir.path(), &out, &[]);
    // room for the whole stream, so the writes finish while the capture is stopped
    let room = set_pipe_size(&w, 1 << 20);
    assert!(room >= bytes.len(), "pipe of {room} bytes");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGSTOP);
    // every record, and the first 20 bytes of one more
    w.write_all(&bytes).unwrap();
    w.write_all(&bytes[..20]).unwrap();
    signal(&child, libc::SIGTERM);
    signal(&child, libc::SIGCONT);
    let st = wait_exit(&mut child, Duration::from_secs(20));
    drop(w);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(st.success(), "{st:?}\n{err}");
    assert_eq!(total_packets(&out), 2_000, "{err}");
    assert!(err.contains("the stop cut this record"), "{err}");
}

/// Sets the capacity of the pipe `w` writes to (`F_SETPIPE_SZ`); returns it.
#[allow(unsafe_code)]
fn set_pipe_size(w: &std::fs::File, bytes: i32) -> usize {
    use std::os::fd::AsRawFd;
    let fd = w.as_raw_fd();
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes) };
    assert!(rc > 0, "F_SETPIPE_SZ: {}", std::io::Error::last_os_error());
    rc as usize
}

#[test]
fn sigkill_mid_file_then_restart_salvages_whole_packets() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 50_000, "erf");
    let fifo = dir.path().join("erf.fifo");
    mkfifo(&fifo);
    let out = dir.path().join("out");
    let mut child = Command::new(CAPTURE)
        .args([
            "--erf",
            fifo.to_str().unwrap(),
            "--site",
            "t",
            "--ring-buffer",
            "64KiB",
        ])
        .args(["--ring-size", "1MiB", "--io", "sync", "--out-dir"])
        .arg(&out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let bytes = std::fs::read(&input).unwrap();
    // Cut the stream in the middle of a record.
    w.write_all(&bytes[..bytes.len() / 2 + 13]).unwrap();
    w.flush().unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while tmp_bytes(&out) < 500_000 {
        assert!(Instant::now() < end, "the temporary file never grew");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    drop(w);
    assert!(
        traces(&out).is_empty(),
        "nothing was published before the crash"
    );
    // Restart: the leftover is salvaged before the new capture starts.
    let small = gen(dir.path(), 10, "pcap");
    let o = capture(&["--read", small.to_str().unwrap()], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = traces(&out);
    assert_eq!(files.len(), 2);
    let salvaged = &files[0];
    let m = manifest(salvaged);
    assert_eq!(m["recovered"], true);
    let n = tcpdump_count(salvaged);
    assert!(n > 1000 && n < 50_000, "{n}");
    assert_eq!(m["packets"], n);
    // the new run's file comes after it
    assert_eq!(tcpdump_count(&files[1]), 10);
    // no temporary left, only the site's sequence mark
    assert_eq!(hidden(&out), [".lander-seq-t"]);
}

/// The dot names in `dir` (temporaries, the sequence mark).
fn hidden(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn disk_full_publishes_the_written_part_as_partial_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 100_000, "pcap");
    let (mnt, _guard) = small_tmpfs(dir.path(), "small", "3m");
    // A few rounds each: the replay in blocks writes the next file while the writer
    // publishes the one before, and the disk fills at a different point each time.
    for (round, io) in ["uring", "sync"].iter().cycle().take(8).enumerate() {
        let out = mnt.join(format!("{io}-{round}"));
        let o = capture(
            &[
                "--read",
                input.to_str().unwrap(),
                "--io",
                io,
                "--rotate-size",
                "1MiB",
                "--ring-buffer",
                "256KiB",
            ],
            &out,
        );
        assert_disk_full(&o, &out, io);
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// A capture that filled its disk (output `o`, files in `out`) failed saying so, published
/// every file it wrote to, whole ones as they are and the last as partial, each with the count
/// tcpdump reads in it, and left nothing for salvage; what it logged.
fn assert_disk_full(o: &std::process::Output, out: &Path, io: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "disk full must fail the capture");
    assert!(err.contains("No space left"), "{err}");
    let files = traces(out);
    assert!(!files.is_empty());
    let (whole, last) = files.split_at(files.len() - 1);
    for f in whole {
        assert!(manifest(f)["partial"].is_null());
        assert_eq!(manifest(f)["packets"], tcpdump_count(f));
    }
    let m = manifest(&last[0]);
    let reason = m["partial"].as_str().expect("the last file is partial");
    assert!(reason.contains("No space left"), "{reason}");
    assert_eq!(m["packets"], tcpdump_count(&last[0]));
    // nothing left for salvage: every file written to was published
    assert_eq!(hidden(out), [".lander-seq-t"], "{io}");
    err
}

/// On a disk that takes direct writes, the ring's pages go past the page cache, a page ahead
/// of their records: when the disk fills, the file is still published up to its last whole
/// record, with the count of what it holds.
#[test]
fn disk_full_with_direct_writes_publishes_whole_records_as_partial() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 100_000, "pcap");
    let (mnt, _guard) = small_ext4(dir.path(), 4);
    for (round, io) in ["uring", "sync"].iter().cycle().take(6).enumerate() {
        let out = mnt.join(format!("{io}-{round}"));
        // pcap-ns output: through the ring (not in blocks) with either writer
        let o = capture(
            &[
                "--read",
                input.to_str().unwrap(),
                "--io",
                io,
                "--format",
                "pcap-ns",
                "--rotate-size",
                "2MiB",
                "--ring-buffer",
                "256KiB",
            ],
            &out,
        );
        let err = assert_disk_full(&o, &out, io);
        assert!(
            !err.contains("does not take them"),
            "ext4 takes direct writes: {err}"
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn rotate_packets_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 10_000, "pcap");
    let out = dir.path().join("out");
    let o = capture(
        &[
            "--read",
            input.to_str().unwrap(),
            "--rotate-packets",
            "3000",
        ],
        &out,
    );
    assert!(o.status.success());
    let counts: Vec<usize> = traces(&out).iter().map(|p| tcpdump_count(p)).collect();
    assert_eq!(counts, [3000, 3000, 3000, 1000]);
}

/// `n` SYN-flood packets stamped `step_ns` apart from `start_ns`.
fn stamped(n: u64, start_ns: u64, step_ns: u64) -> Vec<OwnedRecord> {
    let mut recs: Vec<OwnedRecord> = generate(Profile::SynFlood, 3, n).collect();
    for (i, r) in recs.iter_mut().enumerate() {
        r.ts_ns = start_ns + i as u64 * step_ns;
    }
    recs
}

fn encode(recs: &[OwnedRecord], format: Format) -> Vec<u8> {
    let mut w = TraceWriter::new(Vec::new(), format, LinkType::ETHERNET, 65535).unwrap();
    for r in recs {
        w.write(&r.as_record()).unwrap();
    }
    w.finish().unwrap()
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Starts `lander-capture --erf FIFO` with `extra` arguments and a run record in `state`;
/// returns the child and the open writing end of the FIFO.
fn erf_capture(dir: &Path, out: &Path, extra: &[&str]) -> (Child, std::fs::File) {
    let fifo = dir.join("erf.fifo");
    mkfifo(&fifo);
    let child = Command::new(CAPTURE)
        .args(["--erf", fifo.to_str().unwrap(), "--site", "t", "--out-dir"])
        .arg(out)
        .args(["--state-dir", dir.join("state").to_str().unwrap()])
        .args(["--stats-interval", "0.1"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    (child, w)
}

/// Polls until `done` holds, for at most 20 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Packets the run record in `state` says were captured so far.
fn recorded_packets(state: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(state.join("capture")) else {
        return 0;
    };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter_map(|v| v["counters"]["packets"].as_u64())
        .max()
        .unwrap_or(0)
}

#[test]
fn erf_fifo_interval_rotation_closes_the_file_while_the_fifo_is_silent() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (mut child, mut w) = erf_capture(dir.path(), &out, &["--rotate-interval", "1"]);
    w.write_all(&encode(&stamped(200, now_ns(), 1000), Format::Erf))
        .unwrap();
    w.flush().unwrap();
    // The FIFO stays open and silent: the interval timer alone must publish the file.
    wait_for("the interval to close the file", || traces(&out).len() == 1);
    assert!(child.try_wait().unwrap().is_none(), "still capturing");
    assert_eq!(tcpdump_count(&traces(&out)[0]), 200);
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
    drop(w);
    assert_eq!(traces(&out).len(), 1, "no empty file at the stop");
}

#[test]
fn sighup_rotates_at_once_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (mut child, mut w) = erf_capture(dir.path(), &out, &[]);
    let recs = stamped(1500, now_ns(), 1000);
    w.write_all(&encode(&recs[..1000], Format::Erf)).unwrap();
    w.flush().unwrap();
    let state = dir.path().join("state");
    wait_for("the first 1000 packets", || {
        recorded_packets(&state) == 1000
    });
    signal(&child, libc::SIGHUP);
    wait_for("SIGHUP to publish a file", || traces(&out).len() == 1);
    w.write_all(&encode(&recs[1000..], Format::Erf)).unwrap();
    w.flush().unwrap();
    wait_for("the last 500 packets", || recorded_packets(&state) == 1500);
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
    drop(w);
    let counts: Vec<usize> = traces(&out).iter().map(|p| tcpdump_count(p)).collect();
    assert_eq!(counts, [1000, 500]);
}

#[test]
fn pace_replays_at_the_recorded_speed() {
    let dir = tempfile::tempdir().unwrap();
    // 101 packets over exactly one second of trace time.
    let input = dir.path().join("paced.pcap");
    let recs = stamped(101, 1_700_000_000_000_000_000, 10_000_000);
    std::fs::write(&input, encode(&recs, Format::Pcap)).unwrap();
    let out = dir.path().join("out");
    let started = Instant::now();
    let o = capture(&["--read", input.to_str().unwrap(), "--pace"], &out);
    let took = started.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        took >= Duration::from_millis(900),
        "one second of trace replayed in {took:?}"
    );
    assert_eq!(total_packets(&out), 101);
}

#[test]
fn pcapng_mixing_link_types_rotates_at_each_change() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.pcapng");
    let recs = stamped(6, 1_700_000_000_000_000_000, 1000);
    // Interface 0 is Ethernet, interface 1 raw IP: packets on 0, 0, 1, 1, 0, 0.
    let mut bytes = vec![0; pcapng::emit::SECTION_HEADER_LEN + 2 * pcapng::emit::INTERFACE_LEN];
    pcapng::emit::emit_section_header(&mut bytes);
    let idbs = &mut bytes[pcapng::emit::SECTION_HEADER_LEN..];
    pcapng::emit::emit_interface(idbs, LinkType::ETHERNET, 65535);
    pcapng::emit::emit_interface(
        &mut idbs[pcapng::emit::INTERFACE_LEN..],
        LinkType::RAW,
        65535,
    );
    for (i, r) in recs.iter().enumerate() {
        let (interface, data) = match i {
            2 | 3 => (1, &r.data[14..]),
            _ => (0, &r.data[..]),
        };
        let at = bytes.len();
        bytes.resize(at + pcapng::emit::epb_len(data.len()), 0);
        let wire = data.len() as u32;
        pcapng::emit::emit_enhanced_packet(&mut bytes[at..], interface, r.ts_ns, wire, data);
    }
    std::fs::write(&input, bytes).unwrap();
    let out = dir.path().join("out");
    let o = capture(&["--read", input.to_str().unwrap()], &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("link type changes from EN10MB to RAW"),
        "{err}"
    );
    let files = traces(&out);
    let counts: Vec<usize> = files.iter().map(|p| tcpdump_count(p)).collect();
    assert_eq!(counts, [2, 2, 2]);
    let links: Vec<serde_json::Value> = files
        .iter()
        .map(|p| manifest(p)["link_type"].clone())
        .collect();
    assert_eq!(links, [1, 101, 1]);
}

/// Makes `io_uring_setup` fail with ENOSYS in the child, as container seccomp profiles do.
#[allow(unsafe_code)]
fn without_io_uring(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec; it only makes two system
    // calls on data on its own stack (async-signal-safe), and allocates nothing.
    unsafe { cmd.pre_exec(deny_io_uring_setup) }
}

#[allow(unsafe_code)]
fn deny_io_uring_setup() -> std::io::Result<()> {
    const LOAD_NR: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS; seccomp_data.nr is at offset 0
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        op(LOAD_NR, 0, 0, 0),
        op(JEQ, 0, 1, libc::SYS_io_uring_setup as u32),
        op(RET, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        op(RET, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: plain prctl calls; `prog` and `filter` live across them and the kernel copies
    // the program.
    let rc = unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            -1
        } else {
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog)
        }
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[test]
fn without_io_uring_auto_falls_back_to_plain_writes_with_one_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), 20_000, "pcap");
    let out = dir.path().join("out");
    let o = without_io_uring(Command::new(CAPTURE).args(["--read", input.to_str().unwrap()]))
        .args(["--io", "auto", "--rotate-size", "256KiB", "--site", "t"])
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("io_uring unavailable").count(), 1, "{err}");
    assert!(
        err.contains("using plain writes") && err.contains("sync writer"),
        "{err}"
    );
    assert!(traces(&out).len() > 3);
    assert_eq!(total_packets(&out), 20_000);
    // Asked for explicitly, io_uring that cannot be set up is an error, not a fallback.
    let out = dir.path().join("out-uring");
    let o = without_io_uring(Command::new(CAPTURE).args(["--read", input.to_str().unwrap()]))
        .args(["--io", "uring", "--site", "t"])
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("cannot set up io_uring"), "{err}");
    assert!(traces(&out).is_empty());
}

/// Starts a replay of `input` (in blocks, unless `extra` says otherwise) and signals it with
/// `sig` once its temporary file holds a few MiB; returns how it exited.
fn replay_signalled(
    input: &Path,
    out: &Path,
    sig: i32,
    extra: &[&str],
) -> std::process::ExitStatus {
    let mut child = Command::new(CAPTURE)
        .args(["--read", input.to_str().unwrap(), "--rotate-size", "16MiB"])
        .args(extra)
        .args(["--site", "t", "--out-dir"])
        .arg(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if tmp_bytes(out) >= 4 << 20 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the replay ended first"
        );
        assert!(Instant::now() < end, "the temporary file never grew");
        std::thread::sleep(Duration::from_millis(1));
    }
    signal(&child, sig);
    wait_exit(&mut child, Duration::from_secs(60))
}

/// The records of the published traces in `dir`, one after the other, are the input's first
/// records, byte for byte; returns how many bytes of records they hold.
fn assert_prefix_of(dir: &Path, input: &[u8]) -> usize {
    let mut at = 24;
    for t in traces(dir) {
        let bytes = std::fs::read(&t).unwrap();
        assert_eq!(bytes[..24], input[..24], "{t:?}: the header");
        let records = &bytes[24..];
        assert!(
            input[at..].starts_with(records),
            "{t:?} is not the input's next records"
        );
        assert_eq!(manifest(&t)["packets"], tcpdump_count(&t));
        at += records.len();
    }
    at - 24
}

#[test]
fn a_replay_in_blocks_killed_or_stopped_leaves_a_prefix_of_its_input() {
    // Two threads write a replay's blocks, but in turn: a file is whole up to where it ends,
    // never with a hole a crash could leave before a later block.
    killed_or_stopped_leaves_a_prefix(&[]);
}

/// Through the ring with io_uring, many writes are in flight, and on a disk that takes them
/// they go past the page cache, a page at a time ahead of their buffers' records: a crash
/// still leaves whole records of the input, in order, without a hole.
#[test]
fn a_replay_through_the_ring_killed_or_stopped_leaves_a_prefix_of_its_input() {
    killed_or_stopped_leaves_a_prefix(&["--io", "uring"]);
}

fn killed_or_stopped_leaves_a_prefix(extra: &[&str]) {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let input = gen(dir.path(), 1_000_000, "pcap");
    let bytes = std::fs::read(&input).unwrap();
    let out = dir.path().join("killed");
    replay_signalled(&input, &out, libc::SIGKILL, extra);
    let o = capture(
        &["--read", gen(dir.path(), 10, "pcap").to_str().unwrap()],
        &out,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = traces(&out);
    let recovered: Vec<_> = files
        .iter()
        .filter(|t| manifest(t)["recovered"] == true)
        .collect();
    assert_eq!(recovered.len(), 1, "the file being written is salvaged");
    // the salvaged file and the ones before it, without the restart's own
    let keep = dir.path().join("before");
    std::fs::create_dir(&keep).unwrap();
    for t in &files[..files.len() - 1] {
        std::fs::copy(t, keep.join(t.file_name().unwrap())).unwrap();
        let mut m = t.as_os_str().to_owned();
        m.push(".json");
        let mut to = keep.join(t.file_name().unwrap()).into_os_string();
        to.push(".json");
        std::fs::copy(PathBuf::from(m), PathBuf::from(to)).unwrap();
    }
    let kept = assert_prefix_of(&keep, &bytes);
    // whole records of the 4 MiB and more written before the kill
    assert!(kept > 3 << 20, "{kept} bytes kept of {files:?}");

    let out = dir.path().join("stopped");
    let st = replay_signalled(&input, &out, libc::SIGINT, extra);
    assert!(st.success(), "a stop is a clean exit: {st:?}");
    let kept = assert_prefix_of(&out, &bytes);
    assert!(kept > 3 << 20 && kept < bytes.len() - 24, "{kept}");
    for t in traces(&out) {
        assert!(manifest(&t)["partial"].is_null(), "{t:?}");
    }
}
