//! Writes into the frame, the checksum scopes they are accounted in, and the end of a walk:
//! the cut, the payload policy and the checksums.

use super::{Checksums, Payload, Rewriter, Step, Stop, Walk, WalkOutcome};
use crate::wire::ipv4;
use lander_trace::checksum::{self, delta, fold, sum, sum_at};

/// Where the pseudo-header of a transport checksum takes its addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Pseudo {
    #[default]
    None,
    V4 {
        ip: usize,
        proto: u8,
    },
    V6 {
        /// Offset of the source address.
        src: usize,
        /// Offset of the final destination address.
        dst: usize,
        proto: u8,
    },
}

impl Pseudo {
    /// The protocol it names, if any.
    pub(super) fn protocol(self) -> Option<u8> {
        match self {
            Pseudo::V4 { proto, .. } | Pseudo::V6 { proto, .. } => Some(proto),
            Pseudo::None => None,
        }
    }

    /// ICMP has no pseudo-header; ICMPv6 has one.
    pub(super) fn of_icmp(self) -> Pseudo {
        match self {
            Pseudo::V4 { .. } => Pseudo::None,
            other => other,
        }
    }
}

/// One checksum and the bytes it covers.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Scope {
    pub(super) start: usize,
    /// Declared end of the covered bytes (may lie past the captured bytes).
    pub(super) end: usize,
    pub(super) checksum_at: usize,
    pub(super) pseudo: Pseudo,
    pub(super) delta: u64,
    pub(super) udp: bool,
}

/// The folded sum of `n` bytes of value `byte`, seen from an even offset.
fn fill_sum(byte: u8, n: usize) -> u16 {
    let word = u64::from(u16::from_be_bytes([byte, byte]));
    let tail = if n % 2 == 1 { u64::from(byte) << 8 } else { 0 };
    fold((n / 2) as u64 * word + tail)
}

/// The checksum field, recomputed: `covered` the sum of the bytes it covers with the field
/// itself as `field`, `pseudo` the sum of its pseudo-header (the field's value is taken out
/// again by adding its complement).
#[inline]
pub(super) fn recomputed(covered: u64, field: u16, pseudo: u64) -> u16 {
    checksum::finish(covered + u64::from(!field) + pseudo)
}

/// A fixed checksum as sent: a UDP checksum that comes out zero goes as 0xffff (zero says
/// there is none).
#[inline]
pub(super) fn as_sent(value: u16, udp: bool) -> u16 {
    match udp && value == 0 {
        true => 0xffff,
        false => value,
    }
}

/// [`sum`] of the bytes a checksum covers, unrolled for the length most have (an IPv4
/// header or a TCP header without options, and nothing after it).
#[inline]
pub(super) fn sum_covered(data: &[u8]) -> u64 {
    match <&[u8; 20]>::try_from(data) {
        Ok(header) => sum_words32(header),
        Err(_) => sum(data),
    }
}

/// [`sum`] of whole 32-bit words, one load per word. The walker has just written the
/// addresses as 4-byte words (an IPv4 header's at 12 and 16, a pseudo-header's): a load that
/// lines up with such a write takes its value from the store at once, where an 8-byte load
/// straddling two of them waits until both reach the cache (a failed store forward).
#[inline]
pub(super) fn sum_words32<const N: usize>(data: &[u8; N]) -> u64 {
    const { assert!(N.is_multiple_of(4)) };
    data.chunks_exact(4)
        .map(|w| u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]])))
        .sum()
}

