//! The frame most traffic is, walked without the general machinery: Ethernet, IPv4 with no
//! options and not a fragment, then TCP with no options or UDP on ports no tunnel is known
//! by. Every byte it keeps is one the general walk keeps too (MAC addresses under the MAC
//! policy, the fixed IPv4 and transport headers, addresses anonymized), and it gives the same
//! bytes and the same [`WalkOutcome`]: the shape is checked whole before anything is written,
//! and the checksums are computed by the same functions from the same scopes. Anything else
//! (options, VLAN tags, tunnels, fragments, truncation, the payload zeroed, checksums other
//! than fixed) is left to the general walk.

use super::checksum::{Pseudo, Scope};
use super::{link, Checksums, Payload, Rewriter, Walk, WalkOutcome};
use crate::wire::{ethernet, ethertype, ipv4, proto, tcp, udp};

/// Where the IPv4 header starts.
const IP: usize = ethernet::HEADER_LEN;
/// Where the transport header starts.
const L4: usize = IP + ipv4::MIN_LEN;
/// Units of work the general walk spends on these headers: Ethernet, its EtherType, IPv4.
const WORK: u32 = 3;

/// The headers of a frame of the simple shape.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// IPv4 protocol (TCP or UDP).
    protocol: u8,
    /// Transport header length.
    header_len: usize,
    /// The end of the IP packet by its total length.
    declared: usize,
    /// The end of the payload in the frame.
    body_end: usize,
    /// The transport checksum's offset in its header; `None` for a UDP checksum of zero.
    checksum_at: Option<usize>,
}

impl Shape {
    /// The shape of `buf`, if it is the simple one.
    #[inline]
    fn of(buf: &[u8]) -> Option<Shape> {
        let ip = buf.get(IP..L4)?;
        let et = u16::from_be_bytes([buf[12], buf[13]]);
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
        if et != ethertype::IPV4 || ip[0] != 0x45 || total < ipv4::MIN_LEN || frag != 0 {
            return None;
        }
        let declared = IP + total;
        let body_end = buf.len().min(declared);
        let l4 = buf.get(L4..body_end)?;
        let protocol = ip[9];
        let (header_len, checksum_at) = match protocol {
            proto::TCP if l4.len() >= tcp::MIN_LEN && l4[12] >> 4 == 5 => {
                (tcp::MIN_LEN, Some(tcp::CHECKSUM_AT))
            }
            proto::UDP if l4.len() >= udp::HEADER_LEN => {
                let (sport, dport, _) = udp::ports_and_length(l4);
                if udp::tunnel(sport, dport).is_some() {
                    return None;
                }
                // an IPv4 UDP checksum of zero says there is none
                let zero = l4[udp::CHECKSUM_AT] == 0 && l4[udp::CHECKSUM_AT + 1] == 0;
                (udp::HEADER_LEN, (!zero).then_some(udp::CHECKSUM_AT))
            }
            _ => return None,
        };
        Some(Shape {
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
        let shape = Shape::of(self.buf)?;
        self.work = WORK;
        self.mac(0);
        self.mac(6);
        let addr_delta = self.rewrite_v4(IP + ipv4::SRC_AT) + self.rewrite_v4(IP + ipv4::DST_AT);
        let payload_at = L4 + shape.header_len;
        let caplen = match self.policy.payload {
            Payload::Keep(n) => shape.body_end.min(payload_at.saturating_add(n)),
            _ => payload_at,
        };
        if let Some(at) = shape.checksum_at {
            let transport = Scope {
                start: L4,
                end: shape.declared.max(L4 + at + 2),
                checksum_at: L4 + at,
                pseudo: Pseudo::V4 {
                    ip: IP,
                    proto: shape.protocol,
                },
                delta: addr_delta,
                udp: shape.protocol == proto::UDP,
            };
            self.set_checksum(&transport, caplen);
        }
        let header = Scope {
            start: IP,
            end: L4,
            checksum_at: IP + ipv4::CHECKSUM_AT,
            ..Scope::default()
        };
        self.set_checksum(&header, caplen);
        Some(WalkOutcome {
            caplen,
            payload_at,
            reason: None,
            neutralised: self.neutral,
            work: self.work,
        })
    }
}
