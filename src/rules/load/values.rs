//! Checking the values of one rule file: the problem collector, the fields of a rule table, and
//! typed readers (strings, booleans, choices, integers, numbers, string arrays, globs, dimensions)
//! that report a precise problem for a value of the wrong type or out of range.

use std::ops::Range;

use globset::{Glob, GlobSetBuilder};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::RuleProblem;
use crate::problem::{a_type, with_hint, Source};
use crate::rules::model::{Dim, Globs};

/// Collects the problems of one rule file.
pub(super) struct Checker<'s> {
    pub(super) src: &'s Source<'s>,
    /// Problems located in the rule file.
    problems: Vec<RuleProblem>,
    /// Problems located in other files (inventory files).
    extra: Vec<RuleProblem>,
}

impl<'s> Checker<'s> {
    pub(super) fn new(src: &'s Source<'s>) -> Self {
        Checker {
            src,
            problems: Vec::new(),
            extra: Vec::new(),
        }
    }
}

impl Checker<'_> {
    pub(super) fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = self.src.position(span.start);
        self.problems.push(RuleProblem {
            file: self.src.file.to_path_buf(),
            line,
            col,
            message: message.into(),
        });
    }

    /// Records a problem located in another file (an inventory file).
    pub(super) fn report_elsewhere(&mut self, problem: RuleProblem) {
        self.extra.push(problem);
    }

    /// Problems reported so far, in this file and elsewhere.
    pub(super) fn problem_count(&self) -> usize {
        self.problems.len() + self.extra.len()
    }

    /// The problems of this file by position (duplicates dropped), then those located elsewhere.
    pub(super) fn into_problems(self) -> Vec<RuleProblem> {
        let Checker {
            mut problems,
            extra,
            ..
        } = self;
        problems.sort_by_key(|p| (p.line, p.col));
        problems.dedup();
        problems.extend(extra);
        problems
    }

    pub(super) fn string<'v>(
        &mut self,
        name: &str,
        v: &'v Spanned<DeValue<'_>>,
    ) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                self.report(
                    v.span(),
                    format!("expected a string for \"{name}\", got {}", a_type(other)),
                );
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, name: &str, v: &Spanned<DeValue<'_>>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.report(
                    v.span(),
                    format!("expected a boolean for \"{name}\", got {}", a_type(other)),
                );
                None
            }
        }
    }

    /// A string that must be one of `options`.
    pub(super) fn choice(
        &mut self,
        name: &str,
        v: &Spanned<DeValue<'_>>,
        options: &[&'static str],
    ) -> Option<&'static str> {
        let s = self.string(name, v)?;
        if let Some(found) = options.iter().find(|o| **o == s) {
            return Some(found);
        }
        let message = with_hint(format!("unknown {name} \"{s}\""), s, options);
        self.report(v.span(), message);
        None
    }

    /// An integer in `min..=max` (no upper bound when `max` is `None`).
    pub(super) fn int(
        &mut self,
        name: &str,
        v: &Spanned<DeValue<'_>>,
        min: i64,
        max: Option<i64>,
    ) -> Option<i64> {
        let range = match max {
            Some(max) => format!("an integer between {min} and {max}"),
            None => format!("an integer >= {min}"),
        };
        let (value, shown) = match v.get_ref() {
            DeValue::Integer(i) => (
                i64::from_str_radix(i.as_str(), i.radix()).ok(),
                i.to_string(),
            ),
            DeValue::Float(f) => (None, f.to_string()),
            other => {
                self.report(
                    v.span(),
                    format!("expected an integer for \"{name}\", got {}", a_type(other)),
                );
                return None;
            }
        };
        match value {
            Some(n) if n >= min && max.is_none_or(|max| n <= max) => Some(n),
            Some(n) => {
                self.report(v.span(), format!("{name} must be {range}, got {n}"));
                None
            }
            None => {
                self.report(v.span(), format!("{name} must be {range}, got {shown}"));
                None
            }
        }
    }

    /// A finite number (integer or float) >= `min`, or > `min` when `exclusive`.
    pub(super) fn number(
        &mut self,
        name: &str,
        v: &Spanned<DeValue<'_>>,
        min: f64,
        exclusive: bool,
    ) -> Option<f64> {
        let (value, shown) = match v.get_ref() {
            DeValue::Integer(i) => (
                i64::from_str_radix(i.as_str(), i.radix())
                    .ok()
                    .map(|n| n as f64)
                    .or_else(|| i.as_str().parse().ok()),
                i.to_string(),
            ),
            DeValue::Float(f) => (f.as_str().parse::<f64>().ok(), f.to_string()),
            other => {
                self.report(
                    v.span(),
                    format!("expected a number for \"{name}\", got {}", a_type(other)),
                );
                return None;
            }
        };
        let op = if exclusive { ">" } else { ">=" };
        match value {
            Some(x) if x.is_finite() && (x > min || (!exclusive && x == min)) => Some(x),
            Some(x) if x.is_finite() => {
                self.report(
                    v.span(),
                    format!("{name} must be a number {op} {min}, got {shown}"),
                );
                None
            }
            _ => {
                self.report(
                    v.span(),
                    format!("{name} must be a finite number {op} {min}, got {shown}"),
                );
                None
            }
        }
    }

    /// A non-empty array of non-empty strings, each with its span.
    pub(super) fn strings<'v>(
        &mut self,
        name: &str,
        v: &'v Spanned<DeValue<'_>>,
        empty_hint: &str,
    ) -> Option<Vec<(&'v str, Range<usize>)>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.report(
                v.span(),
                format!(
                    "expected an array of strings for \"{name}\", got {}",
                    a_type(v.get_ref())
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.report(v.span(), format!("\"{name}\" is empty: {empty_hint}"));
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) if s.is_empty() => {
                    self.report(
                        item.span(),
                        format!("empty string in \"{name}\": remove it"),
                    );
                    ok = false;
                }
                DeValue::String(s) => out.push((s.as_ref(), item.span())),
                other => {
                    self.report(
                        item.span(),
                        format!("expected a string in \"{name}\", got {}", a_type(other)),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A non-empty array of glob patterns, compiled.
    pub(super) fn globs(
        &mut self,
        name: &str,
        v: &Spanned<DeValue<'_>>,
        empty_hint: &str,
    ) -> Option<Globs> {
        let items = self.strings(name, v, empty_hint)?;
        let mut builder = GlobSetBuilder::new();
        let mut ok = true;
        for (pattern, span) in &items {
            match Glob::new(pattern) {
                Ok(glob) => {
                    builder.add(glob);
                }
                Err(e) => {
                    self.report(
                        span.clone(),
                        format!("invalid glob \"{pattern}\" in {name}: {}", e.kind()),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        match builder.build() {
            Ok(set) => Some(Globs::new(
                items.iter().map(|(p, _)| p.to_string()).collect(),
                set,
            )),
            Err(e) => {
                self.report(v.span(), format!("invalid globs in {name}: {e}"));
                None
            }
        }
    }

    /// An array of distinct dimension names (empty: one group for all matching calls).
    pub(super) fn group_by(&mut self, v: &Spanned<DeValue<'_>>) -> Option<Vec<Dim>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.report(
                v.span(),
                format!(
                    "expected an array of dimension names for \"group_by\", got {}",
                    a_type(v.get_ref())
                ),
            );
            return None;
        };
        let mut dims = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            let Some(name) = self.string("group_by", item) else {
                ok = false;
                continue;
            };
            match Dim::parse(name) {
                Some(dim) if dims.contains(&dim) => {
                    self.report(
                        item.span(),
                        format!("duplicate dimension \"{name}\" in group_by: remove it"),
                    );
                    ok = false;
                }
                Some(dim) => dims.push(dim),
                None => {
                    let message = with_hint(
                        format!("unknown dimension \"{name}\" in group_by"),
                        name,
                        &Dim::NAMES,
                    );
                    self.report(item.span(), message);
                    ok = false;
                }
            }
        }
        ok.then_some(dims)
    }
}

/// The fields of one rule table.
pub(super) struct Fields<'t, 'i> {
    table: &'t DeTable<'i>,
    /// The `[[rule]]` header: where a missing field is reported.
    header: Range<usize>,
}

impl<'t, 'i> Fields<'t, 'i> {
    pub(super) fn new(table: &'t DeTable<'i>, header: Range<usize>) -> Self {
        Fields { table, header }
    }

    /// The field's value; `None` when absent or when the parser recovered from a syntax error in it
    /// (an empty span: the error is already reported).
    pub(super) fn get(&self, name: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table.get(name).filter(|v| !v.span().is_empty())
    }

    /// Like [`Fields::get`], reporting a missing field at the rule header.
    pub(super) fn required(
        &self,
        ck: &mut Checker<'_>,
        name: &str,
        kind: Option<&str>,
    ) -> Option<&'t Spanned<DeValue<'i>>> {
        if !self.table.contains_key(name) {
            let message = match kind {
                Some(kind) => format!("missing required field \"{name}\" for kind \"{kind}\""),
                None => format!("missing required field \"{name}\""),
            };
            ck.report(self.header.clone(), message);
        }
        self.get(name)
    }
}
