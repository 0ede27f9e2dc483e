//! Names never repeat and publication never replaces: files planted under the next name,
//! modes whatever the umask, salvage of publications interrupted at each step.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;
use lander_spool::perms::Perms;
use lander_spool::seq::{mark_path, read_mark};

fn digest(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap())
        .to_hex()
        .to_string()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A file source that plants `files` (name, bytes) in `dir` just before its first packet:
/// after the engine chose its first sequence number, before anything is published.
fn planting(dir: &Path, files: Vec<(String, Vec<u8>)>, recs: Vec<OwnedRecord>) -> VecSource {
    let dir = dir.to_owned();
    let mut src = VecSource::file(recs);
    let mut files = Some(files);
    src.after = Box::new(move |_| {
        for (name, bytes) in files.take().into_iter().flatten() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        true
    });
    src
}

fn first_name(recs: &[OwnedRecord], seq: u64) -> String {
    naming::trace_name("t", recs[0].ts_ns, seq, Format::PcapNs)
}

#[test]
fn a_file_planted_under_the_next_name_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth(100);
    let taken = first_name(&input, 0);
    let planted = vec![(taken.clone(), b"not ours".to_vec())];
    let s = run(
        &small_config(dir.path(), IoMode::Sync),
        &mut planting(dir.path(), planted, input.clone()),
        &Control::default(),
    )
    .unwrap();
    assert_eq!(s.error, None);
    let untouched = std::fs::read(dir.path().join(&taken)).unwrap() == b"not ours";
    assert!(untouched, "the planted file is untouched");
    assert!(!manifest_path(&dir.path().join(&taken)).exists());
    let ours = dir.path().join(first_name(&input, 1));
    assert_eq!(s.files[0].path, ours, "published under the next number");
    let m = Manifest::read(&manifest_path(&ours)).unwrap();
    assert_eq!(
        (m.seq, m.file.as_str()),
        (Some(1), &*ours.file_name().unwrap().to_string_lossy())
    );
    assert!(read_all(&ours) == input);
    assert_eq!(read_mark(dir.path(), "t").unwrap(), 2);
}

#[test]
fn a_manifest_planted_under_the_next_name_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth(100);
    let taken = format!("{}.json", first_name(&input, 0));
    let later = first_name(&input, 1);
    let planted = vec![
        (taken.clone(), b"{}".to_vec()),
        (later.clone(), b"not ours either".to_vec()),
    ];
    let s = run(
        &small_config(dir.path(), IoMode::Uring),
        &mut planting(dir.path(), planted, input.clone()),
        &Control::default(),
    )
    .unwrap();
    assert_eq!(s.error, None);
    assert_eq!(std::fs::read(dir.path().join(&taken)).unwrap(), b"{}");
    let untouched = std::fs::read(dir.path().join(&later)).unwrap() == b"not ours either";
    assert!(untouched, "the planted file is untouched");
    assert_eq!(s.files[0].path, dir.path().join(first_name(&input, 2)));
    assert!(read_all(&s.files[0].path) == input);
    assert!(!names(dir.path()).iter().any(|n| n.ends_with(".tmp")));
}

#[test]
fn a_second_run_continues_past_the_mark_when_every_file_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth(100);
    let c = small_config(dir.path(), IoMode::Sync);
    let first = run(&c, &mut VecSource::file(input.clone()), &Control::default()).unwrap();
    for f in &first.files {
        std::fs::remove_file(&f.path).unwrap();
        std::fs::remove_file(manifest_path(&f.path)).unwrap();
    }
    let second = run(&c, &mut VecSource::file(input.clone()), &Control::default()).unwrap();
    assert_ne!(first.files[0].path, second.files[0].path);
    assert_eq!(second.files[0].path, dir.path().join(first_name(&input, 1)));
}

#[test]
fn traces_manifests_mark_and_directory_get_exact_modes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("raw");
    let mut c = small_config(&out, IoMode::Sync);
    c.perms = Perms {
        mode: 0o660,
        gid: Some(4242),
    };
    let s = run(&c, &mut VecSource::file(synth(10)), &Control::default()).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let gid = |p: &Path| std::fs::metadata(p).unwrap().gid();
    let trace = &s.files[0].path;
    for p in [trace, &manifest_path(trace), &mark_path(&out, "t")] {
        assert_eq!((mode(p), gid(p)), (0o660, 4242), "{p:?}");
    }
    assert_eq!((mode(&out), gid(&out)), (0o770, 4242));
}

