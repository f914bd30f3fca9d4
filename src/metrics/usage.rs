//! The series of `kmswatch_kms_calls_total`, held compactly and written straight into the text
//! exposition: each series is its five label values (shared with every other series holding the
//! same value) and a count, about 130 bytes, where a `prometheus` counter vector child with its
//! label pairs took over a kilobyte, and rendering it built a copy of every label pair again.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::USAGE_LABELS;
use crate::Set;

/// The family's name.
pub(super) const NAME: &str = "kmswatch_kms_calls_total";

const HELP: &str = "Distinct KMS calls by key, principal, calling service, operation and outcome (capped labels fold into \"other\").";

#[derive(Debug)]
struct Entry {
    labels: [Arc<str>; 5],
    calls: u64,
}

/// Label values (in [`USAGE_LABELS`] order) -> calls.
#[derive(Debug, Default)]
pub(super) struct Series {
    table: HashTable<Entry>,
    /// Each label's values that some series holds, shared by those series.
    values: [Set<Arc<str>>; 5],
    hasher: foldhash::fast::RandomState,
}

impl Series {
    /// Adds a call to the series of `labels`; false (and nothing added) when it has no series
    /// and `max` series exist.
    pub fn add(&mut self, labels: [&str; 5], max: usize) -> bool {
        let hash = self.hasher.hash_one(labels);
        let same = |e: &Entry| e.labels.iter().zip(labels).all(|(a, b)| **a == *b);
        if let Some(e) = self.table.find_mut(hash, same) {
            e.calls = e.calls.saturating_add(1);
            return true;
        }
        if self.table.len() >= max {
            return false;
        }
        let held = std::array::from_fn(|i| {
            let values = &mut self.values[i];
            match values.get(labels[i]) {
                Some(v) => v.clone(),
                None => {
                    let v: Arc<str> = labels[i].into();
                    values.insert(v.clone());
                    v
                }
            }
        });
        let hasher = &self.hasher;
        self.table.insert_unique(
            hash,
            Entry {
                labels: held,
                calls: 1,
            },
            |e| hasher.hash_one(e.labels.each_ref().map(|v| &**v)),
        );
        true
    }

    /// Drops every series whose label `i` is `value`.
    pub fn remove_value(&mut self, i: usize, value: &str) {
        self.table.retain(|e| &*e.labels[i] != value);
        self.values[i].remove(value);
    }

    /// Appends the family in the text exposition format (nothing while it has no series), its
    /// series sorted by label values.
    pub fn render(&self, out: &mut String) {
        if self.table.is_empty() {
            return;
        }
        out.push_str(&format!("# HELP {NAME} {HELP}\n# TYPE {NAME} counter\n"));
        let mut rows: Vec<&Entry> = self.table.iter().collect();
        rows.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        for e in rows {
            out.push_str(NAME);
            out.push('{');
            for (i, (name, value)) in USAGE_LABELS.iter().zip(&e.labels).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(name);
                out.push_str("=\"");
                escape_label_value(value, out);
                out.push('"');
            }
            out.push_str("} ");
            out.push_str(&e.calls.to_string());
            out.push('\n');
        }
    }
}

/// A label value as the text format writes it: backslash, double quote and line feed escaped.
fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_counted_capped_rendered_sorted_and_escaped() {
        let mut s = Series::default();
        let mut text = String::new();
        s.render(&mut text);
        assert_eq!(text, "", "no series, no family");
        let odd = ["k\"1", "p\\1\nx", "s3", "Decrypt", "ok"];
        let plain = ["k0", "p1", "s3", "Decrypt", "ok"];
        assert!(s.add(odd, 2));
        assert!(s.add(plain, 2));
        assert!(s.add(plain, 2));
        assert!(!s.add(["k2", "p1", "s3", "Decrypt", "ok"], 2), "the cap");
        assert!(s.add(odd, 2), "an existing series past the cap");
        s.render(&mut text);
        assert_eq!(
            text,
            format!(
                "# HELP {NAME} {HELP}\n# TYPE {NAME} counter\n\
                 {NAME}{{key=\"k\\\"1\",principal=\"p\\\\1\\nx\",service=\"s3\",operation=\"Decrypt\",outcome=\"ok\"}} 2\n\
                 {NAME}{{key=\"k0\",principal=\"p1\",service=\"s3\",operation=\"Decrypt\",outcome=\"ok\"}} 2\n"
            )
        );
        // The value "s3" is held once, by both series.
        assert_eq!(s.values[2].len(), 1);
        assert_eq!(Arc::strong_count(s.values[2].get("s3").unwrap()), 3);
        s.remove_value(1, "p1");
        assert_eq!((s.table.len(), s.values[1].len()), (1, 1));
        assert!(s.add(["k2", "p1", "s3", "Decrypt", "ok"], 2), "room again");
    }
}
