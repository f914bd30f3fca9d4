//! The configuration of `kmswatch serve`: the validated [`ServeConfig`] and loading it from a TOML
//! file plus environment overrides, reporting every problem at once with `file:line:col`.
//!
//! Two stages (see `kmswatch.example.toml` for every option):
//! - `raw`: serde structs mirroring the file, every field optional, unknown fields denied;
//!   `read` turns the text into them, keeping every syntax error, unknown field and wrongly typed
//!   value as a problem (a bad entry is dropped and reading goes on);
//! - `validate`: applies the environment overrides and the defaults, checks ranges and formats
//!   and yields the typed values below, or every problem found.
//!
//! `problems` collects the problems of both stages, located in the file or in a variable;
//! `formats` says what valid URLs, regions, bucket names and addresses look like.

mod formats;
mod problems;
mod raw;
mod read;
mod validate;

pub use validate::MAX_SPAN_SECS;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::decode::DecodeLimits;
use crate::engine::EngineConfig;
use crate::problem::{read_text, Problem, ReadError, Source};
use crate::retry::RetryPolicy;
use crate::sinks::LinkTemplate;

/// Everything `kmswatch serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub source: SourceConfig,
    pub engine: EngineConfig,
    pub decode: DecodeLimits,
    /// Rule files or directories; relative paths in the file are resolved against its directory.
    pub rules: Vec<PathBuf>,
    /// Where durable state is saved; `None`: the service starts empty after each restart.
    pub state: Option<StateConfig>,
    pub http: HttpConfig,
    pub metrics: MetricsConfig,
    pub alerts: AlertsConfig,
    pub log: LogConfig,
    /// How long a graceful shutdown (drain, flush, save) may take before the service exits anyway.
    pub shutdown_deadline_secs: u64,
}

impl ServeConfig {
    /// The defaults for everything but the source; rules from `rules` (relative to the current
    /// directory).
    pub fn new(source: SourceConfig) -> Self {
        ServeConfig {
            source,
            engine: EngineConfig::default(),
            decode: DecodeLimits::default(),
            rules: vec![PathBuf::from("rules")],
            state: None,
            http: HttpConfig::default(),
            metrics: MetricsConfig::default(),
            alerts: AlertsConfig::default(),
            log: LogConfig::default(),
            shutdown_deadline_secs: 30,
        }
    }
}

/// The live source: S3 event notifications on an SQS queue, objects fetched from S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub queue_url: String,
    /// Objects in any other bucket are refused (a notification names the bucket to fetch from).
    pub buckets: Vec<String>,
    /// `None`: the SDK's default chain (`AWS_REGION`, profile, instance metadata).
    pub region: Option<String>,
    /// For LocalStack or moto; the SDK also honours `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Concurrent `ReceiveMessage` loops.
    pub receivers: usize,
    pub max_messages_per_receive: i32,
    /// Long polling: how long one `ReceiveMessage` waits for messages.
    pub wait_time_secs: i32,
    /// What the visibility of in-flight messages is extended to while their objects are processed.
    pub visibility_timeout_secs: i32,
    /// A message that failed permanently is made visible again after this long, so the queue's
    /// redrive policy moves it to the dead-letter queue after `maxReceiveCount` tries.
    pub failed_message_visibility_secs: i32,
    /// A message's visibility is extended for at most this long in all, from its receive: one
    /// stuck longer (a hung stage) becomes visible again, for another consumer or the redrive
    /// policy, instead of being held forever.
    pub max_visibility_extension_secs: i64,
    /// Objects fetched and decoded at once.
    pub fetch_concurrency: usize,
    /// Messages received and not yet deleted or released; receiving pauses at this many (they
    /// wait for their objects, or for the state save that lets them be deleted).
    pub max_messages_in_flight: usize,
    /// Tries of a retryable S3 or SQS call, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles up to `retry_max_ms`, with jitter.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Capacity of each bounded channel between stages (the back-pressure).
    pub queue_depth: usize,
    /// Advance the watermark from the wall clock too, so windows close while no logs arrive.
    pub close_windows_on_wall_clock: bool,
}

