//! The frame most traffic is, walked without the general machinery: Ethernet, then IPv4
//! with no options and not a fragment or IPv6 with no extension header, then TCP with no
//! options or UDP on ports no tunnel is known by. Every byte it keeps is one the general walk
//! keeps too (MAC addresses under the MAC policy, the fixed IP and transport headers,
//! addresses anonymized), and it gives the same bytes and the same [`WalkOutcome`]: the
//! shape is checked whole before anything is written, and the checksums are computed by the
//! same functions (for IPv4 on the header's words directly, for IPv6 from the same scopes).
//! Anything else (options, extension headers, VLAN tags,
//! tunnels, fragments, truncation, the payload zeroed, checksums other than fixed) is left
//! to the general walk.

use super::checksum::{as_sent, recomputed, sum_covered, sum_words32, Pseudo, Scope};
use super::{link, Checksums, Payload, Rewriter, Walk, WalkOutcome};
use crate::wire::{ethernet, ethertype, ipv4, ipv6, proto, tcp, udp};
use lander_trace::checksum;

/// Where the IP header starts.
const IP: usize = ethernet::HEADER_LEN;
/// Units of work the general walk spends on these headers: Ethernet, its EtherType, IP.
const WORK: u32 = 3;

/// The headers of a frame of the simple shape.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// Where the transport header starts.
    l4: usize,
    /// Its protocol (TCP or UDP).
    protocol: u8,
    /// Its length.
    header_len: usize,
    /// The end of the IP packet by its length field.
    declared: usize,
    /// The end of the payload in the frame.
    body_end: usize,
    /// The transport checksum's offset in its header; `None` for an IPv4 UDP checksum of
    /// zero (there is none).
    checksum_at: Option<usize>,
}

impl Shape {
    /// The shape of `buf`, if it is the simple one with an IPv4 header (`V4`) or an IPv6 one.
    #[inline]
    fn of<const V4: bool>(buf: &[u8]) -> Option<Shape> {
        let (l4, protocol, declared) = match V4 {
            true => {
                let ip = buf.get(IP..IP + ipv4::MIN_LEN)?;
                let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
                if ip[0] != 0x45 || total < ipv4::MIN_LEN || frag != 0 {
                    return None;
                }
                (IP + ipv4::MIN_LEN, ip[9], IP + total)
            }
            false => {
                let ip = buf.get(IP..IP + ipv6::HEADER_LEN)?;
                if ip[0] >> 4 != 6 {
                    return None;
                }
                let declared = match usize::from(u16::from_be_bytes([ip[4], ip[5]])) {
                    0 => buf.len(),
                    len => IP + ipv6::HEADER_LEN + len,
                };
                (IP + ipv6::HEADER_LEN, ip[6], declared)
            }
        };
        let body_end = buf.len().min(declared);
        let body = buf.get(l4..body_end)?;
        let (header_len, checksum_at) = match protocol {
            proto::TCP if body.len() >= tcp::MIN_LEN && body[12] >> 4 == 5 => {
                (tcp::MIN_LEN, Some(tcp::CHECKSUM_AT))
            }
            proto::UDP if body.len() >= udp::HEADER_LEN => {
                let (sport, dport, _) = udp::ports_and_length(body);
                if udp::tunnel(sport, dport).is_some() {
                    return None;
                }
                let zero = body[udp::CHECKSUM_AT] == 0 && body[udp::CHECKSUM_AT + 1] == 0;
                let none = V4 && zero;
                (udp::HEADER_LEN, (!none).then_some(udp::CHECKSUM_AT))
            }
            _ => return None,
        };
        Some(Shape {
            l4,
            protocol,
            header_len,
            declared,
            body_end,
            checksum_at,
        })
    }
}

