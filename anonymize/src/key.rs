//! Key files: reading, writing, permission checks and key ids.
//!
//! - `cryptopan` and `libtrace`: the 32 key bytes as 64 hex digits on one line (bytes 0..16 the
//!   AES-128 key, 16..32 the pad); a raw 32-byte file is accepted too.
//! - `cryptopant`: ISI cryptopANT's `c4:c6:key:pad:mac:iv` line, each field in hex.
//!
//! A key file that group or others can access is refused. Manifests carry the [`Key::id`], a
//! BLAKE3 digest of the key material, never the key itself.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// cryptopANT's cipher code for AES (`SCRAMBLE_AES`), the only one supported here.
pub const CRYPTOPANT_AES: u8 = 3;

/// Length of a cryptopANT MAC mask: an Ethernet address and a VLAN id.
pub const CRYPTOPANT_MAC_LEN: usize = 8;

/// A prefix-preserving address mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mapping {
    /// The reference Crypto-PAn: AES-128, encrypted pad, flip bit = MSB of the output.
    CryptoPan,
    /// ISI cryptopANT (AES mode): raw pad, flip bit = LSB, class bits passed for IPv4.
    CryptoPant,
    /// libtrace 4 `traceanon`: Crypto-PAn with the pad used raw.
    Libtrace,
}

impl Mapping {
    /// All mappings.
    pub const ALL: [Mapping; 3] = [Mapping::CryptoPan, Mapping::CryptoPant, Mapping::Libtrace];

    /// The name used on command lines and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Mapping::CryptoPan => "cryptopan",
            Mapping::CryptoPant => "cryptopant",
            Mapping::Libtrace => "libtrace",
        }
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mapping name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mapping {0:?} (expected cryptopan, cryptopant or libtrace)")]
pub struct UnknownMapping(pub String);

impl FromStr for Mapping {
    type Err = UnknownMapping;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cryptopan" | "crypto-pan" => Ok(Mapping::CryptoPan),
            "cryptopant" => Ok(Mapping::CryptoPant),
            "libtrace" => Ok(Mapping::Libtrace),
            other => Err(UnknownMapping(other.to_string())),
        }
    }
}

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be opened, read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Group or others may access the file.
    #[error(
        "key file {path}: mode {mode:04o} lets group or others access it; run `chmod 600 {path}`"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The contents are not a key of the expected mapping.
    #[error("key file {path}: byte {offset}: {what}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// Byte offset of the problem in the file.
        offset: usize,
        /// What was wrong.
        what: String,
    },
}

/// cryptopANT's key state, as in its key file.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptopantKey {
    /// Cipher for IPv4 (3 = AES).
    pub c4: u8,
    /// Cipher for IPv6 (3 = AES).
    pub c6: u8,
    /// The AES-128 key.
    pub key: [u8; 16],
    /// The pad, used raw; up to 32 bytes (missing bytes are zero).
    pub pad: [u8; 32],
    /// Length of the pad as read.
    pub pad_len: usize,
    /// MAC mask (Ethernet address then VLAN id), empty when MAC scrambling is off.
    pub mac: Vec<u8>,
    /// The IV field (kept for round trips; unused by AES mode).
    pub iv: Vec<u8>,
}

/// Key material for one mapping.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// 32 bytes for `cryptopan` or `libtrace`.
    Pan {
        /// Which of the two.
        mapping: Mapping,
        /// AES key (0..16) and pad (16..32).
        bytes: [u8; 32],
    },
    /// cryptopANT's key state.
    Pant(CryptopantKey),
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}, id {})", self.mapping(), self.id())
    }
}

impl Key {
    /// A fresh random key for `mapping` (cryptopANT keys get a MAC mask too).
    pub fn generate(mapping: Mapping) -> Result<Key, getrandom::Error> {
        match mapping {
            Mapping::CryptoPant => {
                let mut buf = [0u8; 16 + 32 + CRYPTOPANT_MAC_LEN + 16];
                getrandom::getrandom(&mut buf)?;
                let mut key = [0u8; 16];
                let mut pad = [0u8; 32];
                key.copy_from_slice(&buf[..16]);
                pad.copy_from_slice(&buf[16..48]);
                Ok(Key::Pant(CryptopantKey {
                    c4: CRYPTOPANT_AES,
                    c6: CRYPTOPANT_AES,
                    key,
                    pad,
                    pad_len: 32,
                    mac: buf[48..56].to_vec(),
                    iv: buf[56..].to_vec(),
                }))
            }
            _ => {
                let mut bytes = [0u8; 32];
                getrandom::getrandom(&mut bytes)?;
                Ok(Key::Pan { mapping, bytes })
            }
        }
    }

