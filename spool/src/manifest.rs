//! The manifest: a JSON file beside every published trace file.
//!
//! The manifest of `X.pcap` is `X.pcap.json`. It is published before the trace file, so a
//! consumer that sees a trace file also sees its manifest. It carries the key id of an
//! anonymized file (a digest of the key), never the key.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use lander_trace::record::{Format, LinkType};

/// Version of the manifest layout written by this build.
pub const MANIFEST_VERSION: u32 = 1;

/// Everything a consumer needs to know about one trace file without reading it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// File name of the trace (no directory).
    pub file: String,
    /// Trace format.
    pub format: Option<Format>,
    /// Link type number (`LINKTYPE_*`).
    pub link_type: u32,
    /// Link type name, for people.
    pub link_type_name: String,
    /// Snapshot length of the capture.
    pub snaplen: u32,
    /// Packets in the file.
    pub packets: u64,
    /// Captured bytes (sum of captured lengths).
    pub bytes: u64,
    /// Bytes on the wire (sum of original lengths).
    pub wire_bytes: u64,
    /// Size of the trace file in bytes.
    pub file_size: u64,
    /// Timestamp of the first packet, ns since the epoch.
    pub first_ts_ns: Option<u64>,
    /// Timestamp of the last packet, ns since the epoch.
    pub last_ts_ns: Option<u64>,
    /// Drops seen while this file was written.
    pub drops: Drops,
    /// BLAKE3 digest of the trace file, hex.
    pub blake3: String,
    /// Host that wrote the file.
    pub host: String,
    /// Capture interface or source description.
    pub interface: Option<String>,
    /// Capture site.
    pub site: Option<String>,
    /// Sequence number within the capture run.
    pub seq: Option<u64>,
    /// The file was salvaged from a temporary file left by a crash.
    #[serde(default)]
    pub recovered: bool,
    /// Why the file ends early (write error, disk full), when it does.
    pub partial: Option<String>,
    /// Wall-clock time of publication, ns since the epoch.
    pub created_ns: u64,
    /// Version of the program that wrote the file.
    pub writer: String,
    /// Set on scrubbed files.
    pub anonymization: Option<Anonymization>,
}

/// Drop counters over the life of one file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    /// Dropped by the kernel or capture card (libpcap `ps_drop`), when known.
    pub kernel: Option<u64>,
    /// Dropped by the interface (libpcap `ps_ifdrop`), when known.
    pub interface: Option<u64>,
    /// Dropped because no ring buffer was free.
    pub ring: u64,
    /// Losses the source itself reported (ERF `lctr`).
    pub source: u64,
}

/// How a scrubbed file was made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Anonymization {
    /// `cryptopan`, `cryptopant` or `libtrace`.
    pub mapping: String,
    /// Payload policy (`drop`, `keep:N`, `zero`).
    pub payload: String,
    /// Checksum policy (`fix`, `zero`, `keep`).
    pub checksums: String,
    /// Digest of the key (never the key).
    pub key_id: String,
    /// Other settings that change the output (pass bits, MAC policy, don't-scramble list).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Packets cut or dropped, by reason.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Packets whose headers had bytes replaced by zeros or padding (unknown options,
    /// reserved fields, digests), by kind.
    #[serde(default)]
    pub neutralised: BTreeMap<String, u64>,
    /// Name of the raw file this was made from.
    pub source_file: Option<String>,
    /// BLAKE3 of the raw file.
    pub source_blake3: Option<String>,
}

/// An error reading a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// Manifest path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is not a manifest.
    #[error("{path}: line {line}, column {column}: {message}")]
    Parse {
        /// Manifest path.
        path: PathBuf,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// What was wrong.
        message: String,
    },
}

/// The manifest path of a trace file: the trace path with `.json` appended.
pub fn manifest_path(trace: &Path) -> PathBuf {
    let mut os = trace.as_os_str().to_owned();
    os.push(".json");
    PathBuf::from(os)
}

/// Whether a file name is a manifest name.
pub fn is_manifest_name(name: &str) -> bool {
    name.ends_with(".json")
}

impl Manifest {
    /// A manifest for `file` with the writer fields filled in.
    pub fn new(file: &str, format: Format, link_type: LinkType, snaplen: u32) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            file: file.to_string(),
            format: Some(format),
            link_type: link_type.0,
            link_type_name: link_type.name(),
            snaplen,
            host: hostname(),
            writer: concat!("lander-rs ", env!("CARGO_PKG_VERSION")).to_string(),
            ..Manifest::default()
        }
    }

    /// Notes one packet in the counts and time range.
    pub fn add_packet(&mut self, ts_ns: u64, caplen: usize, wire_len: u32) {
        self.packets += 1;
        self.bytes += caplen as u64;
        self.wire_bytes += u64::from(wire_len);
        self.first_ts_ns.get_or_insert(ts_ns);
        self.last_ts_ns = Some(ts_ns);
    }

    /// Reads a manifest.
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read(path).map_err(|source| ManifestError::Io {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|e| ManifestError::Parse {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// Serializes the manifest, pretty-printed with a final newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        out.push(b'\n');
        out
    }

    /// Stamps the creation time and publishes the manifest atomically at `path`.
    pub fn publish(&mut self, path: &Path, fsync: bool) -> io::Result<()> {
        self.created_ns = now_ns();
        crate::publish::write_atomic(path, &self.to_json(), fsync)
    }
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The short host name of this machine, as the manifest's `host` (see [`crate::os::hostname`]).
pub fn hostname() -> String {
    crate::os::hostname().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_path_appends_json() {
        assert_eq!(
            manifest_path(Path::new("/s/raw/a/x-1.pcap")),
            PathBuf::from("/s/raw/a/x-1.pcap.json")
        );
    }

    #[test]
    fn round_trips_through_json() {
        let mut m = Manifest::new("x.pcap", Format::Pcap, LinkType::ETHERNET, 65535);
        m.add_packet(5, 60, 60);
        m.add_packet(9, 54, 1500);
        m.anonymization = Some(Anonymization {
            mapping: "cryptopan".into(),
            key_id: "abcd".into(),
            ..Anonymization::default()
        });
        let back: Manifest = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(back, m);
        assert_eq!((back.first_ts_ns, back.last_ts_ns), (Some(5), Some(9)));
        assert_eq!((back.bytes, back.wire_bytes), (114, 1560));
    }

    #[test]
    fn bad_manifest_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.pcap.json");
        std::fs::write(&p, "{\n \"version\": 1,\n oops\n}").unwrap();
        let err = Manifest::read(&p).unwrap_err().to_string();
        assert!(
            err.contains("bad.pcap.json") && err.contains("line 3"),
            "{err}"
        );
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
