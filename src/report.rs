//! Exact totals for auditors (per key, per key/principal/service, per key/operation/outcome) and the
//! replay summary: what was read, skipped, failed, and alerted, as text and as JSON.

use std::collections::BTreeMap;

use crate::Map;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::decode::{DecodeStats, KmsCall, OpClass, ServiceSource};
use crate::engine::{Engine, EngineCounters};
use crate::rules::EvalCounters;
use crate::state::EngineState;
use crate::timefmt::format_rfc3339;

/// Schema identifier of the JSON summary.
pub const SUMMARY_SCHEMA: &str = "kmswatch.summary/v1";

const SEP: char = '\u{1f}';

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyTotals {
    calls: u64,
    failures: u64,
    by_operation: BTreeMap<Box<str>, u64>,
    first_seen: i64,
    last_seen: i64,
    /// Latest successful cryptographic call.
    last_used: Option<i64>,
}

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Counts {
    calls: u64,
    failures: u64,
    /// Calls by the inference step that named the service, indexed like `ServiceSource::ALL`.
    by_source: [u64; 6],
}

/// Running totals over every distinct KMS call. Each table holds at most `max_rows` rows; calls of
/// rows over the cap are counted in `overflow` (the report then says the tables are incomplete).
///
/// Saved in state files (its own serde form, not the summary schema).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Key ARN ("" for calls with no key).
    #[serde(serialize_with = "crate::serde_sorted::map")]
    keys: Map<Box<str>, KeyTotals>,
    /// key SEP principal SEP service.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    kps: Map<Box<str>, Counts>,
    /// key SEP operation SEP outcome.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    koo: Map<Box<str>, u64>,
    /// Configuration, set again on restore.
    #[serde(skip)]
    max_rows: usize,
    pub overflow: u64,
    /// Scratch space for row keys.
    #[serde(skip)]
    buf: String,
}

impl Totals {
    pub fn new(max_rows: usize) -> Self {
        Totals {
            keys: Map::default(),
            kps: Map::default(),
            koo: Map::default(),
            max_rows,
            overflow: 0,
            buf: String::new(),
        }
    }

    /// After loading from a state file: the configured `max_rows`. Returns the largest table's
    /// row count when it exceeds it.
    pub(crate) fn restore_limit(&mut self, max_rows: usize) -> Option<usize> {
        self.max_rows = max_rows;
        let rows = self.keys.len().max(self.kps.len()).max(self.koo.len());
        (rows > max_rows).then_some(rows)
    }

    pub fn record(&mut self, call: &KmsCall, key: Option<&str>) {
        let key = key.unwrap_or("");
        let failed = call.error_code.is_some();
        if !self.keys.contains_key(key) {
            if self.keys.len() >= self.max_rows {
                self.overflow += 1;
            } else {
                let t = KeyTotals {
                    first_seen: call.time,
                    last_seen: call.time,
                    ..KeyTotals::default()
                };
                self.keys.insert(key.into(), t);
            }
        }
        if let Some(t) = self.keys.get_mut(key) {
            t.calls += 1;
            t.failures += u64::from(failed);
            match t.by_operation.get_mut(&*call.operation) {
                Some(n) => *n += 1,
                None => {
                    t.by_operation.insert(call.operation.clone(), 1);
                }
            }
            t.first_seen = t.first_seen.min(call.time);
            t.last_seen = t.last_seen.max(call.time);
            if !failed && call.class == OpClass::Crypto {
                t.last_used = Some(t.last_used.map_or(call.time, |u| u.max(call.time)));
            }
        }
        let b = &mut self.buf;
        b.clear();
        let _ = write!(b, "{key}{SEP}{}{SEP}{}", call.principal, call.service);
        bump(&mut self.kps, b, self.max_rows, &mut self.overflow, |c| {
            c.calls += 1;
            c.failures += u64::from(failed);
            c.by_source[call.service_source as usize] += 1;
        });
        b.clear();
        let _ = write!(b, "{key}{SEP}{}{SEP}{}", call.operation, call.outcome());
        bump(&mut self.koo, b, self.max_rows, &mut self.overflow, |n| {
            *n += 1
        });
    }
}

