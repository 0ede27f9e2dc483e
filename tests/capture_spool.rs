//! `lander-capture` in a spool: names never repeat for a site (after the files moved on to
//! archive/ and scrubbed/, after they are all gone, replaying the same trace again), a file
//! planted under the next name is left untouched, raw traces are never readable by others
//! whatever the umask, `--discard-partial` leaves no orphan manifest.

mod capture_support;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use capture_support::*;

fn capture(out: &Path, args: &[&str]) -> Output {
    Command::new(CAPTURE)
        .args(args)
        .arg("--out-dir")
        .arg(out)
        .args(["--site", "t"])
        .output()
        .unwrap()
}

fn replay(input: &Path, out: &Path) -> Vec<PathBuf> {
    let o = capture(
        out,
        &["--read", input.to_str().unwrap(), "--rotate-packets", "400"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    traces(out)
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn digest(p: &Path) -> String {
    blake3::hash(&std::fs::read(p).unwrap())
        .to_hex()
        .to_string()
}

/// Moves every file of `from` (traces and manifests) to `to`, renaming each with `rename`.
fn move_all(from: &Path, to: &Path, rename: impl Fn(&str) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        if !n.starts_with('.') {
            std::fs::rename(from.join(&n), to.join(rename(&n))).unwrap();
        }
    }
}

fn seqs(names: &[String]) -> BTreeSet<u64> {
    names
        .iter()
        .map(|n| lander_spool::seq::seq_in_name(n, "t").unwrap())
        .collect()
}

#[test]
fn a_restart_after_the_files_moved_on_never_reuses_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen_trace(dir.path(), 1000);
    let spool = dir.path().join("spool");
    let raw = spool.join("raw/t");
    // The same trace again and again: the date and time in the names are the same each run.
    let first: Vec<String> = replay(&input, &raw).iter().map(|p| name(p)).collect();
    move_all(&raw, &spool.join("archive/t"), str::to_string);
    let second: Vec<String> = replay(&input, &raw).iter().map(|p| name(p)).collect();
    assert!(
        seqs(&first).is_disjoint(&seqs(&second)),
        "{first:?} {second:?}"
    );
    // A dispatcher gave them a suffix on the way to scrubbed/.
    move_all(&raw, &spool.join("scrubbed/t"), |n| {
        n.replacen('.', "-r1.", 1)
    });
    let third: Vec<String> = replay(&input, &raw).iter().map(|p| name(p)).collect();
    let before: BTreeSet<u64> = seqs(&first).union(&seqs(&second)).copied().collect();
    assert!(before.is_disjoint(&seqs(&third)), "{third:?}");
    // Every file gone (retention): the site's mark still knows.
    for d in ["raw/t", "archive/t", "scrubbed/t"] {
        for e in std::fs::read_dir(spool.join(d)).unwrap() {
            let p = e.unwrap().path();
            if !name(&p).starts_with(".lander-seq") {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
    let fourth: Vec<String> = replay(&input, &raw).iter().map(|p| name(p)).collect();
    let all: BTreeSet<u64> = before.union(&seqs(&third)).copied().collect();
    assert!(all.is_disjoint(&seqs(&fourth)), "{fourth:?}");
}

#[test]
fn replaying_the_same_trace_twice_overwrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen_trace(dir.path(), 1000);
    let spool = dir.path().join("spool");
    let (raw, archive) = (spool.join("raw/t"), spool.join("archive/t"));
    let first = replay(&input, &raw);
    let kept: Vec<(String, String)> = first.iter().map(|p| (name(p), digest(p))).collect();
    move_all(&raw, &archive, str::to_string);
    let second = replay(&input, &raw);
    assert_eq!(second.len(), first.len());
    for (n, d) in &kept {
        assert_eq!(&digest(&archive.join(n)), d, "{n} is untouched");
        assert!(!raw.join(n).exists(), "{n} is not used again");
    }
}

fn erf_records(n: u64, start_ns: u64) -> Vec<u8> {
    use lander_trace::format::TraceWriter;
    use lander_trace::synth::{generate, Profile};
    let mut w = TraceWriter::new(
        Vec::new(),
        lander_trace::Format::Erf,
        lander_trace::LinkType::ETHERNET,
        65535,
    )
    .unwrap();
    for (i, mut r) in generate(Profile::SynFlood, 3, n).enumerate() {
        r.ts_ns = start_ns + i as u64 * 1000;
        w.write(&r.as_record()).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn a_file_planted_under_the_next_name_while_capturing_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("erf.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = dir.path().join("out");
    let start_ns = 1_700_000_000_000_000_000;
    let stream = erf_records(2000, start_ns);
    let mut child = Command::new(CAPTURE)
        .args(["--erf", fifo.to_str().unwrap(), "--site", "t", "--out-dir"])
        .arg(&out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(&stream[..stream.len() / 2]).unwrap();
    w.flush().unwrap();
    // The first file is open (under its temporary name): its number was chosen.
    let end = Instant::now() + Duration::from_secs(20);
    while !out.exists() || !temporaries(&out).iter().any(|n| n.starts_with(".t-")) {
        assert!(Instant::now() < end, "the capture never opened a file");
        std::thread::sleep(Duration::from_millis(10));
    }
    let taken = lander_spool::naming::trace_name("t", start_ns, 0, lander_trace::Format::Pcap);
    std::fs::write(out.join(&taken), b"planted").unwrap();
    w.write_all(&stream[stream.len() / 2..]).unwrap();
    drop(w);
    let st = child.wait().unwrap();
    assert!(st.success(), "{st:?}");
    assert!(
        std::fs::read(out.join(&taken)).unwrap() == b"planted",
        "the planted file is untouched"
    );
    let files = traces(&out);
    assert_eq!(files.len(), 2, "{files:?}");
    let ours = files.iter().find(|p| name(p) != taken).unwrap();
    assert_eq!(count_packets(ours), 2000);
    assert_eq!(manifest(ours)["seq"], 1);
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// lander-capture under `umask 000`, so nothing but the program itself decides the modes.
fn capture_umask0(out: &Path, input: &Path, extra: &str) -> Output {
    let line = format!(
        "umask 000; exec {CAPTURE} --read {} --site t --out-dir {} {extra}",
        input.display(),
        out.display()
    );
    Command::new("sh").args(["-c", &line]).output().unwrap()
}

#[test]
fn raw_traces_are_never_readable_by_others_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen_trace(dir.path(), 100);
    let out = dir.path().join("raw/t");
    let o = capture_umask0(&out, &input, "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mode(&out), 0o750);
    assert_eq!(
        mode(&dir.path().join("raw")) & 0o005,
        0o005,
        "parents as usual"
    );
    let trace = traces(&out).pop().unwrap();
    let mark = lander_spool::seq::mark_path(&out, "t");
    for p in [
        trace.clone(),
        PathBuf::from(format!("{}.json", trace.display())),
        mark,
    ] {
        assert_eq!(mode(&p), 0o640, "{p:?}");
    }
    // Another mode and a group, by name.
    let gid = lander_spool::os::group_id("daemon").expect("Debian has a daemon group");
    let out2 = dir.path().join("raw/u");
    let o = capture_umask0(&out2, &input, "--raw-mode 0600 --raw-group daemon");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let trace = traces(&out2).pop().unwrap();
    let meta = std::fs::metadata(&trace).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.gid()), (0o600, gid));
    assert_eq!(mode(&out2), 0o700);
    assert_eq!(std::fs::metadata(&out2).unwrap().gid(), gid);
    // A mode for others is refused before anything is written.
    let o = capture(
        &dir.path().join("raw/v"),
        &["--read", input.to_str().unwrap(), "--raw-mode", "0644"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("never readable by others"),
        "{err}"
    );
    assert!(!dir.path().join("raw/v").exists());
}

#[test]
fn discard_partial_leaves_no_orphan_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen_trace(dir.path(), 100);
    let out = dir.path().join("out");
    let published = replay(&input, &out);
    // A publication interrupted between the manifest and the trace: the manifest under its
    // final name, the trace still under the temporary name of a writer that died.
    let victim = &published[0];
    let host = lander_spool::manifest::hostname();
    let tmp = out.join(format!(".{}.{host}.4000000000.0.tmp", name(victim)));
    std::fs::rename(victim, &tmp).unwrap();
    std::fs::create_dir(dir.path().join("small")).unwrap();
    let small = gen_trace(&dir.path().join("small"), 10);
    let o = capture(
        &out,
        &["--read", small.to_str().unwrap(), "--discard-partial"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!tmp.exists());
    let orphan = PathBuf::from(format!("{}.json", victim.display()));
    assert!(
        !orphan.exists(),
        "the orphan manifest is removed with its trace"
    );
}
