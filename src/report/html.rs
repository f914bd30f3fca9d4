//! `report.html`: the report's blocks as one self-contained page (no scripts, no external
//! resources), with the charts as inline SVG bar charts. Deterministic like the Markdown.

use std::fmt::Write as _;

use super::document::Block;
use crate::timefmt::format_rfc3339;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td{font-family:ui-monospace,monospace;font-size:12px}code{font-size:12px}\
figure{margin:1em 0}figcaption{font-weight:600}svg .bar{fill:#3b6ea5}svg text{font-size:11px;fill:#444}";

const W: f64 = 720.0;
const H: f64 = 160.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 20.0;

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Inline markup: `code` and **bold** spans, the rest escaped.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let (mut code, mut bold) = (false, false);
    let mut rest = s;
    while let Some(i) = rest.find(['`', '*']) {
        out.push_str(&esc(&rest[..i]));
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix('`') {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = after;
        } else if let Some(after) = tail.strip_prefix("**").filter(|_| !code) {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            rest = after;
        } else {
            out.push('*');
            rest = &tail[1..];
        }
    }
    out.push_str(&esc(rest));
    if code {
        out.push_str("</code>");
    }
    if bold {
        out.push_str("</strong>");
    }
    out
}

/// A bar per day, scaled to the largest value, with the first and last day and the maximum labelled.
fn chart(out: &mut String, title: &str, days: &[(i64, u64)]) {
    let _ = write!(
        out,
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    let max = days.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        out.push_str("<text x=\"8\" y=\"20\">no calls</text></svg></figure>\n");
        return;
    };
    let span = ((last.0 - first.0) / 86_400 + 1) as f64;
    let slot = (W - LEFT) / span;
    let plot = H - BOTTOM;
    for &(day, v) in days {
        let x = LEFT + ((day - first.0) / 86_400) as f64 * slot;
        let h = v as f64 / max as f64 * (plot - 12.0);
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}: {v}</title></rect>",
            plot - h,
            (slot * 0.8).max(1.0),
            &format_rfc3339(day)[..10]
        );
    }
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{plot}\" x2=\"{W}\" y2=\"{plot}\" stroke=\"#888\"/><text x=\"4\" y=\"12\">{max}</text><text x=\"4\" y=\"{plot}\">0</text><text x=\"{LEFT}\" y=\"{H}\">{}</text><text x=\"{W}\" y=\"{H}\" text-anchor=\"end\">{}</text></svg></figure>",
        &format_rfc3339(first.0)[..10],
        &format_rfc3339(last.0)[..10]
    );
}

pub fn render(blocks: &[Block]) -> String {
    let title = blocks
        .iter()
        .find_map(|b| match b {
            Block::Heading(1, t) => Some(t.as_str()),
            _ => None,
        })
        .unwrap_or("kmswatch report");
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(title)
    );
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", inline(text));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "<p>{}</p>", inline(text));
            }
            Block::Items(items) => {
                out.push_str("<ul>");
                for i in items {
                    let _ = write!(out, "<li>{}</li>", inline(i));
                }
                out.push_str("</ul>\n");
            }
            Block::Table { columns, rows } => {
                out.push_str("<table><thead><tr>");
                for c in columns {
                    let _ = write!(out, "<th>{}</th>", esc(c));
                }
                out.push_str("</tr></thead><tbody>");
                for r in rows {
                    out.push_str("<tr>");
                    for c in r {
                        let _ = write!(out, "<td>{}</td>", esc(c));
                    }
                    out.push_str("</tr>");
                }
                out.push_str("</tbody></table>\n");
            }
            Block::Chart { title, days } => chart(&mut out, title, days),
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_and_escaping() {
        let cases = [
            ("a < b & c", "a &lt; b &amp; c"),
            ("use `<name>.csv`", "use <code>&lt;name&gt;.csv</code>"),
            (
                "**Recommendation:** do",
                "<strong>Recommendation:</strong> do",
            ),
            ("2 * 3", "2 * 3"),
            ("`a*b`", "<code>a*b</code>"),
        ];
        for (text, html) in cases {
            assert_eq!(inline(text), html, "{text}");
        }
    }

    #[test]
    fn a_chart_has_a_bar_per_day_with_calls() {
        let mut out = String::new();
        chart(&mut out, "c", &[(0, 5), (2 * 86_400, 10)]);
        assert_eq!(out.matches("<rect").count(), 2);
        assert!(out.contains("<title>1970-01-03: 10</title>"), "{out}");
        let mut empty = String::new();
        chart(&mut empty, "c", &[]);
        assert!(empty.contains("no calls"));
    }
}
