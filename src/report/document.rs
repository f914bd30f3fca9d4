//! The human report as a sequence of blocks, rendered both as `report.md` (`markdown`) and as
//! `report.html` (`html`): findings first (evidence and a recommendation each), then coverage,
//! then charts and the tables' busiest rows. Inline text may hold `code` and **bold** spans.

use std::collections::BTreeMap;

use super::audit::AuditReport;
use super::findings::{findings, CHECKS};
use crate::timefmt::format_rfc3339;

/// Rows listed per finding and per table; the files hold them all.
pub const TOP: usize = 10;
/// Keys charted one by one.
const CHARTED_KEYS: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(u8, String),
    Para(String),
    Items(Vec<String>),
    Table {
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// A bar chart of a value per UTC day (HTML only).
    Chart {
        title: String,
        days: Vec<(i64, u64)>,
    },
}

fn t(secs: Option<i64>) -> String {
    secs.map_or_else(|| "-".to_owned(), format_rfc3339)
}

fn table(out: &mut Vec<Block>, columns: &[&str], rows: Vec<Vec<String>>) {
    let total = rows.len();
    let shown: Vec<Vec<String>> = rows.into_iter().take(TOP).collect();
    let n = shown.len();
    out.push(Block::Table {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: shown,
    });
    if total > n {
        out.push(Block::Para(format!("{n} of {total} rows shown.")));
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_owned()
    } else {
        v.join(", ")
    }
}

/// The whole report.
pub fn document(r: &AuditReport) -> Vec<Block> {
    let mut out = vec![
        Block::Heading(1, "KMS audit report".into()),
        Block::Para(format!(
            "kmswatch {}, {}. Events from {} to {}.",
            env!("CARGO_PKG_VERSION"),
            r.source_text(),
            t(r.first_event),
            t(r.last_event)
        )),
        Block::Heading(2, "Findings".into()),
    ];
    let found = findings(&r.tables);
    if found.is_empty() {
        out.push(Block::Para("No check found anything to act on.".into()));
    }
    for (i, f) in found.iter().enumerate() {
        out.push(Block::Heading(
            3,
            format!("{}. {} (`{}`)", i + 1, f.title, f.id),
        ));
        out.push(Block::Para(f.evidence.clone()));
        table(&mut out, f.columns, f.rows.clone());
        out.push(Block::Para(format!(
            "**Recommendation:** {}",
            f.recommendation
        )));
    }
    let passed: Vec<&str> = CHECKS
        .iter()
        .filter(|(id, _)| !found.iter().any(|f| f.id == *id))
        .map(|(_, title)| *title)
        .collect();
    if !passed.is_empty() {
        out.push(Block::Para(format!(
            "Checks with nothing to report: {}.",
            passed.join("; ")
        )));
    }
    coverage(&mut out, r);
    charts(&mut out, r);
    tables(&mut out, r);
    out
}

