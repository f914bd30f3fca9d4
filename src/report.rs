//! The replay summary (what was read, skipped, failed, and alerted, with the per-key totals, as text
//! and as JSON) and the auditors' report built from the same [`Totals`].

use std::collections::BTreeMap;

use std::fmt::Write as _;

use serde::Serialize;

use crate::decode::{DecodeStats, ServiceSource};
use crate::engine::{Engine, EngineCounters, OverLimits};
use crate::rules::EvalCounters;
use crate::state::EngineState;
use crate::timefmt::format_rfc3339;
pub use crate::totals::Totals;

mod audit;
mod deliveries;
mod document;
mod findings;
mod frames;
mod html;
mod markdown;
pub mod rows;

pub use audit::{AlertLog, AuditReport, ReportError, ReportMeta, MANIFEST_SCHEMA};
pub use deliveries::{Deliveries, GAP_SECS};
pub use findings::{findings, Finding, REPEATED_FAILURES};

/// Schema identifier of the JSON summary.
pub const SUMMARY_SCHEMA: &str = "kmswatch.summary/v1";

fn none_if_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct KeyRow {
    pub key: Option<String>,
    pub calls: u64,
    pub failures: u64,
    pub by_operation: BTreeMap<String, u64>,
    pub first_seen: String,
    /// Latest successful cryptographic use; `null` if none was seen.
    pub last_used: Option<String>,
    pub last_seen: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct KeyPrincipalServiceRow<'a> {
    pub key: Option<&'a str>,
    pub principal: &'a str,
    pub service: &'a str,
    pub calls: u64,
    pub failures: u64,
    /// How the service was decided, in calls per step (`invoked_by`, `source_ip`,
    /// `encryption_context`, `role`, `aws_internal`, `direct`); steps with no calls are left out.
    pub service_from: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct KeyOperationOutcomeRow<'a> {
    pub key: Option<&'a str>,
    pub operation: &'a str,
    pub outcome: &'a str,
    pub calls: u64,
}

/// The summary's `key_principal_service` table: rows are made from the totals, sorted, as they
/// are written (a million rows are never held as strings twice).
#[derive(Debug, Clone, Copy)]
pub struct KpsTable<'a>(&'a Totals);

impl<'a> KpsTable<'a> {
    /// The rows, sorted by `(key, principal, service)`.
    pub fn rows(&self) -> impl Iterator<Item = KeyPrincipalServiceRow<'a>> {
        (self.0.kps_rows_sorted()).map(|([key, principal, service], v)| KeyPrincipalServiceRow {
            key: (!key.is_empty()).then_some(key),
            principal,
            service,
            calls: v.calls,
            failures: v.failures,
            service_from: ServiceSource::ALL
                .iter()
                .zip(v.by_source())
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| (s.as_str(), n))
                .collect(),
        })
    }
}

impl Serialize for KpsTable<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.rows())
    }
}

/// The summary's `key_operation_outcome` table, made from the totals as it is written.
#[derive(Debug, Clone, Copy)]
pub struct KooTable<'a>(&'a Totals);

impl<'a> KooTable<'a> {
    /// The rows, sorted by `(key, operation, outcome)`.
    pub fn rows(&self) -> impl Iterator<Item = KeyOperationOutcomeRow<'a>> {
        let mut rows: Vec<_> = self.0.koo_rows().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        rows.into_iter().map(
            |([key, operation, outcome], calls)| KeyOperationOutcomeRow {
                key: (!key.is_empty()).then_some(key),
                operation,
                outcome,
                calls,
            },
        )
    }
}

impl Serialize for KooTable<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.rows())
    }
}

/// What the driver read, as opposed to what the engine made of it.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct InputStats {
    /// Files found under the input directories.
    pub files_found: u64,
    /// Log objects read (`.json.gz` / `.json` that are not digests).
    pub log_objects: u64,
    pub objects_failed: u64,
    /// Skipped files by reason (`digest`, `insight`, `not_log`, `empty`).
    pub skipped: BTreeMap<String, u64>,
    /// Failed objects by reason.
    pub failed_by_kind: BTreeMap<String, u64>,
    pub failures: Vec<Failure>,
    /// Bytes and records of the objects that decoded.
    #[serde(flatten)]
    pub decoded: DecodeStats,
    /// The first malformed records (all are counted in `malformed_records`).
    pub malformed: Vec<Failure>,
    /// Deliveries per account and region, for the report's gaps (not in the summary).
    #[serde(skip)]
    pub deliveries: Deliveries,
    /// What the replay was limited to (absent when everything was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<SelectionStats>,
    /// KMS records outside the selected time range, not folded (reported in `selection`).
    #[serde(skip)]
    pub outside_range: u64,
    /// The first objects holding future events (all are counted in `future_events`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub future: Vec<Failure>,
}

