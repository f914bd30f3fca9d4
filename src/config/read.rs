//! The first stage: configuration text into a [`RawConfig`], every problem kept.
//!
//! `toml` parses with error recovery (every syntax error is a problem). serde then deserializes the
//! tree into the raw structs; it stops at the first unknown field or wrongly typed value, so the
//! offending entry is reported, removed from the tree, and deserialization runs again until it
//! succeeds. Each round removes one entry, so this ends, and every such problem is reported.

use std::ops::Range;

use serde::Deserialize;
use toml::de::{DeTable, DeValue, Deserializer};
use toml::Spanned;

use super::problems::Checker;
use super::raw::{table_fields, RawConfig, ARRAYS_OF_TABLES};
use crate::problem::{a_type, with_hint};

/// The raw configuration, or `None` when the text cannot be read at all (already reported).
pub(super) fn read(text: &str, ck: &mut Checker<'_>) -> Option<RawConfig> {
    let (root, errors) = DeTable::parse_recoverable(text);
    for error in &errors {
        ck.report_span(
            error.span().unwrap_or(0..0),
            error.message().trim_end_matches('.'),
        );
    }
    let span = root.span();
    let mut table = root.into_inner();
    drop_recovered(&mut table, "", ck);
    drop_non_tables(&mut table, "", ck);
    for _ in 0..=count_entries(&table) {
        let de = Deserializer::from(Spanned::new(span.clone(), table.clone()));
        let error = match RawConfig::deserialize(de) {
            Ok(raw) => return Some(raw),
            Err(error) => error,
        };
        let hit = error
            .span()
            .and_then(|at| Some((take(&mut table, "", &at)?, at)));
        let Some((hit, at)) = hit else {
            // Not located in the tree: should not happen; report it as serde says and stop.
            ck.report_span(error.span().unwrap_or(0..0), error.message());
            return None;
        };
        match hit {
            Hit::Unknown { table, key } => ck.report_span(at, unknown_field(&table, &key)),
            Hit::Value { name, got, element } => {
                ck.report_span(at, bad_value(&name, got, element, error.message()));
                ck.spoil(name);
            }
        }
    }
    // Unreachable: each round removes an entry. Never fail without a problem.
    ck.report_span(0..0, "cannot read the configuration: too many problems");
    None
}

/// What an error of serde was about.
#[derive(Debug)]
enum Hit {
    /// A key that is not a field of its table (`table` is `""` at the top level).
    Unknown { table: String, key: String },
    /// A value of the wrong type: the field's dotted name, the value's type, and whether it was an
    /// element of an array.
    Value {
        name: String,
        got: &'static str,
        element: bool,
    },
}

/// Finds the entry of `table` (named under `path`) at `at` (its key, its value, or inside its
/// value), removes it and says what it was.
fn take(table: &mut DeTable<'_>, path: &str, at: &Range<usize>) -> Option<Hit> {
    let mut found = None;
    for (key, value) in table.iter_mut() {
        let name = join(path, key.get_ref());
        if key.span() == *at {
            found = Some((
                key.get_ref().to_string(),
                Hit::Unknown {
                    table: path.to_string(),
                    key: key.get_ref().to_string(),
                },
            ));
            break;
        }
        // A `[table]`'s span is its header: its entries lie outside it, so always look inside.
        match value.get_mut() {
            DeValue::Table(inner) => {
                if let Some(hit) = take(inner, &name, at) {
                    return Some(hit);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if let DeValue::Table(inner) = item.get_mut() {
                        if let Some(hit) = take(inner, &format!("{name}[{i}]"), at) {
                            return Some(hit);
                        }
                    }
                }
            }
            _ => {}
        }
        let span = value.span();
        if span.start <= at.start && at.end <= span.end {
            let (got, element) = type_at(value, at);
            found = Some((key.get_ref().to_string(), Hit::Value { name, got, element }));
            break;
        }
    }
    let (key, hit) = found?;
    table.remove(key.as_str());
    Some(hit)
}

/// The type of the value at `at` within `value`, and whether it is an element of an array.
fn type_at(value: &Spanned<DeValue<'_>>, at: &Range<usize>) -> (&'static str, bool) {
    if let DeValue::Array(items) = value.get_ref() {
        if value.span() != *at {
            if let Some(item) = items.iter().find(|i| i.span() == *at) {
                return (a_type(item.get_ref()), true);
            }
        }
    }
    (a_type(value.get_ref()), false)
}

/// Removes the values the parser made up while recovering from a syntax error (an empty span, or
/// an array holding one): the error is already reported.
fn drop_recovered(table: &mut DeTable<'_>, path: &str, ck: &mut Checker<'_>) {
    let mut recovered = Vec::new();
    for (key, value) in table.iter_mut() {
        let name = join(path, key.get_ref());
        let recovered_value = made_up(value);
        match value.get_mut() {
            DeValue::Table(inner) => drop_recovered(inner, &name, ck),
            DeValue::Array(items)
                if items
                    .iter()
                    .any(|i| matches!(i.get_ref(), DeValue::Table(_))) =>
            {
                for (i, item) in items.iter_mut().enumerate() {
                    if let DeValue::Table(inner) = item.get_mut() {
                        drop_recovered(inner, &format!("{name}[{i}]"), ck);
                    }
                }
            }
            _ if recovered_value => recovered.push((key.get_ref().to_string(), name)),
            _ => {}
        }
    }
    for (key, name) in recovered {
        table.remove(key.as_str());
        ck.spoil(name);
    }
}