fn coverage(out: &mut Vec<Block>, r: &AuditReport) {
    out.push(Block::Heading(2, "Coverage".into()));
    let range = match (r.meta.range_from, r.meta.range_to) {
        (None, None) => "not limited (every event read)".to_owned(),
        (from, to) => format!("[{}, {})", t(from), t(to)),
    };
    let (accounts, regions) = (r.accounts(), r.regions());
    let mut items = vec![
        format!(
            "Time range: {range}; events from {} to {}",
            t(r.first_event),
            t(r.last_event)
        ),
        format!("Accounts ({}): {}", accounts.len(), list(&accounts)),
        format!("Regions ({}): {}", regions.len(), list(&regions)),
    ];
    match &r.input {
        Some(i) => {
            let skipped: Vec<String> = i.skipped.iter().map(|(k, v)| format!("{v} {k}")).collect();
            items.push(format!(
                "Objects: {} log objects read ({} files found), {} failed; skipped: {}",
                i.log_objects,
                i.files_found,
                i.objects_failed,
                if skipped.is_empty() {
                    "none".to_owned()
                } else {
                    skipped.join(", ")
                }
            ));
            items.push(format!(
                "Records: {} ({} KMS, {} malformed)",
                i.decoded.records, i.decoded.kms_records, i.decoded.malformed_records
            ));
            for f in i.failures.iter().take(TOP) {
                items.push(format!("Failed: `{}`: {}", f.object, f.error));
            }
        }
        None => items.push("Objects: not recorded in a state file".into()),
    }
    let c = &r.counters;
    items.push(format!(
        "KMS calls: {} distinct, {} duplicates dropped, {} arrived after their window closed",
        c.kms_calls, c.duplicates, c.late
    ));
    items.push(if r.overflow > 0 || r.alerts_overflow > 0 {
        format!(
            "**Incomplete tables:** {} calls and {} alerts did not fit `max_report_rows`",
            r.overflow, r.alerts_overflow
        )
    } else {
        "Tables: complete (nothing over `max_report_rows`)".into()
    });
    let Some(i) = &r.input else {
        items.push(
            "Gaps (account-region pairs with no log file for over an hour): not recorded in a state file"
                .into(),
        );
        out.push(Block::Items(items));
        return;
    };
    let d = &i.deliveries;
    items.push(format!(
        "Deliveries: {} account-region pairs; {} objects not named in the trail layout{}",
        d.pairs.len(),
        d.unnamed,
        if d.overflow > 0 {
            format!(
                "; {} over the tracking limits (gaps incomplete)",
                d.overflow
            )
        } else {
            String::new()
        }
    ));
    out.push(Block::Items(items));
    gap_tables(out, d.gaps(r.meta.range_from, r.meta.range_to));
}

/// Gaps per account and region, then the longest.
fn gap_tables(out: &mut Vec<Block>, gaps: Vec<(String, String, i64, i64)>) {
    out.push(Block::Para(format!(
        "Gaps (an account and region with no log file for over an hour): {}.",
        gaps.len()
    )));
    if gaps.is_empty() {
        return;
    }
    let mut pairs: BTreeMap<(&str, &str), (u64, i64, i64, i64)> = BTreeMap::new();
    for (account, region, a, b) in &gaps {
        let e = pairs.entry((account, region)).or_insert((0, 0, *a, *b));
        e.0 += 1;
        e.1 += b - a;
        if b - a > e.3 - e.2 {
            (e.2, e.3) = (*a, *b);
        }
    }
    let hours = |secs: i64| format!("{:.1}", secs as f64 / 3600.0);
    let rows = pairs
        .iter()
        .map(|((account, region), (n, total, a, b))| {
            vec![
                account.to_string(),
                region.to_string(),
                n.to_string(),
                hours(*total),
                format_rfc3339(*a),
                hours(b - a),
            ]
        })
        .collect();
    table(
        out,
        &[
            "account",
            "region",
            "gaps",
            "hours_without_files",
            "longest_from",
            "longest_hours",
        ],
        rows,
    );
    let mut longest = gaps.clone();
    longest.sort_by(|x, y| (y.3 - y.2).cmp(&(x.3 - x.2)).then_with(|| x.cmp(y)));
    let rows = longest
        .iter()
        .map(|(account, region, a, b)| {
            vec![
                account.clone(),
                region.clone(),
                format_rfc3339(*a),
                format_rfc3339(*b),
                hours(b - a),
            ]
        })
        .collect();
    out.push(Block::Para("The longest gaps:".into()));
    table(
        out,
        &["account", "region", "no_file_from", "no_file_to", "hours"],
        rows,
    );
    out.push(Block::Para(
        "Each gap needs an explanation (the trail stopped, delivery failed, or there was no activity): CloudTrail delivers a file per account and region about every five minutes while there are events.".into(),
    ));
}