impl SourceConfig {
    /// The defaults for everything but the queue and the buckets.
    pub fn new(queue_url: impl Into<String>, buckets: Vec<String>) -> Self {
        SourceConfig {
            queue_url: queue_url.into(),
            buckets,
            region: None,
            endpoint_url: None,
            receivers: 2,
            max_messages_per_receive: 10,
            wait_time_secs: 20,
            visibility_timeout_secs: 300,
            failed_message_visibility_secs: 60,
            max_visibility_extension_secs: 3_600,
            fetch_concurrency: 8,
            max_messages_in_flight: 10_000,
            max_attempts: 5,
            retry_base_ms: 200,
            retry_max_ms: 20_000,
            queue_depth: 32,
            close_windows_on_wall_clock: true,
        }
    }
}

/// Durable state (watermark, dedupe ids, rule state), saved periodically and at shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    pub path: PathBuf,
    pub save_interval_secs: u64,
    /// A save writes the whole state file, not a journal delta, once the deltas since the last
    /// whole save would reach this percentage of its size: they are folded again on a restart.
    pub compact_percent: u64,
    /// ... or once this many deltas follow it.
    pub max_deltas: u32,
}

impl StateConfig {
    /// The defaults.
    pub fn new(path: PathBuf) -> Self {
        StateConfig {
            path,
            save_interval_secs: 30,
            compact_percent: 50,
            max_deltas: 100,
        }
    }
}

/// The HTTP endpoint (`/metrics`, health).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// A request not answered within this long is answered 408, so a slow client or a stuck
    /// handler cannot hold a slot.
    pub request_timeout_secs: u64,
    /// Requests handled at once; one more is refused with 503 at once instead of queueing.
    pub max_concurrent_requests: usize,
    /// Most alerts one `/api/alerts` page holds (a larger `?limit=` is lowered to it).
    pub max_alerts_per_page: usize,
    /// When set, `/api/alerts` answers only requests with `Authorization: Bearer <token>`.
    pub api_token: Option<Secret>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 9464)),
            request_timeout_secs: 30,
            max_concurrent_requests: 64,
            max_alerts_per_page: 1_000,
            api_token: None,
        }
    }
}

/// Caps on metric cardinality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Distinct values kept per business label (key, principal, service, ...): log contents
    /// choose these values, so they are capped.
    pub max_label_values: usize,
    /// Series kept per metric.
    pub max_series: usize,
    /// Half-life of the recent volume that decides which label values keep a series.
    pub label_decay_secs: i64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            max_label_values: 200,
            max_series: 20_000,
            label_decay_secs: 3600,
        }
    }
}

/// Where alerts go. Every sink has its own bounded queue: the fold hands alerts over without
/// waiting, and an alert that finds a queue full is dropped and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfig {
    /// Alerts as JSON lines (`kmswatch.alert/v1`); `None`: not written.
    pub jsonl: Option<JsonlTarget>,
    /// Alerts the JSON-lines sink's queue holds.
    pub jsonl_queue_capacity: usize,
    /// Retries of a failed HTTP delivery (Alertmanager, webhooks): tries, backoff.
    pub retry: RetryPolicy,
    /// Alertmanager (API v2); `None`: not used.
    pub alertmanager: Option<AlertmanagerConfig>,
    /// Webhooks, each receiving every alert.
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            jsonl: Some(JsonlTarget::Stdout),
            jsonl_queue_capacity: 1024,
            retry: RetryPolicy {
                max_attempts: 5,
                base_ms: 500,
                max_ms: 30_000,
            },
            alertmanager: None,
            webhooks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonlTarget {
    Stdout,
    /// Appended to.
    File(PathBuf),
}

