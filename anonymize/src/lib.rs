//! Payload scrubbing and prefix-preserving address anonymization.
//!
//! - [`key`]: key files, their permission check, key ids.
//! - [`mapping`]: the three address mappings (Crypto-PAn, cryptopANT, libtrace) behind
//!   [`Anonymizer`].
//! - [`cache`]: the per-worker prefix cache in front of a mapping.
//! - [`prefix`]: the don't-scramble list.

pub mod cache;
pub mod key;
pub mod mapping;
mod mask;
pub mod prefix;
pub mod scrub;
#[cfg(any(test, feature = "testgen"))]
pub mod testgen;
pub mod verify;
pub mod walker;
pub mod wire;

pub use cache::CachedAnonymizer;
pub use key::{Key, KeyError, Mapping};
pub use mapping::{Anonymizer, MapOptions};
pub use prefix::PrefixList;
