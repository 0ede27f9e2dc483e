//! From what serde read to the validated configuration: every field checked, with the
//! file, line and field of the first that cannot be used.

use std::collections::BTreeMap;
use std::path::Path;

use crate::window::Window;

use super::check::{valid_name, Validator, MAX_NAME, MAX_QUEUE, MAX_RETRIES, MAX_SLOTS};
use super::defaults::{default_state_dir_db, default_user_db};
use super::raw::{RawConfig, RawRetention, RawScrub, RawSlurm, RawUser};
use super::types::{
    Action, BackendConfig, BackendKind, Config, Retention, Rule, Scrub, Slurm, User,
};
use super::ConfigError;

impl RawConfig {
    pub(super) fn validate(self, v: &Validator<'_>) -> Result<Config, ConfigError> {
        for (i, site) in self.sites.iter().enumerate() {
            if !valid_name(site) {
                let msg = format!(
                    "bad site name {site:?} (1 to {MAX_NAME} letters, digits, `-`, `_`, `.`)"
                );
                return Err(v.invalid("", "sites", msg));
            }
            if self.sites[..i].contains(site) {
                return Err(v.invalid("", "sites", format!("{site:?} is named twice")));
            }
        }
        v.path("", "spool", &self.spool)?;
        if let Some(db) = &self.state_db {
            v.path("", "state_db", db)?;
        }
        if let Some(db) = &self.user_state_db {
            v.path("", "user_state_db", Path::new(db))?;
        }
        let kind = match self.backend.kind.as_str() {
            "local" => BackendKind::Local,
            "slurm" => BackendKind::Slurm,
            other => {
                let msg = format!("unknown backend {other:?} (available: local, slurm)");
                return Err(v.invalid("backend", "kind", msg));
            }
        };
        let slurm = self.backend.slurm.validate(v)?;
        let slots = v.count("backend", "slots", self.backend.slots, 1, MAX_SLOTS)?;
        let grace = v.secs("backend", "grace_secs", self.backend.grace_secs)?;
        let heartbeat = v.secs_f64("backend", "heartbeat_secs", self.backend.heartbeat_secs)?;
        let attr_cache = match self.backend.attr_cache_secs {
            Some(s) => Some(v.secs_f64("backend", "attr_cache_secs", s)?),
            None => None,
        };
        let queue_limit = v.count("queue", "limit", self.queue.limit, 1, MAX_QUEUE)?;
        let monitor = self.monitor.validate(v)?;
        let notify = super::monitor::validate_notify(v, &self.notify, &self.users)?;
        let retention = self.retention.validate(v)?;
        let scrub = self.scrub.validate(v)?;
        let mut users = BTreeMap::new();
        for (name, raw) in self.users {
            if !valid_name(&name) {
                let msg = format!("bad user name (1 to {MAX_NAME} letters, digits, `-`, `_`, `.`)");
                return Err(v.invalid("users", &name, msg));
            }
            let user = raw.validate(v, &name, &self.sites)?;
            users.insert(name, user);
        }
        let state_db = self.state_db.unwrap_or_else(default_state_dir_db);
        Ok(Config {
            path: v.path.to_owned(),
            spool: self.spool,
            user_state_db: self
                .user_state_db
                .unwrap_or_else(|| default_user_db(&state_db)),
            state_db,
            fsync: self.fsync,
            sites: self.sites,
            scrub,
            users,
            backend: BackendConfig {
                kind,
                slurm,
                slots,
                grace,
                heartbeat,
                attr_cache,
            },
            queue_limit,
            monitor,
            notify,
            retention,
        })
    }
}

impl RawScrub {
    fn validate(self, v: &Validator<'_>) -> Result<Scrub, ConfigError> {
        let t = "scrub";
        if let Some(cmd) = &self.command {
            v.argv(t, "command", cmd)?;
        }
        if !self.args.iter().any(|a| a.contains("{out}")) {
            return Err(v.invalid(t, "args", "must contain {out}"));
        }
        v.words(t, "args", self.args.iter().map(String::as_str))?;
        v.env(t, &self.env)?;
        v.path(t, "key_file", &self.key_file)?;
        self.mapping
            .parse::<lander_anonymize::Mapping>()
            .map_err(|e| v.invalid(t, "mapping", e))?;
        lander_anonymize::scrub::parse_payload(&self.payload)
            .map_err(|e| v.invalid(t, "payload", e))?;
        lander_anonymize::scrub::parse_checksums(&self.checksums)
            .map_err(|e| v.invalid(t, "checksums", e))?;
        let macs = ["keep", "zero", "scramble", "scramble-keep-oui"];
        if !macs.contains(&self.mac.as_str()) {
            return Err(v.invalid(t, "mac", format!("one of {}", macs.join(", "))));
        }
        let mpls = ["auto", "ip", "ethernet", "cut"];
        if !mpls.contains(&self.mpls.as_str()) {
            return Err(v.invalid(t, "mpls", format!("one of {}", mpls.join(", "))));
        }
        Ok(Scrub {
            command: self.command,
            args: self.args,
            mapping: self.mapping,
            key_file: self.key_file,
            payload: self.payload,
            checksums: self.checksums,
            mac: self.mac,
            mpls: self.mpls,
            env: self.env,
            timeout: v.secs(t, "timeout_secs", self.timeout_secs)?,
            retries: v.count(t, "retries", self.retries, 0, MAX_RETRIES)?,
            backoff: v.secs(t, "backoff_secs", self.backoff_secs)?,
            verify_digest: self.verify_digest,
            raw_after: self.raw_after,
            scrubbed_group: self.scrubbed_group,
        })
    }
}

