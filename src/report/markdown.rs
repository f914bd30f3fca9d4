//! `report.md`: the report's blocks as Markdown (charts are left to the HTML). Deterministic: the
//! same report gives the same bytes.

use std::fmt::Write as _;

use super::document::Block;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "{} {text}\n", "#".repeat(usize::from(*level)));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            Block::Items(items) => {
                for i in items {
                    let _ = writeln!(out, "- {i}");
                }
                out.push('\n');
            }
            Block::Table { columns, rows } => {
                let _ = writeln!(out, "| {} |", columns.join(" | "));
                let _ = writeln!(out, "|{}", " --- |".repeat(columns.len()));
                for r in rows {
                    let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
                    let _ = writeln!(out, "| {} |", cells.join(" | "));
                }
                out.push('\n');
            }
            Block::Chart { .. } => {}
        }
    }
    out
}
