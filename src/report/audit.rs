//! The auditors' report of a run or of a state file: what it holds ([`AuditReport`]), and writing
//! it to a directory (every table as Parquet and CSV, `report.md`, `report.html`, and
//! `manifest.json` hashing the rest).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::frames::{csv_bytes, frames, parquet_bytes};
use super::rows::Tables;
use super::InputStats;
use crate::alerts::Alert;
use crate::engine::{Engine, EngineCounters};
use crate::state::EngineState;
use crate::timefmt::format_rfc3339;

/// Schema identifier of `manifest.json`.
pub const MANIFEST_SCHEMA: &str = "kmswatch.report-manifest/v1";

/// What the caller knows that the engine does not: the time range the events were limited to and
/// the inputs as the user named them. Kept out of the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportMeta {
    /// Events before this time (seconds since the epoch) were left out, if set.
    pub range_from: Option<i64>,
    /// Events at or after this time were left out, if set.
    pub range_to: Option<i64>,
    /// Inputs as given on the command line (paths, URLs, or the state file).
    pub inputs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: building table {table}: {message}", path.display())]
    Table {
        path: PathBuf,
        table: &'static str,
        message: String,
    },
}

/// The alerts of a replay, in the alert schema, at most `max` (the rest counted).
#[derive(Debug, Clone, Default)]
pub struct AlertLog {
    pub alerts: Vec<serde_json::Value>,
    pub overflow: u64,
    max: usize,
}

impl AlertLog {
    pub fn new(max: usize) -> Self {
        AlertLog {
            alerts: Vec::new(),
            overflow: 0,
            max,
        }
    }

    pub fn push(&mut self, a: &Alert) {
        if self.alerts.len() >= self.max {
            self.overflow += 1;
        } else if let Ok(v) = serde_json::to_value(a) {
            self.alerts.push(v);
        }
    }
}

/// Everything a report shows.
#[derive(Debug, Clone)]
pub struct AuditReport {
    pub meta: ReportMeta,
    /// What the driver read; `None` for a report made from a state file.
    pub input: Option<InputStats>,
    /// The state file the report was made from, if it was.
    pub state_file: Option<PathBuf>,
    pub counters: EngineCounters,
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    /// Calls that did not fit a table (`max_report_rows`).
    pub overflow: u64,
    pub alerts_overflow: u64,
    /// SHA-256 over every rule's id and definition fingerprint, in rule order.
    pub rules_fingerprint: String,
    pub rules: usize,
    pub tables: Tables,
}

