//! The page as HTML: one self-contained document (inline CSS and SVG, no external file). When
//! served, a small script fetches `content` every few seconds and swaps the `<main>` in place
//! (no reload, no flicker); the static file refreshes itself with a meta refresh.
//!
//! Every number shown carries `data-k` (what it is) so tests can find it.

use std::fmt::Write as _;

use lander_spool::human;

use super::model::Page;
use super::svg::{self, Line};

/// How the page refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// A static file: reload every this many seconds.
    Meta(u32),
    /// Served: fetch `content` every this many seconds and swap it in.
    Fetch(u32),
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fafafa}\
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}\
table{border-collapse:collapse;background:#fff}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.meta{color:#666}\
.problems li{margin:.2em 0}.critical{color:#b00;font-weight:bold}.warning{color:#a60}\
.ok{color:#080}.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{background:#fff;border:1px solid #ddd}\
.chart .t{font-size:12px;font-weight:bold}.chart .a{font-size:10px;fill:#555}.chart .l{font-size:10px}.chart .f{fill:none;stroke:#eee}\
code{background:#eee;padding:0 .3em}";

/// The whole document.
pub fn render(p: &Page, refresh: Refresh) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\n",
    );
    if let Refresh::Meta(secs) = refresh {
        let _ = writeln!(out, "<meta http-equiv=refresh content=\"{secs}\">");
    }
    let _ = writeln!(
        out,
        "<title>LANDER status</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main id=content>"
    );
    out += &content(p);
    out += "</main>\n";
    if let Refresh::Fetch(secs) = refresh {
        let _ = writeln!(
            out,
            "<script>\nsetInterval(async () => {{\n  try {{\n    const r = await fetch('content', {{cache: 'no-store'}});\n    if (r.ok) document.getElementById('content').innerHTML = await r.text();\n  }} catch (e) {{}}\n}}, {});\n</script>",
            u64::from(secs) * 1000
        );
    }
    out + "</body>\n</html>\n"
}

fn num(key: &str, text: String) -> String {
    format!(
        "<td class=n data-k=\"{}\">{}</td>",
        escape(key),
        escape(&text)
    )
}

fn cell(text: &str) -> String {
    format!("<td>{}</td>", escape(text))
}

fn ago(then: f64, now: f64) -> String {
    human::ago(then as i64, now as i64)
}

/// The content of `<main>` (also served alone, for the refresh).
pub fn content(p: &Page) -> String {
    let mut out = format!(
        "<h1>LANDER status</h1>\n<p class=meta>{} on {} &middot; spool <code>{}</code> &middot; {}</p>\n",
        escape(&p.time_iso),
        escape(&p.host),
        escape(&p.spool.to_string_lossy()),
        match p.monitor_seen {
            Some(t) => format!("monitor's last pass {}", ago(t, p.time)),
            None => "no monitor history yet".into(),
        }
    );
    problems(p, &mut out);
    sites(p, &mut out);
    stages(p, &mut out);
    users(p, &mut out);
    charts(p, &mut out);
    failures(p, &mut out);
    cleared(p, &mut out);
    quarantine(p, &mut out);
    out
}

fn problems(p: &Page, out: &mut String) {
    let _ = write!(
        out,
        "<h2>Problems: <span data-k=\"problems\">{}</span> open</h2>\n<ul class=problems>\n",
        p.problems.len()
    );
    if p.problems.is_empty() {
        out.push_str("<li class=ok>none</li>\n");
    }
    for x in &p.problems {
        let _ = writeln!(
            out,
            "<li data-id=\"{}\"><span class={}>{}</span> {} <span class=meta>since {}</span></li>",
            escape(&x.id),
            x.severity,
            x.severity.to_string().to_uppercase(),
            escape(&x.message),
            ago(x.since, p.time)
        );
    }
    out.push_str("</ul>\n");
}

fn sites(p: &Page, out: &mut String) {
    out.push_str("<h2>Capture sites</h2>\n<table>\n<tr><th>site<th>capture<th>host<th class=n>rate<th class=n>bits<th class=n>packets<th class=n>drops<th>current file<th>last file<th>heartbeat</tr>\n");
    for s in &p.sites {
        let k = |f: &str| format!("site.{}.{f}", s.site);
        let _ = writeln!(
            out,
            "<tr>{}{}{}{}{}{}{}{}{}{}</tr>",
            cell(&s.site),
            cell(&s.state),
            cell(s.host.as_deref().unwrap_or("-")),
            num(&k("pps"), human::rate(s.pps, "pps")),
            num(&k("bps"), human::rate(s.bps, "bit/s")),
            num(&k("packets"), human::count(s.packets)),
            num(&k("drops"), human::count(s.drops)),
            cell(s.current_file.as_deref().unwrap_or("-")),
            cell(s.last_file.as_deref().unwrap_or("-")),
            cell(
                &s.heartbeat_age_secs
                    .map_or("-".into(), |a| ago(p.time - a, p.time))
            ),
        );
    }
    out.push_str("</table>\n");
}

fn stages(p: &Page, out: &mut String) {
    out.push_str("<h2>Stages</h2>\n<table>\n<tr><th>stage<th class=n>backlog<th class=n>oldest<th class=n>running<th class=n>queued<th class=n>retrying<th class=n>failed<th class=n>stuck<th class=n>quarantined<th class=n>last hour<th class=n>last day</tr>\n");
    for v in &p.stages {
        let s = &v.status;
        let k = |f: &str| format!("stage.{}.{f}", s.stage);
        let name = format!("{}{}", s.stage, if s.paused { " (paused)" } else { "" });
        let oldest = if s.waiting_files > 0 {
            human::duration(s.oldest_waiting_secs)
        } else {
            "-".into()
        };
        let tp = |t: &crate::monitor::history::Throughput| {
            format!(
                "{} {}, {}",
                human::count(t.files),
                if t.files == 1 { "file" } else { "files" },
                human::bytes(t.bytes)
            )
        };
        let _ = writeln!(
            out,
            "<tr>{}{}{}{}{}{}{}{}{}{}{}</tr>",
            cell(&name),
            num(&k("waiting_files"), human::count(s.waiting_files as u64)),
            num(&k("oldest"), oldest),
            num(
                &k("running"),
                human::count(s.active.saturating_sub(s.pending) as u64)
            ),
            num(&k("pending"), human::count(s.pending as u64)),
            num(&k("retrying"), human::count(s.retrying as u64)),
            num(&k("failed"), human::count(s.failed as u64)),
            num(&k("stuck"), human::count(s.stuck as u64)),
            num(&k("quarantined"), human::count(s.quarantined as u64)),
            num(&k("last_hour"), tp(&v.last_hour)),
            num(&k("last_day"), tp(&v.last_day)),
        );
    }
    out.push_str("</table>\n");
}

fn users(p: &Page, out: &mut String) {
    if p.users.is_empty() {
        return;
    }
    out.push_str("<h2>Users</h2>\n<table>\n<tr><th>user<th class=n>incoming<th class=n>in process<th class=n>done<th class=n>failed<th class=n>disk<th class=n>quota</tr>\n");
    for u in &p.users {
        let k = |f: &str| format!("user.{}.{f}", u.user);
        let quota = u.quota.map_or("-".into(), human::bytes);
        let _ = writeln!(
            out,
            "<tr>{}{}{}{}{}{}{}</tr>",
            cell(&u.user),
            num(&k("incoming"), human::count(u.incoming as u64)),
            num(&k("in_process"), human::count(u.in_process as u64)),
            num(&k("done"), human::count(u.done as u64)),
            num(&k("failed"), human::count(u.failed as u64)),
            num(&k("bytes"), human::bytes(u.bytes)),
            num(
                &k("quota"),
                if u.over_quota {
                    format!("{quota} (over)")
                } else {
                    quota
                }
            ),
        );
    }
    out.push_str("</table>\n");
    if let Some(d) = &p.disk {
        let _ = writeln!(
            out,
            "<p>Spool filesystem: <span data-k=\"disk.available\">{}</span> free of {} ({:.1}%)</p>",
            human::bytes(d.available),
            human::bytes(d.total),
            d.free_percent()
        );
    }
}

fn charts(p: &Page, out: &mut String) {
    let (t1, t0) = (p.time, p.time - super::model::CHART_SECS);
    let find = |name: &str| {
        p.history
            .iter()
            .find(|s| s.name == name)
            .map_or(&[][..], |s| &s.points[..])
    };
    out.push_str("<h2>Last day</h2>\n<div class=charts>\n");
    let stages: Vec<String> = p.stages.iter().map(|s| s.status.stage.clone()).collect();
    let tp: Vec<String> = stages.iter().map(|s| format!("throughput:{s}")).collect();
    let lines: Vec<Line<'_>> = stages
        .iter()
        .zip(&tp)
        .map(|(s, n)| Line {
            label: s,
            points: find(n),
        })
        .collect();
    let count = |v: f64| human::count(v.round() as u64);
    out.push_str(&svg::chart(
        "Files per hour, per stage",
        &lines,
        t0,
        t1,
        &count,
    ));
    let bl: Vec<String> = stages.iter().map(|s| format!("backlog:{s}")).collect();
    let lines: Vec<Line<'_>> = stages
        .iter()
        .zip(&bl)
        .map(|(s, n)| Line {
            label: s,
            points: find(n),
        })
        .collect();
    out.push_str(&svg::chart(
        "Backlog (files waiting)",
        &lines,
        t0,
        t1,
        &count,
    ));
    let sites: Vec<String> = p.sites.iter().map(|s| s.site.clone()).collect();
    let pps: Vec<String> = sites.iter().map(|s| format!("pps:{s}")).collect();
    let lines: Vec<Line<'_>> = sites
        .iter()
        .zip(&pps)
        .map(|(s, n)| Line {
            label: s,
            points: find(n),
        })
        .collect();
    let rate = |v: f64| human::rate(v, "pps");
    out.push_str(&svg::chart("Capture rate", &lines, t0, t1, &rate));
    let drops: Vec<String> = sites.iter().map(|s| format!("drops:{s}")).collect();
    let lines: Vec<Line<'_>> = sites
        .iter()
        .zip(&drops)
        .map(|(s, n)| Line {
            label: s,
            points: find(n),
        })
        .collect();
    out.push_str(&svg::chart(
        "Capture drops (this run)",
        &lines,
        t0,
        t1,
        &count,
    ));
    out.push_str("</div>\n");
}

fn failures(p: &Page, out: &mut String) {
    let _ = writeln!(
        out,
        "<h2>Recent failures: <span data-k=\"failures\">{}</span></h2>",
        p.failures.len()
    );
    if p.failures.is_empty() {
        out.push_str("<p class=ok>none</p>\n");
        return;
    }
    out.push_str("<table>\n<tr><th>when<th>stage<th>item<th>state<th>reason<th>logs</tr>\n");
    for f in &p.failures {
        let _ = writeln!(
            out,
            "<tr>{}{}{}{}{}<td><code>{}</code></td></tr>",
            cell(&ago(f.time, p.time)),
            cell(&f.stage),
            cell(&f.item),
            cell(&f.state),
            cell(f.reason.as_deref().unwrap_or("")),
            escape(&f.logs_command)
        );
    }
    out.push_str("</table>\n");
}

fn cleared(p: &Page, out: &mut String) {
    if p.cleared.is_empty() {
        return;
    }
    out.push_str("<h2>Cleared in the last day</h2>\n<ul>\n");
    for e in &p.cleared {
        let end = e.cleared.unwrap_or(p.time);
        let _ = writeln!(
            out,
            "<li>{} <span class=meta>cleared {} after {}</span></li>",
            escape(&e.message),
            ago(end, p.time),
            human::duration(end - e.began)
        );
    }
    out.push_str("</ul>\n");
}

fn quarantine(p: &Page, out: &mut String) {
    if p.quarantine.is_empty() {
        return;
    }
    out.push_str("<h2>Quarantine</h2>\n<ul>\n");
    for q in &p.quarantine {
        let _ = writeln!(
            out,
            "<li>{} {}/{}: {}</li>",
            escape(&q.stage),
            escape(&q.dir.to_string_lossy()),
            escape(&q.name),
            escape(&q.reason)
        );
    }
    out.push_str("</ul>\n");
}
