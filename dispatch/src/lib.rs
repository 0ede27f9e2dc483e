//! The LANDER spool protocol and the batch dispatcher.
//!
//! Raw trace files flow through stages ([`scrub::ScrubStage`], [`user::UserStage`]), each run
//! by an [`engine::Dispatcher`] over a [`backend::Backend`]. Exactly-once rests on the filesystem:
//! claims are atomic creates ([`claim`]), every job writes its own start marker and run record
//! ([`wrapper`], [`record`]), and the history ([`ledger`]) is kept in SQLite on local disk.

pub mod backend;
pub mod batch;
pub mod claim;
pub mod clean;
pub mod config;
pub mod control;
pub mod crash;
pub mod engine;
pub mod fsutil;
pub mod heartbeat;
pub mod layout;
pub mod ledger;
pub mod monitor;
pub mod privilege;
pub mod quarantine;
pub mod quota;
pub mod record;
pub mod scrub;
pub mod stage;
pub mod standin;
pub mod status;
pub mod sys;
pub mod user;
pub mod window;
pub mod wrapper;
