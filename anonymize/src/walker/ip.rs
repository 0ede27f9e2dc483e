//! IPv4 and IPv6 headers, and the IPv6 extension header chain.

use super::checksum::{Pseudo, Scope};
use super::{end_at, stop, Neutral, Reason, Rewriter, Step, Stop, Walk, MAX_EXT};
use crate::wire::{ipv4, ipv6, proto};

impl<R: Rewriter> Walk<'_, R> {
    #[inline]
    pub(super) fn ip_by_version(&mut self, at: usize, end: usize, quoted: bool) -> Step {
        match self.bytes(at, end).first().map(|b| b >> 4) {
            Some(4) => self.ipv4(at, end, quoted),
            Some(6) => self.ipv6(at, end, quoted),
            Some(_) => Err(stop(at, Reason::MalformedIpv4)),
            None => Err(stop(at, Reason::TruncatedIp)),
        }
    }

    /// The IPv4 packet at `at`, bounded by `end`; `quoted` inside an ICMP error (its total
    /// length then describes the original, not the bytes here).
    #[inline]
    pub(super) fn ipv4(&mut self, at: usize, end: usize, quoted: bool) -> Step {
        self.descend(at)?;
        let p = ipv4::Packet::new_checked(self.bytes(at, end)).map_err(|e| match e {
            ipv4::Bad::Truncated(_) => stop(at, Reason::TruncatedIpv4),
            ipv4::Bad::Malformed => stop(at, Reason::MalformedIpv4),
        })?;
        let (hl, total, frag, protocol) =
            (p.header_len(), p.total_len(), p.frag_offset(), p.protocol());
        if !quoted && total < hl {
            return Err(stop(at, Reason::MalformedIpv4));
        }
        self.open(Scope {
            start: at,
            end: at + hl,
            checksum_at: at + ipv4::CHECKSUM_AT,
            ..Scope::default()
        })?;
        if hl > ipv4::MIN_LEN {
            self.ipv4_options(at + ipv4::MIN_LEN, at + hl)?;
        }
        let addr_delta = self.rewrite_v4(at + ipv4::SRC_AT) + self.rewrite_v4(at + ipv4::DST_AT);
        self.ip_headers += 1;
        let declared = at + total.max(hl);
        let body_end = end.min(declared);
        if frag != 0 {
            return end_at(at + hl, body_end);
        }
        let pseudo = Pseudo::V4 {
            ip: at,
            proto: protocol,
        };
        self.transport(at + hl, body_end, declared, pseudo, addr_delta, quoted)
    }

    /// The IPv6 packet at `at`, bounded by `end`, with its extension headers.
    #[inline]
    pub(super) fn ipv6(&mut self, at: usize, end: usize, quoted: bool) -> Step {
        self.descend(at)?;
        let p = ipv6::Packet::new_checked(self.bytes(at, end)).map_err(|e| match e {
            ipv6::Bad::Truncated(_) => stop(at, Reason::TruncatedIpv6),
            ipv6::Bad::Malformed => stop(at, Reason::MalformedIpv6),
        })?;
        let mut next = p.next_header();
        let declared = match p.payload_len() {
            0 => end,
            len => at + ipv6::HEADER_LEN + len,
        };
        let end = end.min(declared);
        let src_delta = self.rewrite_v6(at + ipv6::SRC_AT);
        // the pseudo-header takes the final destination: the last hop of a routing header
        // with segments left, else the header's destination
        let mut dst = (at + ipv6::DST_AT, self.rewrite_v6(at + ipv6::DST_AT));
        self.ip_headers += 1;
        let mut pos = at + ipv6::HEADER_LEN;
        for _ in 0..MAX_EXT {
            match next {
                proto::HOPOPT | proto::DSTOPTS | proto::ROUTING | proto::FRAGMENT | proto::AH => {
                    self.tick(pos)?;
                    let ext = ipv6::Ext::parse(next, self.bytes(pos, end))
                        .map_err(|_| stop(pos, Reason::TruncatedIpv6Ext))?;
                    if let Some(last_hop) = self.ipv6_ext(next, pos, pos + ext.len)? {
                        dst = last_hop;
                    }
                    if next == proto::FRAGMENT && self.later_fragment(pos) {
                        return end_at(pos + ext.len, end);
                    }
                    pos += ext.len;
                    next = ext.next;
                }
                proto::ESP | proto::NONE => return end_at(pos, end),
                proto::MOBILITY | proto::HIP | proto::SHIM6 => {
                    return Err(stop(pos, Reason::UnknownIpv6Ext))
                }
                _ => {
                    let pseudo = Pseudo::V6 {
                        src: at + ipv6::SRC_AT,
                        dst: dst.0,
                        proto: next,
                    };
                    let addr_delta = src_delta + dst.1;
                    return self.transport(pos, end, declared, pseudo, addr_delta, quoted);
                }
            }
        }
        Err(stop(pos, Reason::TooDeep))
    }

    /// Whether the fragment header at `pos` is of a fragment other than the first.
    fn later_fragment(&self, pos: usize) -> bool {
        let b = self.bytes(pos + 2, pos + 4);
        b.len() == 2 && u16::from_be_bytes([b[0], b[1]]) >> 3 != 0
    }

    /// Handles the extension header of type `kind` at `pos..end`: options, routing
    /// addresses, reserved bytes, the AH digest. Returns the offset of a routing header's
    /// final destination, with the checksum delta of its rewrite, when segments are left.
    #[inline(never)]
    fn ipv6_ext(&mut self, kind: u8, pos: usize, end: usize) -> Result<Option<(usize, u64)>, Stop> {
        match kind {
            proto::HOPOPT | proto::DSTOPTS => self.ipv6_options(pos + 2, end)?,
            proto::ROUTING => return self.routing(pos, end),
            proto::FRAGMENT => {
                self.neutralise_zero(pos + 1, pos + 2, Neutral::Ipv6Reserved);
                if let Some(&b) = self.buf.get(pos + 3) {
                    self.neutralise_put(pos + 3, &[b & 0xf9], Neutral::Ipv6Reserved);
                }
            }
            _ => {
                self.neutralise_zero(pos + 2, pos + 4, Neutral::Ipv6Reserved);
                let icv = ipv6::ah_icv(self.bytes(pos, end));
                self.neutralise_zero(pos + icv.start, pos + icv.end, Neutral::AhIcv);
            }
        }
        Ok(None)
    }
}
