//! The walker's policy, and the names each part has on the command line, in the dispatcher's
//! configuration and in manifests (`FromStr` and `Display` agree: a name parses back to the
//! policy it was printed from).

use std::fmt;
use std::str::FromStr;

use super::mac::{MacKey, MacPolicy};

/// A policy name that is not one of the names a policy has.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad {what} policy {value:?} (expected {expected})")]
pub struct BadPolicy {
    /// Which policy (`payload`, `checksum`, `MAC`, `MPLS`).
    pub what: &'static str,
    /// The name given.
    pub value: String,
    /// The names it may take.
    pub expected: &'static str,
}

/// Finds `s` among `names` or says what was expected.
fn lookup<T: Copy>(
    names: &[(&'static str, T)],
    s: &str,
    what: &'static str,
    expected: &'static str,
) -> Result<T, BadPolicy> {
    names
        .iter()
        .find(|(n, _)| *n == s)
        .map(|&(_, p)| p)
        .ok_or_else(|| BadPolicy {
            what,
            value: s.to_string(),
            expected,
        })
}

/// The name of `p` in `names`.
fn name_of<T: Copy + PartialEq>(names: &[(&'static str, T)], p: T) -> &'static str {
    names.iter().find(|(_, q)| *q == p).map_or("?", |(n, _)| n)
}

/// The name, `FromStr` and `Display` of a policy with a table `ALL` of names.
macro_rules! named {
    ($t:ty, $what:literal, $expected:literal) => {
        impl $t {
            /// The name used on the command line, in the configuration and in manifests.
            pub fn name(self) -> &'static str {
                name_of(&Self::ALL, self)
            }
        }

        impl FromStr for $t {
            type Err = BadPolicy;

            fn from_str(s: &str) -> Result<Self, BadPolicy> {
                lookup(&Self::ALL, s, $what, $expected)
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

/// What happens to the bytes after the last transport header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Cut them (the record keeps the original wire length).
    Drop,
    /// Keep the first N bytes.
    Keep(usize),
    /// Keep them, zeroed.
    Zero,
}

impl FromStr for Payload {
    type Err = BadPolicy;

    /// Parses `drop`, `keep:N` or `zero`.
    fn from_str(s: &str) -> Result<Self, BadPolicy> {
        match s {
            "drop" => Ok(Payload::Drop),
            "zero" => Ok(Payload::Zero),
            _ => s
                .strip_prefix("keep:")
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
                .map(Payload::Keep)
                .ok_or_else(|| BadPolicy {
                    what: "payload",
                    value: s.to_string(),
                    expected: "drop, keep:N or zero",
                }),
        }
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Drop => f.write_str("drop"),
            Payload::Keep(n) => write!(f, "keep:{n}"),
            Payload::Zero => f.write_str("zero"),
        }
    }
}

/// What happens to checksums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksums {
    /// Leave them valid (recomputed, or updated incrementally where bytes were cut).
    Fix,
    /// Set them to zero.
    Zero,
    /// Leave the original values.
    Keep,
}

impl Checksums {
    /// Every policy, by name.
    pub const ALL: [(&'static str, Checksums); 3] = [
        ("fix", Checksums::Fix),
        ("zero", Checksums::Zero),
        ("keep", Checksums::Keep),
    ];
}

named!(Checksums, "checksum", "fix, zero or keep");

/// How the payload after an MPLS label stack (which no field names) is decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MplsPolicy {
    /// By evidence: a control word (first nibble 0) means an Ethernet pseudowire; an IPv4
    /// header is taken only when its IHL, total length and checksum agree with the bytes
    /// present, an IPv6 one only when its payload length fits; anything else is tried as
    /// an Ethernet pseudowire, and cut after the label stack when that does not parse.
    #[default]
    Auto,
    /// IP by the first nibble (4 or 6), else cut.
    Ip,
    /// An Ethernet pseudowire (after a control word when the first nibble is 0).
    Ethernet,
    /// Cut after the label stack.
    Cut,
}

impl MplsPolicy {
    /// Every policy, by name.
    pub const ALL: [(&'static str, MplsPolicy); 4] = [
        ("auto", MplsPolicy::Auto),
        ("ip", MplsPolicy::Ip),
        ("ethernet", MplsPolicy::Ethernet),
        ("cut", MplsPolicy::Cut),
    ];
}

named!(MplsPolicy, "MPLS", "auto, ip, ethernet or cut");

/// A MAC policy by name, before it has a key: what the command line and the configuration
/// choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MacMode {
    /// Unchanged.
    #[default]
    Keep,
    /// Zeroed.
    Zero,
    /// Replaced by a keyed pseudorandom function of the address; broadcast, group and
    /// locally-administered bits kept.
    Scramble,
    /// As scramble, keeping the OUI (the vendor's first 3 bytes).
    ScrambleKeepOui,
}

impl MacMode {
    /// Every mode, by name.
    pub const ALL: [(&'static str, MacMode); 4] = [
        ("keep", MacMode::Keep),
        ("zero", MacMode::Zero),
        ("scramble", MacMode::Scramble),
        ("scramble-keep-oui", MacMode::ScrambleKeepOui),
    ];

    /// The policy, scrambling under `key` where the mode scrambles.
    pub fn with_key(self, key: MacKey) -> MacPolicy {
        match self {
            MacMode::Keep => MacPolicy::Keep,
            MacMode::Zero => MacPolicy::Zero,
            MacMode::Scramble => MacPolicy::Scramble(key),
            MacMode::ScrambleKeepOui => MacPolicy::ScrambleKeepOui(key),
        }
    }
}

named!(MacMode, "MAC", "keep, zero, scramble or scramble-keep-oui");

/// The walker's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Payload policy.
    pub payload: Payload,
    /// Checksum policy.
    pub checksums: Checksums,
    /// MAC policy.
    pub mac: MacPolicy,
    /// What follows an MPLS label stack.
    pub mpls: MplsPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            payload: Payload::Drop,
            checksums: Checksums::Fix,
            mac: MacPolicy::Keep,
            mpls: MplsPolicy::Auto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: FromStr + fmt::Display + PartialEq + fmt::Debug>(names: &[&str])
    where
        T::Err: fmt::Debug,
    {
        for name in names {
            let p: T = name.parse().unwrap();
            assert_eq!(p.to_string(), *name);
            assert_eq!(p.to_string().parse::<T>().unwrap(), p);
        }
    }

    #[test]
    fn every_name_parses_back_to_what_it_prints() {
        round_trip::<Payload>(&["drop", "zero", "keep:0", "keep:64"]);
        round_trip::<Checksums>(&["fix", "zero", "keep"]);
        round_trip::<MplsPolicy>(&["auto", "ip", "ethernet", "cut"]);
        round_trip::<MacMode>(&["keep", "zero", "scramble", "scramble-keep-oui"]);
    }

    #[test]
    fn bad_names_say_what_was_expected() {
        for bad in [
            "", "keep", "keep:", "keep:-1", "keep:+4", "keep:x", "Drop", "drop ",
        ] {
            let err = bad.parse::<Payload>().unwrap_err().to_string();
            assert!(
                err.contains("keep:N") && err.contains("payload"),
                "{bad}: {err}"
            );
        }
        let err = "fixed".parse::<Checksums>().unwrap_err().to_string();
        assert!(
            err.contains("\"fixed\"") && err.contains("fix, zero or keep"),
            "{err}"
        );
        assert!("guess".parse::<MplsPolicy>().is_err());
        assert!("scramble-keep".parse::<MacMode>().is_err());
    }

    #[test]
    fn a_mac_mode_keeps_its_name_once_keyed() {
        for (name, mode) in MacMode::ALL {
            assert_eq!(mode.with_key(MacKey([7; 32])).name(), name);
        }
    }
}
