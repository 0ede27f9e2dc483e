//! Command-line front ends of LANDER-rs.
//!
//! Each subcommand lives in its own module under [`cli`]: clap arguments, turned into a plain
//! configuration, then into the resources the library crates build. The binaries in
//! `src/bin/` only parse and hand over.

pub mod cli;
pub mod netns;