fn charts(out: &mut Vec<Block>, r: &AuditReport) {
    let mut calls: BTreeMap<i64, u64> = BTreeMap::new();
    let mut failures: BTreeMap<i64, u64> = BTreeMap::new();
    for d in &r.tables.daily_usage {
        *calls.entry(d.day).or_default() += d.calls;
        *failures.entry(d.day).or_default() += d.failures;
    }
    out.push(Block::Heading(2, "Usage".into()));
    out.push(Block::Para(
        "Calls and failures per UTC day (charts in `report.html`; the numbers per key and day in `daily_usage.csv`).".into(),
    ));
    out.push(Block::Chart {
        title: "Calls per day, all keys".into(),
        days: calls.into_iter().collect(),
    });
    out.push(Block::Chart {
        title: "Failed calls per day, all keys".into(),
        days: failures.into_iter().collect(),
    });
    let mut busiest: Vec<_> = r
        .tables
        .keys
        .iter()
        .filter(|k| k.key_arn.is_some())
        .collect();
    busiest.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.key_arn.cmp(&b.key_arn)));
    for k in busiest.into_iter().take(CHARTED_KEYS) {
        let days = r
            .tables
            .daily_usage
            .iter()
            .filter(|d| d.key_arn == k.key_arn)
            .map(|d| (d.day, d.calls))
            .collect();
        out.push(Block::Chart {
            title: format!(
                "Calls per day, {}",
                k.key_arn.as_deref().unwrap_or_default()
            ),
            days,
        });
    }
}

fn tables(out: &mut Vec<Block>, r: &AuditReport) {
    let tb = &r.tables;
    out.push(Block::Heading(2, "Tables".into()));
    out.push(Block::Para(
        "Every table is in `<name>.csv` and `<name>.parquet`; the busiest rows are shown here."
            .into(),
    ));
    let mut keys: Vec<_> = tb.keys.iter().collect();
    keys.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.key_arn.cmp(&b.key_arn)));
    let rows = keys
        .iter()
        .map(|k| {
            vec![
                k.key_arn.clone().unwrap_or_else(|| "(no key)".into()),
                k.calls.to_string(),
                k.crypto_calls.to_string(),
                k.failures.to_string(),
                k.principals.to_string(),
                if k.key_arn.is_some() {
                    k.lifecycle_state.as_str().to_owned()
                } else {
                    "-".to_owned()
                },
                t(k.last_crypto_use),
            ]
        })
        .collect();
    out.push(Block::Heading(3, "keys (by calls)".into()));
    table(
        out,
        &[
            "key_arn",
            "calls",
            "crypto_calls",
            "failures",
            "principals",
            "lifecycle_state",
            "last_crypto_use",
        ],
        rows,
    );
    let mut kps: Vec<_> = tb.key_principal_service.iter().collect();
    kps.sort_by(|a, b| {
        b.calls.cmp(&a.calls).then_with(|| {
            (&a.key_arn, &a.principal, &a.service).cmp(&(&b.key_arn, &b.principal, &b.service))
        })
    });
    let rows = kps
        .iter()
        .map(|p| {
            vec![
                p.key_arn.clone().unwrap_or_else(|| "(no key)".into()),
                p.principal.clone(),
                p.service.clone(),
                p.calls.to_string(),
                p.failures.to_string(),
            ]
        })
        .collect();
    out.push(Block::Heading(3, "key_principal_service (by calls)".into()));
    table(
        out,
        &["key_arn", "principal", "service", "calls", "failures"],
        rows,
    );
    let rows = tb
        .lifecycle
        .iter()
        .map(|l| {
            vec![
                format_rfc3339(l.time),
                l.key_arn.clone().unwrap_or_default(),
                l.operation.clone(),
                l.principal.clone(),
                l.outcome.clone(),
            ]
        })
        .collect();
    out.push(Block::Heading(3, "lifecycle (first calls)".into()));
    table(
        out,
        &["time", "key_arn", "operation", "principal", "outcome"],
        rows,
    );
    let rows = tb
        .alerts
        .iter()
        .filter(|a| a.state == "firing")
        .map(|a| {
            vec![
                format_rfc3339(a.window_start),
                a.rule.clone(),
                a.severity.clone(),
                a.summary.clone(),
            ]
        })
        .collect();
    out.push(Block::Heading(3, "alerts (firing)".into()));
    table(out, &["window_start", "rule", "severity", "summary"], rows);
}
