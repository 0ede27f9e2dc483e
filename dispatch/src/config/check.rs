//! The checks every field goes through: bounds of durations, sizes and counts, sizes in
//! words, names, and words handed to programs; each error names the field and its line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::ConfigError;

/// Longest duration a `*_secs` field may hold: 366 days.
pub const MAX_SECS: u64 = 366 * 86_400;

/// Longest retention a `*_days` field may hold: a century.
pub const MAX_DAYS: u64 = 36_525;

/// Largest size a size field may hold: 2^60 bytes (1 EiB).
pub const MAX_BYTES: u64 = lander_spool::size::MAX_SIZE;

/// Most retries of one item.
pub const MAX_RETRIES: u32 = 1000;

/// Most jobs the local backend runs at once.
pub const MAX_SLOTS: usize = 4096;

/// Largest queue limit.
pub const MAX_QUEUE: usize = 1_000_000;

/// Longest site or user name, in bytes: it is part of every file and job name.
pub const MAX_NAME: usize = 64;

/// Parses a size (`50GiB`, `2TB`, `1.5KiB`): the one rule of [`lander_spool::size`].
pub use lander_spool::size::parse_size;

pub(super) struct Validator<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Validator<'_> {
    /// An error at the field `table.key`, with the line of the key found in the text.
    pub(super) fn invalid(
        &self,
        table: &str,
        key: &str,
        message: impl fmt::Display,
    ) -> ConfigError {
        let field = if table.is_empty() {
            key.to_owned()
        } else {
            format!("{table}.{key}")
        };
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line: self.line_of(table, key),
            field,
            message: message.to_string(),
        }
    }

    /// The line of `key` inside `[table]` (or at top level), found by a plain scan.
    pub(super) fn line_of(&self, table: &str, key: &str) -> usize {
        let mut in_table = table.is_empty();
        for (i, line) in self.text.lines().enumerate() {
            let t = line.trim();
            if let Some(header) = t.strip_prefix('[') {
                let header = header.trim_start_matches('[').trim_end_matches(']').trim();
                in_table = header == table;
                if in_table && key.is_empty() {
                    return i + 1;
                }
                continue;
            }
            let k = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            if in_table && k == key {
                return i + 1;
            }
        }
        0
    }

    /// A whole number of seconds, at most [`MAX_SECS`].
    pub(super) fn secs(&self, table: &str, key: &str, secs: u64) -> Result<Duration, ConfigError> {
        if secs > MAX_SECS {
            let msg = format!("{secs} s is longer than the limit of {MAX_SECS} s (366 days)");
            return Err(self.invalid(table, key, msg));
        }
        Ok(Duration::from_secs(secs))
    }

    /// Seconds with a fraction: finite, not negative, at most [`MAX_SECS`].
    pub(super) fn secs_f64(
        &self,
        table: &str,
        key: &str,
        secs: f64,
    ) -> Result<Duration, ConfigError> {
        if !(0.0..=MAX_SECS as f64).contains(&secs) {
            let msg =
                format!("{secs:?} is not a number of seconds from 0 to {MAX_SECS} (366 days)");
            return Err(self.invalid(table, key, msg));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// A retention in days, at most [`MAX_DAYS`]; 0 is none.
    pub(super) fn days(
        &self,
        table: &str,
        key: &str,
        days: u64,
    ) -> Result<Option<Duration>, ConfigError> {
        if days > MAX_DAYS {
            let msg = format!("{days} days is longer than the limit of {MAX_DAYS} days");
            return Err(self.invalid(table, key, msg));
        }
        Ok((days > 0).then(|| Duration::from_secs(days * 86_400)))
    }

    /// A size like `"50GiB"`, at most [`MAX_BYTES`].
    pub(super) fn size(
        &self,
        table: &str,
        key: &str,
        text: Option<&str>,
    ) -> Result<Option<u64>, ConfigError> {
        text.map(parse_size)
            .transpose()
            .map_err(|e| self.invalid(table, key, e))
    }

    /// A count from `min` to `max`.
    pub(super) fn count<T>(
        &self,
        table: &str,
        key: &str,
        value: T,
        min: T,
        max: T,
    ) -> Result<T, ConfigError>
    where
        T: PartialOrd + fmt::Display + Copy,
    {
        if value < min || value > max {
            let msg = format!("{value} is not from {min} to {max}");
            return Err(self.invalid(table, key, msg));
        }
        Ok(value)
    }

    /// Words handed to a program (argv, paths): no NUL byte, which no program can receive.
    pub(super) fn words<'w>(
        &self,
        table: &str,
        key: &str,
        words: impl IntoIterator<Item = &'w str>,
    ) -> Result<(), ConfigError> {
        match words.into_iter().find(|w| w.contains('\0')) {
            Some(w) => Err(self.invalid(table, key, format!("{w:?} holds a NUL byte"))),
            None => Ok(()),
        }
    }

    /// An argv: not empty, a program name, no NUL byte.
    pub(super) fn argv(&self, table: &str, key: &str, argv: &[String]) -> Result<(), ConfigError> {
        match argv.first() {
            None => Err(self.invalid(table, key, "empty argv")),
            Some(p) if p.trim().is_empty() => Err(self.invalid(table, key, "empty program name")),
            Some(_) => self.words(table, key, argv.iter().map(String::as_str)),
        }
    }

    /// A path: not empty, no NUL byte.
    pub(super) fn path(&self, table: &str, key: &str, path: &Path) -> Result<(), ConfigError> {
        if path.as_os_str().is_empty() {
            return Err(self.invalid(table, key, "empty path"));
        }
        self.words(table, key, [path.to_string_lossy().as_ref()])
    }

    /// Environment variables: names without `=` or NUL, values without NUL.
    pub(super) fn env(
        &self,
        table: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        for name in env.keys() {
            if name.is_empty() || name.contains(['=', '\0']) {
                let msg = format!("bad environment variable name {name:?}");
                return Err(self.invalid(table, "env", msg));
            }
        }
        for (name, value) in env {
            self.words(&format!("{table}.env"), name, [value.as_str()])?;
        }
        Ok(())
    }
}

pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}
