//! Loads rule files (TOML) into a [`RuleSet`], reporting every problem of every file with `file:line:col`.
//!
//! Two stages, as for all configuration: `toml` parses each file with error recovery (every syntax
//! error is kept), then this module walks the spanned tree and validates each `[[rule]]` table into
//! a [`Rule`], collecting every problem instead of stopping at the first. The rule set is returned
//! only when no file has any problem.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSetBuilder};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::model::{
    ClassFilter, Dim, Filter, Globs, OutcomeFilter, Rule, RuleKind, RuleOrigin, RuleSet, Severity,
};

/// One problem in one rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub file: PathBuf,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column (in characters) of the offending key or value.
    pub col: usize,
    pub message: String,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Every problem found while loading rules.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in rule files", problems.len())]
pub struct LoadError {
    pub problems: Vec<RuleProblem>,
}

/// Loads every `*.toml` file directly in `dir`, sorted by file name.
pub fn load_dir(dir: &Path) -> Result<RuleSet, LoadError> {
    load_paths(&[dir.to_path_buf()])
}

/// Loads the given files (a file) or directories (their `*.toml` files), in the order given.
pub fn load_paths(paths: &[PathBuf]) -> Result<RuleSet, LoadError> {
    let mut loader = Loader::default();
    for path in paths {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => match toml_files_in(path) {
                Ok(files) => files.iter().for_each(|file| loader.load_file(file)),
                Err(e) => loader.problems.push(problem_at_start(
                    path,
                    format!("cannot read rule directory: {e}"),
                )),
            },
            Ok(_) => loader.load_file(path),
            Err(e) => loader.problems.push(problem_at_start(
                path,
                format!("cannot read rule file: {e}"),
            )),
        }
    }
    if loader.rule_tables == 0 && loader.problems.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let file = paths.first().cloned().unwrap_or_default();
        let message = if names.is_empty() {
            "no rules found: no rule files or directories given".to_string()
        } else {
            format!("no rules found in {}", names.join(", "))
        };
        loader.problems.push(problem_at_start(&file, message));
    }
    if loader.problems.is_empty() {
        Ok(RuleSet {
            rules: loader.rules,
        })
    } else {
        Err(LoadError {
            problems: loader.problems,
        })
    }
}

/// The `*.toml` files directly inside `dir`, sorted by file name.
fn toml_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

fn problem_at_start(file: &Path, message: String) -> RuleProblem {
    RuleProblem {
        file: file.to_path_buf(),
        line: 1,
        col: 1,
        message,
    }
}

const KINDS: [&str; 6] = [
    "threshold",
    "spike",
    "ratio",
    "unused",
    "event",
    "new-principal",
];

/// Fields every rule may have, whatever its kind.
const COMMON_FIELDS: [&str; 19] = [
    "id",
    "kind",
    "severity",
    "description",
    "operations",
    "class",
    "outcome",
    "error_codes",
    "keys",
    "exclude_keys",
    "principals",
    "exclude_principals",
    "services",
    "exclude_services",
    "accounts",
    "exclude_accounts",
    "cross_account",
    "group_by",
    "window_secs",
];

/// The parameters of each kind (the rule's other fields).
fn kind_params(kind: &str) -> &'static [&'static str] {
    match kind {
        "threshold" => &["min_count"],
        "spike" => &[
            "baseline_windows",
            "min_baseline_windows",
            "min_count",
            "min_ratio",
            "z",
            "stddev_floor",
        ],
        "ratio" => &["numerator", "denominator", "max_ratio", "min_count"],
        "unused" => &["unused_for_secs", "inventory"],
        "new-principal" => &["learning_secs"],
        _ => &[],
    }
}

fn is_param_of_any_kind(name: &str) -> bool {
    KINDS.iter().any(|k| kind_params(k).contains(&name))
}

const CLASSES: [&str; 3] = ["crypto", "management", "any"];
const OUTCOMES: [&str; 3] = ["ok", "failure", "any"];
const WINDOW_SECS_MIN: i64 = 60;
const WINDOW_SECS_MAX: i64 = 604_800;
const BASELINE_WINDOWS_MAX: i64 = 1000;

/// State across all files loaded together.
#[derive(Default)]
struct Loader {
    rules: Vec<Rule>,
    problems: Vec<RuleProblem>,
    /// Where each rule id was first defined, to report duplicates across files.
    ids: HashMap<String, RuleOrigin>,
    /// `[[rule]]` tables seen, valid or not: zero means "no rules found".
    rule_tables: usize,
}

