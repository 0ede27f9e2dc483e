//! One module per subcommand; each has `Args` (clap) and `run(args) -> anyhow::Result<()>`.

pub mod anon;
pub mod app;
pub mod bench;
pub mod capture;
pub mod capture_threads;
pub mod clean;
pub mod common;
pub mod convert;
pub mod daemon;
pub mod demo;
pub mod dispatch;
pub mod docs;
pub mod exit;
pub mod gen;
pub mod help;
pub mod info;
pub mod jobs;
pub mod keygen;
pub mod monitor;
pub mod output;
pub mod quota;
pub mod scrub;
pub mod status;
pub mod user;
pub mod verify;
