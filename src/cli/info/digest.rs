//! Hashes of a file taken while the trace reader reads it (one pass, stdin too).

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The digests of one file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256, hex (as capinfos and sha256sum print it).
    pub sha256: String,
    /// BLAKE3, hex (as the manifests record it).
    pub blake3: String,
}

/// The hashers, shared between the reader (in the trace reader's hands) and the caller.
#[derive(Debug, Default)]
pub struct Hashers {
    sha256: Sha256,
    blake3: blake3::Hasher,
}

/// What [`HashingRead`] feeds.
pub type Shared = Arc<Mutex<Hashers>>;

/// A reader that hashes every byte it passes on.
pub struct HashingRead<R> {
    inner: R,
    hashers: Shared,
}

impl HashingRead<()> {
    /// Fresh hashers to share.
    pub fn shared() -> Shared {
        Arc::new(Mutex::new(Hashers::default()))
    }
}

impl<R: Read> HashingRead<R> {
    /// Hashes what is read from `inner` into `hashers`.
    pub fn new(inner: R, hashers: &Shared) -> Self {
        HashingRead {
            inner,
            hashers: Arc::clone(hashers),
        }
    }
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut h = self
            .hashers
            .lock()
            .map_err(|_| io::Error::other("hasher poisoned"))?;
        h.sha256.update(&buf[..n]);
        h.blake3.update(&buf[..n]);
        Ok(n)
    }
}

/// The digests of everything read so far.
pub trait Finish {
    /// Takes the digests.
    fn finish(self) -> Digests;
}

impl Finish for Shared {
    fn finish(self) -> Digests {
        let h = match self.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        Digests {
            sha256: hex(&h.sha256.clone().finalize()),
            blake3: h.blake3.finalize().to_hex().to_string(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_what_was_read_match_the_known_values() {
        let shared = HashingRead::shared();
        let mut reader = HashingRead::new(&b"abc"[..], &shared);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        let d = shared.finish();
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.blake3, blake3::hash(b"abc").to_hex().to_string());
    }
}
