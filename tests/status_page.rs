//! The status page end to end: a spool with known history served by `lander status --serve`,
//! checked over HTTP (`/api/status`, errors) and in a real headless browser (Debian's
//! chromium, installed by scripts/bootstrap.sh when missing): every number the page shows is
//! the JSON's, formatted for people. The screenshot is kept under the test's output
//! directory. `lander status --check` exit codes are checked on the same spool.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use lander_dispatch::config::Config;
use lander_dispatch::ledger::{JobRow, Ledger};
use lander_dispatch::monitor::history;
use lander_dispatch::monitor::store::Store;
use lander_spool::human;

const LANDER: &str = env!("CARGO_BIN_EXE_lander");

fn now() -> f64 {
    lander_dispatch::sys::now()
}

fn heartbeat(spool: &Path, site: &str, age_secs: f64, pps: f64, packets: u64, drops: u64) {
    let ns = ((now() - age_secs) * 1e9) as u64;
    let hb = serde_json::json!({
        "kind": "capture", "host": "probe1", "site": site, "pid": 42, "source": "eth1",
        "state": "running", "started_ns": ns, "updated_ns": ns, "pps": pps, "bps": pps * 8000.0,
        "counters": {"packets": packets, "bytes": 0, "wire_bytes": 0, "kernel_drops": drops,
                     "interface_drops": 0, "ring_drops": 0, "source_drops": 0, "files": 3,
                     "file_bytes": 0, "current_file": format!("{site}-20261201-120000-7.pcap")},
        "error": null
    });
    let dir = spool.join("state/capture");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{site}-probe1.json")), hb.to_string()).unwrap();
}

