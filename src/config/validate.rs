//! The second stage: a [`RawConfig`] plus the environment into a [`ServeConfig`].
//!
//! Validation starts from the defaults (the validated types' own constructors: `ServeConfig::new`,
//! `EngineConfig::default`, ...) and overwrites each value that is given and valid; an environment
//! override replaces the file's value. Every problem is reported where its value came from, and
//! the result is used only when there is none.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use super::formats::{bucket_name, http_url, log_format, region, socket_addr};
use super::problems::{At, Checker};
use super::raw::{Field, RawConfig, RawService, RawSource, RawState, Table};
use super::{ServeConfig, SourceConfig, StateConfig};

/// Limits: any count >= 1.
const LIMIT: RangeInclusive<i64> = 1..=i64::MAX;
/// Windows, lateness and the dedupe horizons: at most 366 days (keeps event-time arithmetic far
/// from overflow).
pub const MAX_SPAN_SECS: i64 = 366 * 86_400;
/// Larger channels buy nothing but memory held by in-flight objects.
const MAX_QUEUE_DEPTH: i64 = 65_536;

const QUEUE_URL_EXAMPLE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/cloudtrail-kms";
const ENDPOINT_URL_EXAMPLE: &str = "http://localhost:4566";

/// The validated configuration (`None` if there is any problem, in this stage or before), and the
/// rule paths when they are valid.
pub(super) fn validate(
    raw: &RawConfig,
    ck: &mut Checker<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<ServeConfig>, Vec<PathBuf>) {
    let mut c = ServeConfig::new(SourceConfig::new(String::new(), Vec::new()));
    let mut v = Validator { ck, env };
    v.source(&mut c.source, &raw.source);
    v.engine(&mut c, raw);
    let rules_ok = v.rules(&mut c.rules, raw);
    v.state(&mut c.state, &raw.state);
    v.service(&mut c, raw);
    let rules = if rules_ok {
        c.rules.clone()
    } else {
        Vec::new()
    };
    ((!v.ck.has_problems()).then_some(c), rules)
}

/// A value to check, and where it came from.
struct Given<T> {
    value: T,
    at: At,
}

/// The table's fields (all absent when the table is), and where to report a missing field.
fn table<T: Default + Clone>(t: &Table<T>) -> (T, At) {
    match t {
        Some(t) => (t.get_ref().clone(), At::Span(t.span())),
        None => (T::default(), At::Start),
    }
}

fn file<T: Clone>(f: &Field<T>) -> Option<Given<T>> {
    f.as_ref().map(spanned)
}

fn spanned<T: Clone>(v: &toml::Spanned<T>) -> Given<T> {
    Given {
        value: v.get_ref().clone(),
        at: At::Span(v.span()),
    }
}

/// Where the first of `fields` that is present was written.
fn first_given(fields: &[&Field<i64>]) -> At {
    fields
        .iter()
        .find_map(|f| f.as_ref().map(|v| At::Span(v.span())))
        .unwrap_or(At::Start)
}

/// `int!(validator, "table", raw, out, field, range)`: [`Validator::int`] from `raw.field` into
/// `out.field`, named `table.field` in problems (the name cannot drift from the field).
macro_rules! int {
    ($v:expr, $table:literal, $raw:expr, $out:expr, $field:ident, $range:expr) => {
        $v.int(
            &mut $out.$field,
            concat!($table, ".", stringify!($field)),
            &$raw.$field,
            $range,
        )
    };
}

mod alerts;

struct Validator<'c, 's> {
    ck: &'c mut Checker<'s>,
    env: &'c dyn Fn(&str) -> Option<String>,
}

