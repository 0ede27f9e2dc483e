//! The one TOML configuration file: spool, sites, scrub settings, users, backend, limits.
//!
//! Every error names the file, the line and the field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::window::Window;

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
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// Line of the error (1-based; 0 when unknown).
        line: usize,
        /// What was wrong, naming the field.
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

/// What happens to a file after a job outcome that is not success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Run it again after a backoff, up to the retry limit; then fail.
    Retry,
    /// Move it to `failed/` with the reason.
    Fail,
    /// Treat it as finished.
    Ignore,
}

/// What happens to a finished input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterSuccess {
    /// Delete it.
    Remove,
    /// Keep it: users' files go to `done/`, raw files to the archive directory.
    #[serde(alias = "done")]
    Archive,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Spool root (shared storage).
    pub spool: PathBuf,
    /// SQLite history of the scrub dispatcher (local disk).
    pub state_db: PathBuf,
    /// SQLite history of a user dispatcher: `{user}` is replaced by the user's name.
    pub user_state_db: String,
    /// Fsync state files (claims, records) and published files.
    pub fsync: bool,
    /// Capture sites (directories under `raw/`).
    pub sites: Vec<String>,
    /// Scrub stage settings.
    pub scrub: Scrub,
    /// Users by name.
    pub users: BTreeMap<String, User>,
    /// Batch backend.
    pub backend: Backend,
    /// Most jobs submitted and not finished, per stage; over it the stage stops submitting.
    pub queue_limit: usize,
    /// Monitor thresholds.
    pub monitor: Monitor,
    /// Retention of old files.
    pub retention: Retention,
}

/// Scrub stage settings.
#[derive(Debug, Clone)]
pub struct Scrub {
    /// Program and leading arguments; `None` means `lander-scrub` beside the running binary.
    pub command: Option<Vec<String>>,
    /// Argument template: `{in}`, `{out}`, `{mapping}`, `{key}`, `{payload}`, `{checksums}`,
    /// `{mac}`, `{mpls}`.
    pub args: Vec<String>,
    /// Address mapping name.
    pub mapping: String,
    /// Key file.
    pub key_file: PathBuf,
    /// Payload policy.
    pub payload: String,
    /// Checksum policy.
    pub checksums: String,
    /// MAC address policy (`keep`, `zero`, `scramble`, `scramble-keep-oui`).
    pub mac: String,
    /// What follows an MPLS label stack (`auto`, `ip`, `ethernet`, `cut`).
    pub mpls: String,
    /// Environment added to the job's.
    pub env: BTreeMap<String, String>,
    /// Job time limit.
    pub timeout: Duration,
    /// How many times a failed scrub is retried.
    pub retries: u32,
    /// First retry delay (doubled each time).
    pub backoff: Duration,
    /// Check the output's BLAKE3 against its manifest before publishing.
    pub verify_digest: bool,
    /// What happens to the raw file once scrubbed and fanned out.
    pub raw_after: AfterSuccess,
}

/// One user's subscription and processor.
#[derive(Debug, Clone)]
pub struct User {
    /// Sites whose scrubbed files this user receives.
    pub subscriptions: Vec<String>,
    /// The processor: argv, never a shell string.
    pub processor: Vec<String>,
    /// Environment added to the processor's.
    pub env: BTreeMap<String, String>,
    /// Processor time limit; the whole process group is ended after it.
    pub timeout: Duration,
    /// How many times a file is retried.
    pub retries: u32,
    /// First retry delay (doubled each time).
    pub backoff: Duration,
    /// What happens to a processed file.
    pub on_success: AfterSuccess,
    /// Action by exit code.
    pub on_exit: BTreeMap<i32, Action>,
    /// Action for exit codes not in `on_exit`.
    pub on_exit_default: Action,
    /// Action when the time limit ended the job.
    pub on_timeout: Action,
    /// Action when the job died of a signal.
    pub on_crash: Action,
    /// Allowed time windows; empty means always.
    pub windows: Vec<Window>,
    /// Whether `windows` are in local time (`timezone = "local"`) rather than UTC.
    pub local_time: bool,
    /// Most bytes the user's directory may hold (`quota = "50GiB"`); checked by `lander quota`.
    pub quota: Option<u64>,
}