/// Removes and reports the sections (`[source]`, `[alerts.alertmanager]`, ...) that are not tables
/// and the `[[alerts.webhook]]`s that are not arrays of tables. serde would take `[[alerts]]` for
/// `[alerts]`: derived structs also accept a sequence of their fields.
fn drop_non_tables(table: &mut DeTable<'_>, path: &str, ck: &mut Checker<'_>) {
    let mut wrong = Vec::new();
    for (key, value) in table.iter_mut() {
        let name = join(path, key.get_ref());
        let array = ARRAYS_OF_TABLES.contains(&name.as_str());
        if !array && table_fields(&name).is_none() {
            continue;
        }
        let span = value.span();
        match value.get_mut() {
            DeValue::Table(inner) if !array => drop_non_tables(inner, &name, ck),
            DeValue::Array(items)
                if array
                    && items
                        .iter()
                        .all(|i| matches!(i.get_ref(), DeValue::Table(_))) =>
            {
                for (i, item) in items.iter_mut().enumerate() {
                    if let DeValue::Table(inner) = item.get_mut() {
                        drop_non_tables(inner, &format!("{name}[{i}]"), ck);
                    }
                }
            }
            other => {
                ck.report_span(span, bad_value(&name, a_type(other), false, ""));
                wrong.push((key.get_ref().to_string(), name));
            }
        }
    }
    for (key, name) in wrong {
        table.remove(key.as_str());
        ck.spoil(name);
    }
}

fn made_up(value: &Spanned<DeValue<'_>>) -> bool {
    value.span().is_empty()
        || matches!(value.get_ref(), DeValue::Array(items) if items.iter().any(made_up))
}

fn count_entries(table: &DeTable<'_>) -> usize {
    table
        .values()
        .map(|v| match v.get_ref() {
            DeValue::Table(inner) => 1 + count_entries(inner),
            DeValue::Array(items) => {
                1 + items
                    .iter()
                    .map(|i| match i.get_ref() {
                        DeValue::Table(inner) => count_entries(inner),
                        _ => 0,
                    })
                    .sum::<usize>()
            }
            _ => 1,
        })
        .sum()
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn unknown_field(table: &str, key: &str) -> String {
    let message = if table.is_empty() {
        format!("unknown top-level field \"{key}\"")
    } else if let Some(array) = ARRAYS_OF_TABLES.iter().find(|a| {
        table
            .strip_prefix(**a)
            .is_some_and(|rest| rest.starts_with('['))
    }) {
        format!("unknown field \"{key}\" in [[{array}]]")
    } else {
        format!("unknown field \"{key}\" in [{table}]")
    };
    let fields = table_fields(table).unwrap_or_default();
    // Units are part of the names: `window` means `window_secs`.
    let with_unit = fields.iter().find(|f| {
        f.strip_prefix(key)
            .is_some_and(|unit| ["_secs", "_ms", "_bytes"].contains(&unit))
    });
    match with_unit {
        Some(f) => format!("{message} (did you mean \"{f}\"?)"),
        None if fields.is_empty() => message,
        None => with_hint(message, key, fields),
    }
}

/// The message for a value of the wrong type; `serde` is serde's own message, used for what the
/// field expects (`"invalid type: string \"x\", expected i64"`). A section expects a table.
fn bad_value(name: &str, got: &'static str, element: bool, serde: &str) -> String {
    if ARRAYS_OF_TABLES.contains(&name) {
        let hint = if got == "a table" {
            format!(" (write [[{name}]], not [{name}])")
        } else {
            String::new()
        };
        return format!("expected an array of tables for [[{name}]], got {got}{hint}");
    }
    if table_fields(name).is_some() {
        let hint = if got == "an array" {
            format!(" (write [{name}], not [[{name}]])")
        } else {
            String::new()
        };
        return format!("expected a table for [{name}], got {got}{hint}");
    }
    match expected(serde) {
        Some(want) if want == got => format!("{name} does not fit in a 64-bit integer"),
        Some(want) if element => format!("expected {want} in {name}, got {got}"),
        Some(want) => format!("expected {want} for {name}, got {got}"),
        None => format!("invalid value for {name}: {serde}"),
    }
}

/// What serde says a field expects, named like [`a_type`] names values.
fn expected(serde: &str) -> Option<&'static str> {
    let (_, want) = serde.rsplit_once(", expected ")?;
    Some(match want {
        "i64" => "an integer",
        "a boolean" => "a boolean",
        "a string" => "a string",
        "a sequence" => "an array",
        _ if want.starts_with("struct ") || want == "a map" => "a table",
        _ => return None,
    })
}