impl Validator<'_, '_> {
    fn source(&mut self, c: &mut SourceConfig, t: &Table<RawSource>) {
        let (s, header) = table(t);
        match self.given(Some("KMSWATCH_QUEUE_URL"), &s.queue_url) {
            Some(given) => {
                let parsed = self.parse("source.queue_url", given, |v| {
                    http_url(v, QUEUE_URL_EXAMPLE, true)
                });
                c.queue_url = parsed.unwrap_or_default();
            }
            None => self.missing(
                "source.queue_url",
                &header,
                "the URL of the SQS queue of the trail bucket's notifications (or set \
                 KMSWATCH_QUEUE_URL)",
            ),
        }
        match self.env_var("KMSWATCH_BUCKETS") {
            Some(list) => c.buckets = self.env_buckets(list),
            None => match &s.buckets {
                Some(list) => c.buckets = self.file_buckets(list),
                None => self.missing(
                    "source.buckets",
                    &header,
                    "the buckets the trail writes to (or set KMSWATCH_BUCKETS)",
                ),
            },
        }
        if let Some(given) = self.given(Some("KMSWATCH_REGION"), &s.region) {
            c.region = self.parse("source.region", given, region);
        }
        if let Some(given) = self.given(Some("KMSWATCH_ENDPOINT_URL"), &s.endpoint_url) {
            c.endpoint_url = self.parse("source.endpoint_url", given, |v| {
                http_url(v, ENDPOINT_URL_EXAMPLE, false)
            });
        }
        int!(self, "source", s, c, receivers, 1..=64);
        int!(self, "source", s, c, max_messages_per_receive, 1..=10);
        int!(self, "source", s, c, wait_time_secs, 0..=20);
        // SQS allows up to 12 hours; visibility is extended every third of it, so short values
        // work, at the cost of more ChangeMessageVisibility calls.
        int!(self, "source", s, c, visibility_timeout_secs, 5..=43_200);
        int!(
            self,
            "source",
            s,
            c,
            failed_message_visibility_secs,
            0..=43_200
        );
        // SQS refuses to extend a message past 12 hours from its receive.
        int!(
            self,
            "source",
            s,
            c,
            max_visibility_extension_secs,
            60..=43_200
        );
        int!(self, "source", s, c, fetch_concurrency, 1..=256);
        int!(self, "source", s, c, max_messages_in_flight, 1..=1_000_000);
        int!(self, "source", s, c, max_attempts, 1..=20);
        let base_ok = int!(self, "source", s, c, retry_base_ms, LIMIT);
        let max_ok = int!(self, "source", s, c, retry_max_ms, LIMIT);
        if base_ok && max_ok && c.retry_max_ms < c.retry_base_ms {
            self.ck.report(
                &first_given(&[&s.retry_max_ms, &s.retry_base_ms]),
                format!(
                    "source.retry_max_ms ({}) must be >= source.retry_base_ms ({}): raise \
                     retry_max_ms or lower retry_base_ms",
                    c.retry_max_ms, c.retry_base_ms
                ),
            );
        }
        int!(self, "source", s, c, queue_depth, 1..=MAX_QUEUE_DEPTH);
        if let Some(v) = &s.close_windows_on_wall_clock {
            c.close_windows_on_wall_clock = *v.get_ref();
        }
    }

