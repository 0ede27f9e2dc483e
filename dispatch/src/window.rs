//! Allowed time windows: time-of-day and day-of-week ranges. Times are UTC unless the user's
//! `timezone = "local"` asks for the system's local time (the caller shifts the clock).

use std::fmt;

/// One allowed window: the days it applies to and a time-of-day range (which may wrap midnight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Bit `d` set when weekday `d` (0 = Monday .. 6 = Sunday) is allowed.
    days: u8,
    /// Start and end in minutes after midnight; `start > end` wraps past midnight.
    start: u16,
    end: u16,
}

/// A window spec that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowError(pub String);

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Window {
    /// Parses `days` (`"mon-fri"`, `"sat,sun"`, `"*"`) and `hours` (`"22:00-06:00"`, `"*"`).
    pub fn parse(days: &str, hours: &str) -> Result<Self, WindowError> {
        let days = parse_days(days)?;
        let (start, end) = parse_hours(hours)?;
        Ok(Self { days, start, end })
    }

    /// Whether the Unix time `t` (seconds, UTC; add the offset for local time) falls inside
    /// this window.
    pub fn contains(&self, t: i64) -> bool {
        let day = (t.div_euclid(86_400) + 3).rem_euclid(7) as u8; // 1970-01-01 was a Thursday
        let minute = (t.rem_euclid(86_400) / 60) as u16;
        if self.start <= self.end {
            self.allows(day) && minute >= self.start && minute < self.end
        } else if minute >= self.start {
            self.allows(day)
        } else {
            // The early-morning part of a window that began the day before.
            minute < self.end && self.allows((day + 6) % 7)
        }
    }

    fn allows(&self, day: u8) -> bool {
        self.days & (1 << day) != 0
    }
}

/// Whether `t` is allowed by `windows`; no windows means always.
pub fn allowed(windows: &[Window], t: i64) -> bool {
    windows.is_empty() || windows.iter().any(|w| w.contains(t))
}

fn day_index(name: &str) -> Result<u8, WindowError> {
    let lower = name.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| lower.starts_with(d))
        .map(|i| i as u8)
        .ok_or_else(|| WindowError(format!("unknown day {name:?} (expected mon..sun)")))
}

fn parse_days(spec: &str) -> Result<u8, WindowError> {
    if spec.trim() == "*" {
        return Ok(0x7f);
    }
    let mut mask = 0u8;
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (mut d, b) = (day_index(a)?, day_index(b)?);
                loop {
                    mask |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << day_index(part)?,
        }
    }
    Ok(mask)
}

fn parse_minute(s: &str) -> Result<u16, WindowError> {
    let bad = || WindowError(format!("bad time {s:?} (expected HH:MM)"));
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn parse_hours(spec: &str) -> Result<(u16, u16), WindowError> {
    if spec.trim() == "*" {
        return Ok((0, 24 * 60));
    }
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| WindowError(format!("bad hours {spec:?} (expected HH:MM-HH:MM)")))?;
    Ok((parse_minute(a)?, parse_minute(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-01-01 was a Monday.
    const MON_0000: i64 = 1_704_067_200;
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;

    #[test]
    fn weekday_office_hours() {
        let w = Window::parse("mon-fri", "09:00-17:00").unwrap();
        assert!(!w.contains(MON_0000 + 8 * HOUR));
        assert!(w.contains(MON_0000 + 9 * HOUR));
        assert!(!w.contains(MON_0000 + 17 * HOUR));
        assert!(!w.contains(MON_0000 + 5 * DAY + 10 * HOUR)); // Saturday
    }

    #[test]
    fn night_window_wraps_into_next_day() {
        let w = Window::parse("fri", "22:00-06:00").unwrap();
        assert!(w.contains(MON_0000 + 4 * DAY + 23 * HOUR)); // Friday 23:00
        assert!(w.contains(MON_0000 + 5 * DAY + 5 * HOUR)); // Saturday 05:00
        assert!(!w.contains(MON_0000 + 4 * DAY + 5 * HOUR)); // Friday 05:00
    }

    #[test]
    fn day_ranges_wrap_over_the_week_end() {
        let w = Window::parse("sat-mon", "*").unwrap();
        assert!(w.contains(MON_0000));
        assert!(w.contains(MON_0000 + 6 * DAY));
        assert!(!w.contains(MON_0000 + DAY));
    }

    #[test]
    fn bad_specs_are_errors() {
        assert!(Window::parse("funday", "*").is_err());
        assert!(Window::parse("*", "25:00-01:00").is_err());
        assert!(Window::parse("*", "0900").is_err());
    }

    #[test]
    fn no_windows_means_always() {
        assert!(allowed(&[], 0));
    }
}
