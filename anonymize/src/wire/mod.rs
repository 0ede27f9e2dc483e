//! Checked views of the headers the walker reads and rewrites, in place.
//!
//! Each protocol has a private `field` module of byte ranges and a view `Packet<T>` over a
//! buffer. The panic contract, once for all of them: `new_checked` (or `check_len`) verifies
//! that the buffer holds every byte any getter or setter reads or writes, variable parts
//! (options, header length fields) included; after it succeeds, no accessor panics.
//! Setters need `T: AsMut<[u8]>`, so the walker rewrites addresses and checksums in the
//! packet's own buffer, without a copy.

pub mod arp;
pub mod ethernet;
pub mod geneve;
pub mod gre;
pub mod gtp;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod l2tp;
pub mod options;
pub mod ppp;
pub mod tcp;
pub mod udp;
pub mod vxlan;

/// A buffer shorter than its header needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{layer}: needs {needed} bytes, has {available}")]
pub struct Truncated {
    /// The header that did not fit.
    pub layer: &'static str,
    /// Bytes needed.
    pub needed: usize,
    /// Bytes there.
    pub available: usize,
}

/// Why a tunnel or encapsulation header is not walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Fewer bytes than the header needs.
    Truncated(Truncated),
    /// A version, flag, type or value this walker does not follow.
    Unsupported,
}

impl From<Truncated> for Bad {
    fn from(t: Truncated) -> Self {
        Bad::Truncated(t)
    }
}

/// Fails with [`Truncated`] unless `buf` holds `needed` bytes.
pub(crate) fn need(layer: &'static str, buf: &[u8], needed: usize) -> Result<(), Truncated> {
    if buf.len() < needed {
        return Err(Truncated {
            layer,
            needed,
            available: buf.len(),
        });
    }
    Ok(())
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn set_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

pub use lander_trace::proto::{ethertype, ip as proto};
