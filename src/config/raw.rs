//! The configuration file as written: one serde struct per table, unknown fields denied, every
//! field optional and spanned (defaults, requirements, ranges and environment overrides are
//! `validate`'s). Integers are read as `i64`, TOML's own, so that a negative or oversized value
//! gets a range message rather than a type error.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use toml::Spanned;

/// A value as written, with where it was written.
pub(super) type Field<T> = Option<Spanned<T>>;

/// A table as written, spanned so that a missing field can be reported at its header.
pub(super) type Table<T> = Option<Spanned<T>>;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// Where log objects come from: the SQS queue of S3 notifications, the allowed buckets.
    pub source: Table<RawSource>,
    /// Windows, lateness, dedupe and the engine's memory bounds.
    pub engine: Table<RawEngine>,
    /// Per-object limits against hostile or broken objects.
    pub decode: Table<RawDecode>,
    /// Which rule files to load.
    pub rules: Table<RawRules>,
    /// Durable state; absent: none.
    pub state: Table<RawState>,
    /// The metrics and health endpoint.
    pub http: Table<RawHttp>,
    /// Metric cardinality caps.
    pub metrics: Table<RawMetrics>,
    /// Alert outputs.
    pub alerts: Table<RawAlerts>,
    /// Logging.
    pub log: Table<RawLog>,
    /// Service-wide settings (`shutdown_deadline_secs` may also be written at the top level).
    pub service: Table<RawService>,
    /// Seconds a graceful shutdown may take; also accepted in `[service]`.
    pub shutdown_deadline_secs: Field<i64>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    /// URL of the SQS queue receiving the trail bucket's object-created notifications.
    pub queue_url: Field<String>,
    /// Names of the buckets objects may be fetched from.
    pub buckets: Field<Vec<Spanned<String>>>,
    /// AWS region of the queue and the buckets.
    pub region: Field<String>,
    /// Endpoint of a local AWS emulation (LocalStack, moto).
    pub endpoint_url: Field<String>,
    /// Concurrent `ReceiveMessage` loops.
    pub receivers: Field<i64>,
    /// `MaxNumberOfMessages` of one `ReceiveMessage`.
    pub max_messages_per_receive: Field<i64>,
    /// `WaitTimeSeconds` of one `ReceiveMessage` (long polling).
    pub wait_time_secs: Field<i64>,
    /// Visibility timeout in-flight messages are extended to.
    pub visibility_timeout_secs: Field<i64>,
    /// Seconds before a permanently failed message is visible again.
    pub failed_message_visibility_secs: Field<i64>,
    /// Longest total visibility extension of one message, from its receive.
    pub max_visibility_extension_secs: Field<i64>,
    /// Objects fetched and decoded at once.
    pub fetch_concurrency: Field<i64>,
    /// Most messages in flight before receiving pauses.
    pub max_messages_in_flight: Field<i64>,
    /// Tries of a retryable S3 or SQS call.
    pub max_attempts: Field<i64>,
    /// First retry backoff, in milliseconds.
    pub retry_base_ms: Field<i64>,
    /// Largest retry backoff, in milliseconds.
    pub retry_max_ms: Field<i64>,
    /// Capacity of each channel between stages.
    pub queue_depth: Field<i64>,
    /// Whether the wall clock advances the watermark.
    pub close_windows_on_wall_clock: Field<bool>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    /// Default window length of windowed rules, in seconds.
    pub window_secs: Field<i64>,
    /// How far the watermark trails the latest event time, in seconds.
    pub allowed_lateness_secs: Field<i64>,
    /// How long folded objects are remembered behind the watermark, in seconds.
    pub dedupe_horizon_secs: Field<i64>,
    /// How long call ids are remembered behind the watermark, in seconds.
    pub dedupe_id_horizon_secs: Field<i64>,
    /// How far an event may be later than its object's delivery time or the clock, in seconds.
    pub future_skew_secs: Field<i64>,
    /// Most call ids remembered for dedupe.
    pub max_dedupe_ids: Field<i64>,
    /// Most folded objects remembered for dedupe.
    pub max_dedupe_objects: Field<i64>,
    /// Most keys in the key catalogue.
    pub max_keys: Field<i64>,
    /// Most aliases in the key catalogue.
    pub max_aliases: Field<i64>,
    /// Most groups one rule tracks at once.
    pub max_groups_per_rule: Field<i64>,
    /// Most principals remembered per key by `new-principal` rules.
    pub max_principals_per_key: Field<i64>,
    /// Most rows of each per-key total table.
    pub max_report_rows: Field<i64>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDecode {
    /// Largest decompressed object accepted, in bytes.
    pub max_object_bytes: Field<i64>,
    /// Most records accepted in one object.
    pub max_records_per_object: Field<i64>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRules {
    /// Rule files or directories of `*.toml` files.
    pub paths: Field<Vec<Spanned<String>>>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    /// The state file.
    pub path: Field<String>,
    /// Seconds between saves.
    pub save_interval_secs: Field<i64>,
    /// Deltas since the last whole save, in percent of its size, that make the next save whole.
    pub compact_percent: Field<i64>,
    /// Deltas that make the next save whole.
    pub max_deltas: Field<i64>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    /// `IP:PORT` to listen on.
    pub listen: Field<String>,
    /// Seconds before an unanswered request gets 408.
    pub request_timeout_secs: Field<i64>,
    /// Requests handled at once; more get 503.
    pub max_concurrent_requests: Field<i64>,
    /// Most alerts on one `/api/alerts` page.
    pub max_alerts_per_page: Field<i64>,
    /// The environment variable holding the bearer token `/api/alerts` requires.
    pub api_token_env: Field<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    /// Distinct values per business label.
    pub max_label_values: Field<i64>,
    /// Series per metric.
    pub max_series: Field<i64>,
    /// Half-life of the recent volume deciding which label values keep a series, in seconds.
    pub label_decay_secs: Field<i64>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    /// `"-"` (stdout), a file path, or `false`: any TOML value, checked by `validate`.
    pub jsonl: Field<toml::Value>,
    /// Capacity of the JSON-lines sink's queue, in alerts.
    pub jsonl_queue_capacity: Field<i64>,
    /// Tries of a failed HTTP delivery, the first included.
    pub max_attempts: Field<i64>,
    /// First retry backoff of a delivery, in milliseconds.
    pub retry_base_ms: Field<i64>,
    /// Largest retry backoff of a delivery, in milliseconds.
    pub retry_max_ms: Field<i64>,
    /// `[alerts.alertmanager]`; absent: no Alertmanager.
    pub alertmanager: Table<RawAlertmanager>,
    /// `[[alerts.webhook]]`, one table per webhook.
    pub webhook: Field<Vec<Spanned<RawWebhook>>>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlertmanager {
    /// Base URLs of the Alertmanager instances.
    pub urls: Field<Vec<Spanned<String>>>,
    /// Seconds between posts of the firing alerts.
    pub resend_interval_secs: Field<i64>,
    /// Least seconds an alert is shown firing before its resolution is posted.
    pub keep_firing_for_secs: Field<i64>,
    /// Timeout of one POST, in seconds.
    pub timeout_secs: Field<i64>,
    /// Capacity of the sink's queue.
    pub queue_capacity: Field<i64>,
    /// Most alerts in one POST.
    pub max_alerts_per_post: Field<i64>,
    /// URL template of the `link` annotation.
    pub link_template: Field<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    /// Where alerts are posted.
    pub url: Field<String>,
    /// Name of the environment variable holding the HMAC-SHA256 key.
    pub secret_env: Field<String>,
    /// Name of the environment variable holding the bearer token.
    pub token_env: Field<String>,
    /// Timeout of one POST, in seconds.
    pub timeout_secs: Field<i64>,
    /// Capacity of the webhook's queue.
    pub queue_capacity: Field<i64>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    /// `"human"` or `"json"`.
    pub format: Field<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    /// Seconds a graceful shutdown may take.
    pub shutdown_deadline_secs: Field<i64>,
}

/// The tables written `[[name]]`, an array of tables each.
pub(super) const ARRAYS_OF_TABLES: [&str; 1] = ["alerts.webhook"];

/// The fields of the table at `path` (`""`: the top level; `"source"`: `[source]`;
/// `"alerts.webhook"` or `"alerts.webhook[1]"`: an element of `[[alerts.webhook]]`), or `None`
/// when `path` is not a table of the configuration.
pub(super) fn table_fields(path: &str) -> Option<&'static [&'static str]> {
    let path = match path.strip_suffix(']').and_then(|p| p.rsplit_once('[')) {
        Some((array, index)) if index.bytes().all(|b| b.is_ascii_digit()) => array,
        _ => path,
    };
    Some(match path {
        "" => fields_of::<RawConfig>(),
        "source" => fields_of::<RawSource>(),
        "engine" => fields_of::<RawEngine>(),
        "decode" => fields_of::<RawDecode>(),
        "rules" => fields_of::<RawRules>(),
        "state" => fields_of::<RawState>(),
        "http" => fields_of::<RawHttp>(),
        "metrics" => fields_of::<RawMetrics>(),
        "alerts" => fields_of::<RawAlerts>(),
        "alerts.alertmanager" => fields_of::<RawAlertmanager>(),
        "alerts.webhook" => fields_of::<RawWebhook>(),
        "log" => fields_of::<RawLog>(),
        "service" => fields_of::<RawService>(),
        _ => return None,
    })
}

/// The field names of a `#[derive(Deserialize)]` struct, as serde knows them: one source of truth
/// for did-you-mean hints.
fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldsProbe(&mut fields));
    fields
}

/// A deserializer that only records the field names a struct asks for, then stops.
struct FieldsProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldsProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names recorded"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
