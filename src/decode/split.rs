//! Finds the records of `{"Records":[...]}` without parsing them: strings are skipped with SIMD
//! searches for `"` and `\`, nesting is counted. Records are validated only when they are parsed
//! (KMS candidates); the file's own structure is always checked.

use memchr::memchr2;

/// Why a log file's structure is broken; `at` is a byte offset in the decompressed JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("JSON ends early at byte {at} (truncated object?)")]
    Eof { at: usize },
    #[error("unexpected {found:?} at byte {at}, expected {expected}")]
    Unexpected {
        at: usize,
        found: char,
        expected: &'static str,
    },
    #[error("no \"Records\" array")]
    NoRecords,
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

fn expect(b: &[u8], i: usize, want: u8, expected: &'static str) -> Result<usize, SplitError> {
    match b.get(i) {
        Some(&c) if c == want => Ok(i + 1),
        Some(&c) => Err(SplitError::Unexpected {
            at: i,
            found: c as char,
            expected,
        }),
        None => Err(SplitError::Eof { at: i }),
    }
}

/// `i` is at an opening quote; returns the index after the closing one.
fn skip_string(b: &[u8], i: usize) -> Result<usize, SplitError> {
    let mut j = i + 1;
    loop {
        match memchr2(b'"', b'\\', &b[j.min(b.len())..]) {
            Some(k) if b[j + k] == b'\\' => j += k + 2,
            Some(k) => return Ok(j + k + 1),
            None => return Err(SplitError::Eof { at: b.len() }),
        }
    }
}

/// Skips one value starting at `i` (no leading whitespace); returns the index after it.
pub(super) fn skip_value(b: &[u8], mut i: usize) -> Result<usize, SplitError> {
    match b.get(i) {
        None => Err(SplitError::Eof { at: i }),
        Some(b'"') => skip_string(b, i),
        Some(b'{') => super::structural::skip_object(b, i).ok_or(SplitError::Eof { at: b.len() }),
        Some(b'[') => {
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(SplitError::Eof { at: b.len() })
        }
        Some(b'}' | b']' | b',' | b':') => Err(SplitError::Unexpected {
            at: i,
            found: b[i] as char,
            expected: "a value",
        }),
        Some(_) => {
            let start = i;
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            {
                i += 1;
            }
            if i == b.len() {
                return Err(SplitError::Eof { at: start });
            }
            Ok(i)
        }
    }
}

/// After a member: a `,` (more follow) or `close` (done, returns true); the index after it.
fn separator(
    b: &[u8],
    i: usize,
    close: u8,
    expected: &'static str,
) -> Result<(usize, bool), SplitError> {
    let i = ws(b, i);
    match b.get(i) {
        Some(b',') => Ok((i + 1, false)),
        Some(&c) if c == close => Ok((i + 1, true)),
        Some(&c) => Err(SplitError::Unexpected {
            at: i,
            found: c as char,
            expected,
        }),
        None => Err(SplitError::Eof { at: i }),
    }
}

/// The raw bytes of each element of the top-level `Records` array.
pub fn split_records(b: &[u8]) -> Result<Vec<&[u8]>, SplitError> {
    let mut list = Vec::new();
    let count = walk_records(b, |start| {
        let end = skip_value(b, start)?;
        list.push(&b[start..end]);
        Ok::<_, SplitError>(end)
    })?;
    // A duplicated `Records` key: the last array is the file's, as serde_json would read it.
    Ok(list.split_off(list.len() - count))
}

