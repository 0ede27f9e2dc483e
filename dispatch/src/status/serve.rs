//! `lander status --serve ADDR`: the page over HTTP (`tiny_http`), loopback by default.
//!
//! - `/` the page, which refreshes itself by fetching `/content` and swapping it in;
//! - `/content` the page's `<main>` alone;
//! - `/api/status` the model as JSON.
//!
//! The model is rebuilt at most every 5 s whatever the number of clients, so a page left
//! open in many browsers costs one scan of the spool per period. Only GET and HEAD are
//! answered.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response, Server};

use crate::config::Config;

use super::html::{self, Refresh};
use super::model::{self, Page};

/// A server that could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve on {addr}: {message}")]
pub struct ServeError {
    /// The address asked for.
    pub addr: String,
    /// Why.
    pub message: String,
}

/// A bound server, not yet answering.
pub struct StatusServer {
    server: Server,
    config: Config,
    min_age: Duration,
    refresh_secs: u32,
}

impl std::fmt::Debug for StatusServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusServer")
            .field("addr", &self.local_addr())
            .finish()
    }
}

impl StatusServer {
    /// Binds `addr` (`127.0.0.1:8080`, `[::1]:0`, ...).
    pub fn bind(config: &Config, addr: &str) -> Result<StatusServer, ServeError> {
        let err = |message: String| ServeError {
            addr: addr.to_owned(),
            message,
        };
        let sock: SocketAddr = addr
            .parse()
            .map_err(|e| err(format!("{e} (expected HOST:PORT, like 127.0.0.1:8080)")))?;
        if !sock.ip().is_loopback() {
            tracing::warn!("serving the status page beyond this host on {sock}");
        }
        let server = Server::http(sock).map_err(|e| err(e.to_string()))?;
        Ok(StatusServer {
            server,
            config: config.clone(),
            min_age: Duration::from_secs(5),
            refresh_secs: 10,
        })
    }

    /// The address it listens on (with the port chosen when asked for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.server_addr().to_ip()
    }

    /// Answers requests until `stop` is set.
    pub fn run(&self, stop: &AtomicBool) {
        let mut cache: Option<(Instant, Page)> = None;
        while !stop.load(Ordering::Relaxed) {
            let req = match self.server.recv_timeout(Duration::from_millis(200)) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("status server: {e}");
                    continue;
                }
            };
            self.answer(req, &mut cache);
        }
    }

    fn page<'c>(&self, cache: &'c mut Option<(Instant, Page)>) -> Result<&'c Page, String> {
        let fresh = cache
            .as_ref()
            .is_some_and(|(t, _)| t.elapsed() < self.min_age);
        if !fresh {
            let page = model::build(&self.config).map_err(|e| e.to_string())?;
            *cache = Some((Instant::now(), page));
        }
        cache
            .as_ref()
            .map(|(_, p)| p)
            .ok_or_else(|| "no page".to_owned())
    }

    fn answer(&self, req: Request, cache: &mut Option<(Instant, Page)>) {
        if !matches!(req.method(), Method::Get | Method::Head) {
            let _ =
                req.respond(Response::from_string("method not allowed\n").with_status_code(405));
            return;
        }
        let path = req.url().split('?').next().unwrap_or("/").to_owned();
        let (body, kind) = match path.as_str() {
            "/" | "/index.html" | "/content" | "/api/status" => match self.page(cache) {
                Ok(page) => match path.as_str() {
                    "/content" => (html::content(page), "text/html; charset=utf-8"),
                    "/api/status" => (
                        serde_json::to_string_pretty(page).unwrap_or_default(),
                        "application/json",
                    ),
                    _ => (
                        html::render(page, Refresh::Fetch(self.refresh_secs)),
                        "text/html; charset=utf-8",
                    ),
                },
                Err(e) => {
                    tracing::warn!("status page: {e}");
                    let r = Response::from_string(format!("cannot read the spool: {e}\n"))
                        .with_status_code(503);
                    let _ = req.respond(r);
                    return;
                }
            },
            _ => {
                let _ = req.respond(Response::from_string("not found\n").with_status_code(404));
                return;
            }
        };
        let mut r = Response::from_string(body);
        for (k, v) in [("Content-Type", kind), ("Cache-Control", "no-store")] {
            if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                r = r.with_header(h);
            }
        }
        let _ = req.respond(r);
    }
}
