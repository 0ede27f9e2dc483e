//! MAC address policy: kept, zeroed, or scrambled by a keyed pseudorandom function.
//!
//! Scrambling takes the first 6 bytes of a BLAKE3 keyed hash of the address, then puts back
//! the group (multicast) and locally-administered bits of the original, and with
//! `keep_oui` its first 3 bytes. The broadcast address and the all-zero address carry no
//! host and stay as they are. Unlike a fixed XOR mask, seeing one address and its image
//! tells nothing about any other: two addresses one bit apart map to unrelated outputs.
//! It is a function, not a permutation: two addresses may share an image, with the odds of
//! a 46-bit hash collision.
//!
//! BLAKE3 on 6 bytes costs far more than the rest of a packet's walk, so each walker keeps
//! a small direct-mapped memo of the addresses it has scrambled.

use std::fmt;

/// The key of MAC scrambling (derived from the scrub key; never printed).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MacKey(pub [u8; 32]);

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(..)")
    }
}

/// What happens to MAC addresses (Ethernet, ARP, Linux cooked headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacPolicy {
    /// Unchanged.
    Keep,
    /// Zeroed.
    Zero,
    /// Scrambled under the key, keeping the broadcast address and the group and
    /// locally-administered bits.
    Scramble(MacKey),
    /// As `Scramble`, keeping the OUI (the first 3 bytes) too.
    ScrambleKeepOui(MacKey),
}

impl MacPolicy {
    /// The name used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            MacPolicy::Keep => "keep",
            MacPolicy::Zero => "zero",
            MacPolicy::Scramble(_) => "scramble",
            MacPolicy::ScrambleKeepOui(_) => "scramble-keep-oui",
        }
    }
}

const GROUP_AND_LOCAL: u8 = 0x03;

/// The image of `mac` under `key`.
pub fn scramble(key: &MacKey, mac: [u8; 6], keep_oui: bool) -> [u8; 6] {
    if mac == [0xff; 6] || mac == [0; 6] {
        return mac;
    }
    let hash = blake3::keyed_hash(&key.0, &mac);
    let mut out = [0u8; 6];
    out.copy_from_slice(&hash.as_bytes()[..6]);
    out[0] = (out[0] & !GROUP_AND_LOCAL) | (mac[0] & GROUP_AND_LOCAL);
    if keep_oui {
        out[..3].copy_from_slice(&mac[..3]);
    }
    out
}

const SLOTS: usize = 256;

/// A walker's memo of scrambled addresses, for one key.
#[derive(Clone, Debug)]
pub(super) struct MacMemo {
    key: MacKey,
    keep_oui: bool,
    slots: Vec<Option<([u8; 6], [u8; 6])>>,
}

impl MacMemo {
    fn new(key: MacKey, keep_oui: bool) -> Self {
        MacMemo {
            key,
            keep_oui,
            slots: vec![None; SLOTS],
        }
    }

    /// The memo in `memo` for `key`, made anew if it was for another key.
    pub(super) fn for_key(
        memo: &mut Option<Box<MacMemo>>,
        key: MacKey,
        keep_oui: bool,
    ) -> Option<&mut MacMemo> {
        if !memo
            .as_ref()
            .is_some_and(|m| m.key == key && m.keep_oui == keep_oui)
        {
            *memo = Some(Box::new(MacMemo::new(key, keep_oui)));
        }
        memo.as_deref_mut()
    }

    /// The image of `mac`.
    pub(super) fn get(&mut self, mac: [u8; 6]) -> [u8; 6] {
        let slot = usize::from(mac.iter().fold(0u8, |h, &b| h.rotate_left(3) ^ b)) % SLOTS;
        match self.slots[slot] {
            Some((m, out)) if m == mac => out,
            _ => {
                let out = scramble(&self.key, mac, self.keep_oui);
                self.slots[slot] = Some((mac, out));
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: MacKey = MacKey([7; 32]);

    #[test]
    fn broadcast_zero_group_and_local_bits_kept() {
        assert_eq!(scramble(&KEY, [0xff; 6], false), [0xff; 6]);
        assert_eq!(scramble(&KEY, [0; 6], false), [0; 6]);
        for first in 0..=255u8 {
            let mac = [first, 0x11, 0x22, 0x33, 0x44, 0x55];
            let out = scramble(&KEY, mac, false);
            assert_eq!(out[0] & 3, first & 3);
            assert_ne!(out, mac);
            let oui = scramble(&KEY, mac, true);
            assert_eq!(oui[..3], mac[..3]);
            assert_ne!(oui[3..], mac[3..]);
        }
    }

    /// The old scrambler XORed every address with one mask: a single known pair (the
    /// broadcast address) gave the mask away. Here the change of one address says nothing
    /// of another's.
    #[test]
    fn one_bit_apart_is_not_one_xor_apart() {
        let a = [0x00, 0x1b, 0x21, 0x3a, 0x4c, 0x5d];
        let mut b = a;
        b[5] ^= 1;
        let (sa, sb) = (scramble(&KEY, a, false), scramble(&KEY, b, false));
        let xa: Vec<u8> = a.iter().zip(sa).map(|(x, y)| x ^ y).collect();
        let xb: Vec<u8> = b.iter().zip(sb).map(|(x, y)| x ^ y).collect();
        assert_ne!(xa, xb);
        assert_ne!(scramble(&MacKey([8; 32]), a, false), sa);
    }

    #[test]
    fn memo_agrees_and_follows_the_key() {
        let mut memo = None;
        MacMemo::for_key(&mut memo, KEY, false);
        for i in 0..2000u32 {
            let mac = [0, 1, 2, (i >> 16) as u8, (i >> 8) as u8, i as u8];
            let m = memo.as_mut().unwrap();
            assert_eq!(m.get(mac), scramble(&KEY, mac, false));
            assert_eq!(m.get(mac), scramble(&KEY, mac, false));
        }
        let other = MacKey([9; 32]);
        MacMemo::for_key(&mut memo, other, true);
        let mac = [0, 1, 2, 3, 4, 5];
        assert_eq!(memo.unwrap().get(mac), scramble(&other, mac, true));
    }
}
