//! Trace file names: `<site>-<YYYYMMDD>-<HHMMSS>-<seq>.<ext>`, UTC.

use std::path::Path;

use crate::utc::{civil_from_days, days_from_civil};
use lander_trace::record::Format;

/// Digits of the zero-padded sequence number, so names sort in capture order.
const SEQ_WIDTH: usize = 6;

/// The name of a trace file whose first packet (or rotation boundary) is at `ts_ns`.
pub fn trace_name(site: &str, ts_ns: u64, seq: u64, format: Format) -> String {
    let (date, time) = utc_date_time(ts_ns / 1_000_000_000);
    format!(
        "{site}-{date}-{time}-{seq:0width$}.{ext}",
        width = SEQ_WIDTH,
        ext = format.extension()
    )
}

/// The site, time and sequence number of a trace file name, or `None` if it is not one.
pub fn parse_trace_name(name: &str) -> Option<(&str, u64, u64)> {
    let (stem, _ext) = name.rsplit_once('.')?;
    let mut parts = stem.rsplitn(4, '-');
    let seq = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    let date = parts.next()?;
    let site = parts.next()?;
    let secs = parse_utc(date, time)?;
    Some((site, secs, seq))
}

/// The same trace file name with another sequence number, or `None` if it is not one.
pub fn with_seq(name: &str, seq: u64) -> Option<String> {
    parse_trace_name(name)?;
    let (stem, ext) = name.rsplit_once('.')?;
    let (prefix, _) = stem.rsplit_once('-')?;
    Some(format!("{prefix}-{seq:0width$}.{ext}", width = SEQ_WIDTH))
}

/// The next sequence number for `site`: one past the largest anywhere the spool knows of, or
/// the site's high-water mark (see [`crate::seq::next_seq`]), so a restarted capture never
/// reuses a name.
pub fn next_seq(dir: &Path, site: &str) -> std::io::Result<u64> {
    crate::seq::next_seq(dir, site).map_err(std::io::Error::other)
}

/// `YYYYMMDD` and `HHMMSS` of a Unix time in seconds, UTC.
pub fn utc_date_time(secs: u64) -> (String, String) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let date = format!("{y:04}{m:02}{d:02}");
    let time = format!("{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    (date, time)
}

/// Unix seconds of `YYYYMMDD`, `HHMMSS` (UTC).
fn parse_utc(date: &str, time: &str) -> Option<u64> {
    if date.len() != 8 || time.len() != 6 {
        return None;
    }
    let num = |s: &str| s.parse::<u64>().ok();
    let (y, m, d) = (num(&date[..4])?, num(&date[4..6])?, num(&date[6..])?);
    let (hh, mm, ss) = (num(&time[..2])?, num(&time[2..4])?, num(&time[4..])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(y as i64, m as u32, d as u32)).ok()?;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_use_utc_and_padded_seq() {
        // 2024-02-29 23:59:59 UTC
        let ts = 1_709_251_199 * 1_000_000_000 + 5;
        assert_eq!(
            trace_name("isi", ts, 7, Format::Pcapng),
            "isi-20240229-235959-000007.pcapng"
        );
        assert_eq!(
            trace_name("a-b", 0, 0, Format::PcapNs),
            "a-b-19700101-000000-000000.pcap"
        );
    }

    #[test]
    fn parse_inverts_trace_name() {
        for (ts, seq) in [(0u64, 0u64), (1_709_251_199, 12), (4_102_444_800, 999_999)] {
            let name = trace_name("site-x", ts * 1_000_000_000, seq, Format::Erf);
            assert_eq!(parse_trace_name(&name), Some(("site-x", ts, seq)), "{name}");
        }
        assert_eq!(parse_trace_name("x-2024-1.pcap"), None);
        assert_eq!(parse_trace_name("x-20241301-000000-1.pcap"), None);
    }

    #[test]
    fn with_seq_changes_only_the_sequence_number() {
        assert_eq!(
            with_seq("a-b-20240229-235959-000007.pcapng", 12).as_deref(),
            Some("a-b-20240229-235959-000012.pcapng")
        );
        assert_eq!(with_seq("notatrace.pcap", 1), None);
    }

    #[test]
    fn next_seq_is_past_existing_files_of_the_site() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(next_seq(dir.path(), "s").unwrap(), 0);
        for name in [
            "s-20240101-000000-000004.pcap",
            "s-20240101-000000-000009.pcap.json",
            "t-20240101-000000-000050.pcap",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(next_seq(dir.path(), "s").unwrap(), 10);
    }
}