    /// The mapping this key is for.
    pub fn mapping(&self) -> Mapping {
        match self {
            Key::Pan { mapping, .. } => *mapping,
            Key::Pant(_) => Mapping::CryptoPant,
        }
    }

    /// The key file text (one line, with its newline).
    pub fn to_file_text(&self) -> String {
        match self {
            Key::Pan { bytes, .. } => format!("{}\n", hex(bytes)),
            Key::Pant(k) => format!(
                "{:02x}:{:02x}:{}:{}:{}:{}\n",
                k.c4,
                k.c6,
                hex(&k.key),
                hex(&k.pad[..k.pad_len]),
                hex(&k.mac),
                hex(&k.iv)
            ),
        }
    }

    /// The key id: the first 16 bytes of a BLAKE3 digest of the mapping and key material, in hex.
    pub fn id(&self) -> String {
        let mut hasher = blake3::Hasher::new_derive_key("lander-rs 2024 key id v1");
        hasher.update(self.mapping().name().as_bytes());
        hasher.update(&[0]);
        hasher.update(self.to_file_text().as_bytes());
        hex(&hasher.finalize().as_bytes()[..16])
    }

    /// The key of MAC address scrambling, derived from the key material (no key file
    /// holds one of its own).
    pub fn mac_key(&self) -> [u8; 32] {
        blake3::derive_key(
            "lander-rs 2026 mac scramble v1",
            self.to_file_text().as_bytes(),
        )
    }

    /// The 8-byte MAC mask (Ethernet address, VLAN id): cryptopANT's own when its key has one,
    /// otherwise derived from the key material.
    pub fn mac_mask(&self) -> [u8; CRYPTOPANT_MAC_LEN] {
        let mut mask = [0u8; CRYPTOPANT_MAC_LEN];
        match self {
            Key::Pant(k) if k.mac.len() >= CRYPTOPANT_MAC_LEN => {
                mask.copy_from_slice(&k.mac[..CRYPTOPANT_MAC_LEN]);
            }
            _ => {
                let mut hasher = blake3::Hasher::new_derive_key("lander-rs 2024 mac mask v1");
                hasher.update(self.to_file_text().as_bytes());
                mask.copy_from_slice(&hasher.finalize().as_bytes()[..CRYPTOPANT_MAC_LEN]);
            }
        }
        mask
    }

    /// Parses key file contents for `mapping`.
    pub fn parse(mapping: Mapping, path: &Path, contents: &[u8]) -> Result<Key, KeyError> {
        let bad = |offset: usize, what: String| KeyError::Malformed {
            path: path.to_path_buf(),
            offset,
            what,
        };
        let parsed = match mapping {
            Mapping::CryptoPant => parse_cryptopant(contents),
            _ => parse_pan(contents).map(|bytes| Key::Pan { mapping, bytes }),
        };
        parsed.map_err(|(o, w)| bad(o, w + &looks_like(mapping, contents)))
    }

    /// Reads a key file, refusing one that group or others can access.
    pub fn read(mapping: Mapping, path: &Path) -> Result<Key, KeyError> {
        let io_err = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = fs::metadata(path).map_err(io_err)?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        if meta.len() > 4096 {
            return Err(KeyError::Malformed {
                path: path.to_path_buf(),
                offset: 4096,
                what: format!("{} bytes is too long for a key file", meta.len()),
            });
        }
        let contents = fs::read(path).map_err(io_err)?;
        Key::parse(mapping, path, &contents)
    }

    /// Writes the key to a new file with mode 0600 (refuses to overwrite).
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io_err = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err)?;
        file.write_all(self.to_file_text().as_bytes())
            .map_err(io_err)?;
        file.sync_all().map_err(io_err)
    }
}

