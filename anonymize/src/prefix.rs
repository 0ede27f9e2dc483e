//! The don't-scramble list: address prefixes passed unchanged.

use std::net::IpAddr;
use std::str::FromStr;

/// IPv4 and IPv6 prefixes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixList {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

/// A prefix that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad prefix {text:?}: {what}")]
pub struct BadPrefix {
    /// The text given.
    pub text: String,
    /// What was wrong.
    pub what: &'static str,
}

impl PrefixList {
    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Adds `ADDR/LEN` (or a single address).
    pub fn add(&mut self, text: &str) -> Result<(), BadPrefix> {
        let bad = |what| BadPrefix {
            text: text.to_string(),
            what,
        };
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (
                a,
                Some(
                    l.parse::<u32>()
                        .map_err(|_| bad("length is not a number"))?,
                ),
            ),
            None => (text, None),
        };
        match IpAddr::from_str(addr.trim()).map_err(|_| bad("not an IP address"))? {
            IpAddr::V4(a) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    return Err(bad("length over 32"));
                }
                let mask = crate::mask::top_mask32(len);
                self.v4.push((u32::from(a) & mask, mask));
            }
            IpAddr::V6(a) => {
                let len = len.unwrap_or(128);
                if len > 128 {
                    return Err(bad("length over 128"));
                }
                let mask = crate::mask::top_mask128(len);
                self.v6.push((u128::from(a) & mask, mask));
            }
        }
        Ok(())
    }

    /// Whether `addr` is in one of the IPv4 prefixes.
    pub fn contains_v4(&self, addr: u32) -> bool {
        self.v4.iter().any(|&(net, mask)| addr & mask == net)
    }

    /// Whether `addr` is in one of the IPv6 prefixes.
    pub fn contains_v6(&self, addr: u128) -> bool {
        self.v6.iter().any(|&(net, mask)| addr & mask == net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match() {
        let mut list = PrefixList::default();
        list.add("10.0.0.0/8").unwrap();
        list.add("2001:db8::/32").unwrap();
        list.add("192.0.2.7").unwrap();
        assert!(list.contains_v4(0x0a01_0203));
        assert!(!list.contains_v4(0x0b01_0203));
        assert!(list.contains_v4(0xc000_0207));
        assert!(!list.contains_v4(0xc000_0208));
        assert!(list.contains_v6(0x2001_0db8_0000_0000_0000_0000_0000_0001));
        assert!(list.add("10.0.0.0/33").is_err());
        assert!(list.add("nope/8").is_err());
    }
}