/// The part of the history a replay covered: events in `[from, to)` (by `eventTime`, exactly),
/// from the log files of these accounts and regions (by the trail layout).
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SelectionStats {
    /// First event time included (RFC 3339); `null`: from the start.
    pub from: Option<String>,
    /// First event time excluded; `null`: to the end.
    pub to: Option<String>,
    /// Accounts whose log files were read; empty: all.
    pub accounts: Vec<String>,
    /// Regions whose log files were read; empty: all.
    pub regions: Vec<String>,
    /// KMS records read but outside `[from, to)`, not counted anywhere else.
    pub kms_records_outside_range: u64,
}

impl SelectionStats {
    pub fn new(sel: &crate::sources::Selection, outside: u64) -> Self {
        let list =
            |s: &Option<std::collections::BTreeSet<String>>| s.iter().flatten().cloned().collect();
        SelectionStats {
            from: sel.from.map(format_rfc3339),
            to: sel.to.map(format_rfc3339),
            accounts: list(&sel.accounts),
            regions: list(&sel.regions),
            kms_records_outside_range: outside,
        }
    }
}

/// One object or record that could not be used.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    /// `s3://bucket/key` or a file path.
    pub object: String,
    pub kind: String,
    pub error: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RuleStats {
    pub rule: String,
    pub firing: u64,
    pub resolved: u64,
    pub still_firing: u64,
    pub late: u64,
    pub overflow: u64,
}

impl RuleStats {
    fn new(rule: &str, c: EvalCounters, still_firing: usize) -> Self {
        RuleStats {
            rule: rule.to_owned(),
            firing: c.alerts_firing,
            resolved: c.alerts_resolved,
            still_firing: still_firing as u64,
            late: c.late,
            overflow: c.overflow,
        }
    }
}

/// The replay summary (`--summary FILE`), schema `kmswatch.summary/v1`. It borrows the run's
/// input and totals: build it when it is written.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub schema: &'static str,
    pub input: &'a InputStats,
    /// Distinct KMS calls (after dedupe), the total of `keys[].calls`.
    pub kms_calls: u64,
    /// Calls seen before, by call id, in another object.
    pub duplicates: u64,
    /// Objects folded before (same name and size), skipped whole: their calls are in neither
    /// count.
    pub duplicate_objects: u64,
    pub late_events: u64,
    /// Events later than their object's delivery time + `future_skew_secs`: not folded.
    pub future_events: u64,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
    pub alerts_firing: u64,
    pub alerts_resolved: u64,
    pub rules: Vec<RuleStats>,
    /// Calls whose row did not fit a table's `max_report_rows`: the tables are then incomplete.
    pub table_overflow: u64,
    /// What fell outside each engine limit, by name (every limit listed; see
    /// [`crate::engine::limits`]).
    pub over_limits: OverLimits,
    pub keys: Vec<KeyRow>,
    pub key_principal_service: KpsTable<'a>,
    pub key_operation_outcome: KooTable<'a>,
}

