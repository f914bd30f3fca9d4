//! Loads rule files (TOML) into a [`RuleSet`], reporting every problem of every file with `file:line:col`.

use std::path::{Path, PathBuf};

use super::model::RuleSet;

/// One problem in one rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Every problem found while loading rules.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in rule files", problems.len())]
pub struct LoadError {
    pub problems: Vec<RuleProblem>,
}

/// Loads every `*.toml` file directly in `dir`, sorted by file name.
pub fn load_dir(dir: &Path) -> Result<RuleSet, LoadError> {
    let _ = dir;
    todo!("rules loader")
}

/// Loads the given files (a file) or directories (their `*.toml` files), in the order given.
pub fn load_paths(paths: &[PathBuf]) -> Result<RuleSet, LoadError> {
    let _ = paths;
    todo!("rules loader")
}
