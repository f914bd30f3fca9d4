//! Alert-schema JSON to Alertmanager's API v2 `postableAlert`: the labels that identify an alert,
//! the annotations that describe it, and its time range. Pure: the wall clock is an argument.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::sinks::LinkTemplate;
use crate::timefmt::{format_rfc3339, parse_event_time};

/// Label (or annotation) name to value; sorted, so equal sets compare and print equal.
pub type Labels = BTreeMap<String, String>;

/// One alert as `POST /api/v2/alerts` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: String,
    pub ends_at: String,
}

/// An alert of the schema, read for Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmAlert {
    /// `alertname` (the rule id), `severity`, every grouped dimension that has a value, and the
    /// `account` and `region` of the key's ARN when the group has none of its own.
    pub labels: Labels,
    /// `summary`, `description`, `kind`, `value`, `threshold`, `window_start`, `window_end`,
    /// `evidence_count`, `event_ids` (comma-separated), `baseline` (spikes) and `link` (with a
    /// link template).
    pub annotations: Labels,
    pub firing: bool,
    /// Event time: the start of the window the condition was found in.
    pub starts_at: i64,
    /// Event time: the end of that window; for a resolved alert, the end of the quiet window.
    pub ends_at: i64,
}

/// Reads an alert in the alert schema (`kmswatch.alert/v1`, as emitted or as kept firing by the
/// engine).
pub fn read_alert(v: &Value, link: Option<&LinkTemplate>) -> Result<AmAlert, String> {
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the alert has no {k}"))
    };
    let time = |k: &str| {
        text(k).and_then(|t| parse_event_time(t).ok_or_else(|| format!("{k} {t:?} is not a time")))
    };
    let firing = match text("state")? {
        "firing" => true,
        "resolved" => false,
        other => return Err(format!("unknown alert state {other:?}")),
    };
    let mut labels = Labels::new();
    labels.insert("alertname".into(), text("rule")?.into());
    labels.insert("severity".into(), text("severity")?.into());
    if let Some(group) = v.get("group").and_then(Value::as_object) {
        for (dim, value) in group {
            if let Some(value) = value.as_str() {
                labels.insert(dim.clone(), value.into());
            }
        }
    }
    if let Some((region, account)) = labels.get("key").and_then(|k| key_region_account(k)) {
        labels.entry("region".into()).or_insert(region);
        labels.entry("account".into()).or_insert(account);
    }

    let mut annotations = Labels::new();
    for k in [
        "summary",
        "description",
        "kind",
        "window_start",
        "window_end",
    ] {
        annotations.insert(k.into(), text(k)?.into());
    }
    for k in ["value", "threshold"] {
        annotations.insert(k.into(), v.get(k).unwrap_or(&Value::Null).to_string());
    }
    let evidence = v.get("evidence");
    let ids: Vec<&str> = evidence
        .and_then(|e| e.get("event_ids"))
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let count = evidence
        .and_then(|e| e.get("count"))
        .and_then(Value::as_u64);
    annotations.insert("evidence_count".into(), count.unwrap_or(0).to_string());
    annotations.insert("event_ids".into(), ids.join(","));
    if let Some(b) = v.get("baseline").filter(|b| b.is_object()) {
        let n = |k: &str| b.get(k).unwrap_or(&Value::Null).to_string();
        let baseline = format!(
            "mean {} stddev {} over {} windows",
            n("mean"),
            n("stddev"),
            n("windows")
        );
        annotations.insert("baseline".into(), baseline);
    }
    if let Some(t) = link {
        let rendered = t.render(|name| match name {
            "rule" => labels.get("alertname").map(String::as_str),
            "event_id" => ids.first().copied(),
            "window_start" | "window_end" => annotations.get(name).map(String::as_str),
            _ => labels.get(name).map(String::as_str),
        });
        annotations.insert("link".into(), rendered);
    }
    Ok(AmAlert {
        labels,
        annotations,
        firing,
        starts_at: time("window_start")?,
        ends_at: time("window_end")?,
    })
}

/// The region and account of a KMS key or alias ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`).
fn key_region_account(key: &str) -> Option<(String, String)> {
    let mut p = key.split(':');
    let (arn, _partition, service) = (p.next()?, p.next()?, p.next()?);
    let (region, account) = (p.next()?, p.next()?);
    (arn == "arn" && service == "kms" && !region.is_empty() && !account.is_empty())
        .then(|| (region.to_string(), account.to_string()))
}

impl AmAlert {
    /// The alert as posted at `now` (Unix seconds). A firing alert holds until `valid_until`,
    /// unless posted again before; a resolved one ended at the end of its quiet window. Neither
    /// time is later than `now` but `valid_until` (an event clock ahead of ours must not keep a
    /// resolved alert active), and `startsAt <= endsAt`.
    pub fn postable(&self, now: i64, valid_until: i64) -> PostableAlert {
        let starts = self.starts_at.min(now);
        let ends = if self.firing {
            valid_until.max(starts)
        } else {
            self.ends_at.clamp(starts, now)
        };
        PostableAlert {
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            starts_at: format_rfc3339(starts),
            ends_at: format_rfc3339(ends),
        }
    }
}
