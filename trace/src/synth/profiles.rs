//! The packets of each profile.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::build::{self, ethertype, proto, tcp_flags, Tcp, V4Opts};
use super::{Profile, Rng, START_NS};

const MAC_A: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];
const VICTIM_NET: [u8; 3] = [198, 51, 100];
const V4_NETS: [[u8; 2]; 4] = [[128, 9], [131, 179], [203, 0], [198, 18]];
const V6_NETS: [u16; 3] = [0xa, 0xb, 0xc];
const V4_HOSTS: u64 = 2500;
const V6_HOSTS: u64 = 600;

/// Generator state: the random stream, the clock and a packet counter.
#[derive(Debug)]
pub(super) struct State {
    rng: Rng,
    ts_ns: u64,
    index: u64,
}

/// One packet: bytes as captured, wire length, gap to the previous packet.
type Packet = (Vec<u8>, u32, u64);

impl State {
    pub(super) fn new(seed: u64) -> State {
        State {
            rng: Rng::new(seed),
            ts_ns: START_NS,
            index: 0,
        }
    }

    pub(super) fn advance(&mut self, gap_ns: u64) -> u64 {
        self.ts_ns += gap_ns.max(1);
        self.index += 1;
        self.ts_ns
    }

    pub(super) fn packet(&mut self, profile: Profile) -> Packet {
        match profile {
            Profile::SynFlood => self.syn(),
            Profile::UdpAmplification => self.amplification(),
            Profile::Mixed => self.mixed(),
            Profile::Edge => self.edge(),
        }
    }

    fn whole(frame: Vec<u8>, gap_ns: u64) -> Packet {
        let len = frame.len() as u32;
        (frame, len, gap_ns)
    }

    fn syn(&mut self) -> Packet {
        let src = Ipv4Addr::from(self.rng.next_u32());
        let dst = Ipv4Addr::new(
            VICTIM_NET[0],
            VICTIM_NET[1],
            VICTIM_NET[2],
            self.rng.below(256) as u8,
        );
        let seg = Tcp {
            sport: 1024 + self.rng.below(64_512) as u16,
            dport: [80, 443, 22, 25][self.rng.below(4) as usize],
            seq: self.rng.next_u32(),
            ack: 0,
            flags: tcp_flags::SYN,
            window: 1024,
            options: &[],
            payload: &[],
        }
        .build(src.into(), dst.into());
        let v4 = V4Opts {
            id: self.rng.next_u32() as u16,
            ttl: 32 + self.rng.below(200) as u8,
            frag: 0,
            ..V4Opts::default()
        };
        let ip = build::ipv4(src, dst, proto::TCP, v4, &seg);
        Self::whole(
            build::ethernet(MAC_B, MAC_A, &[], ethertype::IPV4, &ip),
            800 + self.rng.below(400),
        )
    }

    fn amplification(&mut self) -> Packet {
        let reflector = self.v4_host();
        let victim = Ipv4Addr::new(VICTIM_NET[0], VICTIM_NET[1], VICTIM_NET[2], 10);
        let sport = [53, 123, 11211, 19][self.rng.below(4) as usize];
        let mut payload = vec![0u8; 468 + self.rng.below(1005) as usize];
        self.rng.fill(&mut payload);
        let dg = build::udp(
            reflector.into(),
            victim.into(),
            sport,
            1024 + self.rng.below(60_000) as u16,
            &payload,
        );
        let ip = build::ipv4(reflector, victim, proto::UDP, V4Opts::default(), &dg);
        Self::whole(
            build::ethernet(MAC_B, MAC_A, &[], ethertype::IPV4, &ip),
            2_000 + self.rng.below(2_000),
        )
    }

    fn mixed(&mut self) -> Packet {
        let frame_len = match self.rng.below(12) {
            0..=6 => 64,
            7..=10 => 576,
            _ => 1500,
        };
        let v6 = self.rng.below(10) < 3;
        let kind = self.rng.below(10);
        let frame = if v6 {
            self.mixed_v6(kind, frame_len)
        } else {
            self.mixed_v4(kind, frame_len)
        };
        Self::whole(frame, 5_000 + self.rng.below(10_000))
    }

