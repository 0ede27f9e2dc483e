//! Numbers for people: sizes, counts, rates, durations, ages and instants as an operator reads
//! them in text output (`2.1 GiB`, `1,072,384`, `3 min ago`, `2026-12-01T16:54:14Z`).
//!
//! Machine output (`--json`) keeps exact numbers; these are for terminals, logs and the status
//! page only.

use crate::utc::civil_from_days;

/// A byte count in binary units with three significant figures: `512 B`, `1.50 KiB`,
/// `2.10 GiB`, `64.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", three_figures(value), UNITS[unit])
}

/// An integer with thousands separators: `1,072,384`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate per second in decimal units with three significant figures: `rate(1.5e6, "pps")` is
/// `1.50 Mpps`, `rate(812e6, "B/s")` is `812 MB/s`.
pub fn rate(per_second: f64, unit: &str) -> String {
    if !per_second.is_finite() || per_second <= 0.0 {
        return format!("0 {unit}");
    }
    const PREFIXES: [&str; 5] = ["", "k", "M", "G", "T"];
    let mut value = per_second;
    let mut prefix = 0;
    while value >= 1000.0 && prefix < PREFIXES.len() - 1 {
        value /= 1000.0;
        prefix += 1;
    }
    format!("{} {}{unit}", three_figures(value), PREFIXES[prefix])
}

/// A duration in seconds, in the one or two largest units that matter: `450 ms`, `12.5 s`,
/// `3 min 5 s`, `2 h 5 min`, `3 d 4 h`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".to_string();
    }
    if secs < 1.0 {
        return format!("{} ms", (secs * 1000.0).round() as u64);
    }
    if secs < 60.0 {
        return format!("{} s", three_figures(secs));
    }
    let whole = secs.round() as u64;
    let (d, h, m, s) = (
        whole / 86_400,
        whole / 3600 % 24,
        whole / 60 % 60,
        whole % 60,
    );
    match (d, h) {
        (0, 0) if s == 0 => format!("{m} min"),
        (0, 0) => format!("{m} min {s} s"),
        (0, _) if m == 0 => format!("{h} h"),
        (0, _) => format!("{h} h {m} min"),
        _ if h == 0 => format!("{d} d"),
        _ => format!("{d} d {h} h"),
    }
}

/// How long ago an instant was, from two Unix times in seconds: `just now`, `42 s ago`,
/// `3 min ago`, `2 h ago`, `5 d ago`; `in the future` when `then` is after `now` by more than
/// a second (clocks of two hosts disagree).
pub fn ago(then_secs: i64, now_secs: i64) -> String {
    let delta = now_secs - then_secs;
    match delta {
        d if d < -1 => "in the future".to_string(),
        d if d < 2 => "just now".to_string(),
        d if d < 60 => format!("{d} s ago"),
        d if d < 3600 => format!("{} min ago", d / 60),
        d if d < 86_400 => format!("{} h ago", d / 3600),
        d => format!("{} d ago", d / 86_400),
    }
}

/// ISO-8601 UTC of a Unix time in seconds: `2026-12-01T16:54:14Z`.
pub fn iso8601(unix_secs: i64) -> String {
    let (days, rem) = (unix_secs.div_euclid(86_400), unix_secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Three significant figures for values in [1, 1000): `1.50`, `12.5`, `812`.
fn three_figures(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(2_254_857_830), "2.10 GiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn counts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_072_384), "1,072,384");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn rates() {
        assert_eq!(rate(1.5e6, "pps"), "1.50 Mpps");
        assert_eq!(rate(812e6, "B/s"), "812 MB/s");
        assert_eq!(rate(0.0, "pps"), "0 pps");
        assert_eq!(rate(f64::NAN, "pps"), "0 pps");
        assert_eq!(rate(999.0, "pps"), "999 pps");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0.45), "450 ms");
        assert_eq!(duration(12.5), "12.5 s");
        assert_eq!(duration(185.0), "3 min 5 s");
        assert_eq!(duration(180.0), "3 min");
        assert_eq!(duration(7500.0), "2 h 5 min");
        assert_eq!(duration(3.0 * 86_400.0 + 4.0 * 3600.0), "3 d 4 h");
        assert_eq!(duration(-1.0), "-");
    }

    #[test]
    fn ages() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(100, 142), "42 s ago");
        assert_eq!(ago(0, 3 * 60 + 59), "3 min ago");
        assert_eq!(ago(0, 2 * 3600), "2 h ago");
        assert_eq!(ago(0, 5 * 86_400), "5 d ago");
        assert_eq!(ago(100, 50), "in the future");
    }

    #[test]
    fn instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_796_143_254), "2026-12-01T16:40:54Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
    }
}
