//! The inventory of an `unused` rule: a file of key ARNs, one a line, `#` comments, named relative
//! to the rule file; its problems are located in the inventory file itself.

use std::path::Path;

use toml::de::DeValue;
use toml::Spanned;

use super::values::Checker;
use super::RuleProblem;
use crate::problem::{read_text, ReadError};

impl Checker<'_> {
    /// The key ARNs of an inventory file named relative to the rule file's directory.
    pub(super) fn inventory(&mut self, v: &Spanned<DeValue<'_>>) -> Option<Vec<String>> {
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
        let text = match read_text(&path) {
            Ok(text) => text,
            Err(ReadError::NotUtf8 { offset }) => {
                self.report_elsewhere(RuleProblem::at_start(
                    &path,
                    format!(
                        "inventory file is not valid UTF-8 (first invalid byte at offset {offset})"
                    ),
                ));
                return None;
            }
            Err(ReadError::Io(e)) => {
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
                self.report_elsewhere(RuleProblem {
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
