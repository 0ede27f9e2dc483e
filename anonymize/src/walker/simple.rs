//! The frame most traffic is, walked without the general machinery: Ethernet, then IPv4
//! with no options and not a fragment or IPv6 with no extension header, then TCP with no
//! options or UDP on ports no tunnel is known by. Every byte it keeps is one the general walk
//! keeps too (MAC addresses under the MAC policy, the fixed IP and transport headers,
//! addresses anonymized), and it gives the same bytes and the same [`WalkOutcome`]: the
//! shape is checked whole before anything is written, and the checksums are computed by the
//! same functions from the same scopes. Anything else (options, extension headers, VLAN tags,
//! tunnels, fragments, truncation, the payload zeroed, checksums other than fixed) is left
//! to the general walk.

use super::checksum::{Pseudo, Scope};
use super::{link, Checksums, Payload, Rewriter, Walk, WalkOutcome};
use crate::wire::{ethernet, ethertype, ipv4, ipv6, proto, tcp, udp};

/// Where the IP header starts.
const IP: usize = ethernet::HEADER_LEN;
/// Units of work the general walk spends on these headers: Ethernet, its EtherType, IP.
const WORK: u32 = 3;

/// The headers of a frame of the simple shape.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// IPv4 (else IPv6).
    v4: bool,
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
        let (v4, l4, protocol, declared) = match V4 {
            true => {
                let ip = buf.get(IP..IP + ipv4::MIN_LEN)?;
                let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
                if ip[0] != 0x45 || total < ipv4::MIN_LEN || frag != 0 {
                    return None;
                }
                (true, IP + ipv4::MIN_LEN, ip[9], IP + total)
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
                (false, IP + ipv6::HEADER_LEN, ip[6], declared)
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
                let none = v4 && zero;
                (udp::HEADER_LEN, (!none).then_some(udp::CHECKSUM_AT))
            }
            _ => return None,
        };
        Some(Shape {
            v4,
            l4,
            protocol,
            header_len,
            declared,
            body_end,
            checksum_at,
        })
    }

    /// Where the transport checksum takes its pseudo-header.
    fn pseudo(&self) -> Pseudo {
        match self.v4 {
            true => Pseudo::V4 {
                ip: IP,
                proto: self.protocol,
            },
            false => Pseudo::V6 {
                src: IP + ipv6::SRC_AT,
                dst: IP + ipv6::DST_AT,
                proto: self.protocol,
            },
        }
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
            ethertype::IPV4 => self.simple_ip(Shape::of::<true>(self.buf)?),
            ethertype::IPV6 => self.simple_ip(Shape::of::<false>(self.buf)?),
            _ => None,
        }
    }

    /// Walks the frame of the simple shape `shape`.
    #[inline]
    fn simple_ip(&mut self, shape: Shape) -> Option<WalkOutcome> {
        self.work = WORK;
        self.mac(0);
        self.mac(6);
        let addr_delta = match shape.v4 {
            true => self.rewrite_v4(IP + ipv4::SRC_AT) + self.rewrite_v4(IP + ipv4::DST_AT),
            false => self.rewrite_v6(IP + ipv6::SRC_AT) + self.rewrite_v6(IP + ipv6::DST_AT),
        };
        let payload_at = shape.l4 + shape.header_len;
        let caplen = match self.policy.payload {
            Payload::Keep(n) => shape.body_end.min(payload_at.saturating_add(n)),
            _ => payload_at,
        };
        if let Some(at) = shape.checksum_at {
            let transport = Scope {
                start: shape.l4,
                end: shape.declared.max(shape.l4 + at + 2),
                checksum_at: shape.l4 + at,
                pseudo: shape.pseudo(),
                delta: addr_delta,
                udp: shape.protocol == proto::UDP,
            };
            self.set_checksum(&transport, caplen);
        }
        if shape.v4 {
            let header = Scope {
                start: IP,
                end: shape.l4,
                checksum_at: IP + ipv4::CHECKSUM_AT,
                ..Scope::default()
            };
            self.set_checksum(&header, caplen);
        }
        Some(WalkOutcome {
            caplen,
            payload_at,
            reason: None,
            neutralised: self.neutral,
            work: self.work,
        })
    }
}