type ParseError = (usize, String);

fn parse_pan(contents: &[u8]) -> Result<[u8; 32], ParseError> {
    let mut bytes = [0u8; 32];
    if contents.len() == 32 {
        bytes.copy_from_slice(contents);
        return Ok(bytes);
    }
    let text = trim_line(contents);
    if text.len() != 64 {
        return Err((
            0,
            format!(
                "expected 64 hex digits (or 32 raw bytes), found {} characters",
                text.len()
            ),
        ));
    }
    decode_hex(text, 0, &mut bytes)?;
    Ok(bytes)
}

/// When a key that does not parse for `mapping` is a key of another mapping, says which and
/// what to give instead (`; this is a cryptopant key file: give --mapping cryptopant`).
fn looks_like(mapping: Mapping, contents: &[u8]) -> String {
    let other = match mapping {
        Mapping::CryptoPant => parse_pan(contents)
            .is_ok()
            .then_some("cryptopan or libtrace"),
        _ => parse_cryptopant(contents).is_ok().then_some("cryptopant"),
    };
    let first = other.map_or("", |o| o.split(' ').next().unwrap_or(o));
    other.map_or_else(String::new, |o| {
        format!("; this is a {o} key file: give --mapping {first}")
    })
}

fn trim_line(contents: &[u8]) -> &[u8] {
    let end = contents
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &contents[..end]
}

