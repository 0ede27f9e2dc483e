//! Link layers: Ethernet and its tags, Linux cooked capture, loopback, ARP, MPLS (and what
//! follows a label stack), PPPoE and PPP.

use super::{end_at, link, stop, MacPolicy, MplsPolicy, Neutral, Reason, Rewriter, Step, Walk};
use crate::wire::ethernet::{self, SllAddr};
use crate::wire::{arp, ethertype, ipv4, ipv6, ppp, Bad};

/// An MPLS pseudowire control word (RFC 4385) starts with the nibble 0; 1 is the associated
/// channel (control traffic, never walked).
const CONTROL_WORD_LEN: usize = 4;

impl<R: Rewriter> Walk<'_, R> {
    #[inline]
    pub(super) fn link(&mut self, link: u32) -> Step {
        let end = self.buf.len();
        match link {
            link::ETHERNET => self.ethernet(0, end),
            link::RAW => self.ip_by_version(0, end, false),
            link::IPV4 => self.ipv4(0, end, false),
            link::IPV6 => self.ipv6(0, end, false),
            link::LINUX_SLL => self.sll(ethernet::Sll::parse_v1(self.buf)),
            link::LINUX_SLL2 => self.sll(ethernet::Sll::parse_v2(self.buf)),
            link::NULL | link::LOOP => self.loopback(link),
            _ => Err(stop(0, Reason::UnknownLink)),
        }
    }

    /// The Ethernet frame at `at..end`.
    #[inline]
    pub(super) fn ethernet(&mut self, at: usize, end: usize) -> Step {
        self.descend(at)?;
        let et = ethernet::Packet::new_checked(self.bytes(at, end))
            .map_err(|_| stop(at, Reason::TruncatedLink))?
            .ethertype();
        self.mac(at);
        self.mac(at + 6);
        self.ethertype(et, at + ethernet::HEADER_LEN, end)
    }

    /// A Linux cooked header: its address field by ARPHRD type (a MAC address under the MAC
    /// policy, a tunnel's IPv4 endpoint anonymized, anything else zeroed), the unused rest
    /// of the field and the reserved bytes zeroed.
    #[inline(never)]
    fn sll(&mut self, sll: Result<ethernet::Sll, crate::wire::Truncated>) -> Step {
        let sll = sll.map_err(|_| stop(0, Reason::TruncatedLink))?;
        self.tick(0)?;
        if let Some(r) = sll.reserved_at {
            self.neutralise_zero(r, r + 2, Neutral::LinkAddress);
        }
        let (at, field_end) = (sll.addr_at, sll.addr_at + ethernet::SLL_ADDR_FIELD);
        let used = match ethernet::sll_addr(sll.hatype, sll.addr_len) {
            SllAddr::Mac => {
                self.mac(at);
                6
            }
            SllAddr::V4 => {
                self.rewrite_v4(at);
                4
            }
            SllAddr::Other => 0,
        };
        self.neutralise_zero(at + used, field_end, Neutral::LinkAddress);
        self.ethertype(sll.protocol, sll.header_len, self.buf.len())
    }

    #[inline(never)]
    fn loopback(&mut self, link: u32) -> Step {
        let Some(&fam) = self.buf.first_chunk::<4>() else {
            return Err(stop(0, Reason::TruncatedLink));
        };
        let family = match (link, u32::from_le_bytes(fam)) {
            (link::NULL, le) if le <= 0xffff => le,
            _ => u32::from_be_bytes(fam),
        };
        let end = self.buf.len();
        match family {
            2 => self.ipv4(4, end, false),
            10 | 24 | 28 | 30 => self.ipv6(4, end, false),
            _ => Err(stop(4, Reason::UnknownLink)),
        }
    }

    /// The payload of EtherType `et` at `at..end`, after any VLAN tags.
    #[inline]
    pub(super) fn ethertype(&mut self, mut et: u16, mut at: usize, end: usize) -> Step {
        for _ in 0..MAX_TAGS {
            self.tick(at)?;
            match et {
                ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                    et = ethernet::vlan_next(self.bytes(0, end), at)
                        .map_err(|_| stop(at, Reason::TruncatedVlan))?;
                    at += ethernet::VLAN_TAG_LEN;
                }
                ethertype::IPV4 => return self.ipv4(at, end, false),
                ethertype::IPV6 => return self.ipv6(at, end, false),
                ethertype::ARP => return self.arp(at, end),
                ethertype::MPLS | ethertype::MPLS_MC => return self.mpls(at, end),
                ethertype::PPPOE_SESSION => return self.pppoe(at, end),
                _ => return Err(stop(at, Reason::UnknownEthertype)),
            }
        }
        Err(stop(at, Reason::TooDeep))
    }

    #[inline(never)]
    pub(super) fn mpls(&mut self, mut at: usize, end: usize) -> Step {
        for _ in 0..MAX_LABELS {
            self.tick(at)?;
            let bottom = ethernet::mpls_bottom(self.bytes(0, end), at)
                .map_err(|_| stop(at, Reason::TruncatedMpls))?;
            at += ethernet::MPLS_ENTRY_LEN;
            if bottom {
                return self.mpls_payload(at, end);
            }
        }
        Err(stop(at, Reason::TooDeep))
    }

    /// What follows the label stack, decided by the MPLS policy.
    fn mpls_payload(&mut self, at: usize, end: usize) -> Step {
        let Some(nibble) = self.bytes(at, end).first().map(|b| b >> 4) else {
            return Err(stop(at, Reason::TruncatedIp));
        };
        let bytes = self.bytes(at, end);
        let evidence = match (self.policy.mpls, nibble) {
            (MplsPolicy::Auto, 4) => ipv4::plausible(bytes, end == self.buf.len()),
            (MplsPolicy::Auto, 6) => ipv6::plausible(bytes),
            (MplsPolicy::Ip, 4 | 6) => true,
            _ => false,
        };
        match (self.policy.mpls, nibble) {
            (MplsPolicy::Cut, _) => Err(stop(at, Reason::MplsCut)),
            (MplsPolicy::Ip | MplsPolicy::Auto, 4) if evidence => self.ipv4(at, end, false),
            (MplsPolicy::Ip | MplsPolicy::Auto, 6) if evidence => self.ipv6(at, end, false),
            (MplsPolicy::Ip, _) => Err(stop(at, Reason::UnknownMplsPayload)),
            _ => self.pseudowire(at, end, nibble),
        }
    }

    /// An Ethernet pseudowire at `at` (after a control word when `nibble` is 0): kept only
    /// when it parses, else cut after the label stack.
    ///
    /// A frame without a control word whose destination MAC starts with the nibble 0 looks
    /// like one with; a VLAN tag even makes the shifted frame parse. So the control word
    /// (reserved bits and a sequence number for Ethernet, RFC 4448) follows the MAC policy:
    /// kept under `keep`, zeroed otherwise, so no byte of a MAC is kept by mistake.
    fn pseudowire(&mut self, at: usize, end: usize, nibble: u8) -> Step {
        let frame = match nibble {
            0 => at + CONTROL_WORD_LEN,
            1 => return Err(stop(at, Reason::UnknownMplsPayload)),
            _ => at,
        };
        self.speculate(at, Reason::UnknownMplsPayload, |w| {
            if frame > at && w.policy.mac != MacPolicy::Keep {
                w.neutralise_zero(at, frame, Neutral::LinkAddress);
            }
            w.ethernet(frame, end)
        })
    }

    #[inline(never)]
    fn arp(&mut self, at: usize, end: usize) -> Step {
        match arp::is_ethernet_ipv4(self.bytes(at, end)) {
            Err(_) => Err(stop(at, Reason::TruncatedArp)),
            Ok(false) => Err(stop(at, Reason::UnsupportedArp)),
            Ok(true) => {
                self.mac(at + arp::SHA_AT);
                self.mac(at + arp::THA_AT);
                self.rewrite_v4(at + arp::SPA_AT);
                self.rewrite_v4(at + arp::TPA_AT);
                end_at(at + arp::LEN, at + arp::LEN)
            }
        }
    }

    /// A PPPoE session header, then PPP.
    #[inline(never)]
    fn pppoe(&mut self, at: usize, end: usize) -> Step {
        let len = ppp::pppoe_session(self.bytes(at, end)).map_err(|e| match e {
            Bad::Truncated(_) => stop(at, Reason::TruncatedLink),
            Bad::Unsupported => stop(at, Reason::UnknownEthertype),
        })?;
        let body = at + ppp::PPPOE_LEN;
        self.ppp(body, end.min(body + len), false)
    }

    /// A PPP frame at `at..end` (with address and control bytes when `framed` allows
    /// them): IPv4 and IPv6 are walked, other protocols (LCP, authentication, IPCP, which
    /// carry names, secrets and addresses) are cut.
    #[inline(never)]
    pub(super) fn ppp(&mut self, at: usize, end: usize, framed: bool) -> Step {
        self.tick(at)?;
        let (len, protocol) = ppp::header(self.bytes(at, end), framed).map_err(|e| match e {
            Bad::Truncated(_) => stop(at, Reason::TruncatedLink),
            Bad::Unsupported => stop(at, Reason::UnknownPpp),
        })?;
        match protocol {
            ppp::IPV4 => self.ipv4(at + len, end, false),
            ppp::IPV6 => self.ipv6(at + len, end, false),
            _ => Err(stop(at, Reason::UnknownPpp)),
        }
    }
}

const MAX_TAGS: usize = super::MAX_TAGS;
const MAX_LABELS: usize = super::MAX_LABELS;
