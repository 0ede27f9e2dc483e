//! What the cluster allows (`MaxArraySize`, `MaxJobCount` from `scontrol show config`, each
//! overridable in the configuration), and the back-off after failed submissions.

use std::time::{Duration, Instant};

/// Slurm's defaults, used when `scontrol` cannot tell.
const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;
const DEFAULT_MAX_JOB_COUNT: usize = 10_000;

/// First wait after a failed submission; it doubles per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The cluster's limits that shape submissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `MaxArraySize`: array indices run from 0 to this minus one.
    pub max_array_size: usize,
    /// `MaxJobCount`: most jobs the controller holds.
    pub max_job_count: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_array_size: DEFAULT_MAX_ARRAY_SIZE,
            max_job_count: DEFAULT_MAX_JOB_COUNT,
        }
    }
}

/// Parses `scontrol show config` (lines `Key = value`); missing keys keep Slurm's defaults.
pub fn parse_config(text: &str) -> Limits {
    let mut limits = Limits::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let Ok(n) = value.trim().parse::<usize>() else {
            continue;
        };
        match key.trim() {
            "MaxArraySize" if n > 0 => limits.max_array_size = n,
            "MaxJobCount" if n > 0 => limits.max_job_count = n,
            _ => {}
        }
    }
    limits
}

/// Exponential back-off of submissions after failures.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    /// Notes a failure; returns how long submissions now wait.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = FIRST_BACKOFF
            .saturating_mul(1u32 << (self.failures - 1).min(16))
            .min(MAX_BACKOFF);
        self.until = Some(Instant::now() + wait);
        wait
    }

    /// Notes a success.
    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }

    /// Whether a submission may be tried now.
    pub fn ready(&self) -> bool {
        self.until.is_none_or(|t| Instant::now() >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_scontrol_show_config() {
        let text = "Configuration data as of 2026-12-01T10:00:00\n\
                    MaxArraySize            = 501\nMaxJobCount             = 20000\n\
                    MaxJobId                = 67043328\nMinJobAge = 300 sec\n";
        let l = parse_config(text);
        assert_eq!((l.max_array_size, l.max_job_count), (501, 20000));
        assert_eq!(parse_config("garbage\n= =\n"), Limits::default());
    }

    #[test]
    fn backoff_doubles_up_to_a_limit_and_resets() {
        let mut b = Backoff::default();
        assert!(b.ready());
        assert_eq!(b.failed(), Duration::from_secs(2));
        assert!(!b.ready());
        assert_eq!(b.failed(), Duration::from_secs(4));
        for _ in 0..40 {
            b.failed();
        }
        assert_eq!(b.failed(), MAX_BACKOFF);
        b.succeeded();
        assert!(b.ready());
    }
}