impl<R: Rewriter> Walk<'_, R> {
    /// Rewrites the IPv4 address at `at`; returns the checksum delta of the change.
    #[inline]
    pub(super) fn rewrite_v4(&mut self, at: usize) -> u64 {
        let Some(&old) = self.buf.get(at..).and_then(|b| b.first_chunk::<4>()) else {
            return 0;
        };
        let new = self.rw.v4(old);
        self.write(at, &new)
    }

    /// Rewrites the IPv6 address at `at`; returns the checksum delta of the change.
    pub(super) fn rewrite_v6(&mut self, at: usize) -> u64 {
        let Some(&old) = self.buf.get(at..).and_then(|b| b.first_chunk::<16>()) else {
            return 0;
        };
        let new = self.rw.v6(old);
        self.write(at, &new)
    }

    /// Writes the even-length `new` at `at`, adding the change to every open scope that
    /// covers it. Returns the change as seen from an even offset (for pseudo-headers).
    #[inline]
    pub(super) fn write<const N: usize>(&mut self, at: usize, new: &[u8; N]) -> u64 {
        self.write_in(self.n_scopes, at, new)
    }

    /// [`Walk::write`] accounting the change in the first `scopes` scopes only.
    #[inline]
    fn write_in<const N: usize>(&mut self, scopes: usize, at: usize, new: &[u8; N]) -> u64 {
        let Some(field) = self
            .buf
            .get_mut(at..)
            .and_then(|b| b.first_chunk_mut::<N>())
        else {
            return 0;
        };
        let d = checksum::words_delta(field, new);
        *field = *new;
        for s in &mut self.scopes[..scopes] {
            if at >= s.start && at < s.end {
                s.delta += if (at - s.start) % 2 == 1 {
                    u64::from(fold(d).swap_bytes())
                } else {
                    d
                };
            }
        }
        d
    }

    /// Writes `new` (any length, any alignment) at `at`, accounting the change in every
    /// open scope it overlaps.
    pub(super) fn put(&mut self, at: usize, new: &[u8]) {
        let to = at + new.len();
        if to > self.buf.len() {
            return;
        }
        for s in &mut self.scopes[..self.n_scopes] {
            let (a, b) = (at.max(s.start), to.min(s.end));
            if a < b {
                let rel = a - s.start;
                let new_sum = sum_at(&new[a - at..b - at], rel);
                s.delta += delta(sum_at(&self.buf[a..b], rel), new_sum);
            }
        }
        self.buf[at..to].copy_from_slice(new);
    }

    /// Sets `from..to` to `byte`, accounting the change; false when it already was.
    pub(super) fn fill(&mut self, from: usize, to: usize, byte: u8) -> bool {
        let to = to.min(self.buf.len());
        if from >= to || self.buf[from..to].iter().all(|&b| b == byte) {
            return false;
        }
        for s in &mut self.scopes[..self.n_scopes] {
            let (a, b) = (from.max(s.start), to.min(s.end));
            if a < b {
                let new = fill_sum(byte, b - a);
                let new = if (a - s.start) % 2 == 1 {
                    new.swap_bytes()
                } else {
                    new
                };
                s.delta += delta(sum_at(&self.buf[a..b], a - s.start), new);
            }
        }
        self.buf[from..to].fill(byte);
        true
    }

    pub(super) fn open(&mut self, scope: Scope) -> Result<(), Stop> {
        let slot = self
            .scopes
            .get_mut(self.n_scopes)
            .ok_or(super::stop(scope.start, super::Reason::TooDeep))?;
        *slot = scope;
        self.n_scopes += 1;
        Ok(())
    }

    pub(super) fn open_transport(
        &mut self,
        at: usize,
        declared: usize,
        checksum_at: usize,
        pseudo: Pseudo,
        addr_delta: u64,
        udp: bool,
    ) -> Result<(), Stop> {
        self.open(Scope {
            start: at,
            end: declared.max(at + checksum_at + 2),
            checksum_at: at + checksum_at,
            pseudo,
            delta: addr_delta,
            udp,
        })
    }

    // ---- the cut and the checksums ----

    pub(super) fn finish(mut self, step: Step) -> WalkOutcome {
        let (caplen, payload_at, reason) = match step {
            Ok(e) => {
                let payload_at = e.payload_at.min(self.buf.len());
                let payload_end = e.payload_end.clamp(payload_at, self.buf.len());
                let caplen = match self.policy.payload {
                    Payload::Drop => payload_at,
                    Payload::Keep(n) => payload_end.min(payload_at.saturating_add(n)),
                    Payload::Zero => {
                        self.fill(payload_at, payload_end, 0);
                        payload_end
                    }
                };
                (caplen, payload_at, None)
            }
            Err(s) => (s.at, s.at, Some(s.reason)),
        };
        let caplen = caplen.min(self.buf.len());
        self.checksums(caplen);
        WalkOutcome {
            caplen,
            payload_at: payload_at.min(caplen),
            reason,
            neutralised: self.neutral,
            work: self.work,
        }
    }

    fn checksums(&mut self, caplen: usize) {
        if self.policy.checksums == Checksums::Keep {
            return;
        }
        for i in (0..self.n_scopes).rev() {
            let s = self.scopes[i];
            if let Some(value) = self.checksum_value(&s, caplen) {
                // only the scopes around this one (opened before it) are still to be summed
                self.write_in(i, s.checksum_at, &value.to_be_bytes());
            }
        }
    }

    /// Sets the checksum of `s`, which no other scope covers, for the frame cut at `caplen`.
    #[inline]
    pub(super) fn set_checksum(&mut self, s: &Scope, caplen: usize) {
        if let Some(value) = self.checksum_value(s, caplen) {
            self.write_in(0, s.checksum_at, &value.to_be_bytes());
        }
    }

    /// The new value of the checksum of `s` for the frame cut at `caplen` (with checksums
    /// not kept); `None` when the field itself is cut.
    #[inline]
    fn checksum_value(&mut self, s: &Scope, caplen: usize) -> Option<u16> {
        if s.checksum_at + 2 > caplen {
            return None;
        }
        let value = match self.policy.checksums {
            Checksums::Zero => 0,
            _ if s.end <= caplen => self.full_checksum(s),
            _ => {
                let old =
                    u16::from_be_bytes([self.buf[s.checksum_at], self.buf[s.checksum_at + 1]]);
                checksum::update(old, s.delta)
            }
        };
        Some(match self.policy.checksums {
            Checksums::Fix => as_sent(value, s.udp),
            _ => value,
        })
    }

    #[inline]
    fn full_checksum(&mut self, s: &Scope) -> u16 {
        let at = s.checksum_at;
        let field = u16::from_be_bytes([self.buf[at], self.buf[at + 1]]);
        recomputed(
            sum_covered(&self.buf[s.start..s.end]),
            field,
            self.pseudo_sum(s),
        )
    }

    #[inline]
    fn pseudo_sum(&self, s: &Scope) -> u64 {
        let len = (s.end - s.start) as u64;
        match s.pseudo {
            Pseudo::None => 0,
            Pseudo::V4 { ip, proto } => {
                let addrs = self.buf[ip + ipv4::SRC_AT..ip + ipv4::DST_AT + 4]
                    .first_chunk::<8>()
                    .expect("the two addresses are 8 bytes");
                sum_words32(addrs) + u64::from(proto) + len
            }
            Pseudo::V6 { src, dst, proto } => {
                sum(&self.buf[src..src + 16])
                    + sum(&self.buf[dst..dst + 16])
                    + (len >> 16)
                    + (len & 0xffff)
                    + u64::from(proto)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{fill_sum, sum_words32};
    use lander_trace::checksum::{fold, sum};

    #[test]
    fn word_sums_fold_to_the_sum() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1000 {
            let bytes: [u8; 20] = std::array::from_fn(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            });
            assert_eq!(fold(sum_words32(&bytes)), fold(sum(&bytes)));
            let eight = bytes.first_chunk::<8>().unwrap();
            assert_eq!(fold(sum_words32(eight)), fold(sum(eight)));
        }
        assert_eq!(fold(sum_words32(&[0xff; 20])), 0xffff);
    }

    #[test]
    fn fill_sum_is_the_sum_of_the_filled_bytes() {
        for byte in [0u8, 1, 0x5a, 0xff] {
            for n in 0..20 {
                assert_eq!(fill_sum(byte, n), fold(sum(&vec![byte; n])), "{byte} {n}");
            }
        }
    }
}
