//! The page as terminal text: aligned columns, human-readable sizes, rates, durations, ages.

use std::fmt::Write as _;

use lander_spool::human;

use super::model::Page;

/// Columns padded to their widest cell; `right[i]` aligns column `i` to the right.
pub fn table(headers: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let pad = w.saturating_sub(cell.chars().count());
            out.push(' ');
            if right.get(i).copied().unwrap_or(false) {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(pad));
                }
            }
            out.push(' ');
        }
        out.trim_end().to_owned() + "\n"
    };
    let head: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = line(&head);
    for row in rows {
        out += &line(row);
    }
    out
}

fn ago(then: f64, now: f64) -> String {
    human::ago(then as i64, now as i64)
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

/// Renders the page for a terminal.
pub fn render(p: &Page) -> String {
    let mut out = format!(
        "LANDER status at {} on {} (spool {})\n\n",
        p.time_iso,
        p.host,
        p.spool.display()
    );
    problems(p, &mut out);
    sites(p, &mut out);
    stages(p, &mut out);
    users(p, &mut out);
    if let Some(d) = &p.disk {
        let _ = writeln!(
            out,
            "SPOOL DISK  {} free of {} ({:.1}%)\n",
            human::bytes(d.available),
            human::bytes(d.total),
            d.free_percent()
        );
    }
    failures(p, &mut out);
    for q in &p.quarantine {
        let _ = writeln!(
            out,
            "QUARANTINED  {} {}/{:?}: {} (as {})",
            q.stage,
            q.dir.display(),
            q.name,
            q.reason,
            q.id
        );
    }
    match p.monitor_seen {
        Some(t) => {
            let _ = writeln!(out, "monitor: last pass {}", ago(t, p.time));
        }
        None => out.push_str("monitor: never ran here (no history; `lander monitor run`)\n"),
    }
    out
}

fn problems(p: &Page, out: &mut String) {
    if p.problems.is_empty() {
        out.push_str("PROBLEMS  none open\n\n");
        return;
    }
    let _ = writeln!(out, "PROBLEMS  {} open", p.problems.len());
    let rows: Vec<Vec<String>> = p
        .problems
        .iter()
        .map(|x| {
            vec![
                x.severity.to_string().to_uppercase(),
                x.message.clone(),
                ago(x.since, p.time),
            ]
        })
        .collect();
    out.push_str(&table(&["SEVERITY", "PROBLEM", "SINCE"], &rows, &[]));
    out.push('\n');
}

fn sites(p: &Page, out: &mut String) {
    let rows: Vec<Vec<String>> = p
        .sites
        .iter()
        .map(|s| {
            vec![
                s.site.clone(),
                s.state.clone(),
                opt(&s.host),
                human::rate(s.pps, "pps"),
                human::rate(s.bps, "bit/s"),
                human::count(s.packets),
                human::count(s.drops),
                opt(&s.current_file),
                opt(&s.last_file),
                s.heartbeat_age_secs
                    .map_or("-".into(), |a| ago(p.time - a, p.time)),
            ]
        })
        .collect();
    let heads = [
        "SITE",
        "CAPTURE",
        "HOST",
        "RATE",
        "BITS",
        "PACKETS",
        "DROPS",
        "CURRENT FILE",
        "LAST FILE",
        "HEARTBEAT",
    ];
    let right = [
        false, false, false, true, true, true, true, false, false, false,
    ];
    out.push_str("CAPTURE SITES\n");
    out.push_str(&table(&heads, &rows, &right));
    out.push('\n');
}

fn stages(p: &Page, out: &mut String) {
    let tp = |t: &crate::monitor::history::Throughput| {
        format!(
            "{} {}, {}",
            human::count(t.files),
            if t.files == 1 { "file" } else { "files" },
            human::bytes(t.bytes)
        )
    };
    let rows: Vec<Vec<String>> = p
        .stages
        .iter()
        .map(|v| {
            let s = &v.status;
            vec![
                format!("{}{}", s.stage, if s.paused { " (paused)" } else { "" }),
                human::count(s.waiting_files as u64),
                if s.waiting_files > 0 {
                    human::duration(s.oldest_waiting_secs)
                } else {
                    "-".into()
                },
                human::count(s.active.saturating_sub(s.pending) as u64),
                human::count(s.pending as u64),
                human::count(s.retrying as u64),
                human::count(s.failed as u64),
                human::count(s.stuck as u64),
                human::count(s.quarantined as u64),
                tp(&v.last_hour),
                tp(&v.last_day),
            ]
        })
        .collect();
    let heads = [
        "STAGE",
        "BACKLOG",
        "OLDEST",
        "RUNNING",
        "QUEUED",
        "RETRYING",
        "FAILED",
        "STUCK",
        "QUARANTINED",
        "LAST HOUR",
        "LAST DAY",
    ];
    let right = [
        false, true, true, true, true, true, true, true, true, true, true,
    ];
    out.push_str("STAGES\n");
    out.push_str(&table(&heads, &rows, &right));
    out.push('\n');
}

fn users(p: &Page, out: &mut String) {
    if p.users.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = p
        .users
        .iter()
        .map(|u| {
            vec![
                u.user.clone(),
                human::count(u.incoming as u64),
                human::count(u.in_process as u64),
                human::count(u.done as u64),
                human::count(u.failed as u64),
                human::bytes(u.bytes),
                u.quota.map_or("-".into(), human::bytes),
                if u.over_quota { "OVER" } else { "" }.into(),
            ]
        })
        .collect();
    let heads = [
        "USER",
        "INCOMING",
        "IN-PROCESS",
        "DONE",
        "FAILED",
        "DISK",
        "QUOTA",
        "",
    ];
    let right = [false, true, true, true, true, true, true, false];
    out.push_str("USERS\n");
    out.push_str(&table(&heads, &rows, &right));
    out.push('\n');
}

fn failures(p: &Page, out: &mut String) {
    if p.failures.is_empty() {
        return;
    }
    out.push_str("RECENT FAILURES\n");
    let rows: Vec<Vec<String>> = p
        .failures
        .iter()
        .map(|f| {
            vec![
                ago(f.time, p.time),
                f.stage.clone(),
                f.item.clone(),
                f.state.clone(),
                f.reason.clone().unwrap_or_default(),
                f.logs_command.clone(),
            ]
        })
        .collect();
    let heads = ["WHEN", "STAGE", "ITEM", "STATE", "REASON", "LOGS"];
    out.push_str(&table(&heads, &rows, &[]));
    out.push('\n');
}
