//! The problems of one configuration, collected across both stages: located in the file (a byte
//! span, turned into line and column) or in an environment variable. Also remembers the fields
//! whose value was unusable, so that validation does not report them a second time as missing.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use super::ConfigProblem;
use crate::problem::{Problem, Source};

/// Where a value came from, to report a problem with it.
#[derive(Debug, Clone)]
pub(super) enum At {
    /// A byte span of the configuration file.
    Span(Range<usize>),
    /// An environment variable.
    Env(&'static str),
    /// The start of the file: for what is missing from it.
    Start,
}

pub(super) struct Checker<'s> {
    src: &'s Source<'s>,
    in_file: Vec<Problem>,
    in_env: Vec<ConfigProblem>,
    /// Dotted names (`source.receivers`, or a table: `source`) of values already reported as
    /// unusable and dropped.
    spoiled: HashSet<String>,
}

impl<'s> Checker<'s> {
    pub(super) fn new(src: &'s Source<'s>) -> Self {
        Checker {
            src,
            in_file: Vec::new(),
            in_env: Vec::new(),
            spoiled: HashSet::new(),
        }
    }
}

impl Checker<'_> {
    pub(super) fn report(&mut self, at: &At, message: impl Into<String>) {
        match at {
            At::Span(span) => self.report_span(span.clone(), message),
            At::Start => self.report_span(0..0, message),
            At::Env(var) => self.in_env.push(ConfigProblem::Env {
                var,
                message: message.into(),
            }),
        }
    }

    pub(super) fn report_span(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = self.src.position(span.start);
        self.in_file.push(Problem {
            file: self.src.file.to_path_buf(),
            line,
            col,
            message: message.into(),
        });
    }

    pub(super) fn has_problems(&self) -> bool {
        !(self.in_file.is_empty() && self.in_env.is_empty())
    }

    /// The directory relative paths in the file are resolved against.
    pub(super) fn dir(&self) -> &Path {
        self.src.file.parent().unwrap_or(Path::new(""))
    }

    /// Marks the value named `name` as reported and dropped.
    pub(super) fn spoil(&mut self, name: String) {
        self.spoiled.insert(name);
    }

    /// Whether the value named `name`, or a table (or array element) holding it, was reported and
    /// dropped: `alerts.webhook[0].url` is spoiled by itself, `alerts.webhook[0]`,
    /// `alerts.webhook` and `alerts`.
    pub(super) fn is_spoiled(&self, name: &str) -> bool {
        self.spoiled.contains(name)
            || name
                .char_indices()
                .filter(|(_, c)| matches!(c, '.' | '['))
                .any(|(i, _)| self.spoiled.contains(&name[..i]))
    }

    /// The file's problems by position (duplicates dropped), then the environment's.
    pub(super) fn into_problems(self) -> Vec<ConfigProblem> {
        let mut in_file = self.in_file;
        in_file.sort_by_key(|p| (p.line, p.col));
        in_file.dedup();
        in_file
            .into_iter()
            .map(ConfigProblem::File)
            .chain(self.in_env)
            .collect()
    }
}
