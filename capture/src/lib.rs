//! The capture engine: sources, the ring of buffers, io_uring and plain writers, rotation,
//! publication into the spool and salvage of what a crash left.
//!
//! Trace formats live in [`lander_trace`], the spool contract (names, publication,
//! manifests, sequence numbers) in [`lander_spool`].

pub mod engine;
pub mod privdrop;
