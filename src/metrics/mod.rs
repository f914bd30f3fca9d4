//! Every metric the live service exports, defined in this one place, and the caps on the label
//! values that come from logs (keys, principals, services are attacker-influenced strings).
//!
//! Names follow Prometheus conventions: `kmswatch_` prefix, `_total` counters, base units
//! (`_seconds`, `_bytes`). Labels other than the capped business labels take values from small
//! known sets (reasons, kinds, rule ids). Where such a set is short and fixed (decode error kinds,
//! overflowing labels, retried AWS calls, save and reload results) its series start at 0, so that
//! `rate()` and `increase()` see the first event and dashboards show a flat line, not "no data".

mod admission;
mod usage;

use std::cell::RefCell;
use std::sync::Mutex;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::alerts::{Alert, AlertState};
use crate::decode::{DecodeStats, KmsCall, ObjectError};

/// Bounds on the business labels of `kmswatch_kms_calls_total`.
#[derive(Debug, Clone, Copy)]
pub struct LabelLimits {
    /// Distinct values kept per label; later values are reported as `other`.
    pub max_label_values: usize,
    /// Distinct label combinations kept; later combinations are reported with every label `other`.
    pub max_series: usize,
    /// Recent volume, which decides the values kept, halves every this many seconds.
    pub label_decay_secs: i64,
}

impl Default for LabelLimits {
    fn default() -> Self {
        LabelLimits {
            max_label_values: 200,
            max_series: 20_000,
            label_decay_secs: 3600,
        }
    }
}

/// The value a label takes once its cap is reached.
pub const OVERFLOW_VALUE: &str = "other";

/// The business labels of KMS usage, in the order of `kmswatch_kms_calls_total`'s labels.
pub const USAGE_LABELS: [&str; 5] = ["key", "principal", "service", "operation", "outcome"];

/// Decides which label values and combinations have series of their own: per label the values
/// with the most recent volume (`admission`), not the first seen; everything else folds into
/// [`OVERFLOW_VALUE`] and is counted in `kmswatch_label_overflow_total`. Holds the counts of
/// `kmswatch_kms_calls_total` too ([`usage::Series`]).
struct Capper {
    limits: LabelLimits,
    values: [admission::Admission; 5],
    series: usage::Series,
}

/// What one call's labels came to.
struct Admitted<'a> {
    /// The labels the call was counted under (read by the tests; the counts are the capper's).
    #[cfg_attr(not(test), allow(dead_code))]
    labels: [&'a str; 5],
    /// Labels whose value folded into `other`, and `series` when the combination did.
    overflowed: Vec<&'static str>,
    /// Labels whose value lost its place to this call's value.
    evicted: Vec<&'static str>,
}

impl Capper {
    fn new(limits: LabelLimits) -> Self {
        Capper {
            limits,
            values: std::array::from_fn(|_| {
                admission::Admission::new(limits.max_label_values, limits.label_decay_secs)
            }),
            series: usage::Series::default(),
        }
    }

    /// Counts a call of `values` at wall-clock second `now` under the labels it is admitted
    /// with, and says what those are.
    fn admit<'a>(&mut self, values: [&'a str; 5], now: i64) -> Admitted<'a> {
        let mut out = values;
        let mut overflowed = Vec::new();
        let mut evicted = Vec::new();
        for (i, v) in values.iter().enumerate() {
            match self.values[i].observe(v, now) {
                admission::Admitted::Yes => {}
                admission::Admitted::Replacing(old) => {
                    evicted.push(USAGE_LABELS[i]);
                    self.series.remove_value(i, &old);
                }
                admission::Admitted::No => {
                    overflowed.push(USAGE_LABELS[i]);
                    out[i] = OVERFLOW_VALUE;
                }
            }
        }
        if !self.series.add(out, self.limits.max_series) {
            overflowed.push("series");
            out = [OVERFLOW_VALUE; 5];
            self.series.add(out, usize::MAX);
        }
        Admitted {
            labels: out,
            overflowed,
            evicted,
        }
    }
}

