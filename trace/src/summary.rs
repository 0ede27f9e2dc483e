//! A summary of a trace built by feeding it records (`lander info`, manifests, tests): counts,
//! time span, link types, and per-protocol packet counts from a light classifier that looks
//! through Ethernet, 802.1Q/802.1ad tags (QinQ), Linux cooked headers (SLL, SLL2), BSD
//! loopback and raw IP.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::{LinkType, Record};

/// Counts and time span of a trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    /// Records.
    pub packets: u64,
    /// Captured bytes (sum of caplen).
    pub bytes: u64,
    /// Bytes on the wire (sum of wire lengths).
    pub wire_bytes: u64,
    /// Timestamp of the first record, ns.
    pub first_ts_ns: Option<u64>,
    /// Timestamp of the last record, ns.
    pub last_ts_ns: Option<u64>,
    /// Earliest timestamp seen.
    pub min_ts_ns: Option<u64>,
    /// Latest timestamp seen.
    pub max_ts_ns: Option<u64>,
    /// Records whose timestamp is earlier than the one before.
    pub out_of_order: u64,
    /// Records cut by the snaplen (caplen < wire length).
    pub cut: u64,
    /// Largest caplen.
    pub max_caplen: u32,
    /// Sum of the drop counts the records carry.
    pub drops: u64,
    /// Records per link type name.
    pub link_types: BTreeMap<String, u64>,
    /// Records per protocol.
    pub protocols: ProtocolCounts,
}

/// Packets per protocol; a packet counts once per layer it carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProtocolCounts {
    /// Ethernet frames.
    pub ethernet: u64,
    /// Frames with at least one VLAN tag.
    pub vlan: u64,
    /// ARP.
    pub arp: u64,
    /// IPv4.
    pub ipv4: u64,
    /// IPv6.
    pub ipv6: u64,
    /// TCP.
    pub tcp: u64,
    /// UDP.
    pub udp: u64,
    /// ICMP.
    pub icmp: u64,
    /// ICMPv6.
    pub icmpv6: u64,
    /// Neither ARP nor IP, or cut before the network header.
    pub other: u64,
}

impl TraceSummary {
    /// An empty summary.
    pub fn new() -> TraceSummary {
        TraceSummary::default()
    }

    /// Adds one record.
    pub fn add(&mut self, rec: &Record<'_>) {
        self.add_counts(rec);
        self.add_time(rec.ts_ns);
        *self.link_types.entry(rec.link_type.name()).or_insert(0) += 1;
        self.protocols.classify(rec.link_type, rec.data);
    }

    fn add_counts(&mut self, rec: &Record<'_>) {
        self.packets += 1;
        self.bytes += rec.data.len() as u64;
        self.wire_bytes += u64::from(rec.wire_len);
        self.drops += u64::from(rec.drops);
        self.max_caplen = self.max_caplen.max(rec.data.len() as u32);
        if (rec.data.len() as u64) < u64::from(rec.wire_len) {
            self.cut += 1;
        }
    }

    fn add_time(&mut self, ts: u64) {
        if self.last_ts_ns.is_some_and(|last| ts < last) {
            self.out_of_order += 1;
        }
        self.first_ts_ns.get_or_insert(ts);
        self.last_ts_ns = Some(ts);
        self.min_ts_ns = Some(self.min_ts_ns.map_or(ts, |m| m.min(ts)));
        self.max_ts_ns = Some(self.max_ts_ns.map_or(ts, |m| m.max(ts)));
    }