impl Loader {
    fn load_file(&mut self, file: &Path) {
        let bytes = match fs::read(file) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.problems.push(problem_at_start(
                    file,
                    format!("cannot read rule file: {e}"),
                ));
                return;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                self.problems.push(problem_at_start(
                    file,
                    format!(
                        "file is not valid UTF-8 (first invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                ));
                return;
            }
        };
        let src = Source::new(file, &text);
        let mut ck = Checker {
            src: &src,
            problems: Vec::new(),
            extra: Vec::new(),
        };
        let (root, errors) = DeTable::parse_recoverable(&text);
        for error in &errors {
            let span = error.span().unwrap_or(0..0);
            ck.report(span, error.message().trim_end_matches('.').to_string());
        }
        for (key, value) in root.get_ref().iter() {
            let name: &str = key.get_ref();
            if name != "rule" {
                let message = match suggest(name, &["rule"]) {
                    Some(s) => format!("unknown top-level key \"{name}\" (did you mean \"{s}\"?)"),
                    None => format!(
                        "unknown top-level key \"{name}\": a rule file holds only [[rule]] tables"
                    ),
                };
                ck.report(key.span(), message);
                continue;
            }
            match value.get_ref() {
                DeValue::Array(items) => {
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::Table(table) => {
                                self.rule_tables += 1;
                                if let Some(rule) = self.check_rule(&mut ck, table, item.span()) {
                                    self.rules.push(rule);
                                }
                            }
                            other => ck.report(
                                item.span(),
                                format!("expected a table for each rule, got {}", a_type(other)),
                            ),
                        }
                    }
                }
                DeValue::Table(_) => ck.report(
                    key.span(),
                    "\"rule\" must be an array of tables: write [[rule]], not [rule]",
                ),
                other => ck.report(
                    key.span(),
                    format!(
                        "expected an array of tables for \"rule\", got {}: write each rule as a [[rule]] table",
                        a_type(other)
                    ),
                ),
            }
        }
        let Checker {
            mut problems,
            extra,
            ..
        } = ck;
        problems.sort_by_key(|p| (p.line, p.col));
        problems.dedup();
        self.problems.extend(problems);
        self.problems.extend(extra);
    }

    /// Validates one `[[rule]]` table; `header` is the table's span (its `[[rule]]` header).
    /// Returns the rule only when it has no problem.
    fn check_rule(
        &mut self,
        ck: &mut Checker<'_>,
        table: &DeTable<'_>,
        header: Range<usize>,
    ) -> Option<Rule> {
        let before = ck.problems.len() + ck.extra.len();
        let origin = RuleOrigin {
            file: ck.src.file.to_path_buf(),
            line: ck.src.position(header.start).0,
        };
        let fields = Fields { table, header };

        let id = fields.required(ck, "id", None).and_then(|v| {
            let id = ck.string("id", v)?;
            if !is_valid_id(id) {
                ck.report(
                    v.span(),
                    format!("invalid rule id \"{id}\": use lowercase letters, digits and \"-\", starting with a letter or digit"),
                );
                return None;
            }
            if let Some(first) = self.ids.get(id) {
                ck.report(
                    v.span(),
                    format!("duplicate rule id \"{id}\" (first defined at {first})"),
                );
                return None;
            }
            self.ids.insert(id.to_string(), origin.clone());
            Some(id.to_string())
        });
        let kind = fields
            .required(ck, "kind", None)
            .and_then(|v| ck.choice("kind", v, &KINDS));
        let severity = fields
            .required(ck, "severity", None)
            .and_then(|v| ck.choice("severity", v, &Severity::NAMES))
            .and_then(Severity::parse);
        let description = fields.required(ck, "description", None).and_then(|v| {
            let s = ck.string("description", v)?;
            if s.trim().is_empty() {
                ck.report(
                    v.span(),
                    "\"description\" must not be empty: say what the alert means and what to do",
                );
                return None;
            }
            Some(s.to_string())
        });

        for (key, _) in table.iter() {
            let name: &str = key.get_ref();
            if COMMON_FIELDS.contains(&name) || kind.is_some_and(|k| kind_params(k).contains(&name))
            {
                continue;
            }
            if is_param_of_any_kind(name) {
                if let Some(k) = kind {
                    ck.report(
                        key.span(),
                        format!("\"{name}\" is not a parameter of kind \"{k}\""),
                    );
                }
                continue;
            }
            let own = kind.map_or(&[][..], kind_params);
            let message = match suggest_field(name, own) {
                Some(s) => format!("unknown field \"{name}\" (did you mean \"{s}\"?)"),
                None => format!("unknown field \"{name}\""),
            };
            ck.report(key.span(), message);
        }

        let filter = check_filter(ck, &fields, kind);
        let group_by = match fields.get("group_by") {
            Some(v) => ck.group_by(v).and_then(|dims| {
                let kind = kind?;
                let required: &[Dim] = match kind {
                    "unused" => &[Dim::Key],
                    "new-principal" => &[Dim::Key, Dim::Principal],
                    _ => return Some(dims),
                };
                if dims != required {
                    let names: Vec<String> = required
                        .iter()
                        .map(|d| format!("\"{}\"", d.as_str()))
                        .collect();
                    ck.report(
                        v.span(),
                        format!(
                            "group_by of kind \"{kind}\" must be [{}] or omitted",
                            names.join(", ")
                        ),
                    );
                    return None;
                }
                Some(dims)
            }),
            None => kind.map(default_group_by),
        };
        let window_secs = match fields.get("window_secs") {
            Some(v) => ck
                .int("window_secs", v, WINDOW_SECS_MIN, Some(WINDOW_SECS_MAX))
                .and_then(|secs| {
                    if secs % 60 != 0 {
                        ck.report(
                            v.span(),
                            format!("window_secs must be a multiple of 60, got {secs}"),
                        );
                        return None;
                    }
                    Some(Some(secs))
                }),
            None => Some(None),
        };
        let rule_kind = kind.and_then(|k| check_kind(ck, &fields, k));

        let rule = Rule {
            id: id?,
            severity: severity?,
            description: description?,
            origin,
            filter: filter?,
            group_by: group_by?,
            window_secs: window_secs?,
            kind: rule_kind?,
        };
        (ck.problems.len() + ck.extra.len() == before).then_some(rule)
    }
}

fn default_group_by(kind: &str) -> Vec<Dim> {
    match kind {
        "event" => vec![Dim::Key, Dim::Principal, Dim::Operation],
        "new-principal" => vec![Dim::Key, Dim::Principal],
        _ => vec![Dim::Key],
    }
}

/// `^[a-z0-9][a-z0-9-]*$`
fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Validates the filter fields. `kind` decides the class and outcome defaults.
fn check_filter(
    ck: &mut Checker<'_>,
    fields: &Fields<'_, '_>,
    kind: Option<&str>,
) -> Option<Filter> {
    let mut ok = true;
    let strict = matches!(kind, Some("unused" | "new-principal"));
    let mut filter = Filter {
        class: if strict {
            ClassFilter::Crypto
        } else {
            ClassFilter::Any
        },
        outcome: if strict {
            OutcomeFilter::Ok
        } else {
            OutcomeFilter::Any
        },
        ..Filter::default()
    };
    if let Some(v) = fields.get("operations") {
        filter.operations = ck.globs("operations", v, EVERYTHING);
        ok &= filter.operations.is_some();
    }
    if let Some(v) = fields.get("class") {
        match ck.choice("class", v, &CLASSES) {
            Some("crypto") => filter.class = ClassFilter::Crypto,
            Some("management") => filter.class = ClassFilter::Management,
            Some(_) => filter.class = ClassFilter::Any,
            None => ok = false,
        }
    }
    if let Some(v) = fields.get("outcome") {
        match ck.choice("outcome", v, &OUTCOMES) {
            Some("ok") => filter.outcome = OutcomeFilter::Ok,
            Some("failure") => filter.outcome = OutcomeFilter::Failure,
            Some(_) => filter.outcome = OutcomeFilter::Any,
            None => ok = false,
        }
    }
    if let Some(v) = fields.get("error_codes") {
        match ck.strings("error_codes", v, "omit the field to match any error code") {
            Some(codes) => {
                if filter.outcome == OutcomeFilter::Ok {
                    ck.report(
                        v.span(),
                        "error_codes never match when outcome is \"ok\": remove one of them",
                    );
                    ok = false;
                }
                filter.error_codes = Some(
                    codes
                        .into_iter()
                        .map(|(code, _)| match code {
                            "AccessDenied" => "AccessDeniedException".to_string(),
                            other => other.to_string(),
                        })
                        .collect(),
                );
            }
            None => ok = false,
        }
    }
    for (include, exclude, slot) in [
        ("keys", "exclude_keys", &mut filter.keys),
        ("principals", "exclude_principals", &mut filter.principals),
        ("services", "exclude_services", &mut filter.services),
        ("accounts", "exclude_accounts", &mut filter.accounts),
    ] {
        if let Some(v) = fields.get(include) {
            slot.include = ck.globs(include, v, EVERYTHING);
            ok &= slot.include.is_some();
        }
        if let Some(v) = fields.get(exclude) {
            slot.exclude = ck.globs(exclude, v, "omit the field to exclude nothing");
            ok &= slot.exclude.is_some();
        }
    }
    if let Some(v) = fields.get("cross_account") {
        filter.cross_account = ck.boolean("cross_account", v);
        ok &= filter.cross_account.is_some();
    }
    ok.then_some(filter)
}