    /// The comma-separated `KMSWATCH_BUCKETS` (spaces and empty items ignored).
    fn env_buckets(&mut self, list: Given<String>) -> Vec<String> {
        let given: Vec<Given<String>> = list
            .value
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| Given {
                value: b.to_string(),
                at: list.at.clone(),
            })
            .collect();
        if given.is_empty() {
            let message = "source.buckets is empty: give a comma-separated list of bucket names";
            self.ck.report(&list.at, message);
        }
        self.buckets(given)
    }

    fn file_buckets(&mut self, list: &toml::Spanned<Vec<toml::Spanned<String>>>) -> Vec<String> {
        if list.get_ref().is_empty() {
            let message = "source.buckets is empty: name the bucket(s) the trail writes to";
            self.ck.report_span(list.span(), message);
        }
        self.buckets(list.get_ref().iter().map(spanned))
    }

    /// The valid, distinct bucket names of `given`; each other one is reported.
    fn buckets(&mut self, given: impl IntoIterator<Item = Given<String>>) -> Vec<String> {
        let mut buckets: Vec<String> = Vec::new();
        for b in given {
            let message = if let Err(why) = bucket_name(&b.value) {
                format!("invalid bucket name {:?} in source.buckets: {why}", b.value)
            } else if buckets.contains(&b.value) {
                format!(
                    "duplicate bucket {:?} in source.buckets: remove it",
                    b.value
                )
            } else {
                buckets.push(b.value);
                continue;
            };
            self.ck.report(&b.at, message);
        }
        buckets
    }

    fn engine(&mut self, c: &mut ServeConfig, raw: &RawConfig) {
        let (e, _) = table(&raw.engine);
        let d = &mut c.engine;
        int!(self, "engine", e, d, window_secs, 1..=MAX_SPAN_SECS);
        let lateness_ok = int!(
            self,
            "engine",
            e,
            d,
            allowed_lateness_secs,
            0..=MAX_SPAN_SECS
        );
        int!(self, "engine", e, d, dedupe_horizon_secs, 0..=MAX_SPAN_SECS);
        let horizon_ok = int!(
            self,
            "engine",
            e,
            d,
            dedupe_id_horizon_secs,
            0..=MAX_SPAN_SECS
        );
        if lateness_ok && horizon_ok && d.dedupe_id_horizon_secs < d.allowed_lateness_secs {
            self.ck.report(
                &first_given(&[&e.dedupe_id_horizon_secs, &e.allowed_lateness_secs]),
                format!(
                    "engine.dedupe_id_horizon_secs ({}) must be >= engine.allowed_lateness_secs \
                     ({}): late calls must still be recognised as duplicates",
                    d.dedupe_id_horizon_secs, d.allowed_lateness_secs
                ),
            );
        }
        int!(self, "engine", e, d, future_skew_secs, 0..=MAX_SPAN_SECS);
        int!(self, "engine", e, d, max_dedupe_ids, LIMIT);
        int!(self, "engine", e, d, max_dedupe_objects, LIMIT);
        int!(self, "engine", e, d, max_keys, LIMIT);
        int!(self, "engine", e, d, max_aliases, LIMIT);
        int!(self, "engine", e, d.limits, max_groups_per_rule, LIMIT);
        int!(self, "engine", e, d.limits, max_principals_per_key, LIMIT);
        int!(self, "engine", e, d, max_report_rows, LIMIT);

        let (r, _) = table(&raw.decode);
        int!(self, "decode", r, c.decode, max_object_bytes, LIMIT);
        int!(self, "decode", r, c.decode, max_records_per_object, LIMIT);
    }

    /// `rules.paths`, resolved against the configuration's directory; whether they are valid.
    fn rules(&mut self, paths: &mut Vec<PathBuf>, raw: &RawConfig) -> bool {
        let name = "rules.paths";
        let (r, _) = table(&raw.rules);
        let given: Vec<Given<String>> = match &r.paths {
            None if self.ck.is_spoiled(name) => return false,
            None => paths
                .iter()
                .map(|p| Given {
                    value: p.display().to_string(),
                    at: At::Start,
                })
                .collect(),
            Some(list) if list.get_ref().is_empty() => {
                let message = format!("{name} is empty: name at least one rule file or directory");
                self.ck.report_span(list.span(), message);
                return false;
            }
            Some(list) => list.get_ref().iter().map(spanned).collect(),
        };
        let resolved: Option<Vec<PathBuf>> =
            given.into_iter().map(|p| self.path(name, p)).collect();
        *paths = resolved.unwrap_or_default();
        !paths.is_empty()
    }

    fn state(&mut self, state: &mut Option<StateConfig>, t: &Table<RawState>) {
        let env_path = self.env_var("KMSWATCH_STATE_PATH");
        if t.is_none() && env_path.is_none() {
            return;
        }
        let (s, header) = table(t);
        let mut c = StateConfig::new(PathBuf::new());
        match env_path.or_else(|| file(&s.path)) {
            Some(given) => c.path = self.path("state.path", given).unwrap_or_default(),
            None => self.missing(
                "state.path",
                &header,
                "the state file (or set KMSWATCH_STATE_PATH; without [state] nothing is kept \
                 across restarts)",
            ),
        }
        int!(self, "state", s, c, save_interval_secs, LIMIT);
        int!(self, "state", s, c, compact_percent, 1..=1000);
        int!(self, "state", s, c, max_deltas, 1..=100_000);
        *state = Some(c);
    }

    /// `[http]`, `[metrics]`, `[alerts]` (in `alerts`), `[log]` and the shutdown deadline.
    fn service(&mut self, c: &mut ServeConfig, raw: &RawConfig) {
        let (h, _) = table(&raw.http);
        if let Some(given) = self.given(Some("KMSWATCH_LISTEN"), &h.listen) {
            if let Some(addr) = self.parse("http.listen", given, socket_addr) {
                c.http.listen = addr;
            }
        }
        int!(self, "http", h, c.http, request_timeout_secs, 1..=3_600);
        int!(self, "http", h, c.http, max_concurrent_requests, 1..=10_000);
        int!(self, "http", h, c.http, max_alerts_per_page, 1..=100_000);
        c.http.api_token = self.secret("http", "api_token_env", "bearer token", &h.api_token_env);

        let (m, _) = table(&raw.metrics);
        int!(self, "metrics", m, c.metrics, max_label_values, LIMIT);
        int!(self, "metrics", m, c.metrics, max_series, LIMIT);
        int!(
            self,
            "metrics",
            m,
            c.metrics,
            label_decay_secs,
            1..=MAX_SPAN_SECS
        );

        self.alerts(&mut c.alerts, &raw.alerts);

        let (l, _) = table(&raw.log);
        if let Some(given) = self.given(Some("KMSWATCH_LOG_FORMAT"), &l.format) {
            if let Some(format) = self.parse("log.format", given, log_format) {
                c.log.format = format;
            }
        }

        // At the top level or in [service], not both.
        let (s, _) = table::<RawService>(&raw.service);
        let out = &mut c.shutdown_deadline_secs;
        match (&raw.shutdown_deadline_secs, &s.shutdown_deadline_secs) {
            (Some(_), Some(second)) => self.ck.report_span(
                second.span(),
                "shutdown_deadline_secs is set both at the top level and in [service]: keep one",
            ),
            (top @ Some(_), None) => {
                self.int(out, "shutdown_deadline_secs", top, LIMIT);
            }
            (_, in_service) => {
                self.int(out, "service.shutdown_deadline_secs", in_service, LIMIT);
            }
        }
    }

    // Readers shared by the tables.

    fn env_var(&self, var: &'static str) -> Option<Given<String>> {
        (self.env)(var).map(|value| Given {
            value,
            at: At::Env(var),
        })
    }

    /// The value of `var` when set, else the file's.
    fn given(&self, var: Option<&'static str>, f: &Field<String>) -> Option<Given<String>> {
        var.and_then(|var| self.env_var(var)).or_else(|| file(f))
    }

    /// `given` parsed; a problem naming the value when it does not parse.
    fn parse<T>(
        &mut self,
        name: &str,
        given: Given<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let problem = match parse(&given.value) {
            Ok(value) => return Some(value),
            Err(why) => format!("invalid {name} {:?}: {why}", given.value),
        };
        self.ck.report(&given.at, problem);
        None
    }

    /// Reports that the required `name` (`table.field`) is missing, unless its value was already
    /// reported as unusable.
    fn missing(&mut self, name: &str, header: &At, what: &str) {
        if !self.ck.is_spoiled(name) {
            let (table, field) = name.rsplit_once('.').unwrap_or(("", name));
            let message = format!("missing required field \"{field}\" in [{table}]: {what}");
            self.ck.report(header, message);
        }
    }

    /// Sets `out` from an integer in `range` when one is given; whether `out` holds a valid
    /// value (given or default) afterwards.
    fn int<T: TryFrom<i64>>(
        &mut self,
        out: &mut T,
        name: &str,
        f: &Field<i64>,
        range: RangeInclusive<i64>,
    ) -> bool {
        let Some(v) = f else {
            return !self.ck.is_spoiled(name);
        };
        let n = *v.get_ref();
        let problem = if !range.contains(&n) {
            let (min, max) = (range.start(), range.end());
            if *max == i64::MAX {
                format!("{name} must be >= {min}, got {n}")
            } else {
                format!("{name} must be between {min} and {max}, got {n}")
            }
        } else {
            match T::try_from(n) {
                Ok(value) => {
                    *out = value;
                    return true;
                }
                Err(_) => format!("{name} is too large for this platform, got {n}"),
            }
        };
        self.ck.report_span(v.span(), problem);
        false
    }

    /// A non-empty path; relative paths from the file are resolved against its directory, those
    /// from the environment are used as given.
    fn path(&mut self, name: &str, given: Given<String>) -> Option<PathBuf> {
        if given.value.trim().is_empty() {
            self.ck
                .report(&given.at, format!("{name} is an empty path"));
            return None;
        }
        let path = PathBuf::from(given.value);
        Some(match given.at {
            At::Env(_) => path,
            _ => self.ck.dir().join(path),
        })
    }
}