    /// Seconds between the earliest and the latest record.
    pub fn duration_secs(&self) -> f64 {
        match (self.min_ts_ns, self.max_ts_ns) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => 0.0,
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

impl ProtocolCounts {
    /// Classifies one packet of the given link type and counts it.
    pub fn classify(&mut self, link_type: LinkType, data: &[u8]) {
        match link_type {
            LinkType::ETHERNET => self.ethernet_frame(data),
            LinkType::LINUX_SLL => self.ethertype_at(data, 14, 16),
            LinkType::LINUX_SLL2 => self.ethertype_at(data, 0, 20),
            LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => self.ip(data),
            LinkType::NULL | LinkType::LOOP => self.loopback(data),
            _ => self.other += 1,
        }
    }

    fn ethernet_frame(&mut self, data: &[u8]) {
        let Some(mut ethertype) = be16(data, 12) else {
            self.other += 1;
            return;
        };
        self.ethernet += 1;
        let mut at = 14;
        let mut tagged = false;
        while ETHERTYPE_VLAN.contains(&ethertype) {
            tagged = true;
            match be16(data, at + 2) {
                Some(t) => ethertype = t,
                None => {
                    self.vlan += 1;
                    self.other += 1;
                    return;
                }
            }
            at += 4;
        }
        self.vlan += u64::from(tagged);
        self.ethertype(ethertype, data.get(at..).unwrap_or(&[]));
    }

    fn ethertype_at(&mut self, data: &[u8], at: usize, header: usize) {
        match (be16(data, at), data.get(header..)) {
            (Some(t), Some(rest)) => self.ethertype(t, rest),
            _ => self.other += 1,
        }
    }

    fn ethertype(&mut self, ethertype: u16, payload: &[u8]) {
        match ethertype {
            ETHERTYPE_ARP => self.arp += 1,
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => self.ip(payload),
            _ => self.other += 1,
        }
    }

    fn loopback(&mut self, data: &[u8]) {
        let family = data.get(..4).map(|b| {
            let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let be = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            le.min(be)
        });
        match family {
            Some(2 | 24 | 28 | 30) => self.ip(&data[4..]),
            _ => self.other += 1,
        }
    }

    fn ip(&mut self, data: &[u8]) {
        match data.first().map(|b| b >> 4) {
            Some(4) if data.len() >= 20 => {
                self.ipv4 += 1;
                self.transport(data[9]);
            }
            Some(6) if data.len() >= 40 => {
                self.ipv6 += 1;
                self.transport(ipv6_upper_protocol(data));
            }
            _ => self.other += 1,
        }
    }

    fn transport(&mut self, protocol: u8) {
        match protocol {
            1 => self.icmp += 1,
            6 => self.tcp += 1,
            17 => self.udp += 1,
            58 => self.icmpv6 += 1,
            _ => {}
        }
    }
}

/// The protocol after the IPv6 extension headers (hop-by-hop, routing, fragment, destination
/// options), as far as the captured bytes show; at most 8 headers are followed.
fn ipv6_upper_protocol(data: &[u8]) -> u8 {
    let mut next = data[6];
    let mut at = 40;
    for _ in 0..8 {
        let len = match next {
            0 | 43 | 60 => data.get(at + 1).map(|l| (usize::from(*l) + 1) * 8),
            44 => Some(8),
            _ => return next,
        };
        match (data.get(at), len) {
            (Some(n), Some(len)) => {
                next = *n;
                at += len;
            }
            _ => return next,
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.extend_from_slice(ethertype);
        v.extend_from_slice(rest);
        v
    }

    fn ipv4(proto: u8) -> Vec<u8> {
        let mut v = vec![0u8; 20];
        v[0] = 0x45;
        v[9] = proto;
        v
    }

    fn rec(link_type: LinkType, data: &[u8], ts_ns: u64) -> Record<'_> {
        Record {
            ts_ns,
            wire_len: data.len() as u32 + 1,
            link_type,
            interface: 0,
            drops: 2,
            data,
        }
    }

    #[test]
    fn classifies_through_qinq_sll_and_raw() {
        let mut s = TraceSummary::new();
        let tcp = eth(&[0x08, 0x00], &ipv4(6));
        let mut qinq_rest = vec![0, 1, 0x81, 0x00, 0, 2, 0x08, 0x00];
        qinq_rest.extend_from_slice(&ipv4(17));
        let qinq = eth(&[0x88, 0xa8], &qinq_rest);
        let arp = eth(&[0x08, 0x06], &[0; 28]);
        let mut v6 = vec![0u8; 48];
        v6[0] = 0x60;
        v6[6] = 0; // hop-by-hop
        v6[40] = 58;
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ipv4(1));
        s.add(&rec(LinkType::ETHERNET, &tcp, 10));
        s.add(&rec(LinkType::ETHERNET, &qinq, 5));
        s.add(&rec(LinkType::ETHERNET, &arp, 20));
        s.add(&rec(LinkType::RAW, &v6, 30));
        s.add(&rec(LinkType::LINUX_SLL, &sll, 40));
        s.add(&rec(LinkType::ETHERNET, &[1, 2, 3], 50));
        let p = &s.protocols;
        assert_eq!((p.ethernet, p.vlan, p.arp), (3, 1, 1));
        assert_eq!(
            (p.ipv4, p.ipv6, p.tcp, p.udp, p.icmp, p.icmpv6),
            (3, 1, 1, 1, 1, 1)
        );
        assert_eq!(p.other, 1);
        assert_eq!(s.packets, 6);
        assert_eq!(s.out_of_order, 1);
        assert_eq!((s.first_ts_ns, s.last_ts_ns), (Some(10), Some(50)));
        assert_eq!((s.min_ts_ns, s.max_ts_ns), (Some(5), Some(50)));
        assert_eq!(s.cut, 6);
        assert_eq!(s.drops, 12);
        assert_eq!(s.link_types["EN10MB"], 4);
        assert_eq!(s.wire_bytes, s.bytes + 6);
    }

    #[test]
    fn never_panics_on_short_packets() {
        let mut s = TraceSummary::new();
        for link in [1, 0, 101, 108, 113, 276, 228, 229, 999] {
            for n in 0..64 {
                let data = vec![0x60u8; n];
                s.add(&rec(LinkType(link), &data, 0));
                let mut tagged = eth(&[0x81, 0x00], &[0; 2]);
                tagged.truncate(n);
                s.add(&rec(LinkType(link), &tagged, 0));
            }
        }
        assert_eq!(s.packets, 9 * 128);
    }
}