fn bump<V: Default>(
    map: &mut Map<Box<str>, V>,
    k: &str,
    max: usize,
    overflow: &mut u64,
    f: impl FnOnce(&mut V),
) {
    if let Some(v) = map.get_mut(k) {
        f(v);
    } else if map.len() >= max {
        *overflow += 1;
    } else {
        f(map.entry(k.into()).or_default());
    }
}

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
pub struct KeyPrincipalServiceRow {
    pub key: Option<String>,
    pub principal: String,
    pub service: String,
    pub calls: u64,
    pub failures: u64,
    /// How the service was decided, in calls per step (`invoked_by`, `source_ip`,
    /// `encryption_context`, `role`, `aws_internal`, `direct`); steps with no calls are left out.
    pub service_from: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct KeyOperationOutcomeRow {
    pub key: Option<String>,
    pub operation: String,
    pub outcome: String,
    pub calls: u64,
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
    /// What the replay was limited to (absent when everything was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<SelectionStats>,
    /// KMS records outside the selected time range, not folded (reported in `selection`).
    #[serde(skip)]
    pub outside_range: u64,
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

/// The replay summary (`--summary FILE`), schema `kmswatch.summary/v1`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub schema: &'static str,
    pub input: InputStats,
    /// Distinct KMS calls (after dedupe), the total of `keys[].calls`.
    pub kms_calls: u64,
    pub duplicates: u64,
    pub late_events: u64,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
    pub alerts_firing: u64,
    pub alerts_resolved: u64,
    pub rules: Vec<RuleStats>,
    /// Calls whose row did not fit a table's `max_report_rows`: the tables are then incomplete.
    pub table_overflow: u64,
    pub keys: Vec<KeyRow>,
    pub key_principal_service: Vec<KeyPrincipalServiceRow>,
    pub key_operation_outcome: Vec<KeyOperationOutcomeRow>,
}

impl Summary {
    /// The summary of a run: `input` is what the driver read; the rest comes from the engine.
    pub fn build(input: InputStats, engine: &Engine) -> Summary {
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
        )
    }

    /// The summary of a saved state (`kmswatch state summary`): what a replay of the same objects
    /// would report before its end-of-input close (so `keys`, the tables and `kms_calls` equal the
    /// replay's). `input` is empty unless the caller knows better.
    pub fn from_state(input: InputStats, state: &EngineState) -> Summary {
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
        )
    }

    fn assemble(
        input: InputStats,
        t: &Totals,
        c: EngineCounters,
        max_event_time: Option<i64>,
        rules: Vec<RuleStats>,
    ) -> Summary {
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
                    .map(|(o, n)| (o.to_string(), *n))
                    .collect(),
                first_seen: format_rfc3339(v.first_seen),
                last_used: v.last_used.map(format_rfc3339),
                last_seen: format_rfc3339(v.last_seen),
            })
            .collect();
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        let split3 = |k: &str| {
            let mut it = k.splitn(3, SEP);
            let a = it.next().unwrap_or_default();
            let b = it.next().unwrap_or_default();
            let c = it.next().unwrap_or_default();
            (none_if_empty(a), b.to_owned(), c.to_owned())
        };
        let mut kps: Vec<KeyPrincipalServiceRow> = t
            .kps
            .iter()
            .map(|(k, v)| {
                let (key, principal, service) = split3(k);
                KeyPrincipalServiceRow {
                    key,
                    principal,
                    service,
                    calls: v.calls,
                    failures: v.failures,
                    service_from: ServiceSource::ALL
                        .iter()
                        .zip(v.by_source)
                        .filter(|(_, n)| *n > 0)
                        .map(|(s, n)| (s.as_str(), n))
                        .collect(),
                }
            })
            .collect();
        kps.sort_by(|a, b| {
            (&a.key, &a.principal, &a.service).cmp(&(&b.key, &b.principal, &b.service))
        });
        let mut koo: Vec<KeyOperationOutcomeRow> = t
            .koo
            .iter()
            .map(|(k, n)| {
                let (key, operation, outcome) = split3(k);
                KeyOperationOutcomeRow {
                    key,
                    operation,
                    outcome,
                    calls: *n,
                }
            })
            .collect();
        koo.sort_by(|a, b| {
            (&a.key, &a.operation, &a.outcome).cmp(&(&b.key, &b.operation, &b.outcome))
        });
        let first = t.keys.values().map(|k| k.first_seen).min();
        Summary {
            schema: SUMMARY_SCHEMA,
            input,
            kms_calls: c.kms_calls,
            duplicates: c.duplicates,
            late_events: c.late,
            first_event: first.map(format_rfc3339),
            last_event: max_event_time.map(format_rfc3339),
            alerts_firing: c.alerts_firing,
            alerts_resolved: c.alerts_resolved,
            rules,
            table_overflow: t.overflow,
            keys,
            key_principal_service: kps,
            key_operation_outcome: koo,
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
            "KMS calls: {} distinct, {} duplicates dropped, {} late; events from {} to {}",
            self.kms_calls,
            self.duplicates,
            self.late_events,
            self.first_event.as_deref().unwrap_or("-"),
            self.last_event.as_deref().unwrap_or("-")
        );
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
        s
    }
}