/// Which batch backend runs the jobs.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The batch system.
    pub kind: BackendKind,
    /// Slurm settings (used when `kind` is Slurm).
    pub slurm: Slurm,
    /// Jobs run at once by the local backend.
    pub slots: usize,
    /// Time between TERM and KILL when a job is ended.
    pub grace: Duration,
}

/// The batch systems jobs can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Child process groups on the dispatcher's host.
    Local,
    /// Slurm batch jobs.
    Slurm,
}

/// Slurm settings (`[backend.slurm]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slurm {
    /// Partition (`--partition`); the cluster's default when `None`.
    pub partition: Option<String>,
    /// Time limit (`--time`, Slurm's syntax); when `None`, the job's own limit plus its grace
    /// period and a minute.
    pub time_limit: Option<String>,
    /// More `sbatch` arguments, one word each.
    pub extra_args: Vec<String>,
    /// The `sbatch` program.
    pub sbatch: String,
    /// The `squeue` program.
    pub squeue: String,
    /// The `scancel` program.
    pub scancel: String,
}

impl Default for Slurm {
    fn default() -> Self {
        Slurm {
            partition: None,
            time_limit: None,
            extra_args: Vec::new(),
            sbatch: "sbatch".into(),
            squeue: "squeue".into(),
            scancel: "scancel".into(),
        }
    }
}

/// Monitor thresholds.
#[derive(Debug, Clone)]
pub struct Monitor {
    /// Work waiting longer than this without a job is reported.
    pub stale_after: Duration,
    /// A job submitted and not started after this is reported.
    pub start_timeout: Duration,
    /// A capture site with no new raw file for this long is reported as silent.
    pub silent_after: Duration,
    /// Temporary files older than this in state directories are removed.
    pub temp_max_age: Duration,
    /// A submitted job with no start marker after this long, unknown to the backend, is lost.
    pub lost_grace: Duration,
    /// Least time between rescans of input directories.
    pub rescan: Duration,
}

/// Retention of old files, per class: `<class>_days` (0, the default, keeps forever) and
/// `<class>_max` (a size like `"50GiB"`: the oldest are removed until the class is under it;
/// none by default). `done` and `failed` limits apply to each user's directory.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    /// Scrubbed files and their manifests.
    pub scrubbed: Rule,
    /// Archived raw files (`raw_after = "archive"`).
    pub archive: Rule,
    /// Users' `done/` files.
    pub done: Rule,
    /// Users' `failed/` files (with their reasons).
    pub failed: Rule,
    /// Job logs.
    pub logs: Rule,
    /// Run records, and users' markers of finished files.
    pub records: Rule,
}

/// How long and how much of one class of files is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rule {
    /// Files older than this go.
    pub max_age: Option<Duration>,
    /// Past this many bytes, the oldest go.
    pub max_bytes: Option<u64>,
}

/// Parses a size: bytes, or a number with a unit: `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB`
/// (powers of 1024) or `KB`, `MB`, `GB`, `TB` (powers of 1000); case and spaces do not matter.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("bad size {text:?} (expected like 500MiB or 50GB)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    Ok((number * scale) as u64)
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            line: e.span().map_or(0, |s| line_at(text, s.start)),
            message: e.message().to_owned(),
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

    /// The history database of user `name`.
    pub fn user_db(&self, name: &str) -> PathBuf {
        PathBuf::from(self.user_state_db.replace("{user}", name))
    }
}

