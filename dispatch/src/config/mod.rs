//! The one TOML configuration file: spool, sites, scrub settings, users, backend, limits.
//!
//! Two stages, as ripgrep's arguments: `raw` is what serde reads (every field with its
//! default from `defaults`); `validate` checks each field with the bounds of `check` and
//! builds the validated [`Config`] (`types`), which the rest of the crate uses. Every error
//! names the file, the line and the field; no value in the file can make loading panic.

use std::path::{Path, PathBuf};

mod check;
mod defaults;
mod monitor;
mod raw;
#[cfg(test)]
mod tests;
mod types;
mod validate;

pub use check::{
    parse_size, MAX_BYTES, MAX_DAYS, MAX_NAME, MAX_QUEUE, MAX_RETRIES, MAX_SECS, MAX_SLOTS,
};
pub use types::{
    Action, AfterSuccess, BackendConfig, BackendKind, Config, MinFree, Monitor, Notify, NotifyKind,
    Retention, Rule, Scrub, Slurm, User,
};

use crate::layout::{Spool, StageDirs};
use check::Validator;
use raw::RawConfig;

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The configuration file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or a field has the wrong type, or is unknown or missing.
    #[error("{path}:{line}: {}{message}", in_field(.field))]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// Line of the error (1-based; 0 when unknown).
        line: usize,
        /// Dotted path of the field (empty for the whole file): `users.alice.timeout_secs`, or
        /// the table that lacks a field or has an unknown one (the message names it).
        field: String,
        /// What was wrong.
        message: String,
    },
    /// A field has a value that cannot be used.
    #[error("{path}:{line}: field `{field}`: {message}")]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// Line of the field (1-based; 0 when unknown).
        line: usize,
        /// Dotted path of the field, like `users.alice.windows`.
        field: String,
        /// What was wrong.
        message: String,
    },
}

fn in_field(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates configuration text; `path` is used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let e = e.into_inner();
            ConfigError::Parse {
                path: path.to_owned(),
                line: e.span().map_or(0, |s| line_at(text, s.start)),
                field: if field == "." { String::new() } else { field },
                message: e.message().to_owned(),
            }
        })?;
        let v = Validator { path, text };
        raw.validate(&v)
    }

    /// The user, or an error naming the known users.
    pub fn user(&self, name: &str) -> Result<&User, ConfigError> {
        self.users.get(name).ok_or_else(|| ConfigError::Invalid {
            path: self.path.clone(),
            line: 0,
            field: format!("users.{name}"),
            message: format!(
                "no such user (configured: {})",
                self.users.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// The state directories of a stage named `scrub` or `user/<name>` of a configured user.
    pub fn stage_dirs(&self, stage: &str) -> Option<StageDirs> {
        let known = match stage.strip_prefix("user/") {
            Some(user) => self.users.contains_key(user),
            None => true,
        };
        known
            .then(|| Spool::new(&self.spool).stage_dirs(stage))
            .flatten()
    }

    /// The history database of user `name`.
    pub fn user_db(&self, name: &str) -> PathBuf {
        PathBuf::from(self.user_state_db.replace("{user}", name))
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
