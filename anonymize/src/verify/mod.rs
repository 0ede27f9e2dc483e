//! Leak verification, independent of the scrubber: proves that no raw address and no raw
//! payload run survived, and that every header byte kept is one the verifier understands.
//!
//! The verifier has its own header recogniser ([`headers`]); it never asks the scrubber's
//! walker what to look for. Scrubbed records are matched to raw ones in order by timestamp
//! (at the coarser of the two files' resolutions) and wire length; raw records without a
//! match were dropped by the scrub and are skipped.
//!
//! # What is collected from the raw trace
//! Every IPv4 and IPv6 address in any header the recogniser reads (at every depth: tunnels,
//! ICMP quotes, options, extension headers, ARP, neighbour discovery, MLD), addresses of
//! options the output may not carry (traceroute, unknown TCP options of address size), and
//! the addresses of every plausible IP header in the first `headers::scan::SCAN_PAYLOAD`
//! bytes after the recognised headers (`headers::scan`). The payload is everything after
//! the recognised headers (or after where recognition stopped).
//!
//! # Check 1: no raw address, no raw payload run
//! Every byte of every scrubbed packet, at every alignment, is searched:
//! - for the addresses of its own raw packet (4 and 16 bytes; those of the plausible-header
//!   scan excepted, which the file-wide searches cover) anywhere in it;
//! - for the addresses of the whole raw trace in the address fields the recogniser finds in
//!   the output and in every window that touches a byte outside the understood headers
//!   (payload, trailer, unknown options or protocols);
//! - for any run of [`RUN`] bytes of its own raw packet's payload, and of any raw packet's
//!   payload (file-wide, second pass), in every window that touches a byte outside the
//!   understood headers.
//!
//! # Check 2: every kept header byte explained
//! Each byte of the output is classified ([`layout::Class`]): a known field, an address,
//! padding (NOP, EOL, Pad1, PadN), payload, or not understood. A non-zero byte that is not
//! understood (an unknown option, an unknown extension header, what follows a protocol the
//! recogniser does not know) is a finding of kind `unexplained-header-byte`.
//!
//! # What is not a leak (false positives)
//! - Addresses whose bytes are all the same (`0.0.0.0`, `255.255.255.255`, `::`) carry no
//!   information and are not searched. Payload runs are searched only when informative: at
//!   least 3 distinct byte values and none more than 4 times (zero padding next to a
//!   checksum byte would otherwise match by chance).
//! - A rewritten IPv4 address field (its value differs from the raw packet's at that place)
//!   whose new value equals an address of *another* raw packet: with N raw addresses, each
//!   anonymized field equals one of them with probability N/2^32, so a large trace has such
//!   collisions by chance. They are counted (`collisions`); with `mapping` each one is
//!   checked against the mapping and is a leak unless it is the mapping's output. An address
//!   of the same packet in another of its address fields is a leak without `mapping` (with
//!   a hint: high bits passed make it likelier), and is checked with it. For IPv6 a 128-bit
//!   coincidence is not credible: any such hit is a leak.
//! - A raw address of *another* packet inside a known non-address field of the output
//!   (sequence numbers, timestamps, ports, checksums): a 32-bit value copied from the
//!   packet's own raw header, equal to an address elsewhere by chance. Such a field of the
//!   same packet is still searched.
//! - Prefix-preserving mappings have fixed points (far more often than 2^-32: consecutive
//!   bits whose AES inputs coincide flip together). An address left unchanged in its field
//!   is reported, with a hint, unless `mapping` maps it to itself (counted as a fixed point).

mod check;
mod global;
mod hash;
pub mod headers;
pub mod layout;
mod pipeline;
mod report;

#[cfg(test)]
mod tests;

pub use check::RUN;
pub use pipeline::{verify, verify_files, Open, Progress, VerifyError, VerifyOptions};
pub use report::{Finding, Kind, Report, FIXED_POINT_HINT};