impl User {
    /// The action for a job that ended with this outcome (`None` for success).
    pub fn action_for(&self, outcome: &crate::record::Outcome) -> Option<Action> {
        use crate::record::Outcome;
        match outcome {
            Outcome::Success => None,
            Outcome::Exit(code) => Some(*self.on_exit.get(code).unwrap_or(&self.on_exit_default)),
            Outcome::Timeout => Some(self.on_timeout),
            Outcome::Signal(_) => Some(self.on_crash),
            Outcome::Cancelled => Some(Action::Fail),
            Outcome::SpawnFailed(_) => Some(Action::Fail),
        }
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    /// An error at the field `table.key`, with the line of the key found in the text.
    fn invalid(&self, table: &str, key: &str, message: impl fmt::Display) -> ConfigError {
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
    fn line_of(&self, table: &str, key: &str) -> usize {
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
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    spool: PathBuf,
    state_db: Option<PathBuf>,
    user_state_db: Option<String>,
    #[serde(default = "default_true")]
    fsync: bool,
    sites: Vec<String>,
    #[serde(default)]
    scrub: RawScrub,
    #[serde(default)]
    users: BTreeMap<String, RawUser>,
    #[serde(default)]
    backend: RawBackend,
    #[serde(default)]
    queue: RawQueue,
    #[serde(default)]
    monitor: RawMonitor,
    #[serde(default)]
    retention: RawRetention,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawScrub {
    command: Option<Vec<String>>,
    args: Vec<String>,
    mapping: String,
    key_file: PathBuf,
    payload: String,
    checksums: String,
    mac: String,
    mpls: String,
    env: BTreeMap<String, String>,
    timeout_secs: u64,
    retries: u32,
    backoff_secs: u64,
    verify_digest: bool,
    raw_after: AfterSuccess,
}

impl Default for RawScrub {
    fn default() -> Self {
        let args = [
            "--mapping",
            "{mapping}",
            "--key",
            "{key}",
            "--payload",
            "{payload}",
        ];
        let args2 = [
            "--checksums",
            "{checksums}",
            "--mac",
            "{mac}",
            "--mpls",
            "{mpls}",
            "{in}",
            "{out}",
        ];
        Self {
            command: None,
            args: args.iter().chain(&args2).map(|s| (*s).to_owned()).collect(),
            mapping: "cryptopan".into(),
            key_file: PathBuf::from("/etc/lander/key"),
            payload: "zero".into(),
            checksums: "fix".into(),
            mac: "keep".into(),
            mpls: "auto".into(),
            env: BTreeMap::new(),
            timeout_secs: 3600,
            retries: 3,
            backoff_secs: 30,
            verify_digest: true,
            raw_after: AfterSuccess::Remove,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    subscriptions: Vec<String>,
    processor: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default = "default_user_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_retries")]
    retries: u32,
    #[serde(default = "default_backoff")]
    backoff_secs: u64,
    #[serde(default = "default_on_success")]
    on_success: AfterSuccess,
    #[serde(default)]
    on_exit: BTreeMap<String, Action>,
    #[serde(default = "default_retry")]
    on_timeout: Action,
    #[serde(default = "default_retry")]
    on_crash: Action,
    #[serde(default)]
    windows: Vec<RawWindow>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    quota: Option<String>,
}

fn default_user_timeout() -> u64 {
    3600
}
fn default_retries() -> u32 {
    2
}
fn default_backoff() -> u64 {
    60
}
fn default_on_success() -> AfterSuccess {
    AfterSuccess::Archive
}
fn default_retry() -> Action {
    Action::Retry
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    #[serde(default = "star")]
    days: String,
    #[serde(default = "star")]
    hours: String,
}

fn star() -> String {
    "*".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBackend {
    kind: String,
    slots: usize,
    grace_secs: u64,
    slurm: RawSlurm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSlurm {
    partition: Option<String>,
    time_limit: Option<String>,
    extra_args: Vec<String>,
    sbatch: Option<String>,
    squeue: Option<String>,
    scancel: Option<String>,
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
        ];
        for (key, value) in fields {
            if value.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(v.invalid(table, key, "must not be empty"));
            }
        }
        // A first word that is not an option would be taken by sbatch as the script.
        if let Some(a) = self.extra_args.first().filter(|a| !a.starts_with('-')) {
            let msg = format!("{a:?} is not an option (argv words, like [\"--qos=low\"])");
            return Err(v.invalid(table, "extra_args", msg));
        }
        let d = Slurm::default();
        Ok(Slurm {
            partition: self.partition,
            time_limit: self.time_limit,
            extra_args: self.extra_args,
            sbatch: self.sbatch.unwrap_or(d.sbatch),
            squeue: self.squeue.unwrap_or(d.squeue),
            scancel: self.scancel.unwrap_or(d.scancel),
        })
    }
}

impl Default for RawBackend {
    fn default() -> Self {
        let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            kind: "local".into(),
            slots,
            grace_secs: 10,
            slurm: RawSlurm::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawQueue {
    limit: usize,
}

impl Default for RawQueue {
    fn default() -> Self {
        Self { limit: 1000 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMonitor {
    stale_secs: u64,
    start_timeout_secs: u64,
    silent_secs: u64,
    temp_max_age_secs: u64,
    lost_grace_secs: f64,
    rescan_secs: f64,
}

impl Default for RawMonitor {
    fn default() -> Self {
        Self {
            stale_secs: 600,
            start_timeout_secs: 600,
            silent_secs: 3600,
            temp_max_age_secs: 3600,
            lost_grace_secs: 30.0,
            rescan_secs: 1.0,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetention {
    scrubbed_days: u64,
    scrubbed_max: Option<String>,
    archive_days: u64,
    archive_max: Option<String>,
    done_days: u64,
    done_max: Option<String>,
    failed_days: u64,
    failed_max: Option<String>,
    logs_days: u64,
    logs_max: Option<String>,
    records_days: u64,
    records_max: Option<String>,
}

impl RawRetention {
    fn validate(&self, v: &Validator<'_>) -> Result<Retention, ConfigError> {
        let rule = |class: &str, days: u64, max: &Option<String>| -> Result<Rule, ConfigError> {
            let max_bytes = max
                .as_deref()
                .map(parse_size)
                .transpose()
                .map_err(|e| v.invalid("retention", &format!("{class}_max"), e))?;
            let max_age = (days > 0).then(|| secs(days * 86_400));
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

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl RawConfig {
    fn validate(self, v: &Validator<'_>) -> Result<Config, ConfigError> {
        for site in &self.sites {
            if !valid_name(site) {
                return Err(v.invalid("", "sites", format!("bad site name {site:?}")));
            }
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
        if self.backend.slots == 0 {
            return Err(v.invalid("backend", "slots", "must be at least 1"));
        }
        if self.queue.limit == 0 {
            return Err(v.invalid("queue", "limit", "must be at least 1"));
        }
        let scrub = self.scrub.validate(v)?;
        let mut users = BTreeMap::new();
        for (name, raw) in self.users {
            if !valid_name(&name) {
                return Err(v.invalid("users", &name, "bad user name"));
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
            backend: Backend {
                kind,
                slurm,
                slots: self.backend.slots,
                grace: secs(self.backend.grace_secs),
            },
            queue_limit: self.queue.limit,
            monitor: Monitor {
                stale_after: secs(self.monitor.stale_secs),
                start_timeout: secs(self.monitor.start_timeout_secs),
                silent_after: secs(self.monitor.silent_secs),
                temp_max_age: secs(self.monitor.temp_max_age_secs),
                lost_grace: Duration::from_secs_f64(self.monitor.lost_grace_secs.max(0.1)),
                rescan: Duration::from_secs_f64(self.monitor.rescan_secs.max(0.0)),
            },
            retention: self.retention.validate(v)?,
        })
    }
}

fn default_state_dir_db() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    base.join("lander").join("dispatch.sqlite")
}

fn default_user_db(state_db: &Path) -> String {
    let dir = state_db.parent().unwrap_or(Path::new("."));
    dir.join("user-{user}.sqlite")
        .to_string_lossy()
        .into_owned()
}

impl RawScrub {
    fn validate(self, v: &Validator<'_>) -> Result<Scrub, ConfigError> {
        if let Some(cmd) = &self.command {
            if cmd.is_empty() {
                return Err(v.invalid("scrub", "command", "empty argv"));
            }
        }
        if !self.args.iter().any(|a| a.contains("{out}")) {
            return Err(v.invalid("scrub", "args", "must contain {out}"));
        }
        let macs = ["keep", "zero", "scramble", "scramble-keep-oui"];
        if !macs.contains(&self.mac.as_str()) {
            return Err(v.invalid("scrub", "mac", format!("one of {}", macs.join(", "))));
        }
        let mpls = ["auto", "ip", "ethernet", "cut"];
        if !mpls.contains(&self.mpls.as_str()) {
            return Err(v.invalid("scrub", "mpls", format!("one of {}", mpls.join(", "))));
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
            timeout: secs(self.timeout_secs),
            retries: self.retries,
            backoff: secs(self.backoff_secs),
            verify_digest: self.verify_digest,
            raw_after: self.raw_after,
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
        if self.processor.is_empty() {
            return Err(v.invalid(&table, "processor", "empty argv"));
        }
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
            let code: i32 = code.parse().map_err(|_| {
                v.invalid(
                    &format!("{table}.on_exit"),
                    &code,
                    "expected an exit code or `default`",
                )
            })?;
            on_exit.insert(code, action);
        }
        let mut windows = Vec::new();
        for w in &self.windows {
            let window = Window::parse(&w.days, &w.hours).map_err(|e| {
                let msg = format!("{e} (times are UTC unless the user sets timezone = \"local\")");
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
        let quota = self
            .quota
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|e| v.invalid(&table, "quota", e))?;
        Ok(User {
            local_time,
            quota,
            subscriptions: self.subscriptions,
            processor: self.processor,
            env: self.env,
            timeout: secs(self.timeout_secs),
            retries: self.retries,
            backoff: secs(self.backoff_secs),
            on_success: self.on_success,
            on_exit,
            on_exit_default,
            on_timeout: self.on_timeout,
            on_crash: self.on_crash,
            windows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
spool = "/srv/lander"
state_db = "/var/lib/lander/d.sqlite"
sites = ["ucla", "isi"]

[scrub]
mapping = "cryptopant"
key_file = "/etc/lander/key"

[users.alice]
subscriptions = ["ucla"]
processor = ["/bin/echo", "hello"]
timeout_secs = 5
on_exit = { "3" = "ignore", default = "retry" }
windows = [ { days = "mon-fri", hours = "22:00-06:00" } ]

[backend]
slots = 3
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("lander.toml"), text)
    }

    #[test]
    fn good_config_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.sites, ["ucla", "isi"]);
        assert_eq!(c.backend.slots, 3);
        let alice = &c.users["alice"];
        assert_eq!(alice.on_exit[&3], Action::Ignore);
        assert_eq!(alice.on_exit_default, Action::Retry);
        assert_eq!(alice.timeout, Duration::from_secs(5));
        assert_eq!(
            c.user_db("alice"),
            PathBuf::from("/var/lib/lander/user-alice.sqlite")
        );
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let text = GOOD.replace("slots = 3", "slots = 3\nslotz = 4");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("lander.toml:"), "{err}");
        assert!(err.contains("slotz"), "{err}");
        let line: usize = err.split(':').nth(1).unwrap().parse().unwrap();
        assert_eq!(text.lines().nth(line - 1).unwrap().trim(), "slotz = 4");
    }

    #[test]
    fn wrong_type_names_line() {
        let text = GOOD.replace("timeout_secs = 5", "timeout_secs = \"five\"");
        let err = parse(&text).unwrap_err();
        let ConfigError::Parse { line, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(
            text.lines().nth(line - 1).unwrap().trim(),
            "timeout_secs = \"five\""
        );
    }

    #[test]
    fn unknown_subscription_names_field_and_line() {
        let text = GOOD.replace("subscriptions = [\"ucla\"]", "subscriptions = [\"mars\"]");
        let err = parse(&text).unwrap_err();
        let ConfigError::Invalid {
            line, ref field, ..
        } = err
        else {
            panic!("{err}")
        };
        assert_eq!(field, "users.alice.subscriptions");
        assert!(text.lines().nth(line - 1).unwrap().contains("mars"));
    }

    #[test]
    fn bad_window_is_reported() {
        let text = GOOD.replace("22:00-06:00", "22:00-30:00");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("users.alice.windows"), "{err}");
    }

    #[test]
    fn scrub_mac_and_mpls_policies() {
        let c = parse(GOOD).unwrap();
        assert_eq!(
            (c.scrub.mac.as_str(), c.scrub.mpls.as_str()),
            ("keep", "auto")
        );
        assert!(c.scrub.args.windows(2).any(|w| w == ["--mac", "{mac}"]));
        let text = GOOD.replace("[scrub]\n", "[scrub]\nmac = \"scramble-keep-oui\"\n");
        assert_eq!(parse(&text).unwrap().scrub.mac, "scramble-keep-oui");
        let text = GOOD.replace("[scrub]\n", "[scrub]\nmpls = \"guess\"\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("scrub.mpls") && err.contains("ethernet"),
            "{err}"
        );
    }

    #[test]
    fn slurm_backend_parses_with_defaults() {
        let c = parse(&GOOD.replace("slots = 3", "kind = \"slurm\"")).unwrap();
        assert_eq!(c.backend.kind, BackendKind::Slurm);
        assert_eq!(c.backend.slurm, Slurm::default());
        let text = GOOD.replace("slots = 3", "kind = \"slurm\"")
            + "\n[backend.slurm]\npartition = \"lander\"\ntime_limit = \"2:00:00\"\n\
               extra_args = [\"--qos=low\"]\nsbatch = \"/opt/slurm/bin/sbatch\"\n";
        let s = parse(&text).unwrap().backend.slurm;
        assert_eq!(s.partition.as_deref(), Some("lander"));
        assert_eq!(s.time_limit.as_deref(), Some("2:00:00"));
        assert_eq!(s.extra_args, ["--qos=low"]);
        assert_eq!(s.sbatch, "/opt/slurm/bin/sbatch");
        assert_eq!(s.squeue, "squeue");
    }

    #[test]
    fn slurm_errors_name_field_and_line() {
        let text = GOOD.replace("slots = 3", "kind = \"pbs\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("backend.kind") && err.contains("slurm"),
            "{err}"
        );
        let text = GOOD.to_owned() + "\n[backend.slurm]\nextra_args = [\"qos=low\"]\n";
        let err = parse(&text).unwrap_err();
        let ConfigError::Invalid {
            line, ref field, ..
        } = err
        else {
            panic!("{err}")
        };
        assert_eq!(field, "backend.slurm.extra_args");
        assert!(text
            .lines()
            .nth(line - 1)
            .unwrap()
            .starts_with("extra_args"));
        let text = GOOD.to_owned() + "\n[backend.slurm]\nsqueu = \"x\"\n";
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("squeu"), "{err}");
    }

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("50GiB"), Ok(50 << 30));
        assert_eq!(parse_size("50 g"), Ok(50 << 30));
        assert_eq!(parse_size("2TB"), Ok(2_000_000_000_000));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("GiB").is_err());
    }

    #[test]
    fn retention_quota_and_timezone_are_read() {
        let text = GOOD.replace(
            "timeout_secs = 5",
            "timeout_secs = 5\nquota = \"2GiB\"\ntimezone = \"local\"",
        )
            + "\n[retention]\nscrubbed_days = 30\nscrubbed_max = \"1TiB\"\nlogs_days = 7\n";
        let c = parse(&text).unwrap();
        assert_eq!(c.users["alice"].quota, Some(2 << 30));
        assert!(c.users["alice"].local_time);
        let r = &c.retention;
        assert_eq!(r.scrubbed.max_age, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(r.scrubbed.max_bytes, Some(1 << 40));
        assert_eq!(r.done, Rule::default());
        let bad = text.replace("\"1TiB\"", "\"lots\"");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains("retention.scrubbed_max"), "{err}");
        let bad = text.replace("\"local\"", "\"mars\"");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(
            err.contains("users.alice.timezone") && err.contains("utc"),
            "{err}"
        );
    }

    #[test]
    fn shell_string_processor_is_rejected() {
        let text = GOOD.replace(
            "processor = [\"/bin/echo\", \"hello\"]",
            "processor = \"echo hi\"",
        );
        assert!(parse(&text).is_err());
    }
}
