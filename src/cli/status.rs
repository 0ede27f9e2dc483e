//! `lander status`: the status page of the spool — in the terminal, as JSON, as one static
//! HTML file, or served over HTTP — and `--check` for cron and Nagios.
//!
//! Exit codes: 0 no problem open; 1 (`--check`) a problem is open; 2 usage; 3 the
//! configuration or the spool could not be read.

use std::path::PathBuf;

use lander_dispatch::status::html::{self, Refresh};
use lander_dispatch::status::serve::StatusServer;
use lander_dispatch::status::{self, text};

use super::common::{stop_flag, ConfigArg, ExitCode, JsonArg};

/// Arguments of `lander status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    json: JsonArg,
    /// Write the page as one static, self-contained HTML file (reloads itself every minute).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Serve the page over HTTP until TERM or INT (`/`, `/api/status`); default address
    /// 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    serve: Option<String>,
    /// Exit with status 1 when a problem is open, 0 when none (for cron and monitoring).
    #[arg(long)]
    check: bool,
}

/// An error reading the configuration or the spool: exit status 3.
fn io_error(e: impl std::fmt::Display) -> anyhow::Error {
    ExitCode(super::exit::INPUT, e.to_string()).into()
}

/// Runs `lander status`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load().map_err(io_error)?;
    if let Some(addr) = &args.serve {
        let server = StatusServer::bind(&config, addr).map_err(io_error)?;
        let at = server.local_addr().map_or(addr.clone(), |a| a.to_string());
        eprintln!("serving the status page on http://{at}/ (JSON at /api/status); Ctrl-C stops");
        let stop = stop_flag()?;
        server.run(&stop);
        return Ok(());
    }
    let page = status::build(&config).map_err(io_error)?;
    if let Some(path) = &args.html {
        let doc = html::render(&page, Refresh::Meta(60));
        lander_spool::publish::write_atomic(path, doc.as_bytes(), false)
            .map_err(|e| io_error(format!("{}: {e}", path.display())))?;
    }
    if args.json.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
    } else if args.html.is_none() {
        print!("{}", text::render(&page));
    }
    if args.check && page.has_problems() {
        let n = page.problems.len();
        return Err(ExitCode::found(format!("{n} problems open")));
    }
    Ok(())
}
