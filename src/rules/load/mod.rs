//! Loads rule files (TOML) into a [`RuleSet`], reporting every problem of every file with `file:line:col`.
//!
//! Two stages, as for all configuration: `toml` parses each file with error recovery (every syntax
//! error is kept), then this module walks the spanned tree and validates each `[[rule]]` table into
//! a [`Rule`], collecting every problem instead of stopping at the first. The rule set is returned
//! only when no file has any problem.
//!
//! This module owns the public API and the walk over files and their top-level keys. The rest:
//! - `files`: which files a directory holds (reading text, line and column, did-you-mean hints are
//!   shared with the configuration loader in `crate::problem`);
//! - `values`: the problem collector of one file, and typed readers for the values of a rule table;
//! - `rule`: one `[[rule]]` table into a `Rule`: required, unknown and common fields, duplicate ids;
//! - `filter`: the filter fields; `kind`: the kinds, their parameters and defaults;
//! - `inventory`: the key inventory file of an `unused` rule.

mod files;
mod filter;
mod inventory;
mod kind;
mod rule;
#[cfg(test)]
mod tests;
mod values;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::model::{Rule, RuleOrigin, RuleSet};
use crate::problem::{a_type, read_text, suggest, Problem, ReadError, Source};
use files::toml_files_in;
use values::Checker;

/// One problem in one rule file, rendered `file:line:col: message`.
pub type RuleProblem = Problem;

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
                Err(e) => loader.problems.push(Problem::at_start(
                    path,
                    format!("cannot read rule directory: {e}"),
                )),
            },
            Ok(_) => loader.load_file(path),
            Err(e) => loader.problems.push(Problem::at_start(
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
        loader.problems.push(Problem::at_start(&file, message));
    }
    loader.finish()
}

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

/// Loads rule files given as (name, text), as if read from files of those names (the rules built
/// into the binary).
pub fn load_texts(files: &[(&Path, &str)]) -> Result<RuleSet, LoadError> {
    let mut loader = Loader::default();
    for (file, text) in files {
        loader.load_text(file, text);
    }
    loader.finish()
}

impl Loader {
    /// The rule set, when no file had a problem.
    fn finish(self) -> Result<RuleSet, LoadError> {
        if self.problems.is_empty() {
            Ok(RuleSet { rules: self.rules })
        } else {
            Err(LoadError {
                problems: self.problems,
            })
        }
    }

    fn load_file(&mut self, file: &Path) {
        let text = match read_text(file) {
            Ok(text) => text,
            Err(ReadError::Io(e)) => {
                self.problems.push(Problem::at_start(
                    file,
                    format!("cannot read rule file: {e}"),
                ));
                return;
            }
            Err(ReadError::NotUtf8 { offset }) => {
                self.problems.push(Problem::at_start(
                    file,
                    format!("file is not valid UTF-8 (first invalid byte at offset {offset})"),
                ));
                return;
            }
        };
        self.load_text(file, &text);
    }

    fn load_text(&mut self, file: &Path, text: &str) {
        let src = Source::new(file, text);
        let mut ck = Checker::new(&src);
        let (root, errors) = DeTable::parse_recoverable(text);
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
                                if let Some(rule) =
                                    rule::check_rule(&mut ck, table, item.span(), &mut self.ids)
                                {
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
        self.problems.extend(ck.into_problems());
    }
}