/// A spool with two sites (campus silent for an hour), a user, jobs in the history and a
/// day of samples.
fn known_spool(root: &Path) -> Config {
    let spool = root.join("spool");
    for d in ["raw/border", "raw/campus", "users/alice/done/border"] {
        std::fs::create_dir_all(spool.join(d)).unwrap();
    }
    let text = format!(
        "spool = {:?}\nstate_db = {:?}\nuser_state_db = {:?}\nsites = [\"border\", \"campus\"]\n\n\
         [users.alice]\nsubscriptions = [\"border\"]\nprocessor = [\"/bin/true\"]\nquota = \"1GiB\"\n\n\
         [monitor]\nmin_free = \"0%\"\nsilent_secs = 600\n",
        spool,
        root.join("db/dispatch.sqlite"),
        root.join("db/user-{user}.sqlite").to_string_lossy()
    );
    let path = root.join("lander.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    heartbeat(&spool, "border", 1.0, 1_250_000.0, 9_876_543, 12);
    heartbeat(&spool, "campus", 3600.0, 0.0, 5000, 0);
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(spool.join("raw/campus"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    for i in 0..3 {
        let p = spool.join(format!("raw/border/border-20261201-120000-{i}.pcap"));
        std::fs::write(p, b"trace").unwrap();
    }
    for i in 0..4 {
        let p = spool.join(format!(
            "users/alice/done/border/border-20261201-110000-{i}.pcap"
        ));
        std::fs::write(p, vec![0u8; 10_000]).unwrap();
    }
    let mut ledger = Ledger::open(&config.state_db).unwrap();
    let t = now();
    for i in 0..7 {
        let mut row = JobRow::new(
            &format!("scrub.j{i}"),
            "scrub",
            &format!("border/f{i}"),
            1,
            "submitted",
        );
        row.submitted = Some(t - 600.0);
        ledger.submitted(&row).unwrap();
        let state = if i == 6 { "failed" } else { "succeeded" };
        let rec = lander_dispatch::record::JobRecord {
            job_id: row.job_id.clone(),
            stage: "scrub".into(),
            item: row.item.clone(),
            attempt: 1,
            host: "node1".into(),
            pid: 7,
            start: t - 500.0,
            end: t - 400.0 + f64::from(i),
            outcome: lander_dispatch::record::JobOutcome::Success,
            exit_code: Some(if i == 6 { 3 } else { 0 }),
            signal: None,
            packets: Some(1000),
            bytes: Some(1_000_000),
            digest: None,
        };
        let reason = (i == 6).then_some("exit 3");
        ledger.finished(&rec, state, reason).unwrap();
    }
    drop(ledger);
    let mut store = Store::open(&config.state_db).unwrap();
    for i in 0..288 {
        let at = t - 86_400.0 + f64::from(i) * 300.0;
        let wave = (f64::from(i) / 20.0).sin();
        let samples = vec![
            ("backlog:scrub".to_owned(), 40.0 + 30.0 * wave),
            ("backlog:user/alice".to_owned(), 10.0 + 8.0 * wave.abs()),
            ("throughput:scrub".to_owned(), 120.0 + 60.0 * wave),
            ("throughput:user/alice".to_owned(), 100.0 + 50.0 * wave),
            ("pps:border".to_owned(), 1.2e6 + 2e5 * wave),
            ("pps:campus".to_owned(), if i < 276 { 3e5 } else { 0.0 }),
            ("drops:border".to_owned(), f64::from(i / 30)),
            ("drops:campus".to_owned(), 0.0),
        ];
        history::record(&mut store, &samples, at, 30.0 * 86_400.0).unwrap();
    }
    config
}

fn lander(args: &[&str], config: &Path) -> std::process::Output {
    Command::new(LANDER)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &Path) -> Server {
    let mut child = Command::new(LANDER)
        .args(["status", "--serve", "127.0.0.1:0", "--config"])
        .arg(config)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Server(child, addr)
}

/// Status code and body of one request.
fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map_or("", |x| x.1).to_owned();
    (code, body)
}

fn chromium() -> PathBuf {
    let found = |name: &str| {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    };
    if let Some(p) = found("chromium") {
        return p;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bootstrap.sh");
    let st = Command::new("bash").arg(script).status().unwrap();
    assert!(
        st.success(),
        "scripts/bootstrap.sh could not install chromium"
    );
    found("chromium").expect("chromium installed by scripts/bootstrap.sh")
}

fn browser(args: &[&str], url: &str) -> std::process::Output {
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(["--window-size=1280,1400", "--virtual-time-budget=3000"])
        .args(args)
        .arg(url)
        .output()
        .unwrap()
}

/// The text of the element with `data-k="key"` in the dumped DOM.
fn shown(dom: &str, key: &str) -> String {
    let tag = format!("data-k=\"{key}\">");
    let start = dom
        .find(&tag)
        .unwrap_or_else(|| panic!("{key} not on the page"))
        + tag.len();
    let end = start + dom[start..].find('<').unwrap();
    dom[start..end]
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

#[test]
fn status_check_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = known_spool(tmp.path());
    let out = lander(&["status", "--check"], &config.path);
    assert_eq!(out.status.code(), Some(1), "campus is silent");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("site campus: no heartbeat and no new raw file for 1 h"),
        "{text}"
    );
    // Campus comes back: nothing open.
    heartbeat(&tmp.path().join("spool"), "campus", 0.0, 1000.0, 6000, 0);
    let out = lander(&["status", "--check"], &config.path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        lander(&["status", "--check"], &tmp.path().join("none.toml"))
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        lander(&["status", "--bogus"], &config.path).status.code(),
        Some(2)
    );
}

#[test]
fn the_page_in_a_browser_shows_the_numbers_of_the_json() {
    let tmp = tempfile::tempdir().unwrap();
    let config = known_spool(tmp.path());
    let server = serve(&config.path);
    let (code, body) = http(&server.1, "GET", "/api/status");
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(http(&server.1, "GET", "/nope").0, 404);
    assert_eq!(http(&server.1, "POST", "/api/status").0, 405);
    let (code, content) = http(&server.1, "GET", "/content");
    assert_eq!(code, 200);
    assert!(
        content.starts_with("<h1>") && !content.contains("<html"),
        "{content}"
    );

    let url = format!("http://{}/", server.1);
    let out = browser(&["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("LANDER status"),
        "{dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Open problems first, and the silent site among them.
    let problems = json["problems"].as_array().unwrap();
    assert_eq!(shown(&dom, "problems"), problems.len().to_string());
    assert!(
        problems.iter().any(|p| p["id"] == "silent:campus"),
        "{problems:?}"
    );
    assert!(dom.find("Problems").unwrap() < dom.find("Capture sites").unwrap());
    for site in json["sites"].as_array().unwrap() {
        let name = site["site"].as_str().unwrap();
        let k = |f: &str| format!("site.{name}.{f}");
        assert_eq!(
            shown(&dom, &k("pps")),
            human::rate(site["pps"].as_f64().unwrap(), "pps")
        );
        assert_eq!(
            shown(&dom, &k("packets")),
            human::count(site["packets"].as_u64().unwrap())
        );
        assert_eq!(
            shown(&dom, &k("drops")),
            human::count(site["drops"].as_u64().unwrap())
        );
    }
    assert_eq!(shown(&dom, "site.border.pps"), "1.25 Mpps");
    assert_eq!(shown(&dom, "site.border.drops"), "12");
    for stage in json["stages"].as_array().unwrap() {
        let name = stage["stage"].as_str().unwrap();
        let k = |f: &str| format!("stage.{name}.{f}");
        let n = |f: &str| human::count(stage[f].as_u64().unwrap());
        assert_eq!(shown(&dom, &k("waiting_files")), n("waiting_files"));
        assert_eq!(shown(&dom, &k("failed")), n("failed"));
        let files = stage["last_hour"]["files"].as_u64().unwrap();
        let bytes = stage["last_hour"]["bytes"].as_u64().unwrap();
        assert!(shown(&dom, &k("last_hour")).starts_with(&human::count(files)));
        assert!(shown(&dom, &k("last_hour")).ends_with(&human::bytes(bytes)));
    }
    assert_eq!(shown(&dom, "stage.scrub.waiting_files"), "3");
    assert_eq!(shown(&dom, "stage.scrub.last_hour"), "6 files, 5.72 MiB");
    let alice = &json["users"][0];
    assert_eq!(shown(&dom, "user.alice.done"), "4");
    assert_eq!(
        shown(&dom, "user.alice.bytes"),
        human::bytes(alice["bytes"].as_u64().unwrap())
    );
    assert_eq!(
        shown(&dom, "failures"),
        json["failures"].as_array().unwrap().len().to_string()
    );
    assert!(
        dom.contains("lander jobs logs scrub.j6"),
        "the failure's log command"
    );
    assert_eq!(
        dom.matches("<polyline").count(),
        8,
        "a line per stage and site, in 4 charts"
    );

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status_page");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("status.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    let out = browser(&[&arg], &url);
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\n{}",
            shot.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}
