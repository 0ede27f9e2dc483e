//! Why a walk cut a frame ([`Reason`]), and what it neutralised on the way ([`Neutral`]).

macro_rules! named {
    ($(#[$meta:meta])* $ty:ident { $($variant:ident = $name:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty { $(#[doc = $name] $variant,)* }

        impl $ty {
            /// Every value, in counter order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)*];

            /// The name used in summaries and manifests.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name,)* }
            }
        }
    };
}

named! {
    /// Why a walk stopped before the payload.
    Reason {
        TruncatedLink = "truncated-link",
        TruncatedVlan = "truncated-vlan",
        TruncatedMpls = "truncated-mpls",
        TruncatedIp = "truncated-ip",
        TruncatedIpv4 = "truncated-ipv4",
        TruncatedIpv6 = "truncated-ipv6",
        TruncatedIpv6Ext = "truncated-ipv6-ext",
        TruncatedTcp = "truncated-tcp",
        TruncatedUdp = "truncated-udp",
        TruncatedIcmp = "truncated-icmp",
        TruncatedArp = "truncated-arp",
        TruncatedTunnel = "truncated-tunnel",
        MalformedIpv4 = "malformed-ipv4",
        MalformedIpv6 = "malformed-ipv6",
        MalformedTcp = "malformed-tcp",
        UnknownLink = "unknown-link-type",
        UnknownEthertype = "unknown-ethertype",
        UnknownMplsPayload = "unknown-mpls-payload",
        MplsCut = "mpls-cut",
        UnknownRoutingType = "unknown-ipv6-routing-type",
        UnknownIpv6Ext = "unknown-ipv6-ext",
        UnknownTunnel = "unknown-tunnel",
        UnparsedTunnel = "unparsed-udp-tunnel",
        UnknownPpp = "unknown-ppp-protocol",
        UnsupportedArp = "unsupported-arp",
        TooDeep = "too-deep",
        WorkBound = "work-bound",
    }
}

impl Reason {
    /// Whether the bytes ran out inside a header (the capture may have cut the packet).
    pub fn is_truncation(self) -> bool {
        self.name().starts_with("truncated-")
    }
}

named! {
    /// What a walk replaced by zeros or padding of the same length, because it is no field
    /// the walker knows (counted once per packet and kind).
    Neutral {
        Ipv4Option = "ipv4-option",
        Ipv6Option = "ipv6-option",
        Ipv6Routing = "ipv6-routing-data",
        Ipv6Reserved = "ipv6-ext-reserved",
        AhIcv = "ah-icv",
        TcpOption = "tcp-option",
        MptcpHmac = "mptcp-hmac",
        IcmpRest = "icmp-rest-of-header",
        LinkAddress = "link-address",
        TunnelReserved = "tunnel-reserved",
        GeneveOption = "geneve-option",
        GtpExtension = "gtp-extension",
        ErspanPlatform = "erspan-platform",
        L2tpPadding = "l2tp-offset-padding",
    }
}

/// The set of [`Neutral`] kinds one walk neutralised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Neutralised(u32);

impl Neutralised {
    /// Adds `n`.
    pub fn insert(&mut self, n: Neutral) {
        self.0 |= 1 << n as u32;
    }

    /// Whether nothing was neutralised.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether `n` was.
    pub fn contains(self, n: Neutral) -> bool {
        self.0 & (1 << n as u32) != 0
    }

    /// The kinds, in counter order.
    pub fn iter(self) -> impl Iterator<Item = Neutral> {
        Neutral::ALL
            .iter()
            .copied()
            .filter(move |&n| self.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_sets_hold_every_kind() {
        let mut names: Vec<_> = Reason::ALL.iter().map(|r| r.name()).collect();
        names.extend(Neutral::ALL.iter().map(|n| n.name()));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(Neutral::ALL.len() <= 32);
        let mut set = Neutralised::default();
        assert!(set.is_empty());
        set.insert(Neutral::TcpOption);
        set.insert(Neutral::L2tpPadding);
        let got: Vec<_> = set.iter().collect();
        assert_eq!(got, vec![Neutral::TcpOption, Neutral::L2tpPadding]);
        assert!(Reason::TruncatedTunnel.is_truncation() && !Reason::TooDeep.is_truncation());
    }
}