/// Alertmanager instances, all sent every alert (an HA pair or cluster: as Prometheus does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerConfig {
    /// Base URLs (`http://alertmanager:9093`, or with a path prefix); `/api/v2/alerts` is appended.
    pub urls: Vec<String>,
    /// Firing alerts are posted again this often, each valid for four intervals, so that
    /// Alertmanager keeps them across its restarts and resolves them itself if kmswatch stops.
    pub resend_interval_secs: u64,
    /// Least time, on the wall clock, an alert is shown firing to each Alertmanager before its
    /// resolution is posted (like Prometheus' `keep_firing_for`): longer than Alertmanager's
    /// `group_wait` plus `group_interval`, so an alert that fires and resolves within seconds
    /// is still notified.
    pub keep_firing_for_secs: u64,
    /// Timeout of one POST.
    pub timeout_secs: u64,
    /// Undelivered alerts each Alertmanager's queue holds (queued, being posted, or resolutions
    /// held back by `keep_firing_for_secs`).
    pub queue_capacity: usize,
    /// Alerts per POST; more are split into several POSTs.
    pub max_alerts_per_post: usize,
    /// The `link` annotation; `None`: no link.
    pub link_template: Option<LinkTemplate>,
}

impl AlertmanagerConfig {
    /// The defaults for everything but the URLs.
    pub fn new(urls: Vec<String>) -> Self {
        AlertmanagerConfig {
            urls,
            resend_interval_secs: 60,
            keep_firing_for_secs: 600,
            timeout_secs: 10,
            queue_capacity: 1024,
            max_alerts_per_post: 64,
            link_template: None,
        }
    }
}

/// A webhook: one JSON POST per alert, in the alert schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: String,
    /// HMAC-SHA256 key for the signature header (from the variable `secret_env` names).
    pub secret: Option<Secret>,
    /// Sent as `Authorization: Bearer` (from the variable `token_env` names).
    pub token: Option<Secret>,
    /// Timeout of one POST.
    pub timeout_secs: u64,
    /// Alerts the webhook's queue holds.
    pub queue_capacity: usize,
}

impl WebhookConfig {
    /// The defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            secret: None,
            token: None,
            timeout_secs: 10,
            queue_capacity: 1024,
        }
    }
}

/// A value read from the environment that must not be printed (keys, tokens).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// One problem in the configuration: in the file, or in an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigProblem {
    /// Rendered `file:line:col: message`.
    File(Problem),
    /// Rendered `$VAR: message`.
    Env { var: &'static str, message: String },
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigProblem::File(p) => p.fmt(f),
            ConfigProblem::Env { var, message } => write!(f, "${var}: {message}"),
        }
    }
}

/// Every problem found in a configuration; displayed one problem a line, then a count.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.file, .problems))]
pub struct ConfigError {
    pub file: PathBuf,
    /// File problems by position, then environment problems.
    pub problems: Vec<ConfigProblem>,
    /// The rule paths the configuration names, when they are valid (empty otherwise): lets a
    /// check report the rules' problems together with the configuration's.
    pub rules: Vec<PathBuf>,
}

fn render(file: &Path, problems: &[ConfigProblem]) -> String {
    let mut out = String::new();
    for p in problems {
        out.push_str(&p.to_string());
        out.push('\n');
    }
    out.push_str(&format!(
        "{} problem(s) in configuration {}",
        problems.len(),
        file.display()
    ));
    out
}

/// Reads the configuration file at `path` and applies the `KMSWATCH_*` environment overrides.
pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
    let message = match read_text(path) {
        Ok(text) => {
            return parse(&text, path, &|var| {
                std::env::var_os(var).map(|v| v.to_string_lossy().into_owned())
            })
        }
        Err(ReadError::Io(e)) => format!("cannot read configuration file: {e}"),
        Err(ReadError::NotUtf8 { offset }) => {
            format!("file is not valid UTF-8 (first invalid byte at offset {offset})")
        }
    };
    Err(ConfigError {
        file: path.to_path_buf(),
        problems: vec![ConfigProblem::File(Problem::at_start(path, message))],
        rules: Vec::new(),
    })
}

/// Parses and validates configuration `text` read from `origin` (named in problems; relative
/// paths in the text are resolved against its directory), with `env` giving the environment.
pub fn parse(
    text: &str,
    origin: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServeConfig, ConfigError> {
    let src = Source::new(origin, text);
    let mut ck = problems::Checker::new(&src);
    let (config, rules) = match read::read(text, &mut ck) {
        Some(raw) => validate::validate(&raw, &mut ck, env),
        None => (None, Vec::new()),
    };
    let problems = ck.into_problems();
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(ConfigError {
            file: origin.to_path_buf(),
            problems,
            rules,
        }),
    }
}