/// Walks a log file's structure, checking it as [`split_records`] does, and hands the start of
/// each element of the top-level `Records` array to `each`, which returns where the element ends
/// (the index after it): it may parse the element itself, or call [`skip_value`]. Returns how
/// many elements the last `Records` array had (`each` sees the elements of every one, should the
/// key be duplicated). An error of `each` ends the walk.
pub(super) fn walk_records<E: From<SplitError>>(
    b: &[u8],
    mut each: impl FnMut(usize) -> Result<usize, E>,
) -> Result<usize, E> {
    let mut i = expect(
        b,
        ws(b, 0),
        b'{',
        "'{' (a CloudTrail log file is one JSON object)",
    )?;
    let mut records = None;
    i = ws(b, i);
    if b.get(i) == Some(&b'}') {
        return Err(SplitError::NoRecords.into());
    }
    loop {
        i = ws(b, i);
        if b.get(i) != Some(&b'"') {
            return Err(match b.get(i) {
                None => SplitError::Eof { at: i },
                Some(&c) => SplitError::Unexpected {
                    at: i,
                    found: c as char,
                    expected: "a key",
                },
            }
            .into());
        }
        let key_end = skip_string(b, i)?;
        let key = &b[i + 1..key_end - 1];
        i = ws(b, expect(b, ws(b, key_end), b':', "':'")?);
        if key == b"Records" {
            i = expect(b, i, b'[', "'[' (Records is an array)")?;
            let mut count = 0;
            i = ws(b, i);
            if b.get(i) == Some(&b']') {
                i += 1;
            } else {
                loop {
                    let start = ws(b, i);
                    i = each(start)?;
                    count += 1;
                    let (next, closed) = separator(b, i, b']', "',' or ']'")?;
                    i = next;
                    if closed {
                        break;
                    }
                }
            }
            records = Some(count);
        } else {
            i = skip_value(b, i)?;
        }
        let (next, closed) = separator(b, i, b'}', "',' or '}'")?;
        i = next;
        if closed {
            break;
        }
    }
    let end = ws(b, i);
    if end < b.len() {
        return Err(SplitError::Unexpected {
            at: end,
            found: b[end] as char,
            expected: "the end of the file",
        }
        .into());
    }
    records.ok_or_else(|| SplitError::NoRecords.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) -> Vec<String> {
        split_records(json.as_bytes())
            .unwrap()
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    #[test]
    fn splits_records_with_nesting_strings_and_escapes() {
        let json = r#" { "other": {"x": [1, "]"]}, "Records" : [ {"a":"}\"{","b":[{"c":null}]} , {"d":1.5e3},
            {"e":"\\"}, [], "s", 7, true ] , "after": null } "#;
        assert_eq!(
            ok(json),
            vec![
                r#"{"a":"}\"{","b":[{"c":null}]}"#,
                r#"{"d":1.5e3}"#,
                r#"{"e":"\\"}"#,
                "[]",
                r#""s""#,
                "7",
                "true"
            ]
        );
        assert_eq!(ok(r#"{"Records":[]}"#), Vec::<String>::new());
    }

    #[test]
    fn broken_structure_is_an_error_with_an_offset() {
        let cases = [
            ("", SplitError::Eof { at: 0 }),
            (
                "[1]",
                SplitError::Unexpected {
                    at: 0,
                    found: '[',
                    expected: "'{' (a CloudTrail log file is one JSON object)",
                },
            ),
            ("{}", SplitError::NoRecords),
            (
                r#"{"digestStartTime":"x","logFiles":[]}"#,
                SplitError::NoRecords,
            ),
            (r#"{"Records":[{"a":1},{"b":"#, SplitError::Eof { at: 25 }),
            (
                r#"{"Records":[{"a":"unterminated}]}"#,
                SplitError::Eof { at: 33 },
            ),
            (
                r#"{"Records":[{"a":1}}"#,
                SplitError::Unexpected {
                    at: 19,
                    found: '}',
                    expected: "',' or ']'",
                },
            ),
            (
                r#"{"Records":{}}"#,
                SplitError::Unexpected {
                    at: 11,
                    found: '{',
                    expected: "'[' (Records is an array)",
                },
            ),
            (
                r#"{"Records":[]} x"#,
                SplitError::Unexpected {
                    at: 15,
                    found: 'x',
                    expected: "the end of the file",
                },
            ),
            (
                r#"{"Records":[,]}"#,
                SplitError::Unexpected {
                    at: 12,
                    found: ',',
                    expected: "a value",
                },
            ),
        ];
        for (json, want) in cases {
            assert_eq!(split_records(json.as_bytes()), Err(want), "{json}");
        }
    }

    /// Random JSON text: nested objects and arrays, strings with escapes, braces and quotes.
    fn next(rng: &mut u64, n: u64) -> u64 {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng % n
    }

    fn random_value(rng: &mut u64, depth: u32, out: &mut String) {
        let pick = if depth > 4 {
            2 + next(rng, 4)
        } else {
            next(rng, 6)
        };
        match pick {
            0 => {
                out.push('{');
                for i in 0..next(rng, 5) {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("\"k{}\":", next(rng, 1000)));
                    random_value(rng, depth + 1, out);
                }
                out.push('}');
            }
            1 => {
                out.push('[');
                for i in 0..next(rng, 4) {
                    if i > 0 {
                        out.push_str(" , ");
                    }
                    random_value(rng, depth + 1, out);
                }
                out.push(']');
            }
            2 | 3 => {
                const PIECES: [&str; 10] = [
                    "a",
                    "{",
                    "}",
                    "[",
                    "]",
                    "\\\"",
                    "\\\\",
                    "é",
                    "\\u00e9",
                    "long text of an arn:aws:kms:us-east-1:1:key/x ",
                ];
                out.push('"');
                for _ in 0..next(rng, 40) {
                    out.push_str(PIECES[next(rng, PIECES.len() as u64) as usize]);
                }
                out.push('"');
            }
            4 => out.push_str(&format!("{}", next(rng, 100_000))),
            _ => out.push_str(["true", "false", "null", "-1.5e3"][next(rng, 4) as usize]),
        }
    }

    #[test]
    fn agrees_with_serde_json_on_random_documents() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..300 {
            let mut doc = String::from("{\"x\":");
            random_value(&mut rng, 3, &mut doc);
            doc.push_str(",\"Records\":[");
            let n = (rng % 20) as usize;
            for i in 0..n {
                if i > 0 {
                    doc.push(',');
                }
                doc.push_str(" {\"eventVersion\":\"1.09\",\"r\":");
                random_value(&mut rng, 0, &mut doc);
                doc.push('}');
            }
            doc.push_str("]}");
            let whole: serde_json::Value =
                serde_json::from_str(&doc).expect("the generator writes valid JSON");
            let expected = whole["Records"].as_array().unwrap();
            let got = split_records(doc.as_bytes()).unwrap();
            assert_eq!(got.len(), expected.len(), "{doc}");
            for (raw, want) in got.iter().zip(expected) {
                let v: serde_json::Value = serde_json::from_slice(raw).unwrap();
                assert_eq!(&v, want, "{doc}");
            }
        }
    }
}