const EVERYTHING: &str = "omit the field to match everything";

/// Validates the parameters of a rule of kind `kind` (a member of [`KINDS`]).
fn check_kind(ck: &mut Checker<'_>, fields: &Fields<'_, '_>, kind: &str) -> Option<RuleKind> {
    // An absent optional field gives `Some(default)`; a bad one reports and gives `None`.
    let int_or = |ck: &mut Checker<'_>, name: &str, min: i64, max: Option<i64>, default: i64| {
        fields
            .get(name)
            .map_or(Some(default), |v| ck.int(name, v, min, max))
    };
    let num_or = |ck: &mut Checker<'_>, name: &str, default: f64| {
        fields
            .get(name)
            .map_or(Some(default), |v| ck.number(name, v, 0.0, false))
    };
    let required_int = |ck: &mut Checker<'_>, name: &str, min: i64| {
        fields
            .required(ck, name, Some(kind))
            .and_then(|v| ck.int(name, v, min, None))
    };
    match kind {
        "threshold" => {
            let min_count = required_int(ck, "min_count", 1);
            Some(RuleKind::Threshold {
                min_count: to_u64(min_count?),
            })
        }
        "spike" => {
            let baseline_windows =
                int_or(ck, "baseline_windows", 1, Some(BASELINE_WINDOWS_MAX), 12);
            let min_baseline_windows = match fields.get("min_baseline_windows") {
                Some(v) => ck
                    .int("min_baseline_windows", v, 1, Some(BASELINE_WINDOWS_MAX))
                    .and_then(|n| match baseline_windows {
                        Some(bw) if n > bw => {
                            ck.report(
                                v.span(),
                                format!("min_baseline_windows must not exceed baseline_windows ({bw}), got {n}"),
                            );
                            None
                        }
                        _ => Some(n),
                    }),
                None => baseline_windows.map(|bw| (bw + 1) / 2),
            };
            let min_count = int_or(ck, "min_count", 1, None, 100);
            let min_ratio = num_or(ck, "min_ratio", 3.0);
            let z = num_or(ck, "z", 4.0);
            let stddev_floor = num_or(ck, "stddev_floor", 1.0);
            Some(RuleKind::Spike {
                baseline_windows: to_usize(baseline_windows?),
                min_baseline_windows: to_usize(min_baseline_windows?),
                min_count: to_u64(min_count?),
                min_ratio: min_ratio?,
                z: z?,
                stddev_floor: stddev_floor?,
            })
        }
        "ratio" => {
            let numerator = match fields.get("numerator") {
                Some(v) => ck.globs(
                    "numerator",
                    v,
                    "omit the field to use the default [\"Decrypt\"]",
                ),
                None => default_globs(&["Decrypt"]),
            };
            let denominator = match fields.get("denominator") {
                Some(v) => ck.globs(
                    "denominator",
                    v,
                    "omit the field to use the default [\"Encrypt\", \"GenerateDataKey*\", \"ReEncrypt\"]",
                ),
                None => default_globs(&["Encrypt", "GenerateDataKey*", "ReEncrypt"]),
            };
            let max_ratio = fields
                .required(ck, "max_ratio", Some(kind))
                .and_then(|v| ck.number("max_ratio", v, 0.0, true));
            let min_count = int_or(ck, "min_count", 1, None, 100);
            Some(RuleKind::Ratio {
                numerator: numerator?,
                denominator: denominator?,
                max_ratio: max_ratio?,
                min_count: to_u64(min_count?),
            })
        }
        "unused" => {
            let unused_for_secs = required_int(ck, "unused_for_secs", 60);
            let inventory = match fields.get("inventory") {
                Some(v) => ck.inventory(v),
                None => Some(Vec::new()),
            };
            Some(RuleKind::Unused {
                unused_for_secs: unused_for_secs?,
                inventory: inventory?,
            })
        }
        "new-principal" => {
            let learning_secs = required_int(ck, "learning_secs", 0);
            Some(RuleKind::NewPrincipal {
                learning_secs: learning_secs?,
            })
        }
        _ => Some(RuleKind::Event),
    }
}

/// Only called on values already checked to be >= 1.
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Only called on values already checked to be in 1..=1000.
fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// A built-in glob list; `None` only if a built-in pattern were invalid.
fn default_globs(patterns: &[&str]) -> Option<Globs> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(Glob::new(p).ok()?);
    }
    Some(Globs::new(
        patterns.iter().map(|p| p.to_string()).collect(),
        builder.build().ok()?,
    ))
}

/// The fields of one rule table.
struct Fields<'t, 'i> {
    table: &'t DeTable<'i>,
    /// The `[[rule]]` header: where a missing field is reported.
    header: Range<usize>,
}

impl<'t, 'i> Fields<'t, 'i> {
    /// The field's value; `None` when absent or when the parser recovered from a syntax error in it
    /// (an empty span: the error is already reported).
    fn get(&self, name: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table.get(name).filter(|v| !v.span().is_empty())
    }

