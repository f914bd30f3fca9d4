//! Detection rules: the compiled model, loading and linting rule files, the built-in set.

mod builtin;
mod fingerprint;
mod load;
mod model;

mod eval;

pub use builtin::{load_builtin, load_source, resolve, RuleSource, RulesError, BUILTIN_FILES};
pub use eval::{Dispatch, EvalCounters, EvalLimits, RuleEval, SavedRule, MAX_DISPATCH_OPERATIONS};
pub use load::{load_dir, load_paths, load_texts, LoadError, RuleProblem};
pub use model::*;

#[cfg(test)]
pub(crate) use eval::test_support;
