//! TCP header.

use super::options::{Action, Family, Fields};
use super::{need, Truncated};

/// Offset of the checksum.
pub const CHECKSUM_AT: usize = 16;
/// Header length without options.
pub const MIN_LEN: usize = 20;

/// Why a TCP header is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Fewer bytes than the data offset claims.
    Truncated(Truncated),
    /// Data offset under 5.
    Malformed,
}

/// The header length (data offset) of the TCP header at the start of `buf`, after checking
/// that the whole header, options included, is there.
pub fn header_len(buf: &[u8]) -> Result<usize, Bad> {
    need("tcp", buf, MIN_LEN).map_err(Bad::Truncated)?;
    let len = usize::from(buf[12] >> 4) * 4;
    if len < MIN_LEN {
        return Err(Bad::Malformed);
    }
    need("tcp options", buf, len).map_err(Bad::Truncated)?;
    Ok(len)
}

/// What happens to the TCP option `opt` (kind byte first, `opt.len()` its whole length).
///
/// Kept: MSS, window scale, SACK permitted, SACK, timestamps, and the MPTCP options that carry
/// keys, tokens, nonces, sequence numbers and address IDs, at the lengths they can have.
/// MPTCP ADD_ADDR has its address anonymized and its truncated HMAC zeroed (with the keys in
/// clear in MP_CAPABLE, the HMAC would confirm a guessed address). Everything else
/// (experimental, unknown and authentication options, TCP Fast Open cookies) is neutralised.
pub fn option_action(opt: &[u8]) -> Action {
    let len = opt.len();
    let keep = match opt.first() {
        Some(2) => len == 4,
        Some(3) => len == 3,
        Some(4) => len == 2,
        Some(5) => matches!(len, 10 | 18 | 26 | 34),
        Some(8) => len == 10,
        Some(&mptcp::KIND) if len >= 3 && opt[2] >> 4 == mptcp::ADD_ADDR => {
            return mptcp::add_addr(len)
        }
        Some(&mptcp::KIND) => mptcp::known(opt),
        _ => false,
    };
    match keep {
        true => Action::Known(Fields::KEEP),
        false => Action::Neutralise,
    }
}

/// Multipath TCP options (RFC 8684, and ADD_ADDR of RFC 6824).
pub mod mptcp {
    use super::{Action, Family, Fields};

    /// The option kind.
    pub const KIND: u8 = 30;
    /// Subtype of ADD_ADDR.
    pub const ADD_ADDR: u8 = 3;

    /// ADD_ADDR of `len` bytes: the address after subtype and address ID, then an optional
    /// port, then (RFC 8684, unless echoed) an 8-byte truncated HMAC. The length tells them
    /// apart.
    pub fn add_addr(len: usize) -> Action {
        let (family, hmac) = match len {
            8 | 10 => (Family::V4, false),
            16 | 18 => (Family::V4, true),
            20 | 22 => (Family::V6, false),
            28 | 30 => (Family::V6, true),
            _ => return Action::Neutralise,
        };
        Action::Known(Fields {
            family,
            first: 4,
            count: 1,
            stride: 16,
            zero: if hmac { len - 8..len } else { len..len },
        })
    }

    /// Whether `opt` is an MPTCP option other than ADD_ADDR, of a length its subtype allows.
    pub fn known(opt: &[u8]) -> bool {
        let len = opt.len();
        let Some(sub) = opt.get(2).map(|b| b >> 4) else {
            return false;
        };
        match sub {
            0 => matches!(len, 4 | 12 | 20 | 22 | 24),
            1 => matches!(len, 12 | 16 | 24),
            2 => opt
                .get(3)
                .is_some_and(|&f| dss_len(f) == len || dss_len(f) + 2 == len),
            4 => len >= 4,
            5 => matches!(len, 3 | 4),
            6 | 7 => len == 12,
            8 => len == 4,
            _ => false,
        }
    }

    /// Length of a DSS option with flags `f` and no checksum.
    fn dss_len(f: u8) -> usize {
        let ack = match (f & 0x01 != 0, f & 0x02 != 0) {
            (false, _) => 0,
            (true, false) => 4,
            (true, true) => 8,
        };
        let map = match (f & 0x04 != 0, f & 0x08 != 0) {
            (false, _) => 0,
            (true, false) => 4 + 4 + 2,
            (true, true) => 8 + 4 + 2,
        };
        4 + ack + map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncations() {
        let mut h = [0u8; 24];
        h[12] = 6 << 4;
        for n in 0..24 {
            assert!(header_len(&h[..n]).is_err());
        }
        assert_eq!(header_len(&h), Ok(24));
        h[12] = 4 << 4;
        assert_eq!(header_len(&h), Err(Bad::Malformed));
    }

    #[test]
    fn options() {
        for keep in [
            &[2u8, 4, 5, 0xb4][..],
            &[3, 3, 7],
            &[4, 2],
            &[8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        ] {
            assert_eq!(option_action(keep), Action::Known(Fields::KEEP), "{keep:?}");
        }
        for neutral in [
            &[2u8, 6, 5, 0xb4, 0, 0][..],
            &[34, 10, 1, 2, 3, 4, 5, 6, 7, 8],
            &[253, 4, 0, 0],
        ] {
            assert_eq!(option_action(neutral), Action::Neutralise, "{neutral:?}");
        }
        // DSS with a 4-byte data ACK
        assert_eq!(
            option_action(&[30, 8, 0x20, 0x01, 0, 0, 0, 9]),
            Action::Known(Fields::KEEP)
        );
        assert_eq!(
            option_action(&[30, 9, 0x20, 0x01, 0, 0, 0, 9, 0]),
            Action::Neutralise
        );
    }

    #[test]
    fn add_addr_layouts() {
        for (len, family, zero) in [
            (8, Family::V4, 8..8),
            (10, Family::V4, 10..10),
            (16, Family::V4, 8..16),
            (18, Family::V4, 10..18),
            (20, Family::V6, 20..20),
            (30, Family::V6, 22..30),
        ] {
            let mut opt = vec![30u8, len as u8, 0x30, 1];
            opt.resize(len, 0x5a);
            match option_action(&opt) {
                Action::Known(f) => {
                    assert_eq!((f.family, f.zero.clone()), (family, zero));
                    assert_eq!(f.addresses().collect::<Vec<_>>(), vec![4]);
                }
                Action::Neutralise => panic!("{len}"),
            }
        }
        let mut odd = vec![30u8, 12, 0x30, 1];
        odd.resize(12, 0);
        assert_eq!(option_action(&odd), Action::Neutralise);
    }
}
