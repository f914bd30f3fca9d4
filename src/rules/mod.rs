//! Detection rules: the compiled model, loading and linting rule files.

mod fingerprint;
mod load;
mod model;

mod eval;

pub use eval::{EvalCounters, EvalLimits, RuleEval, SavedRule};
pub use load::{load_dir, load_paths, LoadError, RuleProblem};
pub use model::*;

#[cfg(test)]
pub(crate) use eval::test_support;