impl<R: Rewriter> Walk<'_, R> {
    /// Walks the frame when it has the simple shape; `None`, with nothing written, when the
    /// general walk must.
    #[inline]
    pub(super) fn simple(&mut self, link: u32) -> Option<WalkOutcome> {
        if link != link::ETHERNET
            || self.policy.checksums != Checksums::Fix
            || self.policy.payload == Payload::Zero
        {
            return None;
        }
        let et = self.buf.get(12..14)?;
        match u16::from_be_bytes([et[0], et[1]]) {
            ethertype::IPV4 => self.simple_v4(Shape::of::<true>(self.buf)?),
            ethertype::IPV6 => self.simple_v6(Shape::of::<false>(self.buf)?),
            _ => None,
        }
    }

    /// Walks the frame of the simple shape `shape` with an IPv4 header: the writes and
    /// checksums the scopes of the general walk give, worked on the header's words (the
    /// IPv4 header is whole below the cut, so its checksum is always recomputed; the
    /// transport's is recomputed when its covered bytes all stay, else updated by the
    /// addresses' change).
    #[inline]
    fn simple_v4(&mut self, shape: Shape) -> Option<WalkOutcome> {
        self.work = WORK;
        let (payload_at, caplen) = self.simple_cut(&shape);
        let Walk { buf, rw, .. } = self;
        let (head, transport) = buf.split_at_mut(shape.l4);
        let ip: &mut [u8; ipv4::MIN_LEN] = head.get_mut(IP..)?.try_into().ok()?;
        let src_at = ipv4::SRC_AT;
        let dst_at = ipv4::DST_AT;
        let old_src: [u8; 4] = *ip[src_at..].first_chunk()?;
        let old_dst: [u8; 4] = *ip[dst_at..].first_chunk()?;
        let (src, dst) = (rw.v4(old_src), rw.v4(old_dst));
        ip[src_at..src_at + 4].copy_from_slice(&src);
        ip[dst_at..dst_at + 4].copy_from_slice(&dst);
        if let Some(at) = shape.checksum_at {
            let end = shape.declared.max(shape.l4 + at + 2) - shape.l4;
            if shape.l4 + at + 2 <= caplen {
                let field = u16::from_be_bytes([transport[at], transport[at + 1]]);
                let value = if shape.l4 + end <= caplen {
                    // the pseudo-header's addresses as the words they were written in
                    let pseudo = u64::from(u32::from_be_bytes(src))
                        + u64::from(u32::from_be_bytes(dst))
                        + u64::from(shape.protocol)
                        + end as u64;
                    recomputed(sum_covered(&transport[..end]), field, pseudo)
                } else {
                    let delta = checksum::words_delta(&old_src, &src)
                        + checksum::words_delta(&old_dst, &dst);
                    checksum::update(field, delta)
                };
                let value = as_sent(value, shape.protocol == proto::UDP);
                transport[at..at + 2].copy_from_slice(&value.to_be_bytes());
            }
        }
        let at = ipv4::CHECKSUM_AT;
        let field = u16::from_be_bytes([ip[at], ip[at + 1]]);
        let value = recomputed(sum_words32(ip), field, 0);
        ip[at..at + 2].copy_from_slice(&value.to_be_bytes());
        // the MAC addresses after the steps that may give up: `None` has written nothing
        self.mac(0);
        self.mac(6);
        Some(self.simple_outcome(payload_at, caplen))
    }

    /// Walks the frame of the simple shape `shape` with an IPv6 header.
    #[inline]
    fn simple_v6(&mut self, shape: Shape) -> Option<WalkOutcome> {
        self.work = WORK;
        self.mac(0);
        self.mac(6);
        let addr_delta = self.rewrite_v6(IP + ipv6::SRC_AT) + self.rewrite_v6(IP + ipv6::DST_AT);
        let (payload_at, caplen) = self.simple_cut(&shape);
        if let Some(at) = shape.checksum_at {
            let transport = Scope {
                start: shape.l4,
                end: shape.declared.max(shape.l4 + at + 2),
                checksum_at: shape.l4 + at,
                pseudo: Pseudo::V6 {
                    src: IP + ipv6::SRC_AT,
                    dst: IP + ipv6::DST_AT,
                    proto: shape.protocol,
                },
                delta: addr_delta,
                udp: shape.protocol == proto::UDP,
            };
            self.set_checksum(&transport, caplen);
        }
        Some(self.simple_outcome(payload_at, caplen))
    }

    /// Where the payload of a frame of the simple shape starts, and where the frame is cut.
    #[inline]
    fn simple_cut(&self, shape: &Shape) -> (usize, usize) {
        let payload_at = shape.l4 + shape.header_len;
        let caplen = match self.policy.payload {
            Payload::Keep(n) => shape.body_end.min(payload_at.saturating_add(n)),
            _ => payload_at,
        };
        (payload_at, caplen)
    }

    /// The outcome of a walk of the simple shape.
    #[inline]
    fn simple_outcome(&self, payload_at: usize, caplen: usize) -> WalkOutcome {
        WalkOutcome {
            caplen,
            payload_at,
            reason: None,
            neutralised: self.neutral,
            work: self.work,
        }
    }
}
