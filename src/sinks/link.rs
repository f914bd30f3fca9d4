//! The link template of Alertmanager alerts: a URL with `{placeholders}` filled from the alert
//! (percent-encoded), checked when the configuration is read.

use std::fmt;

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 12] = [
    "rule",
    "severity",
    "key",
    "principal",
    "service",
    "account",
    "region",
    "operation",
    "error",
    "event_id",
    "window_start",
    "window_end",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// An index into [`PLACEHOLDERS`].
    Field(usize),
}

/// A parsed template such as
/// `https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{event_id}`.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkTemplate {
    text: String,
    parts: Vec<Part>,
}

impl fmt::Debug for LinkTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinkTemplate({:?})", self.text)
    }
}

impl LinkTemplate {
    /// The template, or why it is invalid (an unknown placeholder, an unclosed brace).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err("\"}\" without \"{\"; placeholders are written {name}".into());
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err("\"{\" without \"}\"; placeholders are written {name}".into());
            };
            let name = &after[..close];
            match PLACEHOLDERS.iter().position(|p| *p == name) {
                Some(i) => parts.push(Part::Field(i)),
                None => {
                    return Err(format!(
                        "unknown placeholder {{{name}}}; known: {}",
                        PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(LinkTemplate {
            text: text.to_string(),
            parts,
        })
    }

    /// The link, each placeholder replaced by `value(name)` percent-encoded (empty when `None`).
    pub fn render<'a>(&self, value: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field(i) => {
                    if let Some(v) = value(PLACEHOLDERS[*i]) {
                        percent_encode(v, &mut out);
                    }
                }
            }
        }
        out
    }
}

/// RFC 3986: everything but the unreserved characters is percent-encoded.
fn percent_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_encoded() {
        let t = LinkTemplate::parse("https://x/{rule}?k={key}&p={principal}&e={event_id}").unwrap();
        let link = t.render(|name| match name {
            "rule" => Some("key-disabled"),
            "key" => Some("arn:aws:kms:us-east-1:1:key/k"),
            "event_id" => Some("a b/c"),
            _ => None,
        });
        assert_eq!(
            link,
            "https://x/key-disabled?k=arn%3Aaws%3Akms%3Aus-east-1%3A1%3Akey%2Fk&p=&e=a%20b%2Fc"
        );
        assert_eq!(
            LinkTemplate::parse("plain").unwrap().render(|_| None),
            "plain"
        );
    }

    #[test]
    fn bad_templates_say_why() {
        #[rustfmt::skip]
        let cases = [
            ("https://x/{nope}", "unknown placeholder {nope}; known: {rule}, {severity}, {key}, {principal}, {service}, {account}, {region}, {operation}, {error}, {event_id}, {window_start}, {window_end}"),
            ("https://x/{rule", "\"{\" without \"}\"; placeholders are written {name}"),
            ("https://x/rule}", "\"}\" without \"{\"; placeholders are written {name}"),
        ];
        for (text, want) in cases {
            assert_eq!(LinkTemplate::parse(text).unwrap_err(), want, "{text}");
        }
    }
}