fn decode_hex(text: &[u8], base: usize, out: &mut [u8]) -> Result<(), ParseError> {
    for (i, pair) in text.chunks(2).enumerate() {
        let hi = hex_digit(pair[0]).ok_or((base + 2 * i, "not a hex digit".to_string()))?;
        let lo = pair
            .get(1)
            .and_then(|&c| hex_digit(c))
            .ok_or((base + 2 * i + 1, "not a hex digit".to_string()))?;
        out[i] = hi << 4 | lo;
    }
    Ok(())
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits a cryptopANT line into its six hex fields, with each field's byte offset.
fn cryptopant_fields(contents: &[u8]) -> Result<Vec<(usize, Vec<u8>)>, ParseError> {
    let text = trim_line(contents);
    let mut fields = Vec::with_capacity(6);
    let mut offset = 0;
    for part in text.split(|&b| b == b':') {
        if part.len() % 2 != 0 || part.len() > 64 {
            return Err((offset, format!("field of {} hex digits", part.len())));
        }
        let mut out = vec![0u8; part.len() / 2];
        decode_hex(part, offset, &mut out)?;
        fields.push((offset, out));
        offset += part.len() + 1;
    }
    if fields.len() != 6 {
        return Err((
            0,
            format!(
                "expected 6 fields c4:c6:key:pad:mac:iv, found {}",
                fields.len()
            ),
        ));
    }
    Ok(fields)
}

fn parse_cryptopant(contents: &[u8]) -> Result<Key, ParseError> {
    let f = cryptopant_fields(contents)?;
    let cipher = |(o, v): &(usize, Vec<u8>), name: &str| -> Result<u8, ParseError> {
        match v.as_slice() {
            [CRYPTOPANT_AES] => Ok(CRYPTOPANT_AES),
            [c] => Err((
                *o,
                format!("{name} cipher {c:02x} is not AES (03), the only one supported"),
            )),
            _ => Err((*o, format!("{name} must be one byte"))),
        }
    };
    let c4 = cipher(&f[0], "c4")?;
    let c6 = cipher(&f[1], "c6")?;
    let key: [u8; 16] = f[2].1.as_slice().try_into().map_err(|_| {
        (
            f[2].0,
            format!("key of {} bytes, expected 16", f[2].1.len()),
        )
    })?;
    let (pad_off, pad_bytes) = &f[3];
    if pad_bytes.len() < 16 {
        return Err((
            *pad_off,
            format!("pad of {} bytes, expected 16 to 32", pad_bytes.len()),
        ));
    }
    let mut pad = [0u8; 32];
    pad[..pad_bytes.len()].copy_from_slice(pad_bytes);
    let mac = f[4].1.clone();
    if !mac.is_empty() && mac.len() < CRYPTOPANT_MAC_LEN {
        return Err((
            f[4].0,
            format!("mac of {} bytes, expected 0 or 8+", mac.len()),
        ));
    }
    Ok(Key::Pant(CryptopantKey {
        c4,
        c6,
        key,
        pad,
        pad_len: pad_bytes.len(),
        mac,
        iv: f[5].1.clone(),
    }))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PANT_LINE: &str = "03:03:86bdbaa5d5a46ef72354297d42eb4e66:48ffc62219372bbf05a28f65d25ccacb1c697e8fd0b108f3fd216ecd765647d1::f0732d8b37ae4c666b4a1a011cf10e79\n";

    #[test]
    fn cryptopant_line_round_trips() {
        let key = Key::parse(Mapping::CryptoPant, Path::new("k"), PANT_LINE.as_bytes()).unwrap();
        assert_eq!(key.to_file_text(), PANT_LINE);
        let Key::Pant(k) = &key else { panic!() };
        assert_eq!(k.key[0], 0x86);
        assert_eq!(k.pad[31], 0xd1);
        assert!(k.mac.is_empty());
    }

    #[test]
    fn cryptopant_rejects_other_ciphers_and_short_fields() {
        let blowfish = PANT_LINE.replacen("03:03", "02:03", 1);
        assert!(Key::parse(Mapping::CryptoPant, Path::new("k"), blowfish.as_bytes()).is_err());
        assert!(Key::parse(Mapping::CryptoPant, Path::new("k"), b"03:03:00:00::").is_err());
        assert!(Key::parse(Mapping::CryptoPant, Path::new("k"), b"").is_err());
    }

    #[test]
    fn a_key_of_another_mapping_names_the_mapping_it_looks_like() {
        let err = Key::parse(Mapping::CryptoPan, Path::new("k"), PANT_LINE.as_bytes()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("expected 64 hex digits"), "{text}");
        assert!(
            text.ends_with("this is a cryptopant key file: give --mapping cryptopant"),
            "{text}"
        );
        let hexline = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202\n";
        let err = Key::parse(Mapping::CryptoPant, Path::new("k"), hexline.as_bytes()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.ends_with("this is a cryptopan or libtrace key file: give --mapping cryptopan"),
            "{text}"
        );
        let err = Key::parse(Mapping::CryptoPan, Path::new("k"), b"nonsense").unwrap_err();
        assert!(!err.to_string().contains("give --mapping"), "{err}");
    }

    #[test]
    fn pan_key_hex_and_raw() {
        let hexline = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202\n";
        let key = Key::parse(Mapping::CryptoPan, Path::new("k"), hexline.as_bytes()).unwrap();
        let Key::Pan { bytes, .. } = &key else {
            panic!()
        };
        assert_eq!(bytes[0], 0x15);
        let raw = Key::parse(Mapping::CryptoPan, Path::new("k"), bytes).unwrap();
        assert_eq!(raw, key);
        assert_eq!(key.to_file_text(), hexline);
    }

    #[test]
    fn pan_key_rejects_bad_text() {
        for bad in [&b"abc"[..], &[b'g'; 64][..], &[b'0'; 63][..]] {
            let err = Key::parse(Mapping::Libtrace, Path::new("k"), bad).unwrap_err();
            assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
        }
    }

    #[test]
    fn key_ids_differ_by_key_and_mapping() {
        let bytes = [7u8; 32];
        let a = Key::Pan {
            mapping: Mapping::CryptoPan,
            bytes,
        };
        let b = Key::Pan {
            mapping: Mapping::Libtrace,
            bytes,
        };
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 32);
        assert!(!a.id().contains("0707"));
    }

    #[test]
    fn read_refuses_group_readable_and_write_new_is_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = Key::generate(Mapping::CryptoPant).unwrap();
        key.write_new(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Key::read(Mapping::CryptoPant, &path).unwrap(), key);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = Key::read(Mapping::CryptoPant, &path).unwrap_err();
        assert!(matches!(err, KeyError::Permissions { mode: 0o640, .. }));
        assert!(key.write_new(&path).is_err());
    }
}
