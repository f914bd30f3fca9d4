//! Detection rules: the compiled model, loading and linting rule files.

mod load;
mod model;

pub use load::{load_dir, load_paths, LoadError, RuleProblem};
pub use model::*;