    fn mixed_v4(&mut self, kind: u64, frame_len: usize) -> Vec<u8> {
        let (src, dst) = (self.v4_host(), self.v4_host());
        let payload = self.payload(frame_len.saturating_sub(14 + 20 + 20));
        let (protocol, l4) = match kind {
            0..=5 => (proto::TCP, self.tcp(src.into(), dst.into(), &payload)),
            6..=8 => (proto::UDP, self.udp(src.into(), dst.into(), &payload)),
            _ => (
                proto::ICMP,
                build::icmp4(8, 0, [0, 1, 0, self.index as u8], &payload),
            ),
        };
        let ip = build::ipv4(
            src,
            dst,
            protocol,
            V4Opts {
                id: self.index as u16,
                ..V4Opts::default()
            },
            &l4,
        );
        build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &ip)
    }

    fn mixed_v6(&mut self, kind: u64, frame_len: usize) -> Vec<u8> {
        let (src, dst) = (self.v6_host(), self.v6_host());
        let payload = self.payload(frame_len.saturating_sub(14 + 40 + 20));
        let (next, l4) = match kind {
            0..=5 => (proto::TCP, self.tcp(src.into(), dst.into(), &payload)),
            6..=8 => (proto::UDP, self.udp(src.into(), dst.into(), &payload)),
            _ => (
                proto::ICMPV6,
                build::icmp6(src, dst, 128, 0, [0, 1, 0, self.index as u8], &payload),
            ),
        };
        let ip = build::ipv6(src, dst, next, 64, &l4);
        build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV6, &ip)
    }

    fn tcp(&mut self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
        Tcp {
            sport: 1024 + self.rng.below(60_000) as u16,
            dport: [80, 443, 8080, 993][self.rng.below(4) as usize],
            seq: self.rng.next_u32(),
            ack: self.rng.next_u32(),
            flags: tcp_flags::ACK | tcp_flags::PSH,
            window: 65_000,
            options: &[],
            payload,
        }
        .build(src, dst)
    }

    fn udp(&mut self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
        let dport = [5001, 7001, 9999, 33434][self.rng.below(4) as usize];
        build::udp(
            src,
            dst,
            1024 + self.rng.below(60_000) as u16,
            dport,
            payload,
        )
    }

    /// Payload bytes: random, with the text "payload" and the packet index so that a leak
    /// is easy to spot.
    fn payload(&mut self, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        self.rng.fill(&mut p);
        let tag = format!("payload#{:08}", self.index);
        let n = tag.len().min(len);
        p[..n].copy_from_slice(&tag.as_bytes()[..n]);
        p
    }

    fn v4_host(&mut self) -> Ipv4Addr {
        let h = self.rng.below(V4_HOSTS);
        let net = V4_NETS[(h % V4_NETS.len() as u64) as usize];
        let host = (h * 2_654_435_761 % 65_024) as u16 + 256;
        let [a, b] = host.to_be_bytes();
        Ipv4Addr::new(net[0], net[1], a, b)
    }

    fn v6_host(&mut self) -> Ipv6Addr {
        let h = self.rng.below(V6_HOSTS);
        let net = V6_NETS[(h % V6_NETS.len() as u64) as usize];
        let iid = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let s = (h % 7) as u16;
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            net,
            s,
            (iid >> 48) as u16,
            (iid >> 32) as u16,
            (iid >> 16) as u16,
            iid as u16,
        )
    }

    fn edge(&mut self) -> Packet {
        let case = self.index % EDGE_CASES as u64;
        let (src, dst) = (self.v4_host(), self.v4_host());
        let (s6, d6) = (self.v6_host(), self.v6_host());
        let payload = self.payload(24);
        let udp4 = build::udp(src.into(), dst.into(), 5000, 9999, &payload);
        let ip4 = build::ipv4(src, dst, proto::UDP, V4Opts::default(), &udp4);
        let tcp6 = self.tcp(s6.into(), d6.into(), &payload);
        let ip6 = build::ipv6(s6, d6, proto::TCP, 64, &tcp6);
        let frame = match case {
            0 => build::ethernet(MAC_A, MAC_B, &[100], ethertype::IPV4, &ip4),
            1 => build::ethernet(MAC_A, MAC_B, &[200, 300], ethertype::IPV6, &ip6),
            2 => {
                let opts = [0x94, 0x04, 0, 0, 0x01, 0x07, 7, 4, 192, 0, 2, 9];
                let udp = build::udp(src.into(), dst.into(), 5000, 9999, &payload);
                let ip = build::ipv4(
                    src,
                    dst,
                    proto::UDP,
                    V4Opts {
                        options: &opts,
                        ..V4Opts::default()
                    },
                    &udp,
                );
                build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &ip)
            }
            3 => {
                let udp = build::udp(s6.into(), d6.into(), 5000, 9999, &payload);
                let dst_opts = build::ipv6_ext(proto::UDP, &[1, 2, 0, 0]);
                let mut routing_body = vec![0u8, 1, 0, 0, 0, 0];
                routing_body.extend_from_slice(&d6.octets());
                let routing = build::ipv6_ext(proto::DSTOPTS, &routing_body);
                let hbh = build::ipv6_ext(proto::ROUTING, &[1, 2, 0, 0]);
                let chain = [hbh, routing, dst_opts, udp].concat();
                let ip = build::ipv6(s6, d6, proto::HOPOPT, 64, &chain);
                build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV6, &ip)
            }
            4 => v4_fragment(src, dst, 0x2000, &udp4[..16]),
            5 => v4_fragment(src, dst, 2, &udp4[16..]),
            6 => {
                let frag = build::ipv6_frag(proto::TCP, 0, true, 0x1234);
                let ip = build::ipv6(
                    s6,
                    d6,
                    proto::FRAGMENT,
                    64,
                    &[frag, tcp6[..16].to_vec()].concat(),
                );
                build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV6, &ip)
            }
            7 => {
                let frag = build::ipv6_frag(proto::TCP, 2, false, 0x1234);
                let ip = build::ipv6(
                    s6,
                    d6,
                    proto::FRAGMENT,
                    64,
                    &[frag, tcp6[16..].to_vec()].concat(),
                );
                build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV6, &ip)
            }
            8 => {
                let quoted = &ip4[..28];
                let icmp = build::icmp4(3, 3, [0; 4], quoted);
                let ip = build::ipv4(dst, src, proto::ICMP, V4Opts::default(), &icmp);
                build::ethernet(MAC_B, MAC_A, &[], ethertype::IPV4, &ip)
            }
            9 => {
                let icmp = build::icmp4(11, 0, [0; 4], &ip4);
                let router = self.v4_host();
                let ip = build::ipv4(router, src, proto::ICMP, V4Opts::default(), &icmp);
                build::ethernet(MAC_B, MAC_A, &[], ethertype::IPV4, &ip)
            }
            10 => {
                let icmp = build::icmp6(d6, s6, 1, 4, [0; 4], &ip6);
                let ip = build::ipv6(d6, s6, proto::ICMPV6, 64, &icmp);
                build::ethernet(MAC_B, MAC_A, &[], ethertype::IPV6, &ip)
            }
            11 => {
                let icmp = build::icmp6(d6, s6, 2, 0, [0, 0, 5, 0xdc], &ip6);
                let ip = build::ipv6(d6, s6, proto::ICMPV6, 64, &icmp);
                build::ethernet(MAC_B, MAC_A, &[], ethertype::IPV6, &ip)
            }
            12 => {
                let (outer_s, outer_d) = (self.v4_host(), self.v4_host());
                let ip = build::ipv4(outer_s, outer_d, proto::IPIP, V4Opts::default(), &ip4);
                build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &ip)
            }
            13 => {
                let ip = build::ipv4(src, dst, proto::IPV6, V4Opts::default(), &ip6);
                build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &ip)
            }
            14 => {
                let a = build::arp(1, MAC_A, src, [0; 6], dst);
                build::ethernet([0xff; 6], MAC_A, &[], ethertype::ARP, &a)
            }
            15 => {
                let a = build::arp(2, MAC_B, dst, MAC_A, src);
                build::ethernet(MAC_A, MAC_B, &[10], ethertype::ARP, &a)
            }
            16 => {
                let labelled = build::mpls(&[1000, 2000], &ip4);
                build::ethernet(MAC_A, MAC_B, &[], ethertype::MPLS, &labelled)
            }
            17 => {
                let gre = [&[0u8, 0, 0x08, 0][..], &ip4].concat();
                let ip = build::ipv4(src, dst, proto::GRE, V4Opts::default(), &gre);
                build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &ip)
            }
            18 => {
                return self.cut(
                    build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &ip4),
                    14 + 12,
                )
            }
            19 => {
                return self.cut(
                    build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV6, &ip6),
                    14 + 40 + 10,
                )
            }
            _ => {
                let big = self.payload(600);
                let tcp = self.tcp(src.into(), dst.into(), &big);
                let ip = build::ipv4(src, dst, proto::TCP, V4Opts::default(), &tcp);
                return self.cut(
                    build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &ip),
                    256,
                );
            }
        };
        Self::whole(frame, 10_000)
    }

    fn cut(&mut self, frame: Vec<u8>, caplen: usize) -> Packet {
        let wire = frame.len() as u32;
        let mut data = frame;
        data.truncate(caplen);
        (data, wire, 10_000)
    }
}

/// How many distinct cases the `edge` profile cycles through.
pub(super) const EDGE_CASES: usize = 21;

/// One fragment (flags and offset `frag`, as on the wire) of a UDP datagram over IPv4.
fn v4_fragment(src: Ipv4Addr, dst: Ipv4Addr, frag: u16, part: &[u8]) -> Vec<u8> {
    let opts = V4Opts {
        id: 77,
        frag,
        ..V4Opts::default()
    };
    let ip = build::ipv4(src, dst, proto::UDP, opts, part);
    build::ethernet(MAC_A, MAC_B, &[], ethertype::IPV4, &ip)
}
