//! Stand-ins for tests and benchmarks: a scrub job that copies the input and publishes a
//! manifest beside the output, as `lander-scrub` would, without scrubbing anything; and
//! programs (`sbatch`, `squeue`, a job) written as shell scripts.

use std::io::{self, Write};
use std::path::Path;

use lander_spool::manifest::{manifest_path, Anonymization, Manifest};
use lander_spool::publish::PendingFile;

use crate::fsutil::with_path;
use crate::record::counts_from;

/// Copies `input` to `output` and publishes a manifest beside it (manifest first), carrying
/// over the input's manifest if it has one.
pub fn copy_job(input: &Path, output: &Path) -> io::Result<()> {
    let data = match crate::fsutil::open_regular(input)? {
        Ok((mut file, _)) => {
            let mut data = Vec::new();
            io::Read::read_to_end(&mut file, &mut data).map_err(|e| with_path(e, input))?;
            data
        }
        Err(kind) => {
            let msg = format!("{}: {kind}, not a regular file", input.display());
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
    };
    let mut manifest =
        Manifest::read(&manifest_path(input)).unwrap_or_else(|_| loose_counts(input));
    manifest.file = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    manifest.file_size = data.len() as u64;
    manifest.blake3 = blake3::hash(&data).to_hex().to_string();
    manifest.anonymization = Some(Anonymization {
        mapping: "copy".into(),
        source_file: input.file_name().map(|n| n.to_string_lossy().into_owned()),
        source_blake3: Some(manifest.blake3.clone()),
        ..Anonymization::default()
    });
    manifest.publish(&manifest_path(output), false)?;
    let mut pending = PendingFile::create(output)?;
    pending.file.write_all(&data)?;
    pending.commit(false)?;
    Ok(())
}

/// A manifest with only the packet and byte counts of a manifest that is not a full one.
fn loose_counts(input: &Path) -> Manifest {
    let (packets, bytes) = counts_from(&manifest_path(input));
    Manifest {
        packets: packets.unwrap_or(0),
        bytes: bytes.unwrap_or(0),
        ..Manifest::default()
    }
}

/// Writes a shell script `name` with `body` into `dir`, executable; returns its path.
///
/// It is put in place by `install`, so no descriptor of this process ever has it open for
/// writing: a thread forking meanwhile would carry one into its child until the child's
/// exec, and running the script then would fail with ETXTBSY.
pub fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    let draft = dir.join(format!(".{name}.draft"));
    std::fs::write(&draft, format!("#!/bin/sh\n{body}\n")).expect("the script's draft");
    let installed = std::process::Command::new("install")
        .args(["-m", "0755"])
        .arg(&draft)
        .arg(&path)
        .status()
        .is_ok_and(|st| st.success());
    assert!(installed, "install -m 0755 {}", path.display());
    let _ = std::fs::remove_file(&draft);
    path.to_string_lossy().into_owned()
}