fn rules_fingerprint<'a>(rules: impl Iterator<Item = (&'a str, &'a str)>) -> (String, usize) {
    let mut h = Sha256::new();
    let mut n = 0;
    for (id, fp) in rules {
        h.update(id.as_bytes());
        h.update(b"\t");
        h.update(fp.as_bytes());
        h.update(b"\n");
        n += 1;
    }
    (hex(&h.finalize()), n)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AuditReport {
    /// The report of a replay: the engine after its last object (finished or not), what the
    /// driver read, and the alerts it emitted.
    pub fn from_engine(
        engine: &Engine,
        input: &InputStats,
        alerts: &AlertLog,
        meta: ReportMeta,
    ) -> AuditReport {
        let (rules_fingerprint, rules) = rules_fingerprint(
            engine
                .rules()
                .iter()
                .map(|r| (&*r.rule.id, r.fingerprint())),
        );
        let t = engine.totals();
        AuditReport {
            meta,
            input: Some(input.clone()),
            state_file: None,
            counters: engine.counters(),
            first_event: t.keys.values().map(|k| k.first_seen).min(),
            last_event: engine.max_event_time(),
            overflow: t.overflow,
            alerts_overflow: alerts.overflow,
            rules_fingerprint,
            rules,
            tables: Tables::build(t, &alerts.alerts),
        }
    }

    /// The report of a state file: the same tables as the replay that wrote it, except `alerts`,
    /// which holds the alerts firing when the state was saved (none are resolved in a state).
    pub fn from_state(state: &EngineState, meta: ReportMeta) -> AuditReport {
        let (rules_fingerprint, rules) = rules_fingerprint(
            state
                .rules()
                .iter()
                .map(|r| (r.rule.as_str(), r.fingerprint.as_str())),
        );
        let t = state.totals();
        let alerts: Vec<serde_json::Value> = state.firing.iter().map(|f| f.alert.clone()).collect();
        AuditReport {
            meta,
            input: None,
            state_file: state.origin.clone(),
            counters: state.counters(),
            first_event: t.keys.values().map(|k| k.first_seen).min(),
            last_event: state.max_event_time(),
            overflow: t.overflow,
            alerts_overflow: 0,
            rules_fingerprint,
            rules,
            tables: Tables::build(t, &alerts),
        }
    }

    /// "a replay of `a`, `b`" or "the state file `s`".
    pub fn source_text(&self) -> String {
        let inputs: Vec<String> = self.meta.inputs.iter().map(|i| format!("`{i}`")).collect();
        match self.input {
            Some(_) => format!("a replay of {}", inputs.join(", ")),
            None => format!("the state file {}", inputs.join(", ")),
        }
    }

    /// Accounts of the keys seen, sorted.
    pub fn accounts(&self) -> Vec<String> {
        let s: BTreeSet<&String> = self
            .tables
            .keys
            .iter()
            .filter_map(|k| k.account.as_ref())
            .collect();
        s.into_iter().cloned().collect()
    }

    /// Regions of the keys seen, sorted.
    pub fn regions(&self) -> Vec<String> {
        let s: BTreeSet<&String> = self
            .tables
            .keys
            .iter()
            .filter_map(|k| k.region.as_ref())
            .collect();
        s.into_iter().cloned().collect()
    }

    /// Writes every file into `dir` (created if missing; files of the same names are replaced)
    /// and returns their names, `manifest.json` last.
    pub fn write(&self, dir: &Path) -> Result<Vec<String>, ReportError> {
        let io = |path: &Path, action, source| ReportError::Io {
            path: path.to_owned(),
            action,
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, "creating the report directory", e))?;
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let table_err = |table, e: polars::error::PolarsError| ReportError::Table {
            path: dir.to_owned(),
            table,
            message: e.to_string(),
        };
        for (name, mut df) in frames(&self.tables).map_err(|e| table_err("(all)", e))? {
            let csv = csv_bytes(&mut df).map_err(|e| table_err(name, e))?;
            let parquet = parquet_bytes(&mut df).map_err(|e| table_err(name, e))?;
            files.push((format!("{name}.csv"), csv));
            files.push((format!("{name}.parquet"), parquet));
        }
        let doc = super::document::document(self);
        files.push((
            "report.md".into(),
            super::markdown::render(&doc).into_bytes(),
        ));
        files.push(("report.html".into(), super::html::render(&doc).into_bytes()));
        let mut entries: Vec<ManifestFile> = files
            .iter()
            .map(|(name, bytes)| ManifestFile {
                name: name.clone(),
                bytes: bytes.len() as u64,
                sha256: hex(&Sha256::digest(bytes)),
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let manifest = self.manifest(entries);
        let mut json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        json.push(b'\n');
        files.push(("manifest.json".into(), json));
        let mut names = Vec::new();
        for (name, bytes) in files {
            let path = dir.join(&name);
            std::fs::write(&path, bytes).map_err(|e| io(&path, "writing", e))?;
            names.push(name);
        }
        Ok(names)
    }

    fn manifest(&self, files: Vec<ManifestFile>) -> Manifest {
        Manifest {
            schema: MANIFEST_SCHEMA,
            kmswatch_version: env!("CARGO_PKG_VERSION"),
            source: if self.input.is_some() {
                "replay"
            } else {
                "state"
            },
            inputs: self.meta.inputs.clone(),
            range_from: self.meta.range_from.map(format_rfc3339),
            range_to: self.meta.range_to.map(format_rfc3339),
            first_event: self.first_event.map(format_rfc3339),
            last_event: self.last_event.map(format_rfc3339),
            objects_read: self.input.as_ref().map(|i| i.log_objects),
            objects_failed: self.input.as_ref().map(|i| i.objects_failed),
            kms_calls: self.counters.kms_calls,
            table_overflow: self.overflow,
            alerts_overflow: self.alerts_overflow,
            rules: self.rules,
            rules_fingerprint: self.rules_fingerprint.clone(),
            files,
        }
    }
}

/// `manifest.json`, schema `kmswatch.report-manifest/v1`.
#[derive(Debug, Serialize)]
struct Manifest {
    schema: &'static str,
    kmswatch_version: &'static str,
    /// `replay` or `state`.
    source: &'static str,
    inputs: Vec<String>,
    range_from: Option<String>,
    range_to: Option<String>,
    first_event: Option<String>,
    last_event: Option<String>,
    /// Log objects read (`null` for a report from a state file, which does not record them).
    objects_read: Option<u64>,
    objects_failed: Option<u64>,
    kms_calls: u64,
    table_overflow: u64,
    alerts_overflow: u64,
    rules: usize,
    rules_fingerprint: String,
    /// Every other file written, by name.
    files: Vec<ManifestFile>,
}

#[derive(Debug, Serialize)]
struct ManifestFile {
    name: String,
    bytes: u64,
    sha256: String,
}
