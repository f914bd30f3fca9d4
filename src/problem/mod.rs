//! Problems in input files (rule files, the service configuration), located by `file:line:col`,
//! and what every loader needs to report them: reading a file as UTF-8 text, byte offsets to line
//! and column, did-you-mean hints, and TOML value types named for messages.

mod suggest;
mod text;

use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::DeValue;

pub(crate) use suggest::{distance_if_close, suggest, with_hint};
pub(crate) use text::{read_text, ReadError, Source};

/// One problem in one input file, rendered `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column (in characters) of the offending key or value.
    pub col: usize,
    pub message: String,
}

impl Problem {
    /// A problem about a whole file (or a path), reported at its start.
    pub fn at_start(file: &Path, message: String) -> Self {
        Problem {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
            message,
        }
    }
}

impl fmt::Display for Problem {
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

/// "a string", "an integer", ...: a TOML value's type for messages.
pub(crate) fn a_type(value: &DeValue<'_>) -> &'static str {
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