    /// Like [`Fields::get`], reporting a missing field at the rule header.
    fn required(
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

/// Collects the problems of one rule file.
struct Checker<'s> {
    src: &'s Source<'s>,
    /// Problems located in the rule file.
    problems: Vec<RuleProblem>,
    /// Problems located in other files (inventory files).
    extra: Vec<RuleProblem>,
}

impl Checker<'_> {
    fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = self.src.position(span.start);
        self.problems.push(RuleProblem {
            file: self.src.file.to_path_buf(),
            line,
            col,
            message: message.into(),
        });
    }

    fn string<'v>(&mut self, name: &str, v: &'v Spanned<DeValue<'_>>) -> Option<&'v str> {
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

    fn boolean(&mut self, name: &str, v: &Spanned<DeValue<'_>>) -> Option<bool> {
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
    fn choice(
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
    fn int(
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
    fn number(
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
    fn strings<'v>(
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
    fn globs(&mut self, name: &str, v: &Spanned<DeValue<'_>>, empty_hint: &str) -> Option<Globs> {
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
    fn group_by(&mut self, v: &Spanned<DeValue<'_>>) -> Option<Vec<Dim>> {
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

    /// The key ARNs of an inventory file named relative to the rule file's directory.
    fn inventory(&mut self, v: &Spanned<DeValue<'_>>) -> Option<Vec<String>> {
        let relative = self.string("inventory", v)?;
        if relative.trim().is_empty() {
            self.report(
                v.span(),
                "\"inventory\" is empty: give the path of a file of key ARNs, or omit the field",
            );
            return None;
        }
        let dir = self.src.file.parent().unwrap_or(Path::new(""));
        let path = dir.join(relative);
        let text = match fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    self.extra.push(problem_at_start(
                        &path,
                        format!(
                            "inventory file is not valid UTF-8 (first invalid byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ),
                    ));
                    return None;
                }
            },
            Err(e) => {
                self.report(
                    v.span(),
                    format!("cannot read inventory file {}: {e}", path.display()),
                );
                return None;
            }
        };
        let mut keys: Vec<String> = Vec::new();
        let mut ok = true;
        for (index, line) in text.lines().enumerate() {
            let entry = line
                .split_once('#')
                .map_or(line, |(before, _)| before)
                .trim();
            if entry.is_empty() {
                continue;
            }
            if !(entry.starts_with("arn:") && entry.contains(":key/")) {
                self.extra.push(RuleProblem {
                    file: path.clone(),
                    line: index + 1,
                    col: 1,
                    message: format!(
                        "invalid key ARN \"{entry}\" in inventory: expected arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"
                    ),
                });
                ok = false;
            } else if !keys.iter().any(|k| k == entry) {
                keys.push(entry.to_string());
            }
        }
        ok.then_some(keys)
    }
}

/// A rule file's text and where its lines start, to turn byte offsets into line and column.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
    /// Byte offset of the start of each line; the first is 0.
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            file,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let index = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let start = self.line_starts.get(index).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (index + 1, col + 1)
    }
}

/// "a string", "an integer", ...: a value's type for messages.
fn a_type(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// `message` plus a did-you-mean, or the list of valid values.
fn with_hint(message: String, got: &str, options: &[&str]) -> String {
    match suggest(got, options) {
        Some(s) => format!("{message} (did you mean \"{s}\"?)"),
        None => format!("{message} (expected one of: {})", options.join(", ")),
    }
}

/// The closest of `options` within edit distance 2 (and closer than its own length), if any.
fn suggest<'o>(got: &str, options: &[&'o str]) -> Option<&'o str> {
    options
        .iter()
        .map(|o| (levenshtein(got, o), *o))
        .filter(|(d, o)| *d <= 2 && *d < o.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

/// The closest known field of any kind, preferring the rule's own fields on ties.
fn suggest_field(got: &str, own_params: &[&str]) -> Option<&'static str> {
    let all = COMMON_FIELDS
        .iter()
        .chain(KINDS.iter().flat_map(|k| kind_params(k).iter()));
    all.map(|f| {
        let foreign = !COMMON_FIELDS.contains(f) && !own_params.contains(f);
        (levenshtein(got, f), foreign, *f)
    })
    .filter(|(d, _, f)| *d <= 2 && *d < f.chars().count())
    .min_by_key(|(d, foreign, _)| (*d, *foreign))
    .map(|(_, _, f)| f)
}

/// Edit distance (insertions, deletions, substitutions) between two strings, by characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid threshold rule header and required fields, lines 1-5; snippets append from line 6.
    const HEAD: &str =
        "[[rule]]\nid = \"r\"\nkind = \"threshold\"\nseverity = \"low\"\ndescription = \"d\"\n";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).expect("write test file");
        path
    }

    /// Problems of one file as (line, col, message); the file must fail to load.
    fn problems(text: &str) -> Vec<Located> {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "rules.toml", text);
        let err = load_paths(std::slice::from_ref(&file)).expect_err("rules should not load");
        err.problems
            .into_iter()
            .map(|p| {
                assert_eq!(p.file, file, "{p}");
                (p.line, p.col, p.message)
            })
            .collect()
    }

    fn load_text(text: &str) -> RuleSet {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "rules.toml", text);
        match load_paths(&[file]) {
            Ok(set) => set,
            Err(e) => panic!("rules should load: {:#?}", e.problems),
        }
    }

    /// A problem as (line, col, message).
    type Located = (usize, usize, String);

    fn p(line: usize, col: usize, message: &str) -> Located {
        (line, col, message.to_string())
    }

    #[test]
    fn bad_snippets_report_exact_problems() {
        let cases: Vec<(&str, String, Vec<Located>)> = vec![
            (
                "unknown field with suggestion",
                format!("{HEAD}min_count = 1\nmin_cont = 3\n"),
                vec![p(7, 1, "unknown field \"min_cont\" (did you mean \"min_count\"?)")],
            ),
            (
                "unknown field without suggestion",
                format!("{HEAD}min_count = 1\ncolour = \"red\"\n"),
                vec![p(7, 1, "unknown field \"colour\"")],
            ),
            (
                "suggestion names a field of another kind",
                format!("{HEAD}min_count = 1\nlearning_sec = 3\n"),
                vec![p(7, 1, "unknown field \"learning_sec\" (did you mean \"learning_secs\"?)")],
            ),
            (
                "wrong type for id",
                "[[rule]]\nid = 5\nkind = \"event\"\nseverity = \"low\"\ndescription = \"d\"\n"
                    .to_string(),
                vec![p(2, 6, "expected a string for \"id\", got an integer")],
            ),
            (
                "wrong type for cross_account",
                format!("{HEAD}min_count = 1\ncross_account = \"yes\"\n"),
                vec![p(7, 17, "expected a boolean for \"cross_account\", got a string")],
            ),
            (
                "wrong type for operations",
                format!("{HEAD}min_count = 1\noperations = \"Decrypt\"\n"),
                vec![p(7, 14, "expected an array of strings for \"operations\", got a string")],
            ),
            (
                "wrong element type in operations",
                format!("{HEAD}min_count = 1\noperations = [\"Decrypt\", 3]\n"),
                vec![p(7, 26, "expected a string in \"operations\", got an integer")],
            ),
            (
                "string where an integer is required",
                format!("{HEAD}min_count = \"5\"\n"),
                vec![p(6, 13, "expected an integer for \"min_count\", got a string")],
            ),
            (
                "negative integer",
                format!("{HEAD}min_count = -3\n"),
                vec![p(6, 13, "min_count must be an integer >= 1, got -3")],
            ),
            (
                "float where an integer is required",
                format!("{HEAD}min_count = 2.5\n"),
                vec![p(6, 13, "min_count must be an integer >= 1, got 2.5")],
            ),
            (
                "integer overflowing i64",
                format!("{HEAD}min_count = 99999999999999999999\n"),
                vec![p(6, 13, "min_count must be an integer >= 1, got 99999999999999999999")],
            ),
            (
                "window too short",
                format!("{HEAD}min_count = 1\nwindow_secs = 30\n"),
                vec![p(7, 15, "window_secs must be an integer between 60 and 604800, got 30")],
            ),
            (
                "window too long",
                format!("{HEAD}min_count = 1\nwindow_secs = 604860\n"),
                vec![p(7, 15, "window_secs must be an integer between 60 and 604800, got 604860")],
            ),
            (
                "window not a multiple of 60",
                format!("{HEAD}min_count = 1\nwindow_secs = 90\n"),
                vec![p(7, 15, "window_secs must be a multiple of 60, got 90")],
            ),
            (
                "parameter of another kind",
                format!("{HEAD}min_count = 1\nmin_ratio = 2.0\n"),
                vec![p(7, 1, "\"min_ratio\" is not a parameter of kind \"threshold\"")],
            ),
            (
                "event takes no parameters",
                "[[rule]]\nid = \"e\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \"d\"\nmin_count = 1\n"
                    .to_string(),
                vec![p(6, 1, "\"min_count\" is not a parameter of kind \"event\"")],
            ),
            (
                "missing required kind parameter",
                "x = 1\n[[rule]]\nid = \"q\"\nkind = \"ratio\"\nseverity = \"low\"\ndescription = \"d\"\n"
                    .to_string(),
                vec![
                    p(1, 1, "unknown top-level key \"x\": a rule file holds only [[rule]] tables"),
                    p(2, 1, "missing required field \"max_ratio\" for kind \"ratio\""),
                ],
            ),
            (
                "missing common fields",
                "\n  [[rule]]\nmin_count = 4\n".to_string(),
                vec![
                    p(2, 3, "missing required field \"id\""),
                    p(2, 3, "missing required field \"kind\""),
                    p(2, 3, "missing required field \"severity\""),
                    p(2, 3, "missing required field \"description\""),
                ],
            ),
            (
                "unknown kind",
                "[[rule]]\nid = \"r\"\nkind = \"treshold\"\nseverity = \"low\"\ndescription = \"d\"\nmin_count = 1\n"
                    .to_string(),
                vec![p(3, 8, "unknown kind \"treshold\" (did you mean \"threshold\"?)")],
            ),
            (
                "unknown severity",
                "[[rule]]\nid = \"r\"\nkind = \"event\"\nseverity = \"urgent\"\ndescription = \"d\"\n"
                    .to_string(),
                vec![p(
                    4,
                    12,
                    "unknown severity \"urgent\" (expected one of: info, low, medium, high, critical)",
                )],
            ),
            (
                "bad id",
                "[[rule]]\nid = \"Bad_id\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \"d\"\n"
                    .to_string(),
                vec![p(
                    2,
                    6,
                    "invalid rule id \"Bad_id\": use lowercase letters, digits and \"-\", starting with a letter or digit",
                )],
            ),
            (
                "empty description",
                "[[rule]]\nid = \"r\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \" \"\n"
                    .to_string(),
                vec![p(
                    5,
                    15,
                    "\"description\" must not be empty: say what the alert means and what to do",
                )],
            ),
            (
                "invalid glob",
                format!("{HEAD}min_count = 1\noperations = [\"Decrypt\", \"[abc\"]\n"),
                vec![p(
                    7,
                    26,
                    "invalid glob \"[abc\" in operations: unclosed character class; missing ']'",
                )],
            ),
            (
                "empty include list",
                format!("{HEAD}min_count = 1\nkeys = []\n"),
                vec![p(7, 8, "\"keys\" is empty: omit the field to match everything")],
            ),
            (
                "empty exclude list",
                format!("{HEAD}min_count = 1\nexclude_principals = []\n"),
                vec![p(7, 22, "\"exclude_principals\" is empty: omit the field to exclude nothing")],
            ),
            (
                "unknown class and outcome",
                format!("{HEAD}min_count = 1\nclass = \"cryto\"\noutcome = \"bad\"\n"),
                vec![
                    p(7, 9, "unknown class \"cryto\" (did you mean \"crypto\"?)"),
                    p(8, 11, "unknown outcome \"bad\" (expected one of: ok, failure, any)"),
                ],
            ),
            (
                "error codes with outcome ok",
                format!("{HEAD}min_count = 1\noutcome = \"ok\"\nerror_codes = [\"AccessDenied\"]\n"),
                vec![p(
                    8,
                    15,
                    "error_codes never match when outcome is \"ok\": remove one of them",
                )],
            ),
            (
                "group_by duplicate and unknown",
                format!("{HEAD}min_count = 1\ngroup_by = [\"key\", \"key\", \"principle\", \"colour\"]\n"),
                vec![
                    p(7, 20, "duplicate dimension \"key\" in group_by: remove it"),
                    p(7, 27, "unknown dimension \"principle\" in group_by (did you mean \"principal\"?)"),
                    p(
                        7,
                        40,
                        "unknown dimension \"colour\" in group_by (expected one of: key, principal, service, account, region, operation, error)",
                    ),
                ],
            ),
            (
                "group_by of unused",
                "[[rule]]\nid = \"u\"\nkind = \"unused\"\nseverity = \"low\"\ndescription = \"d\"\nunused_for_secs = 60\ngroup_by = [\"principal\"]\n"
                    .to_string(),
                vec![p(7, 12, "group_by of kind \"unused\" must be [\"key\"] or omitted")],
            ),
            (
                "group_by of new-principal",
                "[[rule]]\nid = \"n\"\nkind = \"new-principal\"\nseverity = \"low\"\ndescription = \"d\"\nlearning_secs = 0\ngroup_by = [\"key\"]\n"
                    .to_string(),
                vec![p(
                    7,
                    12,
                    "group_by of kind \"new-principal\" must be [\"key\", \"principal\"] or omitted",
                )],
            ),
            (
                "spike numbers",
                "[[rule]]\nid = \"s\"\nkind = \"spike\"\nseverity = \"low\"\ndescription = \"d\"\nz = nan\nmin_ratio = -1\nstddev_floor = inf\nbaseline_windows = 0\n"
                    .to_string(),
                vec![
                    p(6, 5, "z must be a finite number >= 0, got nan"),
                    p(7, 13, "min_ratio must be a number >= 0, got -1"),
                    p(8, 16, "stddev_floor must be a finite number >= 0, got inf"),
                    p(9, 20, "baseline_windows must be an integer between 1 and 1000, got 0"),
                ],
            ),
            (
                "min_baseline_windows above baseline_windows",
                "[[rule]]\nid = \"s\"\nkind = \"spike\"\nseverity = \"low\"\ndescription = \"d\"\nbaseline_windows = 4\nmin_baseline_windows = 5\n"
                    .to_string(),
                vec![p(
                    7,
                    24,
                    "min_baseline_windows must not exceed baseline_windows (4), got 5",
                )],
            ),
            (
                "ratio parameters",
                "[[rule]]\nid = \"q\"\nkind = \"ratio\"\nseverity = \"low\"\ndescription = \"d\"\nmax_ratio = 0\nnumerator = []\n"
                    .to_string(),
                vec![
                    p(6, 13, "max_ratio must be a number > 0, got 0"),
                    p(7, 13, "\"numerator\" is empty: omit the field to use the default [\"Decrypt\"]"),
                ],
            ),
            (
                "unused and new-principal minimums",
                "[[rule]]\nid = \"u\"\nkind = \"unused\"\nseverity = \"low\"\ndescription = \"d\"\nunused_for_secs = 59\n[[rule]]\nid = \"n\"\nkind = \"new-principal\"\nseverity = \"low\"\ndescription = \"d\"\nlearning_secs = -1\n"
                    .to_string(),
                vec![
                    p(6, 19, "unused_for_secs must be an integer >= 60, got 59"),
                    p(12, 17, "learning_secs must be an integer >= 0, got -1"),
                ],
            ),
            (
                "rule as a plain table",
                "[rule]\nid = \"r\"\n".to_string(),
                vec![p(1, 2, "\"rule\" must be an array of tables: write [[rule]], not [rule]")],
            ),
            (
                "misspelt rule header",
                "[[rules]]\nid = \"r\"\n".to_string(),
                vec![p(1, 3, "unknown top-level key \"rules\" (did you mean \"rule\"?)")],
            ),
            (
                "duplicate id in one file",
                format!("{HEAD}min_count = 1\n{HEAD}min_count = 2\n"),
                vec![p(8, 6, "duplicate rule id \"r\" (first defined at RULES:1)")],
            ),
        ];
        for (name, text, expected) in cases {
            let got: Vec<_> = problems(&text)
                .into_iter()
                .map(|(l, c, m)| (l, c, m.replace(&rules_path_in(&m), "RULES")))
                .collect();
            assert_eq!(got, expected, "case {name}");
        }
    }

    /// The rules.toml path inside a duplicate-id message, so tables can say RULES.
    fn rules_path_in(message: &str) -> String {
        message
            .split_once("first defined at ")
            .and_then(|(_, rest)| rest.rsplit_once(':'))
            .map_or_else(|| "\u{0}".to_string(), |(path, _)| path.to_string())
    }

    #[test]
    fn every_problem_of_a_file_is_reported_in_order() {
        let text = "\
[[rule]]
id = \"a\"
kind = \"threshold\"
severity = \"hgh\"
description = \"d\"
min_count = 0
treshold = 3

[[rule]]
id = \"b\"
kind = \"spike\"
severity = \"low\"
min_ratio = \"3\"
";
        assert_eq!(
            problems(text),
            vec![
                p(4, 12, "unknown severity \"hgh\" (did you mean \"high\"?)"),
                p(6, 13, "min_count must be an integer >= 1, got 0"),
                p(7, 1, "unknown field \"treshold\""),
                p(9, 1, "missing required field \"description\""),
                p(13, 13, "expected a number for \"min_ratio\", got a string"),
            ]
        );
    }

    #[test]
    fn syntax_errors_and_later_semantic_problems_are_both_reported() {
        let text = "\
[[rule]]
id = \"a\"
kind = = \"threshold\"
severity = \"low\"
description = \"d\"

[[rule]]
id = \"b\"
kind = \"threshold\"
severity = \"low\"
description = \"d\"
min_count = 0
";
        // Rule "a" keeps its recovered (broken) `kind` quietly: no "missing" or "wrong type" echo.
        assert_eq!(
            problems(text),
            vec![
                p(3, 8, "extra `=`, expected nothing"),
                p(3, 10, "unexpected key or value, expected newline, `#`"),
                p(12, 13, "min_count must be an integer >= 1, got 0"),
            ]
        );
    }

    #[test]
    fn problems_of_every_file_are_reported_and_duplicates_across_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = write(
            dir.path(),
            "a.toml",
            "[[rule]]\nid = \"x\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \"d\"\nbogus = 1\n",
        );
        let b = write(
            dir.path(),
            "b.toml",
            "# second\n[[rule]]\nid = \"x\"\nkind = \"event\"\nseverity = \"lo\"\ndescription = \"d\"\n",
        );
        write(dir.path(), "README.md", "not a rule file");
        let err = load_dir(dir.path()).expect_err("problems expected");
        let got: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                format!("{}:6:1: unknown field \"bogus\"", a.display()),
                format!(
                    "{}:3:6: duplicate rule id \"x\" (first defined at {}:1)",
                    b.display(),
                    a.display()
                ),
                format!(
                    "{}:5:12: unknown severity \"lo\" (did you mean \"low\"?)",
                    b.display()
                ),
            ]
        );
        // The same through load_paths, files given explicitly in the other order.
        let err = load_paths(&[b.clone(), a.clone()]).expect_err("problems expected");
        let got: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                format!(
                    "{}:5:12: unknown severity \"lo\" (did you mean \"low\"?)",
                    b.display()
                ),
                format!(
                    "{}:2:6: duplicate rule id \"x\" (first defined at {}:2)",
                    a.display(),
                    b.display()
                ),
                format!("{}:6:1: unknown field \"bogus\"", a.display()),
            ]
        );
    }

    #[test]
    fn file_level_problems() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).expect("mkdir");
        write(&empty, "notes.md", "[[rule]]");
        let err = load_dir(&empty).expect_err("no rules");
        assert_eq!(
            err.problems,
            vec![RuleProblem {
                file: empty.clone(),
                line: 1,
                col: 1,
                message: format!("no rules found in {}", empty.display()),
            }]
        );

        let err = load_paths(&[]).expect_err("no paths");
        assert_eq!(
            err.problems[0].message,
            "no rules found: no rule files or directories given"
        );

        let bad = dir.path().join("bad.toml");
        fs::write(&bad, b"# ok\n\xff\xfe").expect("write");
        let missing = dir.path().join("missing.toml");
        let err = load_paths(&[bad.clone(), missing.clone()]).expect_err("problems");
        assert_eq!(err.problems.len(), 2, "{:#?}", err.problems);
        assert_eq!(
            err.problems[0].to_string(),
            format!(
                "{}:1:1: file is not valid UTF-8 (first invalid byte at offset 5)",
                bad.display()
            )
        );
        assert_eq!((err.problems[1].line, err.problems[1].col), (1, 1));
        assert!(
            err.problems[1]
                .message
                .starts_with("cannot read rule file: No such file or directory"),
            "{}",
            err.problems[1]
        );
    }

    #[test]
    fn inventory_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = dir.path().join("rules");
        fs::create_dir(&rules).expect("mkdir");
        let rule = |id: &str, inventory: &str| {
            format!(
                "[[rule]]\nid = \"{id}\"\nkind = \"unused\"\nseverity = \"low\"\ndescription = \"d\"\nunused_for_secs = 86400\ninventory = \"{inventory}\"\n"
            )
        };
        write(
            &rules,
            "keys.txt",
            "# inventory\n\narn:aws:kms:eu-west-1:111122223333:key/k1  # main\n  arn:aws:kms:eu-west-1:111122223333:key/k2\narn:aws:kms:eu-west-1:111122223333:key/k1\n",
        );
        let good = write(&rules, "good.toml", &rule("good", "keys.txt"));
        let set = load_paths(&[good]).expect("inventory loads");
        match &set.rules[0].kind {
            RuleKind::Unused {
                unused_for_secs,
                inventory,
            } => {
                assert_eq!(*unused_for_secs, 86400);
                assert_eq!(
                    inventory,
                    &vec![
                        "arn:aws:kms:eu-west-1:111122223333:key/k1".to_string(),
                        "arn:aws:kms:eu-west-1:111122223333:key/k2".to_string(),
                    ]
                );
            }
            other => panic!("unexpected kind {other:?}"),
        }

        let bad_keys = write(
            &rules,
            "bad-keys.txt",
            "arn:aws:kms:eu-west-1:111122223333:key/k1\nalias/prod\n\narn:aws:kms:eu-west-1:111122223333:alias/x\n",
        );
        let bad = write(&rules, "bad.toml", &rule("bad", "bad-keys.txt"));
        let missing = write(&rules, "missing.toml", &rule("missing", "nope.txt"));
        let err = load_paths(&[bad, missing.clone()]).expect_err("bad inventories");
        let got: Vec<(PathBuf, usize, usize, String)> = err
            .problems
            .into_iter()
            .map(|p| (p.file, p.line, p.col, p.message))
            .collect();
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(
            got[0],
            (
                bad_keys.clone(),
                2,
                1,
                "invalid key ARN \"alias/prod\" in inventory: expected arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"
                    .to_string()
            )
        );
        assert_eq!((&got[1].0, got[1].1), (&bad_keys, 4));
        assert_eq!((&got[2].0, got[2].1, got[2].2), (&missing, 7, 13));
        assert!(
            got[2].3.starts_with(&format!(
                "cannot read inventory file {}: ",
                rules.join("nope.txt").display()
            )),
            "{}",
            got[2].3
        );
    }

    #[test]
    fn defaults_are_applied_per_kind() {
        let set = load_text(
            "\
[[rule]]
id = \"t\"
kind = \"threshold\"
severity = \"info\"
description = \"d\"
min_count = 7

[[rule]]
id = \"s\"
kind = \"spike\"
severity = \"low\"
description = \"d\"
baseline_windows = 5

[[rule]]
id = \"q\"
kind = \"ratio\"
severity = \"medium\"
description = \"d\"
max_ratio = 2

[[rule]]
id = \"u\"
kind = \"unused\"
severity = \"high\"
description = \"d\"
unused_for_secs = 3600

[[rule]]
id = \"e\"
kind = \"event\"
severity = \"critical\"
description = \"d\"
error_codes = [\"AccessDenied\", \"KMSInvalidStateException\"]
window_secs = 600

[[rule]]
id = \"n\"
kind = \"new-principal\"
severity = \"low\"
description = \"d\"
learning_secs = 0
outcome = \"any\"
",
        );
        let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["t", "s", "q", "u", "e", "n"]);
        let lines: Vec<usize> = set.rules.iter().map(|r| r.origin.line).collect();
        assert_eq!(lines, [1, 8, 15, 22, 29, 37]);

        let expect: [(&[Dim], ClassFilter, OutcomeFilter, Option<i64>); 6] = [
            (&[Dim::Key], ClassFilter::Any, OutcomeFilter::Any, None),
            (&[Dim::Key], ClassFilter::Any, OutcomeFilter::Any, None),
            (&[Dim::Key], ClassFilter::Any, OutcomeFilter::Any, None),
            (&[Dim::Key], ClassFilter::Crypto, OutcomeFilter::Ok, None),
            (
                &[Dim::Key, Dim::Principal, Dim::Operation],
                ClassFilter::Any,
                OutcomeFilter::Any,
                Some(600),
            ),
            (
                &[Dim::Key, Dim::Principal],
                ClassFilter::Crypto,
                OutcomeFilter::Any,
                None,
            ),
        ];
        for (rule, (group_by, class, outcome, window)) in set.rules.iter().zip(expect) {
            assert_eq!(rule.group_by, group_by, "{}", rule.id);
            assert_eq!(rule.filter.class, class, "{}", rule.id);
            assert_eq!(rule.filter.outcome, outcome, "{}", rule.id);
            assert_eq!(rule.window_secs, window, "{}", rule.id);
        }

        assert!(matches!(
            set.rules[0].kind,
            RuleKind::Threshold { min_count: 7 }
        ));
        match &set.rules[1].kind {
            RuleKind::Spike {
                baseline_windows,
                min_baseline_windows,
                min_count,
                min_ratio,
                z,
                stddev_floor,
            } => {
                assert_eq!(
                    (*baseline_windows, *min_baseline_windows, *min_count),
                    (5, 3, 100)
                );
                assert_eq!((*min_ratio, *z, *stddev_floor), (3.0, 4.0, 1.0));
            }
            other => panic!("unexpected kind {other:?}"),
        }
        match &set.rules[2].kind {
            RuleKind::Ratio {
                numerator,
                denominator,
                max_ratio,
                min_count,
            } => {
                assert_eq!(numerator.patterns, ["Decrypt"]);
                assert_eq!(
                    denominator.patterns,
                    ["Encrypt", "GenerateDataKey*", "ReEncrypt"]
                );
                assert!(denominator.is_match("GenerateDataKeyWithoutPlaintext"));
                assert_eq!((*max_ratio, *min_count), (2.0, 100));
            }
            other => panic!("unexpected kind {other:?}"),
        }
        assert!(matches!(
            &set.rules[3].kind,
            RuleKind::Unused { unused_for_secs: 3600, inventory } if inventory.is_empty()
        ));
        assert!(matches!(set.rules[4].kind, RuleKind::Event));
        assert_eq!(
            set.rules[4].filter.error_codes,
            Some(vec![
                "AccessDeniedException".to_string(),
                "KMSInvalidStateException".to_string()
            ])
        );
        assert!(matches!(
            set.rules[5].kind,
            RuleKind::NewPrincipal { learning_secs: 0 }
        ));
    }

    #[test]
    fn filters_compile() {
        let set = load_text(&format!(
            "{HEAD}min_count = 1\noperations = [\"GenerateDataKey*\"]\nkeys = [\"arn:aws:kms:*:111122223333:key/*\"]\nexclude_services = [\"s3\"]\ncross_account = true\ngroup_by = []\n"
        ));
        let rule = &set.rules[0];
        let ops = rule.filter.operations.as_ref().expect("operations");
        assert!(ops.is_match("GenerateDataKeyPair") && !ops.is_match("Decrypt"));
        assert!(rule
            .filter
            .keys
            .matches(Some("arn:aws:kms:eu-west-1:111122223333:key/abc")));
        assert!(!rule.filter.keys.matches(None));
        assert!(!rule.filter.services.matches(Some("s3")));
        assert!(rule.filter.services.matches(Some("ebs")));
        assert_eq!(rule.filter.cross_account, Some(true));
        assert!(rule.group_by.is_empty());
    }

    #[test]
    fn shipped_rules_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let set = match load_dir(&dir) {
            Ok(set) => set,
            Err(e) => panic!("shipped rules: {:#?}", e.problems),
        };
        assert_eq!(set.rules.len(), 14);
        assert_eq!(set.rules[0].id, "key-deletion-scheduled");
        assert_eq!(set.rules[0].severity, Severity::Critical);
        assert_eq!(set.rules[0].origin.line, 3);
        let by_id = |id: &str| {
            set.rules
                .iter()
                .find(|r| r.id == id)
                .unwrap_or_else(|| panic!("rule {id}"))
        };
        assert!(matches!(
            by_id("decrypt-spike-key-principal").kind,
            RuleKind::Spike {
                baseline_windows: 12,
                min_baseline_windows: 6,
                min_count: 50,
                ..
            }
        ));
        let ratio = by_id("decrypt-encrypt-ratio");
        assert_eq!(ratio.window_secs, Some(3600));
        assert!(matches!(
            ratio.kind,
            RuleKind::Ratio { max_ratio, min_count: 500, .. } if max_ratio == 10.0
        ));
        let unused = by_id("unused-key");
        assert!(matches!(
            unused.kind,
            RuleKind::Unused {
                unused_for_secs: 2_592_000,
                ..
            }
        ));
        assert_eq!(unused.filter.class, ClassFilter::Crypto);
        assert_eq!(unused.filter.outcome, OutcomeFilter::Ok);
        assert!(matches!(
            by_id("key-request-volume").kind,
            RuleKind::Threshold { min_count: 1001 }
        ));
        assert_eq!(
            by_id("new-principal-on-key").group_by,
            [Dim::Key, Dim::Principal]
        );
    }

    #[test]
    fn readme_example_loads() {
        let readme =
            fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/README.md"))
                .expect("rules/README.md");
        let example = readme
            .split_once("## A complete example")
            .and_then(|(_, rest)| rest.split_once("```toml\n"))
            .and_then(|(_, rest)| rest.split_once("```"))
            .map(|(example, _)| example)
            .expect("a toml block after the example heading");
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "payments-keys.txt",
            "arn:aws:kms:eu-west-1:111122223333:key/k1\n",
        );
        write(dir.path(), "payments.toml", example);
        let set = match load_dir(dir.path()) {
            Ok(set) => set,
            Err(e) => panic!("README example: {:#?}", e.problems),
        };
        let kinds: Vec<&str> = set.rules.iter().map(|r| r.kind.name()).collect();
        assert_eq!(
            kinds,
            [
                "threshold",
                "spike",
                "ratio",
                "unused",
                "event",
                "new-principal"
            ]
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // The `;` after `"é"` is at character column 18 (byte column 19).
        let got = problems(
            "[[rule]]\nid = \"r\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \"é\"; x = 1\n",
        );
        assert_eq!(got.first().map(|p| (p.0, p.1)), Some((5, 18)), "{got:#?}");
    }

    #[test]
    fn levenshtein_distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "", 3),
            ("treshold", "threshold", 1),
            ("min_cont", "min_count", 1),
            ("kitten", "sitting", 3),
            ("é", "e", 1),
        ] {
            assert_eq!(levenshtein(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn positions_are_one_based_characters() {
        let src = Source::new(Path::new("f"), "ab\né x\n");
        for (offset, want) in [
            (0, (1, 1)),
            (1, (1, 2)),
            (3, (2, 1)),
            (6, (2, 3)),
            (99, (3, 1)),
        ] {
            assert_eq!(src.position(offset), want, "offset {offset}");
        }
    }
}