impl RawUser {
    fn validate(
        self,
        v: &Validator<'_>,
        name: &str,
        sites: &[String],
    ) -> Result<User, ConfigError> {
        let table = format!("users.{name}");
        v.argv(&table, "processor", &self.processor)?;
        v.env(&table, &self.env)?;
        for s in &self.subscriptions {
            if !sites.contains(s) {
                return Err(v.invalid(&table, "subscriptions", format!("unknown site {s:?}")));
            }
        }
        let mut on_exit = BTreeMap::new();
        let mut on_exit_default = Action::Fail;
        for (code, action) in self.on_exit {
            if code == "default" {
                on_exit_default = action;
                continue;
            }
            let code = code
                .parse::<i32>()
                .ok()
                .filter(|c| (1..=255).contains(c))
                .ok_or_else(|| {
                    let msg = "expected an exit code from 1 to 255, or `default`";
                    v.invalid(&format!("{table}.on_exit"), &code, msg)
                })?;
            on_exit.insert(code, action);
        }
        let mut windows = Vec::new();
        for (i, w) in self.windows.iter().enumerate() {
            let window = Window::parse(&w.days, &w.hours).map_err(|e| {
                let msg = format!(
                    "window {}: {e} (times are UTC unless the user sets timezone = \"local\")",
                    i + 1
                );
                v.invalid(&table, "windows", msg)
            })?;
            windows.push(window);
        }
        let local_time = match self.timezone.as_deref().map(str::to_ascii_lowercase) {
            None => false,
            Some(tz) if tz == "utc" => false,
            Some(tz) if tz == "local" => true,
            Some(tz) => {
                let msg = format!(
                    "unknown timezone {tz:?} (windows are in \"utc\", the default, or \"local\")"
                );
                return Err(v.invalid(&table, "timezone", msg));
            }
        };
        let quota = v.size(&table, "quota", self.quota.as_deref())?;
        let valid_account = |a: &String| {
            !a.is_empty() && a != "root" && a.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        };
        if let Some(a) = self.run_as.as_ref().filter(|a| !valid_account(a)) {
            let msg = format!("{a:?} is not an account a processor may run as");
            return Err(v.invalid(&table, "run_as", msg));
        }
        Ok(User {
            run_as: self.run_as,
            local_time,
            quota,
            subscriptions: self.subscriptions,
            processor: self.processor,
            env: self.env,
            timeout: v.secs(&table, "timeout_secs", self.timeout_secs)?,
            retries: v.count(&table, "retries", self.retries, 0, MAX_RETRIES)?,
            backoff: v.secs(&table, "backoff_secs", self.backoff_secs)?,
            on_success: self.on_success,
            on_exit,
            on_exit_default,
            on_timeout: self.on_timeout,
            on_crash: self.on_crash,
            windows,
        })
    }
}

impl RawSlurm {
    fn validate(self, v: &Validator<'_>) -> Result<Slurm, ConfigError> {
        let table = "backend.slurm";
        let fields = [
            ("partition", &self.partition),
            ("time_limit", &self.time_limit),
            ("sbatch", &self.sbatch),
            ("squeue", &self.squeue),
            ("scancel", &self.scancel),
            ("scontrol", &self.scontrol),
        ];
        for (key, value) in fields {
            if value.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(v.invalid(table, key, "must not be empty"));
            }
            v.words(table, key, value.as_deref())?;
        }
        v.words(
            table,
            "extra_args",
            self.extra_args.iter().map(String::as_str),
        )?;
        // A first word that is not an option would be taken by sbatch as the script.
        if let Some(a) = self.extra_args.first().filter(|a| !a.starts_with('-')) {
            let msg = format!("{a:?} is not an option (argv words, like [\"--qos=low\"])");
            return Err(v.invalid(table, "extra_args", msg));
        }
        for (key, value) in [
            ("max_array_size", self.max_array_size),
            ("max_jobs", self.max_jobs),
        ] {
            if value == Some(0) {
                return Err(v.invalid(table, key, "must be at least 1"));
            }
        }
        let d = Slurm::default();
        Ok(Slurm {
            partition: self.partition,
            time_limit: self.time_limit,
            extra_args: self.extra_args,
            sbatch: self.sbatch.unwrap_or(d.sbatch),
            squeue: self.squeue.unwrap_or(d.squeue),
            scancel: self.scancel.unwrap_or(d.scancel),
            scontrol: self.scontrol.unwrap_or(d.scontrol),
            array_throttle: self.array_throttle.unwrap_or(d.array_throttle),
            max_array_size: self.max_array_size,
            max_jobs: self.max_jobs,
        })
    }
}

impl RawRetention {
    fn validate(&self, v: &Validator<'_>) -> Result<Retention, ConfigError> {
        let rule = |class: &str, days: u64, max: &Option<String>| -> Result<Rule, ConfigError> {
            let max_bytes = v.size("retention", &format!("{class}_max"), max.as_deref())?;
            let max_age = v.days("retention", &format!("{class}_days"), days)?;
            Ok(Rule { max_age, max_bytes })
        };
        Ok(Retention {
            scrubbed: rule("scrubbed", self.scrubbed_days, &self.scrubbed_max)?,
            archive: rule("archive", self.archive_days, &self.archive_max)?,
            done: rule("done", self.done_days, &self.done_max)?,
            failed: rule("failed", self.failed_days, &self.failed_max)?,
            logs: rule("logs", self.logs_days, &self.logs_max)?,
            records: rule("records", self.records_days, &self.records_max)?,
        })
    }
}
