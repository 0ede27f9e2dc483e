//! What a verification found.

use serde::Serialize;

/// Hint appended to an unchanged address when no mapping was given to check it.
pub const FIXED_POINT_HINT: &str = "(may be a fixed point of the mapping: pass --key to check)";

/// The kind of a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A raw address found where it does not belong.
    Address,
    /// An address field left as it was in the raw packet.
    AddressUnchanged,
    /// A run of raw payload bytes.
    PayloadRun,
    /// A header byte the verifier does not understand, neither zero nor padding.
    UnexplainedHeaderByte,
    /// A scrubbed record with no raw record to match.
    Unmatched,
}

impl Kind {
    /// The name used in text and JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Address => "address",
            Kind::AddressUnchanged => "address-unchanged",
            Kind::PayloadRun => "payload-run",
            Kind::UnexplainedHeaderByte => "unexplained-header-byte",
            Kind::Unmatched => "unmatched",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Frame number in the scrubbed trace, 1-based (as tshark counts).
    pub frame: u64,
    /// Frame number of its raw packet, 1-based (`None` when unmatched).
    pub raw_frame: Option<u64>,
    /// Byte offset in the scrubbed frame (`None` for a whole record).
    pub offset: Option<usize>,
    /// What kind of finding.
    pub kind: Kind,
    /// What exactly.
    pub detail: String,
}

/// The result of a verification.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// Packets in the raw trace.
    pub raw_packets: u64,
    /// Packets in the scrubbed trace.
    pub anon_packets: u64,
    /// Scrubbed packets with no raw packet to match.
    pub unmatched: u64,
    /// Scrubbed packets with at least one finding.
    pub leaky_packets: u64,
    /// Findings in all.
    pub findings_total: u64,
    /// Findings by kind name.
    pub by_kind: std::collections::BTreeMap<&'static str, u64>,
    /// The first findings, in frame order (at most the limit asked for).
    pub findings: Vec<Finding>,
    /// Distinct raw IPv4 addresses collected (all bytes alike excluded).
    pub raw_v4_addresses: u64,
    /// Distinct raw IPv6 addresses collected.
    pub raw_v6_addresses: u64,
    /// Unchanged addresses that the mapping maps to themselves (with the mapping only).
    pub fixed_points: u64,
    /// Rewritten IPv4 address fields whose value equals some raw address (see the module
    /// docs); with the mapping, each was checked to be the mapping's output.
    pub collisions: u64,
    /// Whether the mapping was at hand to check fixed points and collisions.
    pub mapping_checked: bool,
    /// Payload windows searched file-wide (second pass).
    pub payload_windows: u64,
    /// The file-wide payload search was limited to this many windows (more were found).
    pub payload_windows_limited: bool,
}

impl Report {
    /// Whether nothing leaked and every packet matched.
    pub fn clean(&self) -> bool {
        self.findings_total == 0 && self.unmatched == 0
    }

    /// Adds a finding (kept when under `limit`).
    pub(crate) fn add(&mut self, f: Finding, limit: usize) {
        self.findings_total += 1;
        *self.by_kind.entry(f.kind.name()).or_default() += 1;
        if self.findings.len() < limit {
            self.findings.push(f);
        }
    }
}
