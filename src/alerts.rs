//! The alert output schema (`kmswatch.alert/v1`) and the JSON-lines sink.
//!
//! This type is the contract with users and sinks; it is separate from any rule's internal state.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::rules::{Dim, Severity};
use crate::timefmt::format_rfc3339;

/// Schema identifier carried by every alert; bump on incompatible change.
pub const ALERT_SCHEMA: &str = "kmswatch.alert/v1";

/// At most this many event ids are carried as evidence.
pub const MAX_EVIDENCE_IDS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// The grouped dimensions, in the rule's `group_by` order; `None` where the call had none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group(pub Vec<(Dim, Option<String>)>);

impl Group {
    pub fn get(&self, dim: Dim) -> Option<&str> {
        self.0
            .iter()
            .find(|(d, _)| *d == dim)
            .and_then(|(_, v)| v.as_deref())
    }

    /// `key arn:..., principal arn:...` for sentences.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(d, v)| format!("{} {}", d.as_str(), v.as_deref().unwrap_or("(none)")))
            .collect();
        parts.join(", ")
    }
}

impl Serialize for Group {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (d, v) in &self.0 {
            m.serialize_entry(d.as_str(), v)?;
        }
        m.end()
    }
}

/// The baseline a spike was measured against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    pub mean: f64,
    pub stddev: f64,
    /// Number of trailing windows the mean and stddev are over.
    pub windows: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// Matching calls behind the alert (in the window, or while it fired).
    pub count: u64,
    /// Up to [`MAX_EVIDENCE_IDS`] CloudTrail `eventID`s, in the order they were processed.
    pub event_ids: Vec<String>,
}

/// One alert, firing or resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub schema: &'static str,
    pub rule: String,
    pub kind: &'static str,
    pub severity: Severity,
    pub state: AlertState,
    pub group: Group,
    #[serde(serialize_with = "rfc3339")]
    pub window_start: i64,
    #[serde(serialize_with = "rfc3339")]
    pub window_end: i64,
    #[serde(serialize_with = "number")]
    pub value: f64,
    #[serde(serialize_with = "number")]
    pub threshold: f64,
    pub baseline: Option<Baseline>,
    pub summary: String,
    pub description: String,
    pub evidence: Evidence,
}

fn rfc3339<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(*t))
}

/// Whole numbers as integers (`1500`, not `1500.0`); others rounded to 4 decimals.
fn number<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        s.serialize_i64(*v as i64)
    } else if v.is_finite() {
        s.serialize_f64((v * 10_000.0).round() / 10_000.0)
    } else {
        s.serialize_none()
    }
}

impl Alert {
    /// What identifies the alert's group within its rule: the group as JSON.
    pub fn group_id(&self) -> String {
        serde_json::to_string(&self.group).unwrap_or_default()
    }

    /// One JSON line, without the newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"unserializable alert: {e}\"}}"))
    }
}

/// The alerts firing now, in the alert schema, by rule id and group id ([`Alert::group_id`]).
/// The engine holds the one copy of each; what publishes them (the service's alert board) shares
/// it rather than copying it.
pub type Firing = BTreeMap<(String, String), Arc<serde_json::Value>>;

/// A published list of firing alerts (the service's board): the engine's, shared.
pub type FiringSnapshot = Arc<Vec<Arc<serde_json::Value>>>;

/// Applies an emitted alert to `firing`: a firing one is added (or replaced), a resolved one
/// removed.
pub fn apply(firing: &mut Firing, a: &Alert) {
    let id = (a.rule.clone(), a.group_id());
    match a.state {
        AlertState::Firing => {
            let json = serde_json::to_value(a).unwrap_or(serde_json::Value::Null);
            firing.insert(id, Arc::new(json));
        }
        AlertState::Resolved => {
            firing.remove(&id);
        }
    }
}

/// Writes alerts as JSON lines.
pub struct JsonLinesSink<W: Write> {
    out: W,
    pub written: u64,
}

impl<W: Write> JsonLinesSink<W> {
    pub fn new(out: W) -> Self {
        JsonLinesSink { out, written: 0 }
    }

    pub fn write(&mut self, alert: &Alert) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, alert)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Writes an alert already in the schema's JSON (one line, as [`Alert::to_json`] makes it).
    pub fn write_json(&mut self, json: &str) -> io::Result<()> {
        self.out.write_all(json.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_the_documented_shape() {
        let a = Alert {
            schema: ALERT_SCHEMA,
            rule: "r".into(),
            kind: "spike",
            severity: Severity::High,
            state: AlertState::Firing,
            group: Group(vec![(Dim::Key, Some("k".into())), (Dim::Principal, None)]),
            window_start: 0,
            window_end: 300,
            value: 412.0,
            threshold: 120.123456,
            baseline: Some(Baseline {
                mean: 20.5,
                stddev: 4.0,
                windows: 12,
            }),
            summary: "s".into(),
            description: "d".into(),
            evidence: Evidence {
                count: 412,
                event_ids: vec!["e1".into()],
            },
        };
        assert_eq!(
            a.to_json(),
            r#"{"schema":"kmswatch.alert/v1","rule":"r","kind":"spike","severity":"high","state":"firing","group":{"key":"k","principal":null},"window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:05:00Z","value":412,"threshold":120.1235,"baseline":{"mean":20.5,"stddev":4.0,"windows":12},"summary":"s","description":"d","evidence":{"count":412,"event_ids":["e1"]}}"#
        );
    }
}
