//! Option lists, by allow-list: IPv4 options, IPv6 hop-by-hop and destination options, the
//! routing header, TCP options. Known options have their addresses anonymized and their
//! non-field bytes zeroed; every other option, and everything from a malformed option on, is
//! replaced by padding of the same length.

use super::{stop, Neutral, Reason, Rewriter, Stop, Walk};
use crate::wire::options::{Action, Family, Fields, Options, Style, Tlv};
use crate::wire::{ipv4, ipv6, tcp};

/// The no-op option of IPv4 and TCP.
const NOP: u8 = 1;
/// The IPv6 PadN option type.
const PADN: u8 = 1;
/// The longest IPv6 PadN option (type, length 255, 255 zeros).
const MAX_PADN: usize = 257;

/// One kind of option list.
#[derive(Clone, Copy)]
struct List {
    style: Style,
    /// What neutralising one of its options counts as.
    neutral: Neutral,
}

const IPV4: List = List {
    style: Style::EolNop,
    neutral: Neutral::Ipv4Option,
};
const IPV6: List = List {
    style: Style::Pad1,
    neutral: Neutral::Ipv6Option,
};
const TCP: List = List {
    style: Style::EolNop,
    neutral: Neutral::TcpOption,
};

impl<R: Rewriter> Walk<'_, R> {
    /// The IPv4 options at `from..to`.
    #[inline(never)]
    pub(super) fn ipv4_options(&mut self, from: usize, to: usize) -> Result<(), Stop> {
        self.option_list(IPV4, from, to, |opt| {
            (ipv4::option_action(opt), Neutral::Ipv4Option)
        })
    }

    /// The hop-by-hop or destination options at `from..to`.
    #[inline(never)]
    pub(super) fn ipv6_options(&mut self, from: usize, to: usize) -> Result<(), Stop> {
        self.option_list(IPV6, from, to, |opt| {
            (ipv6::option_action(opt), Neutral::Ipv6Option)
        })
    }

    /// The TCP options at `from..to`.
    #[inline(never)]
    pub(super) fn tcp_options(&mut self, from: usize, to: usize) -> Result<(), Stop> {
        self.option_list(TCP, from, to, |opt| {
            let zeroed = match opt.first() {
                Some(&tcp::mptcp::KIND) => Neutral::MptcpHmac,
                _ => Neutral::TcpOption,
            };
            (tcp::option_action(opt), zeroed)
        })
    }

    /// Walks the option list at `from..to`. `action` tells what to do with each option
    /// whose length fits, and what zeroing its non-field bytes counts as. Bytes after an
    /// end-of-list are zeroed; from a malformed option on, the list is padding.
    fn option_list(
        &mut self,
        list: List,
        from: usize,
        to: usize,
        action: impl Fn(&[u8]) -> (Action, Neutral),
    ) -> Result<(), Stop> {
        let mut pos = 0;
        loop {
            let Some(item) = Options::at(self.bytes(from, to), pos, list.style).next() else {
                return Ok(());
            };
            self.tick(from + pos)?;
            match item {
                Tlv::Single { at } => pos = at + 1,
                Tlv::Option { at, len, .. } => {
                    let (at, end) = (from + at, from + at + len);
                    let (what, zeroed) = action(self.bytes(at, end));
                    self.option(list, at, end, what, zeroed);
                    pos = end - from;
                }
                Tlv::End { at } => {
                    self.neutralise_zero(from + at + 1, to, list.neutral);
                    return Ok(());
                }
                Tlv::Malformed { at } => {
                    self.pad(list, from + at, to);
                    return Ok(());
                }
            }
        }
    }

    /// Handles the option at `at..end` of `list` as `action` says.
    fn option(&mut self, list: List, at: usize, end: usize, action: Action, zeroed: Neutral) {
        match action {
            Action::Known(f) => self.fields(at, &f, zeroed),
            Action::Neutralise => self.pad(list, at, end),
        }
    }

    /// Anonymizes the addresses of `f` in the structure at `at`, zeroes its non-field bytes
    /// (counted as `zeroed`).
    pub(super) fn fields(&mut self, at: usize, f: &Fields, zeroed: Neutral) {
        for o in f.addresses() {
            match f.family {
                Family::V4 => self.rewrite_v4(at + o),
                Family::V6 => self.rewrite_v6(at + o),
            };
        }
        self.neutralise_zero(at + f.zero.start, at + f.zero.end, zeroed);
    }

    /// Replaces `from..to` by padding of `list`'s kind: no-ops, or PadN options (a Pad1
    /// for a single byte).
    fn pad(&mut self, list: List, from: usize, to: usize) {
        let to = to.min(self.buf.len());
        if from >= to {
            return;
        }
        self.neutral.insert(list.neutral);
        if let Style::EolNop = list.style {
            self.fill(from, to, NOP);
            return;
        }
        self.fill(from, to, 0);
        let mut at = from;
        while to - at >= 2 {
            let n = (to - at).min(MAX_PADN);
            let n = if to - at - n == 1 { n - 1 } else { n };
            self.put(at, &[PADN, (n - 2) as u8]);
            at += n;
        }
    }

    /// The routing header at `pos..end`: its addresses anonymized, reserved bytes and
    /// whatever follows the addresses (SRH TLVs) zeroed. Unknown routing types are cut.
    /// Returns the final destination and the delta of its rewrite when segments are left.
    #[inline(never)]
    pub(super) fn routing(&mut self, pos: usize, end: usize) -> Result<Option<(usize, u64)>, Stop> {
        let hdr = self.bytes(pos, end);
        let routing = ipv6::routing(hdr).ok_or(stop(pos, Reason::UnknownRoutingType))?;
        let last_hop = ipv6::routing_final(hdr);
        let r = routing.reserved;
        self.neutralise_zero(pos + r.start, pos + r.end, Neutral::Ipv6Routing);
        let mut found = None;
        for o in routing.fields.addresses() {
            let d = self.rewrite_v6(pos + o);
            if Some(o) == last_hop {
                found = Some((pos + o, d));
            }
        }
        let z = routing.fields.zero;
        self.neutralise_zero(pos + z.start, pos + z.end, Neutral::Ipv6Routing);
        Ok(found)
    }
}
