//! File identity on the scrub side: a raw file is (site, name, content digest), never its name
//! alone. The names a site has used are registered with the digest of the file that had them
//! (`state/scrub/names/<site>/<name>`), so that a different file arriving under a used name
//! (a capture restarted in the same second, a trace replayed) is told apart from a second copy
//! of the same file, even after the first one's scrubbed and archived copies are gone.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use lander_spool::manifest::manifest_path;

use crate::claim::Identity;
use crate::fsutil::{self, create_excl, open_regular};

/// What is at a raw file's name.
#[derive(Debug)]
pub enum Found {
    /// A regular file, with its identity.
    Regular(Identity),
    /// Something else (a symbolic link, a FIFO, ...), named.
    Other(String),
    /// Nothing.
    Gone,
}

/// Finds what is at `raw` without following a link. The digest is the one its manifest
/// records when the manifest is a regular file whose size agrees with the file (a capture
/// host's manifest); else the file is hashed.
pub fn identify(raw: &Path) -> io::Result<Found> {
    let (file, meta) = match open_regular(raw) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Gone),
        Err(e) => return Err(e),
        Ok(Err(kind)) => return Ok(Found::Other(kind)),
        Ok(Ok(found)) => found,
    };
    let digest = match manifest_digest(raw, meta.len()) {
        Some(d) => d,
        None => fsutil::digest_of(&file).map_err(|e| fsutil::with_path(e, raw))?,
    };
    Ok(Found::Regular(identity_of(digest, &meta)))
}

/// The identity of the inode `meta` with content digest `digest`.
pub fn identity_of(digest: String, meta: &std::fs::Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt;
    Identity {
        digest,
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
    }
}

/// The digest a trace's manifest records, if the manifest is a regular file and its
/// `file_size` is `size`.
pub fn manifest_digest(trace: &Path, size: u64) -> Option<String> {
    let v = read_manifest(&manifest_path(trace))?;
    let digest = v.get("blake3")?.as_str()?.to_ascii_lowercase();
    let recorded = v.get("file_size").and_then(|s| s.as_u64());
    (!digest.is_empty() && recorded == Some(size)).then_some(digest)
}

/// A manifest as JSON, read only if it is a regular file (never through a link).
pub fn read_manifest(path: &Path) -> Option<serde_json::Value> {
    let (mut file, _) = open_regular(path).ok()?.ok()?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The digest of the raw file a scrubbed file was made from, per its manifest.
pub fn source_digest(scrubbed: &Path) -> Option<String> {
    let v = read_manifest(&manifest_path(scrubbed))?;
    let d = v.get("anonymization")?.get("source_blake3")?.as_str()?;
    Some(d.to_ascii_lowercase())
}

/// The digest of the regular file at `path` (hashed), `None` if there is none.
pub fn digest_at(path: &Path) -> io::Result<Option<String>> {
    match open_regular(path) {
        Ok(Ok((file, _))) => fsutil::digest_of(&file).map(Some),
        Ok(Err(_)) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The registry of names a site has used.
#[derive(Debug, Clone)]
pub struct Names {
    dir: PathBuf,
}

impl Names {
    /// The registry under `dir` (`state/scrub/names`).
    pub fn new(dir: PathBuf) -> Names {
        Names { dir }
    }

    fn path(&self, site: &str, name: &str) -> PathBuf {
        self.dir.join(site).join(name)
    }

    /// The digest of the file that had `name` at `site`, if any did.
    pub fn get(&self, site: &str, name: &str) -> io::Result<Option<String>> {
        match std::fs::read_to_string(self.path(site, name)) {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fsutil::with_path(e, &self.path(site, name))),
        }
    }

    /// Registers `name` at `site` as the name of the file with `digest`; a name already
    /// registered for another digest is an error (`AlreadyExists`).
    pub fn register(&self, site: &str, name: &str, digest: &str) -> io::Result<()> {
        let path = self.path(site, name);
        fsutil::create_dir_mode(&self.dir.join(site), 0o750)?;
        if create_excl(&path, format!("{digest}\n").as_bytes())? {
            return Ok(());
        }
        match self.get(site, name)? {
            Some(d) if d == digest => Ok(()),
            other => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{}: name used by another file (BLAKE3 {})",
                    path.display(),
                    other.unwrap_or_default()
                ),
            )),
        }
    }
}

/// The `k`-th fresh name for a different file that arrived under `name`. A trace name
/// `<site>-<date>-<time>-<seq>.<ext>` keeps its shape, with `seq + k * 10^9` (past any sequence
/// a capture run reaches, so it reads as "renamed"); another name gets `-dup<k>` before its
/// extension.
pub fn fresh_name(name: &str, k: u64) -> String {
    use lander_spool::naming::parse_trace_name;
    if let Some((_, _, seq)) = parse_trace_name(name) {
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        let head = &stem[..stem.rfind('-').map_or(0, |i| i + 1)];
        let width = stem.len() - head.len();
        let seq = seq.saturating_add(k.saturating_mul(1_000_000_000));
        return format!("{head}{seq:0width$}.{ext}");
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-dup{k}.{ext}"),
        _ => format!("{name}-dup{k}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_names_keep_the_trace_name_shape() {
        use lander_spool::naming::parse_trace_name;
        let name = "isi-20240229-235959-000007.pcapng";
        let fresh = fresh_name(name, 1);
        assert_eq!(fresh, "isi-20240229-235959-1000000007.pcapng");
        let (site, _, seq) = parse_trace_name(&fresh).unwrap();
        assert_eq!((site, seq), ("isi", 1_000_000_007));
        assert_eq!(
            fresh_name("s1-20240101-000000-5.pcap", 2),
            "s1-20240101-000000-2000000005.pcap"
        );
        assert_eq!(fresh_name("odd.pcap", 1), "odd-dup1.pcap");
        assert_eq!(fresh_name("noext", 3), "noext-dup3");
    }

    #[test]
    fn a_name_is_registered_for_one_digest() {
        let dir = tempfile::tempdir().unwrap();
        let names = Names::new(dir.path().to_owned());
        assert_eq!(names.get("s", "a").unwrap(), None);
        names.register("s", "a", "d1").unwrap();
        names.register("s", "a", "d1").unwrap();
        let err = names.register("s", "a", "d2").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(names.get("s", "a").unwrap().as_deref(), Some("d1"));
    }

    #[test]
    fn a_link_is_not_identified_as_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("x");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        assert!(matches!(identify(&link).unwrap(), Found::Other(k) if k.contains("link")));
        assert!(matches!(
            identify(&dir.path().join("y")).unwrap(),
            Found::Gone
        ));
        std::fs::write(dir.path().join("z"), b"abc").unwrap();
        let Found::Regular(id) = identify(&dir.path().join("z")).unwrap() else {
            panic!("a regular file");
        };
        assert_eq!(id.digest, blake3::hash(b"abc").to_hex().to_string());
    }
}
