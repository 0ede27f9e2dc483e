//! The spool contract: how a trace file is named, published and described.
//!
//! Above [`lander_trace`] (manifests describe traces), below every part that writes or reads
//! a spool (capture, scrub, dispatch).
//!
//! - [`error`]: I/O errors that name their path ([`error::with_path`]).
//! - [`naming`]: `<site>-<YYYYMMDD>-<HHMMSS>-<seq>.<ext>` names, parsed and formatted.
//! - [`publish`]: temporary name, fsync, rename that never replaces, directory fsync;
//!   recovery of leftovers.
//! - [`manifest`]: the JSON manifest beside every published trace file.
//! - [`seq`]: sequence numbers that never repeat for a site.
//! - [`perms`]: mode and group of raw traces.
//! - [`os`]: host identity, group lookup, renames that never replace.
//! - [`human`]: sizes, counts, rates, durations and instants for people.
//! - [`size`]: byte sizes (`64MiB`, `50GB`), one rule everywhere.
//! - [`utc`]: calendar dates of Unix times.
//! - `synth` (feature `synth`): synthetic traffic published as a trace file.

pub mod digest;
pub mod error;
pub mod human;
pub mod manifest;
pub mod naming;
pub mod os;
pub mod perms;
pub mod publish;
pub mod seq;
pub mod size;
#[cfg(feature = "synth")]
pub mod synth;
pub mod utc;