/// The service's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    /// Every family registered, in order; the exposition omits vectors without children.
    family_names: Vec<String>,
    capper: Mutex<Capper>,

    pub messages_received: IntCounter,
    /// Messages deleted, by why they were done with (`processed`, `test_event`, `nothing_to_read`).
    pub messages_deleted: IntCounterVec,
    /// Messages left for the queue's redrive policy, by reason.
    pub messages_failed: IntCounterVec,
    pub messages_in_flight: IntGauge,
    pub oldest_message_age: IntGauge,
    /// Messages whose visibility was no longer extended (held past `max_visibility_extension_secs`).
    pub visibility_abandoned: IntCounter,
    pub objects_fetched: IntCounter,
    pub objects_skipped: IntCounterVec,
    pub objects_failed: IntCounterVec,
    pub bytes_fetched: IntCounter,
    pub bytes_decompressed: IntCounter,
    pub records_read: IntCounter,
    /// Records that are not KMS calls, skipped without being built.
    pub records_skipped: IntCounter,
    pub decode_errors: IntCounterVec,
    pub duplicates: IntCounter,
    pub duplicate_objects: IntCounter,
    /// What fell outside each engine limit (`limit`: `crate::engine::limits::LIMITS`).
    pub limit_overflow: IntCounterVec,
    pub late_events: IntCounter,
    pub future_events: IntCounter,
    pub label_overflow: IntCounterVec,
    /// Label values that lost their series to a value with more recent volume, by label.
    pub label_evictions: IntCounterVec,
    pub event_lag: Histogram,
    pub object_processing: Histogram,
    pub watermark: IntGauge,
    pub alerts: IntCounterVec,
    pub alerts_firing: IntGaugeVec,
    pub aws_retries: IntCounterVec,
    pub state_saves: IntCounterVec,
    pub state_last_save: IntGauge,
    pub state_journal_bytes: IntGauge,
    pub rules_loaded: IntGauge,
    pub rule_reloads: IntCounterVec,
    /// Alerts handed to each sink target (`jsonl`, `alertmanager[i]`, `webhook[i]`), by result
    /// (`ok`, `retried`, `failed`, `dropped`; see `sinks::Outcome`).
    pub alert_deliveries: IntCounterVec,
    /// Alerts not yet delivered by each sink (`jsonl`, `alertmanager[i]`, `webhook[i]`): its
    /// outbox (queued, being delivered, or resolutions held back).
    pub alert_queue_depth: IntGaugeVec,
}

/// A registry that remembers the name of every family registered with it.
#[derive(Default)]
struct Recording {
    registry: Registry,
    names: RefCell<Vec<String>>,
}

impl Recording {
    fn register(&self, c: Box<dyn Collector>) -> prometheus::Result<()> {
        let mut names = self.names.borrow_mut();
        names.extend(c.desc().iter().map(|d| d.fq_name.clone()));
        self.registry.register(c)
    }
}

/// The S3 and SQS calls the service retries (`serve`), started at 0.
const AWS_CALLS: [(&str, &str); 5] = [
    ("s3", "get_object"),
    ("sqs", "receive_message"),
    ("sqs", "delete_message_batch"),
    ("sqs", "change_message_visibility"),
    ("sqs", "get_queue_attributes"),
];

