//! Transport layer: TCP (with its options), UDP (and the tunnels its ports suggest), ICMP
//! and ICMPv6 (and the packets their errors quote).

use super::checksum::Pseudo;
use super::{end_at, stop, Neutral, Reason, Rewriter, Step, Walk};
use crate::wire::{icmp, proto, tcp, udp};

impl<R: Rewriter> Walk<'_, R> {
    /// The payload of an IP header at `at..end` (`declared`: its end by the IP lengths).
    #[inline]
    pub(super) fn transport(
        &mut self,
        at: usize,
        end: usize,
        declared: usize,
        pseudo: Pseudo,
        addr_delta: u64,
        quoted: bool,
    ) -> Step {
        let Some(protocol) = pseudo.protocol() else {
            return end_at(at, end);
        };
        match protocol {
            proto::IPIP => self.ipv4(at, end, quoted),
            proto::IPV6 => self.ipv6(at, end, quoted),
            proto::GRE if !quoted => self.gre(at, end, declared),
            proto::GRE | proto::ETHERIP | proto::L2TP => Err(stop(at, Reason::UnknownTunnel)),
            _ if quoted => self.quoted_transport(protocol, at, end, declared, pseudo, addr_delta),
            proto::TCP => self.tcp(at, end, declared, pseudo, addr_delta),
            proto::UDP => self.udp(at, end, declared, pseudo, addr_delta, true),
            proto::ICMP if matches!(pseudo, Pseudo::V4 { .. }) => self.icmp4(at, end, declared),
            proto::ICMPV6 if matches!(pseudo, Pseudo::V6 { .. }) => {
                self.icmp6(at, end, declared, pseudo, addr_delta)
            }
            _ => end_at(at, end),
        }
    }

    /// The transport header of a packet quoted in an ICMP error: often only its first 8
    /// bytes are there. Its checksum is kept right where the header is whole. Of other
    /// protocols nothing is kept as header.
    #[inline(never)]
    fn quoted_transport(
        &mut self,
        protocol: u8,
        at: usize,
        end: usize,
        declared: usize,
        pseudo: Pseudo,
        d: u64,
    ) -> Step {
        let first8 = end_at((at + icmp::HEADER_LEN).min(end), end);
        let present = end.saturating_sub(at);
        match protocol {
            proto::TCP => match tcp::header_len(self.bytes(at, end)) {
                Ok(_) => self.tcp(at, end, declared, pseudo, d),
                Err(_) => first8,
            },
            proto::UDP if present >= udp::HEADER_LEN => {
                self.udp(at, end, declared, pseudo, d, false)
            }
            proto::ICMP | proto::ICMPV6 if present >= icmp::HEADER_LEN => {
                self.open_transport(at, declared, icmp::CHECKSUM_AT, pseudo.of_icmp(), d, false)?;
                self.icmp_rest(at, protocol == proto::ICMPV6);
                first8
            }
            proto::UDP | proto::ICMP | proto::ICMPV6 => first8,
            _ => end_at(at, end),
        }
    }

    #[inline]
    fn tcp(&mut self, at: usize, end: usize, declared: usize, pseudo: Pseudo, d: u64) -> Step {
        let hl = tcp::header_len(self.bytes(at, end)).map_err(|e| match e {
            tcp::Bad::Truncated(_) => stop(at, Reason::TruncatedTcp),
            tcp::Bad::Malformed => stop(at, Reason::MalformedTcp),
        })?;
        self.open_transport(at, declared, tcp::CHECKSUM_AT, pseudo, d, false)?;
        if hl > tcp::MIN_LEN {
            self.tcp_options(at + tcp::MIN_LEN, at + hl)?;
        }
        end_at(at + hl, end)
    }

    /// A UDP header; with `tunnels`, a payload its ports suggest is a tunnel is walked as
    /// one (speculatively: when it does not parse, the frame is cut after the UDP header).
    #[inline]
    fn udp(
        &mut self,
        at: usize,
        end: usize,
        declared: usize,
        pseudo: Pseudo,
        d: u64,
        tunnels: bool,
    ) -> Step {
        let sum = udp::checksum(self.bytes(at, end)).map_err(|_| stop(at, Reason::TruncatedUdp))?;
        let optional = matches!(pseudo, Pseudo::V4 { .. }) && sum == 0;
        if !optional {
            self.open_transport(at, declared, udp::CHECKSUM_AT, pseudo, d, true)?;
        }
        let body = at + udp::HEADER_LEN;
        let (sport, dport, len) = udp::ports_and_length(self.bytes(at, end));
        match udp::tunnel(sport, dport).filter(|_| tunnels) {
            Some(kind) => {
                let dgram_end = if len >= udp::HEADER_LEN {
                    end.min(at + len)
                } else {
                    end
                };
                self.speculate(body, Reason::UnparsedTunnel, |w| {
                    w.udp_tunnel(kind, body, dgram_end)
                })
            }
            None => end_at(body, end),
        }
    }

    fn icmp4(&mut self, at: usize, end: usize, declared: usize) -> Step {
        let kind = icmp::kind(self.bytes(at, end)).map_err(|_| stop(at, Reason::TruncatedIcmp))?;
        self.open_transport(at, declared, icmp::CHECKSUM_AT, Pseudo::None, 0, false)?;
        let body = at + icmp::HEADER_LEN;
        self.icmp_rest(at, false);
        match kind {
            k if icmp::v4_quotes_packet(k) => self.quoted_ip(body, end, 4),
            // router advertisement and the address mask reply carry addresses in the body
            9 | 10 | 17 | 18 => end_at(body, body),
            _ => end_at(body, end),
        }
    }

    fn icmp6(&mut self, at: usize, end: usize, declared: usize, pseudo: Pseudo, d: u64) -> Step {
        let kind = icmp::kind(self.bytes(at, end)).map_err(|_| stop(at, Reason::TruncatedIcmp))?;
        self.open_transport(at, declared, icmp::CHECKSUM_AT, pseudo, d, false)?;
        let body = at + icmp::HEADER_LEN;
        self.icmp_rest(at, true);
        let targets = match kind {
            k if icmp::v6_quotes_packet(k) => return self.quoted_ip(body, end, 6),
            0..=129 => return end_at(body, end),
            130..=132 | 135 | 136 => 1,
            137 => 2,
            _ => 0, // other informational messages carry addresses in their bodies: never kept
        };
        let fixed = body + 16 * targets;
        if fixed > end {
            return Err(stop(at, Reason::TruncatedIcmp));
        }
        for i in 0..targets {
            self.rewrite_v6(body + 16 * i);
        }
        end_at(fixed, fixed)
    }

    /// The 4 bytes after the checksum of the ICMP header at `at` (whole): the gateway of a
    /// redirect anonymized, those of types not known zeroed.
    #[inline(never)]
    fn icmp_rest(&mut self, at: usize, v6: bool) {
        let kind = self.buf[at];
        match v6 {
            false if kind == icmp::REDIRECT => {
                self.rewrite_v4(at + 4);
            }
            false if icmp::v4_rest_known(kind) => {}
            true if icmp::v6_rest_known(kind) => {}
            _ => self.neutralise_zero(at + 4, at + icmp::HEADER_LEN, Neutral::IcmpRest),
        }
    }

    /// The packet quoted in an ICMP error; it must be of the same IP version.
    fn quoted_ip(&mut self, at: usize, end: usize, version: u8) -> Step {
        match self.bytes(at, end).first().map(|b| b >> 4) {
            Some(4) if version == 4 => self.ipv4(at, end, true),
            Some(6) if version == 6 => self.ipv6(at, end, true),
            Some(_) if version == 4 => Err(stop(at, Reason::MalformedIpv4)),
            Some(_) => Err(stop(at, Reason::MalformedIpv6)),
            None => end_at(at, at),
        }
    }
}
