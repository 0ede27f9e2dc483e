//! Tunnels, walked into: GRE (checksum, key, sequence number) carrying IP, MPLS, Ethernet
//! or ERSPAN II/III; and the UDP tunnels VXLAN, Geneve, GTP-U and L2TPv2. Their reserved
//! bytes, options and extension headers are zeroed; their identifiers (keys, VNIs, TEIDs,
//! session IDs) and sequence numbers are kept.

use super::checksum::Scope;
use super::{stop, Neutral, Reason, Rewriter, Step, Stop, Walk};
use crate::wire::udp::Tunnel;
use crate::wire::{ethertype, geneve, gre, gtp, l2tp, vxlan, Bad};

fn bad(at: usize) -> impl Fn(Bad) -> Stop {
    move |e| match e {
        Bad::Truncated(_) => stop(at, Reason::TruncatedTunnel),
        Bad::Unsupported => stop(at, Reason::UnknownTunnel),
    }
}

impl<R: Rewriter> Walk<'_, R> {
    /// The GRE packet at `at..end` (`declared`: its end by the IP lengths, which its
    /// checksum covers).
    #[inline(never)]
    pub(super) fn gre(&mut self, at: usize, end: usize, declared: usize) -> Step {
        self.descend(at)?;
        let h = gre::parse(self.bytes(at, end)).map_err(bad(at))?;
        if h.checksum {
            self.open(Scope {
                start: at,
                end: declared.max(at + h.len),
                checksum_at: at + gre::CHECKSUM_AT,
                ..Scope::default()
            })?;
            let reserved = at + gre::RESERVED1_AT;
            self.neutralise_zero(reserved, reserved + 2, Neutral::TunnelReserved);
        }
        let inner = at + h.len;
        match h.protocol {
            ethertype::IPV4 => self.ipv4(inner, end, false),
            ethertype::IPV6 => self.ipv6(inner, end, false),
            ethertype::MPLS | ethertype::MPLS_MC => self.mpls(inner, end),
            ethertype::TEB => self.ethernet(inner, end),
            ethertype::ERSPAN_II if !h.sequence => self.ethernet(inner, end), // type I
            ethertype::ERSPAN_II => self.erspan(inner, end, gre::erspan2),
            ethertype::ERSPAN_III => self.erspan(inner, end, gre::erspan3),
            _ => Err(stop(at, Reason::UnknownTunnel)),
        }
    }

    fn erspan(
        &mut self,
        at: usize,
        end: usize,
        parse: fn(&[u8]) -> Result<gre::Erspan, Bad>,
    ) -> Step {
        self.tick(at)?;
        let e = parse(self.bytes(at, end)).map_err(bad(at))?;
        self.neutralise_put(at, &e.clean[..e.len.min(12)], Neutral::TunnelReserved);
        if e.len > 12 {
            self.neutralise_put(at + 12, &e.clean[12..e.len], Neutral::ErspanPlatform);
        }
        match e.inner {
            gre::Inner::Ethernet => self.ethernet(at + e.len, end),
            gre::Inner::Ip => self.ip_by_version(at + e.len, end, false),
        }
    }

    /// The tunnel of kind `kind` at `at..end` (the UDP payload).
    #[inline(never)]
    pub(super) fn udp_tunnel(&mut self, kind: Tunnel, at: usize, end: usize) -> Step {
        self.descend(at)?;
        match kind {
            Tunnel::Vxlan => self.vxlan(at, end),
            Tunnel::Geneve => self.geneve(at, end),
            Tunnel::Gtp => self.gtp(at, end),
            Tunnel::L2tp => self.l2tp(at, end),
        }
    }

    fn vxlan(&mut self, at: usize, end: usize) -> Step {
        let clean = vxlan::clean(self.bytes(at, end)).map_err(bad(at))?;
        self.neutralise_put(at, &clean, Neutral::TunnelReserved);
        self.ethernet(at + vxlan::HEADER_LEN, end)
    }

    fn geneve(&mut self, at: usize, end: usize) -> Step {
        let h = geneve::parse(self.bytes(at, end)).map_err(bad(at))?;
        self.neutralise_put(at, &h.clean, Neutral::TunnelReserved);
        let options = h.options();
        self.neutralise_zero(at + options.start, at + options.end, Neutral::GeneveOption);
        let inner = at + h.len;
        match h.protocol {
            ethertype::TEB => self.ethernet(inner, end),
            ethertype::IPV4 => self.ipv4(inner, end, false),
            ethertype::IPV6 => self.ipv6(inner, end, false),
            _ => Err(stop(at, Reason::UnknownTunnel)),
        }
    }

    fn gtp(&mut self, at: usize, end: usize) -> Step {
        let h = gtp::parse(self.bytes(at, end)).map_err(bad(at))?;
        self.neutralise_put(at, &[h.flags], Neutral::TunnelReserved);
        if !h.extensions.is_empty() {
            let first_type = self.buf[at + h.extensions.start - 1];
            let mut ext = h.extensions.start;
            while ext < h.extensions.end {
                self.tick(at + ext)?;
                let Some(Ok(c)) = gtp::Extensions::new(self.bytes(at, end), first_type, ext).next()
                else {
                    return Err(stop(at, Reason::TruncatedTunnel));
                };
                self.neutralise_zero(at + c.start, at + c.end, Neutral::GtpExtension);
                ext = c.end + 1;
            }
        }
        self.ip_by_version(at + h.len, end.min(at + h.end), false)
    }

    fn l2tp(&mut self, at: usize, end: usize) -> Step {
        let h = l2tp::parse(self.bytes(at, end)).map_err(bad(at))?;
        self.neutralise_put(at, &h.clean, Neutral::TunnelReserved);
        let pad = h.padding;
        self.neutralise_zero(at + pad.start, at + pad.end, Neutral::L2tpPadding);
        let end = match h.length {
            Some(len) if len >= h.len => end.min(at + len),
            _ => end,
        };
        self.ppp(at + h.len, end, true)
    }
}
