//! The report's tables as polars DataFrames, and their bytes as Parquet and CSV.
//!
//! Column types: strings (ARNs and ids as strings), `UInt64` counts, times as
//! `Datetime(us, "UTC")` (Parquet `TIMESTAMP(us, UTC)`; RFC 3339 with `Z` in CSV). Both formats
//! get the same columns in the same order, and rows in the order `rows` sorted them.

use polars::prelude::*;

use super::rows::Tables;

/// `strftime` pattern of times in CSV: RFC 3339 in UTC, whole seconds (CloudTrail's precision).
const CSV_TIME: &str = "%Y-%m-%dT%H:%M:%SZ";

fn ts(name: &str, secs: impl Iterator<Item = Option<i64>>) -> Column {
    Int64Chunked::from_iter_options(name.into(), secs.map(|s| s.map(|s| s * 1_000_000)))
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_column()
}

fn count(name: &str, v: impl Iterator<Item = u64>) -> Column {
    Column::new(name.into(), v.collect::<Vec<u64>>())
}

fn text<S: AsRef<str>>(name: &str, v: impl Iterator<Item = Option<S>>) -> Column {
    let v: Vec<Option<String>> = v.map(|s| s.map(|s| s.as_ref().to_owned())).collect();
    Column::new(name.into(), v)
}

fn float(name: &str, v: impl Iterator<Item = Option<f64>>) -> Column {
    Column::new(name.into(), v.collect::<Vec<Option<f64>>>())
}

/// Every table as a DataFrame, by file stem, in the report's order.
pub fn frames(t: &Tables) -> PolarsResult<Vec<(&'static str, DataFrame)>> {
    let k = &t.keys;
    let keys = DataFrame::new_infer_height(vec![
        text("key_arn", k.iter().map(|r| r.key_arn.as_ref())),
        text("account", k.iter().map(|r| r.account.as_ref())),
        text("region", k.iter().map(|r| r.region.as_ref())),
        text("aliases", k.iter().map(|r| Some(r.aliases.join(";")))),
        ts("first_seen", k.iter().map(|r| Some(r.first_seen))),
        ts("last_seen", k.iter().map(|r| Some(r.last_seen))),
        ts("last_crypto_use", k.iter().map(|r| r.last_crypto_use)),
        count("calls", k.iter().map(|r| r.calls)),
        count("crypto_calls", k.iter().map(|r| r.crypto_calls)),
        count("management_calls", k.iter().map(|r| r.management_calls)),
        count("failures", k.iter().map(|r| r.failures)),
        count("principals", k.iter().map(|r| r.principals)),
        count("services", k.iter().map(|r| r.services)),
        text(
            "lifecycle_state",
            k.iter()
                .map(|r| r.key_arn.as_ref().map(|_| r.lifecycle_state.as_str())),
        ),
        ts(
            "lifecycle_state_since",
            k.iter().map(|r| r.lifecycle_state_since),
        ),
        ts(
            "rotation_enabled_at",
            k.iter().map(|r| r.rotation_enabled_at),
        ),
        ts(
            "rotation_disabled_at",
            k.iter().map(|r| r.rotation_disabled_at),
        ),
        ts("rotated_at", k.iter().map(|r| r.rotated_at)),
        count("rotations", k.iter().map(|r| r.rotations)),
        count("policy_changes", k.iter().map(|r| r.policy_changes)),
        count("grants_created", k.iter().map(|r| r.grants_created)),
        count("grants_removed", k.iter().map(|r| r.grants_removed)),
    ])?;
    let p = &t.key_principal_service;
    let kps = DataFrame::new_infer_height(vec![
        text("key_arn", p.iter().map(|r| r.key_arn.as_ref())),
        text("principal", p.iter().map(|r| Some(&r.principal))),
        text("service", p.iter().map(|r| Some(&r.service))),
        count("calls", p.iter().map(|r| r.calls)),
        count("failures", p.iter().map(|r| r.failures)),
        ts("first_seen", p.iter().map(|r| Some(r.first_seen))),
        ts("last_seen", p.iter().map(|r| Some(r.last_seen))),
    ])?;
    let o = &t.key_operation_outcome;
    let koo = DataFrame::new_infer_height(vec![
        text("key_arn", o.iter().map(|r| r.key_arn.as_ref())),
        text("operation", o.iter().map(|r| Some(&r.operation))),
        text("outcome", o.iter().map(|r| Some(&r.outcome))),
        count("calls", o.iter().map(|r| r.calls)),
    ])?;
    let d = &t.daily_usage;
    let daily = DataFrame::new_infer_height(vec![
        text("key_arn", d.iter().map(|r| r.key_arn.as_ref())),
        ts("day", d.iter().map(|r| Some(r.day))),
        count("calls", d.iter().map(|r| r.calls)),
        count("crypto_calls", d.iter().map(|r| r.crypto_calls)),
        count("management_calls", d.iter().map(|r| r.management_calls)),
        count("failures", d.iter().map(|r| r.failures)),
    ])?;
    let l = &t.lifecycle;
    let lifecycle = DataFrame::new_infer_height(vec![
        ts("time", l.iter().map(|r| Some(r.time))),
        text("key_arn", l.iter().map(|r| r.key_arn.as_ref())),
        text("operation", l.iter().map(|r| Some(&r.operation))),
        text("category", l.iter().map(|r| Some(r.category))),
        text("principal", l.iter().map(|r| Some(&r.principal))),
        text("outcome", l.iter().map(|r| Some(&r.outcome))),
        text("event_id", l.iter().map(|r| Some(&r.event_id))),
    ])?;
    let a = &t.alerts;
    let alerts = DataFrame::new_infer_height(vec![
        ts("window_start", a.iter().map(|r| Some(r.window_start))),
        ts("window_end", a.iter().map(|r| Some(r.window_end))),
        text("rule", a.iter().map(|r| Some(&r.rule))),
        text("kind", a.iter().map(|r| Some(&r.kind))),
        text("severity", a.iter().map(|r| Some(&r.severity))),
        text("state", a.iter().map(|r| Some(&r.state))),
        text("group", a.iter().map(|r| Some(&r.group))),
        text("key_arn", a.iter().map(|r| r.key_arn.as_ref())),
        float("value", a.iter().map(|r| r.value)),
        float("threshold", a.iter().map(|r| r.threshold)),
        count("evidence_count", a.iter().map(|r| r.evidence_count)),
        text("summary", a.iter().map(|r| Some(&r.summary))),
    ])?;
    Ok(vec![
        ("keys", keys),
        ("key_principal_service", kps),
        ("key_operation_outcome", koo),
        ("daily_usage", daily),
        ("lifecycle", lifecycle),
        ("alerts", alerts),
    ])
}

/// RFC 4180 CSV with a header row (fields quoted only when needed, `\n` line ends).
pub fn csv_bytes(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut out = Vec::new();
    CsvWriter::new(&mut out)
        .include_header(true)
        .with_datetime_format(Some(CSV_TIME.into()))
        .finish(df)?;
    Ok(out)
}

/// Parquet, zstd-compressed, one row group, with statistics.
pub fn parquet_bytes(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut out = Vec::new();
    ParquetWriter::new(&mut out)
        .with_compression(ParquetCompression::Zstd(None))
        .set_parallel(false)
        .finish(df)?;
    Ok(out)
}
