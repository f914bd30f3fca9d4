//! The shipped rules, built into the binary, and which rules a command uses: `--rules` paths,
//! else a `./rules` directory, else the built-in set (so an installed binary works anywhere).

use std::path::{Path, PathBuf};

use super::load::{load_paths, load_texts, LoadError};
use super::model::RuleSet;

/// Where built-in rules say they come from (`<built-in>/volume.toml:3`).
pub const BUILTIN_DIR: &str = "<built-in>";

/// The files of `rules/` as they were when the binary was built.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("failures.toml", include_str!("../../rules/failures.toml")),
    ("lifecycle.toml", include_str!("../../rules/lifecycle.toml")),
    (
        "new-principal.toml",
        include_str!("../../rules/new-principal.toml"),
    ),
    ("ratio.toml", include_str!("../../rules/ratio.toml")),
    ("spike.toml", include_str!("../../rules/spike.toml")),
    ("unused.toml", include_str!("../../rules/unused.toml")),
    ("volume.toml", include_str!("../../rules/volume.toml")),
];

/// Where a command's rules came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    /// `--rules` (or the configuration's `rules.paths`).
    Given(Vec<PathBuf>),
    /// No paths given, and `./rules` is a directory.
    LocalDir(PathBuf),
    /// No paths given and no `./rules`: the rules built into the binary.
    BuiltIn,
}

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::Given(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "{}", names.join(", "))
            }
            RuleSource::LocalDir(p) => {
                write!(f, "{} (found in the current directory)", p.display())
            }
            RuleSource::BuiltIn => write!(
                f,
                "the rules built into kmswatch {}",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }
}

/// Why the rules could not be had.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("--rules {}: no such file or directory", .0.display())]
    Missing(PathBuf),
    #[error("rules in {source_name} are invalid")]
    Invalid {
        source_name: String,
        #[source]
        error: LoadError,
    },
}

/// The rule set built into the binary.
pub fn load_builtin() -> Result<RuleSet, LoadError> {
    let names: Vec<PathBuf> = BUILTIN_FILES
        .iter()
        .map(|(name, _)| Path::new(BUILTIN_DIR).join(name))
        .collect();
    let files: Vec<(&Path, &str)> = names
        .iter()
        .zip(BUILTIN_FILES)
        .map(|(p, (_, text))| (p.as_path(), *text))
        .collect();
    load_texts(&files)
}

/// Which rules to use: the `given` paths (each must exist), else `./rules` when it is a
/// directory, else the built-in rules.
pub fn resolve(given: &[PathBuf]) -> Result<RuleSource, RulesError> {
    if let Some(missing) = given.iter().find(|p| !p.exists()) {
        return Err(RulesError::Missing(missing.clone()));
    }
    if !given.is_empty() {
        return Ok(RuleSource::Given(given.to_vec()));
    }
    let local = PathBuf::from("rules");
    Ok(if local.is_dir() {
        RuleSource::LocalDir(local)
    } else {
        RuleSource::BuiltIn
    })
}

/// Loads the rules of `source`.
pub fn load_source(source: &RuleSource) -> Result<RuleSet, LoadError> {
    match source {
        RuleSource::Given(paths) => load_paths(paths),
        RuleSource::LocalDir(dir) => load_paths(std::slice::from_ref(dir)),
        RuleSource::BuiltIn => load_builtin(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_are_every_shipped_rule_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut shipped: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        shipped.sort();
        let built: Vec<&str> = BUILTIN_FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(shipped, built, "add new rule files to BUILTIN_FILES");
        let from_files = load_paths(&[dir]).unwrap();
        let builtin = load_builtin().unwrap();
        let ids = |s: &RuleSet| -> Vec<(String, String)> {
            s.rules
                .iter()
                .map(|r| (r.id.clone(), r.fingerprint(300)))
                .collect()
        };
        assert_eq!(ids(&builtin), ids(&from_files));
        assert!(builtin.rules[0].origin.file.starts_with(BUILTIN_DIR));
    }

    #[test]
    fn a_missing_rules_path_is_named() {
        let e = resolve(&[PathBuf::from("no/such/rules")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--rules no/such/rules: no such file or directory"
        );
    }
}