impl<'a> Summary<'a> {
    /// The summary of a run: `input` is what the driver read; the rest comes from the engine.
    pub fn build(input: &'a InputStats, engine: &'a Engine) -> Summary<'a> {
        let rules = engine
            .rules()
            .iter()
            .map(|r| RuleStats::new(&r.rule.id, r.counters, r.firing()))
            .collect();
        Summary::assemble(
            input,
            engine.totals(),
            engine.counters(),
            engine.max_event_time(),
            rules,
            engine.over_limits(),
        )
    }

    /// The summary of a saved state (`kmswatch state summary`): what a replay of the same objects
    /// would report before its end-of-input close (so `keys`, the tables and `kms_calls` equal the
    /// replay's). `input` is empty unless the caller knows better.
    pub fn from_state(input: &'a InputStats, state: &'a EngineState) -> Summary<'a> {
        let rules = state
            .rules()
            .iter()
            .map(|r| RuleStats::new(&r.rule, r.counters, r.firing()))
            .collect();
        Summary::assemble(
            input,
            state.totals(),
            state.counters(),
            state.max_event_time(),
            rules,
            state.over_limits(),
        )
    }

    fn assemble(
        input: &'a InputStats,
        t: &'a Totals,
        c: EngineCounters,
        max_event_time: Option<i64>,
        rules: Vec<RuleStats>,
        over_limits: OverLimits,
    ) -> Summary<'a> {
        let mut keys: Vec<KeyRow> = t
            .keys
            .iter()
            .map(|(k, v)| KeyRow {
                key: none_if_empty(k),
                calls: v.calls,
                failures: v.failures,
                by_operation: v
                    .by_operation
                    .iter()
                    .map(|(o, n)| (o.to_string(), n))
                    .collect(),
                first_seen: format_rfc3339(v.first_seen),
                last_used: v.last_used.map(format_rfc3339),
                last_seen: format_rfc3339(v.last_seen),
            })
            .collect();
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        let first = t.keys.values().map(|k| k.first_seen).min();
        Summary {
            schema: SUMMARY_SCHEMA,
            input,
            kms_calls: c.kms_calls,
            duplicates: c.duplicates,
            duplicate_objects: c.duplicate_objects,
            late_events: c.late,
            future_events: c.future_events,
            first_event: first.map(format_rfc3339),
            last_event: max_event_time.map(format_rfc3339),
            alerts_firing: c.alerts_firing,
            alerts_resolved: c.alerts_resolved,
            rules,
            table_overflow: t.overflow,
            over_limits,
            keys,
            key_principal_service: KpsTable(t),
            key_operation_outcome: KooTable(t),
        }
    }

    /// The human-readable summary printed on stderr.
    pub fn render_text(&self) -> String {
        let i = &self.input;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "read {} log objects ({} files found; {:.1} MB compressed, {:.1} MB JSON)",
            i.log_objects,
            i.files_found,
            i.decoded.compressed_bytes as f64 / 1e6,
            i.decoded.decompressed_bytes as f64 / 1e6
        );
        if let Some(sel) = &i.selection {
            let all = |v: &[String], what: &str| {
                if v.is_empty() {
                    format!("all {what}")
                } else {
                    format!("{what} {}", v.join(","))
                }
            };
            let _ = writeln!(
                s,
                "selection: events in [{}, {}), {}, {}; {} KMS records outside the range not counted",
                sel.from.as_deref().unwrap_or("-"),
                sel.to.as_deref().unwrap_or("-"),
                all(&sel.accounts, "accounts"),
                all(&sel.regions, "regions"),
                sel.kms_records_outside_range
            );
        }
        let skipped: Vec<String> = i.skipped.iter().map(|(k, v)| format!("{v} {k}")).collect();
        if !skipped.is_empty() {
            let _ = writeln!(s, "skipped files: {}", skipped.join(", "));
        }
        let _ = writeln!(
            s,
            "records: {} ({} KMS, {} other, {} malformed)",
            i.decoded.records,
            i.decoded.kms_records,
            i.decoded.non_kms_records,
            i.decoded.malformed_records
        );
        let _ = writeln!(
            s,
            "KMS calls: {} distinct, {} duplicates dropped, {} late, {} future (not folded); events from {} to {}",
            self.kms_calls,
            self.duplicates,
            self.late_events,
            self.future_events,
            self.first_event.as_deref().unwrap_or("-"),
            self.last_event.as_deref().unwrap_or("-")
        );
        if self.duplicate_objects > 0 {
            let _ = writeln!(
                s,
                "duplicate objects: {} folded before (same name and size), skipped whole",
                self.duplicate_objects
            );
        }
        let _ = writeln!(
            s,
            "keys: {}; alerts: {} firing, {} resolved",
            self.keys.iter().filter(|k| k.key.is_some()).count(),
            self.alerts_firing,
            self.alerts_resolved
        );
        for r in self
            .rules
            .iter()
            .filter(|r| r.firing + r.resolved + r.late + r.overflow > 0)
        {
            let _ = writeln!(
                s,
                "  {}: {} firing, {} resolved{}{}",
                r.rule,
                r.firing,
                r.resolved,
                if r.late > 0 {
                    format!(", {} late calls not windowed", r.late)
                } else {
                    String::new()
                },
                if r.overflow > 0 {
                    format!(", {} calls over limits", r.overflow)
                } else {
                    String::new()
                },
            );
        }
        if self.table_overflow > 0 {
            let _ = writeln!(
                s,
                "warning: {} calls fell outside max_report_rows; totals tables are incomplete",
                self.table_overflow
            );
        }
        if i.objects_failed > 0 || i.decoded.malformed_records > 0 {
            let kinds: Vec<String> = i
                .failed_by_kind
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect();
            let _ = writeln!(
                s,
                "FAILED: {} objects ({}), {} malformed records",
                i.objects_failed,
                if kinds.is_empty() {
                    "none".to_owned()
                } else {
                    kinds.join(", ")
                },
                i.decoded.malformed_records
            );
            for f in i.failures.iter().chain(&i.malformed) {
                let _ = writeln!(s, "  {}: {}", f.object, f.error);
            }
        }
        if self.future_events > 0 {
            let _ = writeln!(
                s,
                "FUTURE: {} events later than their file's delivery time, not folded (a forged record or a bad clock)",
                self.future_events
            );
            for f in &i.future {
                let _ = writeln!(s, "  {}: {}", f.object, f.error);
            }
        }
        s
    }
}