fn counter(r: &Recording, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter_vec(r: &Recording, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Recording, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn gauge_vec(r: &Recording, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(r: &Recording, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Metrics {
    pub fn new(limits: LabelLimits) -> Self {
        let r = Recording::default();
        let build = IntGaugeVec::new(
            Opts::new("kmswatch_build_info", "Always 1; the version in a label."),
            &["version"],
        )
        .expect("valid metric");
        r.register(Box::new(build.clone())).expect("unique metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let alerts_firing = IntGaugeVec::new(
            Opts::new(
                "kmswatch_alerts_firing",
                "Alerts currently firing, by rule and severity.",
            ),
            &["rule", "severity"],
        )
        .expect("valid metric");
        r.register(Box::new(alerts_firing.clone()))
            .expect("unique metric");
        let m = Metrics {
            capper: Mutex::new(Capper::new(limits)),
            messages_received: counter(&r, "kmswatch_sqs_messages_received_total", "SQS messages received (redeliveries included)."),
            messages_deleted: counter_vec(&r, "kmswatch_sqs_messages_deleted_total", "SQS messages deleted once everything they named was folded into state, by reason.", &["reason"]),
            messages_failed: counter_vec(&r, "kmswatch_sqs_messages_failed_total", "SQS messages left for the queue's redrive policy (dead-letter candidates), by reason.", &["reason"]),
            messages_in_flight: gauge(&r, "kmswatch_sqs_messages_in_flight", "SQS messages received and not yet deleted or released."),
            oldest_message_age: gauge(&r, "kmswatch_sqs_oldest_message_age_seconds", "Age of the oldest message in flight, from when SQS first received it."),
            visibility_abandoned: counter(&r, "kmswatch_sqs_visibility_abandoned_total", "SQS messages held past max_visibility_extension_secs whose visibility is no longer extended."),
            objects_fetched: counter(&r, "kmswatch_s3_objects_fetched_total", "Log objects downloaded from S3."),
            objects_skipped: counter_vec(&r, "kmswatch_s3_objects_skipped_total", "Announced objects not read, by reason (digest, insight, not_log, empty).", &["reason"]),
            objects_failed: counter_vec(&r, "kmswatch_s3_objects_failed_total", "Objects that could not be used, by reason.", &["reason"]),
            bytes_fetched: counter(&r, "kmswatch_s3_fetched_bytes_total", "Bytes downloaded from S3 (compressed)."),
            bytes_decompressed: counter(&r, "kmswatch_decompressed_bytes_total", "Bytes of JSON after decompression."),
            records_read: counter(&r, "kmswatch_records_read_total", "CloudTrail records read."),
            records_skipped: counter(&r, "kmswatch_records_skipped_total", "Records skipped because they are not KMS calls."),
            decode_errors: counter_vec(&r, "kmswatch_decode_errors_total", "Objects or records that could not be decoded, by kind.", &["kind"]),
            duplicates: counter(&r, "kmswatch_duplicate_events_total", "KMS events seen before (same eventID or sharedEventID), not counted again."),
            duplicate_objects: counter(&r, "kmswatch_duplicate_objects_total", "Log objects folded before (same name and size: a message delivered again, a file announced twice), skipped whole."),
            limit_overflow: counter_vec(&r, "kmswatch_limit_overflow_total", "Calls, or dedupe ids and objects forgotten early, that did not fit an engine limit, by limit (max_keys, max_aliases, max_groups_per_rule, max_principals_per_key, max_dedupe_ids, max_dedupe_objects, max_report_rows): counted, not kept; any increase means verdicts or totals are incomplete.", &["limit"]),
            late_events: counter(&r, "kmswatch_late_events_total", "KMS events whose window had closed when they arrived."),
            future_events: counter(&r, "kmswatch_future_events_total", "KMS events later than their object's delivery time or the clock (+ engine.future_skew_secs): not folded."),
            label_overflow: counter_vec(&r, "kmswatch_label_overflow_total", "KMS calls recorded under \"other\" because a label or series cap was reached, by label.", &["label"]),
            label_evictions: counter_vec(&r, "kmswatch_label_evictions_total", "Label values whose series was dropped for a value with more recent volume (metrics.max_label_values), by label.", &["label"]),
            event_lag: histogram(&r, "kmswatch_event_lag_seconds", "Time from a KMS event to its being folded into state.", vec![60.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0]),
            object_processing: histogram(&r, "kmswatch_object_processing_seconds", "Time to fetch and decode one log object.", vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            watermark: gauge(&r, "kmswatch_watermark_timestamp_seconds", "The engine's watermark: windows ending before it are closed."),
            alerts: counter_vec(&r, "kmswatch_alerts_total", "Alerts emitted, by rule, severity and state (firing or resolved).", &["rule", "severity", "state"]),
            alerts_firing,
            aws_retries: counter_vec(&r, "kmswatch_aws_retries_total", "Retried S3 and SQS calls, by service and operation.", &["service", "operation"]),
            state_saves: counter_vec(&r, "kmswatch_state_saves_total", "State file saves, by result.", &["result"]),
            state_last_save: gauge(&r, "kmswatch_state_last_save_timestamp_seconds", "When the state file was last saved."),
            state_journal_bytes: gauge(&r, "kmswatch_state_journal_bytes", "Bytes of the state journal's deltas since the state file was last written whole (folded again on a restart)."),
            rules_loaded: gauge(&r, "kmswatch_rules_loaded", "Rules in the active rule set."),
            rule_reloads: counter_vec(&r, "kmswatch_rule_reloads_total", "Rule reloads (SIGHUP), by result.", &["result"]),
            alert_deliveries: counter_vec(&r, "kmswatch_alert_deliveries_total", "Alerts handed to each sink target (jsonl, alertmanager[i], webhook[i]) by result: ok (delivered; Alertmanager re-sends included), retried (a try failed and is repeated), failed (given up), dropped (the sink's queue was full).", &["sink", "result"]),
            alert_queue_depth: gauge_vec(&r, "kmswatch_alert_queue_depth", "Alerts not yet delivered by each sink (jsonl, alertmanager[i], webhook[i]): queued, being delivered, or resolutions held back; saved with the state.", &["sink"]),
            family_names: {
                let mut names = r.names.take();
                names.push(usage::NAME.to_owned());
                names
            },
            registry: r.registry,
        };
        // Decode error kinds (`decode::ObjectError::kind`, and `malformed_record`), started at 0.
        for &kind in ObjectError::KINDS.iter().chain(&["malformed_record"]) {
            m.decode_errors.with_label_values(&[kind]);
        }
        for label in USAGE_LABELS.iter().chain(&["series"]) {
            m.label_overflow.with_label_values(&[label]);
        }
        for label in USAGE_LABELS {
            m.label_evictions.with_label_values(&[label]);
        }
        for (service, operation) in AWS_CALLS {
            m.aws_retries.with_label_values(&[service, operation]);
        }
        for limit in crate::engine::limits::LIMITS {
            m.limit_overflow.with_label_values(&[limit]);
        }
        for result in ["ok", "error"] {
            m.state_saves.with_label_values(&[result]);
            m.rule_reloads.with_label_values(&[result]);
        }
        m
    }

    /// Brings `kmswatch_limit_overflow_total` up to the engine's counts (which a restore carries
    /// over, so after a restart the counter starts again and catches up at once).
    pub fn over_limits(&self, counts: &crate::engine::OverLimits) {
        for (limit, n) in counts {
            let c = self.limit_overflow.with_label_values(&[limit]);
            if let Some(more) = n.checked_sub(c.get()).filter(|&d| d > 0) {
                c.inc_by(more);
            }
        }
    }

    /// The name of every metric family, whether or not it has samples yet.
    pub fn family_names(&self) -> Vec<&str> {
        self.family_names.iter().map(String::as_str).collect()
    }

    /// Counts one distinct KMS call under its (capped) labels; `key` is the resolved key.
    /// Counts one folded call; `now` (wall-clock seconds) ages the recent volume that decides
    /// which label values keep a series.
    pub fn kms_call(&self, call: &KmsCall, key: Option<&str>, now: i64) {
        let values = [
            key.unwrap_or("none"),
            &call.principal,
            &call.service,
            &call.operation,
            call.outcome(),
        ];
        let Admitted {
            overflowed,
            evicted,
            ..
        } = (self.capper.lock().unwrap_or_else(|e| e.into_inner())).admit(values, now);
        for l in overflowed {
            self.label_overflow.with_label_values(&[l]).inc();
        }
        for l in evicted {
            self.label_evictions.with_label_values(&[l]).inc();
        }
    }

    /// Counts what decoding one object yielded.
    pub fn decoded(&self, s: &DecodeStats) {
        self.bytes_decompressed.inc_by(s.decompressed_bytes);
        self.records_read.inc_by(s.records);
        self.records_skipped.inc_by(s.non_kms_records);
        if s.malformed_records > 0 {
            self.decode_errors
                .with_label_values(&["malformed_record"])
                .inc_by(s.malformed_records);
        }
    }

    /// Counts an emitted alert and keeps the firing gauge.
    pub fn alert(&self, a: &Alert) {
        let severity = a.severity.as_str();
        let state = match a.state {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        };
        self.alerts
            .with_label_values(&[&a.rule, severity, state])
            .inc();
        let g = self.alerts_firing.with_label_values(&[&a.rule, severity]);
        match a.state {
            AlertState::Firing => g.inc(),
            AlertState::Resolved => g.set((g.get() - 1).max(0)),
        }
    }

    /// Sets the firing gauge from a full count per (rule, severity) (after a restore or reload).
    pub fn set_firing(&self, firing: &std::collections::BTreeMap<(String, String), i64>) {
        self.alerts_firing.reset();
        for ((rule, severity), n) in firing {
            self.alerts_firing
                .with_label_values(&[rule.as_str(), severity.as_str()])
                .set(*n);
        }
    }

    /// The text exposition format: the registry's families, then `kmswatch_kms_calls_total`
    /// (written from its compact table, not gathered).
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into a Vec cannot fail");
        let mut text = String::from_utf8(buf).expect("the text format is UTF-8");
        let capper = self.capper.lock().unwrap_or_else(|e| e.into_inner());
        capper.series.render(&mut text);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(c: &mut Capper, v: [&str; 5]) -> (Vec<String>, Vec<&'static str>) {
        let a = c.admit(v, 0);
        (
            a.labels.iter().map(|s| s.to_string()).collect(),
            a.overflowed,
        )
    }

    fn limits(max_label_values: usize, max_series: usize) -> LabelLimits {
        LabelLimits {
            max_label_values,
            max_series,
            ..LabelLimits::default()
        }
    }

    #[test]
    fn values_past_the_cap_fold_into_other() {
        let mut c = Capper::new(limits(2, 100));
        let (a, o) = admit(&mut c, ["k1", "p1", "s3", "Decrypt", "ok"]);
        assert_eq!(a, ["k1", "p1", "s3", "Decrypt", "ok"]);
        assert!(o.is_empty());
        admit(&mut c, ["k2", "p1", "s3", "Decrypt", "ok"]);
        let (a, o) = admit(&mut c, ["k3", "p1", "s3", "Decrypt", "ok"]);
        assert_eq!(a, ["other", "p1", "s3", "Decrypt", "ok"]);
        assert_eq!(o, ["key"]);
        // A value admitted earlier keeps its own label.
        let (a, _) = admit(&mut c, ["k1", "p1", "s3", "Decrypt", "ok"]);
        assert_eq!(a[0], "k1");
    }

    #[test]
    fn series_past_the_cap_fold_into_all_other() {
        let mut c = Capper::new(limits(100, 2));
        admit(&mut c, ["k1", "p1", "s3", "Decrypt", "ok"]);
        admit(&mut c, ["k1", "p2", "s3", "Decrypt", "ok"]);
        let (a, o) = admit(&mut c, ["k1", "p3", "s3", "Decrypt", "ok"]);
        assert_eq!(a, ["other"; 5]);
        assert_eq!(o, ["series"]);
        let (a, o) = admit(&mut c, ["k1", "p2", "s3", "Decrypt", "ok"]);
        assert_eq!(a[1], "p2");
        assert!(o.is_empty());
    }

    #[test]
    fn a_busy_principal_takes_the_place_of_early_junk_and_its_series_is_exported() {
        let m = Metrics::new(limits(3, 1000));
        let call = |principal: &str| {
            let mut c = crate::rules::test_support::decrypt("arn:key/k", principal);
            c.principal = principal.into();
            c
        };
        // Junk fills every place first.
        for junk in ["junk-1", "junk-2", "junk-3"] {
            m.kms_call(&call(junk), Some("arn:key/k"), 0);
        }
        for _ in 0..5 {
            m.kms_call(&call("arn:aws:iam::1:role/app"), Some("arn:key/k"), 0);
        }
        let text = m.render();
        assert!(
            text.contains("principal=\"arn:aws:iam::1:role/app\""),
            "the busy principal has its own series:\n{text}"
        );
        let junk = ["junk-1", "junk-2", "junk-3"]
            .iter()
            .filter(|j| text.contains(&format!("principal=\"{j}\"")))
            .count();
        assert_eq!(junk, 2, "one junk series was dropped for it:\n{text}");
        assert!(
            text.contains("kmswatch_label_evictions_total{label=\"principal\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kmswatch_label_overflow_total{label=\"principal\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn exposition_names_every_family_with_help() {
        let m = Metrics::new(LabelLimits::default());
        m.messages_received.inc();
        let text = m.render();
        assert!(text.contains("# HELP kmswatch_sqs_messages_received_total "));
        assert!(text.contains("kmswatch_sqs_messages_received_total 1\n"));
        assert!(text.contains("kmswatch_build_info{version=\""));
    }

    #[test]
    fn family_names_include_vectors_without_children() {
        let m = Metrics::new(LabelLimits::default());
        let names = m.family_names();
        let text = m.render();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap();
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        for name in ["kmswatch_kms_calls_total", "kmswatch_alerts_total"] {
            assert!(names.contains(&name));
            assert!(!text.contains(&format!("# TYPE {name} ")));
        }
        assert!(names.contains(&"kmswatch_event_lag_seconds"));
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn limit_overflow_follows_the_engines_counts() {
        let m = Metrics::new(LabelLimits::default());
        let counts = |keys, groups| {
            crate::engine::OverLimits::from([("max_keys", keys), ("max_groups_per_rule", groups)])
        };
        m.over_limits(&counts(3, 0));
        m.over_limits(&counts(5, 2));
        // A restored engine (fewer than exported, after a reload) never moves a counter back.
        m.over_limits(&counts(1, 2));
        let text = m.render();
        for series in [
            "kmswatch_limit_overflow_total{limit=\"max_keys\"} 5",
            "kmswatch_limit_overflow_total{limit=\"max_groups_per_rule\"} 2",
            "kmswatch_limit_overflow_total{limit=\"max_aliases\"} 0",
        ] {
            assert!(text.contains(series), "{series} not in\n{text}");
        }
    }

    #[test]
    fn small_known_label_sets_start_at_zero() {
        let text = Metrics::new(LabelLimits::default()).render();
        for series in [
            "kmswatch_decode_errors_total{kind=\"gzip_corrupt\"} 0",
            "kmswatch_label_overflow_total{label=\"series\"} 0",
            "kmswatch_state_saves_total{result=\"error\"} 0",
            "kmswatch_rule_reloads_total{result=\"ok\"} 0",
            "kmswatch_limit_overflow_total{limit=\"max_keys\"} 0",
            "kmswatch_limit_overflow_total{limit=\"max_dedupe_objects\"} 0",
        ] {
            assert!(text.contains(series), "{series} not in\n{text}");
        }
    }
}