/// A leftover of a dead writer beside `dir`'s published trace `name`: its bytes, as the
/// temporary file the publication was interrupted with.
fn leftover(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let host = lander_spool::manifest::hostname();
    let tmp = dir.join(format!(".{name}.{host}.4000000000.0.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    tmp
}

/// One published file in `dir`, moved aside: its name, bytes and manifest bytes.
fn published_once(dir: &Path, n: u64) -> (String, Vec<u8>, Vec<u8>) {
    run(
        &small_config(dir, IoMode::Sync),
        &mut VecSource::file(synth(n)),
        &Control::default(),
    )
    .unwrap();
    let file = published(dir).remove(0);
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(&file).unwrap();
    let manifest = std::fs::read(manifest_path(&file)).unwrap();
    std::fs::remove_file(&file).unwrap();
    (name, bytes, manifest)
}

#[test]
fn discard_partial_removes_the_orphan_manifest_of_an_interrupted_publication() {
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes, manifest) = published_once(dir.path(), 50);
    // Crash between the manifest's publication and the trace's: the manifest and the
    // temporary trace.
    let tmp = leftover(dir.path(), &name, &bytes);
    assert!(manifest_path(&dir.path().join(&name)).exists());
    let out = salvage_dir(dir.path(), LeftoverPolicy::Discard, false).unwrap();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(!tmp.exists());
    assert_eq!(
        names(dir.path()),
        [".lander-seq-t"],
        "nothing orphaned is left"
    );
    // Recovering instead publishes the trace with a manifest of its own.
    leftover(dir.path(), &name, &bytes);
    std::fs::write(manifest_path(&dir.path().join(&name)), &manifest).unwrap();
    let out = salvage_dir(dir.path(), LeftoverPolicy::Recover, false).unwrap();
    let dest = dir.path().join(&name);
    assert!(out.contains(&SalvageOutcome::Recovered {
        path: dest.clone(),
        packets: 50
    }));
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    let m = Manifest::read(&manifest_path(&dest)).unwrap();
    assert!(m.recovered);
    assert_eq!(m.blake3, digest(&dest));
}

#[test]
fn a_leftover_that_was_published_already_is_removed_not_published_again() {
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes, _) = published_once(dir.path(), 20);
    // Published by link and then moved on (to the archive) before the temporary name was
    // removed: the leftover is a second link of a file that went its way.
    let tmp = leftover(dir.path(), &name, &bytes);
    let archive = dir.path().join("archived.pcap");
    std::fs::hard_link(&tmp, &archive).unwrap();
    std::fs::remove_file(manifest_path(&dir.path().join(&name))).unwrap();
    let out = salvage_dir(dir.path(), LeftoverPolicy::Recover, false).unwrap();
    assert!(
        matches!(&out[..], [SalvageOutcome::Removed { why, .. }] if why.contains("already published"))
    );
    assert!(
        !dir.path().join(&name).exists(),
        "the name is not used twice"
    );
}

#[test]
fn a_leftover_whose_name_was_taken_is_recovered_under_the_next_number() {
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes, _) = published_once(dir.path(), 30);
    let tmp = leftover(dir.path(), &name, &bytes);
    let taken = dir.path().join(&name);
    std::fs::write(&taken, b"someone else's").unwrap();
    let out = salvage_dir(dir.path(), LeftoverPolicy::Recover, false).unwrap();
    let next = dir.path().join(naming::with_seq(&name, 1).unwrap());
    assert!(out.contains(&SalvageOutcome::Recovered {
        path: next.clone(),
        packets: 30
    }));
    assert!(!tmp.exists());
    assert!(std::fs::read(&taken).unwrap() == b"someone else's");
    assert_eq!(std::fs::read(&next).unwrap(), bytes);
}

#[test]
fn a_leftover_that_cannot_be_salvaged_is_kept_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes, _) = published_once(dir.path(), 10);
    // Not a trace file name, and the name is taken: nowhere to publish it.
    std::fs::write(dir.path().join("odd.pcap"), b"someone else's").unwrap();
    let odd = leftover(dir.path(), "odd.pcap", &bytes);
    let good = leftover(dir.path(), &name, &bytes);
    let out = salvage_dir(dir.path(), LeftoverPolicy::Recover, false).unwrap();
    assert!(
        matches!(&out[..], [SalvageOutcome::Kept { path, why }, SalvageOutcome::Removed { .. }, SalvageOutcome::Recovered { .. }]
            if *path == odd && why.contains("taken")),
        "{out:?}"
    );
    assert!(odd.exists() && !good.exists());
    assert_eq!(std::fs::read(dir.path().join(&name)).unwrap(), bytes);
}
