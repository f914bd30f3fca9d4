//! Mutations of seed inputs, described as data (`Op`s) so proptest generates and shrinks them:
//! byte edits (flips, truncation, deletion, splicing, structural tokens, deep nesting) and edits
//! of a parsed JSON tree (extreme values, removed and renamed fields, subtrees from other seeds).

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// One edit. Its numbers are reduced modulo what they index, so any values are valid and
/// shrinking them toward zero gives simpler edits.
#[derive(Debug, Clone)]
pub struct Op {
    pub kind: u8,
    pub at: u32,
    pub len: u32,
    pub pick: u32,
}

pub fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    vec(
        (any::<u8>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
            |(kind, at, len, pick)| Op {
                kind,
                at,
                len,
                pick,
            },
        ),
        0..=max,
    )
}

/// Tokens inserted into JSON text: structure, escapes, extreme numbers and the fields the
/// decoders look at.
pub const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\uDFFF\\uD800",
    b"null",
    b"true",
    b"-0",
    b"1e999",
    b"-1e-999",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"\"Records\"",
    b"\"Records\":[",
    b"{\"Records\":[{}]}",
    b"\"eventSource\":\"kms.amazonaws.com\"",
    b"\"eventTime\":\"2099-01-01T00:00:00Z\"",
    b"\"2026-02-30T00:00:00Z\"",
    b"\"eventName\":\"CreateKey\"",
    b"\"resources\":[",
    b"\"Message\":",
    b"\"Type\":\"Notification\"",
    b"\"s3ObjectKey\":[",
    b"%",
    b"%zz",
    b"+",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b" ",
    b"\n",
];

/// Tokens inserted into TOML text.
pub const TOML_TOKENS: &[&[u8]] = &[
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"[[rule]]\n",
    b"[rule.filter]\n",
    b"=",
    b"\"",
    b"'",
    b"'''",
    b"\"\"\"",
    b"#",
    b"\n",
    b"\r",
    b".",
    b"{",
    b"}",
    b",",
    b"1979-05-27T07:32:00Z",
    b"inf",
    b"-nan",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"0x7fffffffffffffff",
    b"1e308",
    b"0",
    b"-1",
    b"true",
    b"a.b.c = 1\n",
    b"kind = \"spike\"\n",
    b"window_secs = 0\n",
    b"threshold = ",
    b"\\u0000",
    b"\xff",
    b"\xc3",
    b" ",
];

/// Bytes the "set a byte" edit writes.
const BYTES: &[u8] = b"\x00\xff\x7f\x80\"\\{}[],:0-e\n#=. ";

/// A length: mostly small, sometimes up to `n`.
fn span(len: u32, n: usize) -> usize {
    if len % 4 == 0 {
        len as usize % (n + 1)
    } else {
        len as usize % 17
    }
}

/// Applies byte edits to `data`; `tokens` are the inserted tokens, `donors` other seeds to
/// splice from.
pub fn bytes(data: &mut Vec<u8>, ops: &[Op], tokens: &[&[u8]], donors: &[&[u8]]) {
    for op in ops {
        let n = data.len();
        let at = op.at as usize % (n + 1);
        let token = tokens[op.pick as usize % tokens.len()];
        match op.kind % 10 {
            0 if n > 0 => data[at % n] ^= 1 << (op.pick % 8),
            1 if n > 0 => data[at % n] = BYTES[op.pick as usize % BYTES.len()],
            2 => {
                let end = (at + span(op.len, n)).min(n);
                data.drain(at..end);
            }
            3 => insert(data, at, token),
            4 => data.truncate(at),
            5 => {
                let end = (at + span(op.len, n)).min(n);
                let piece = data[at..end].to_vec();
                insert(data, op.pick as usize % (n + 1), &piece);
            }
            6 if !donors.is_empty() => {
                let donor = donors[op.pick as usize % donors.len()];
                let from = op.len as usize % (donor.len() + 1);
                let end = (from + span(op.len >> 8, donor.len())).min(donor.len());
                insert(data, at, &donor[from..end]);
            }
            // Deep nesting and long runs: stack depth and quadratic behaviour.
            7 => insert(data, at, &token.repeat(op.len as usize % 4096 + 1)),
            8 => {
                let end = (at + span(op.len, n)).min(n);
                data.splice(at..end, token.iter().copied());
            }
            _ => insert(data, at, &[op.pick as u8]),
        }
    }
}

fn insert(data: &mut Vec<u8>, at: usize, piece: &[u8]) {
    data.splice(at..at, piece.iter().copied());
}

/// Values that break assumptions: extreme numbers, odd times, empty and special strings.
fn interesting(pick: u32) -> Value {
    let all = [
        Value::Null,
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(i64::MAX - 299),
        json!(i64::MIN + 1),
        json!(1e300),
        json!(-1e300),
        json!(0.5),
        json!(-0.0),
        json!(""),
        json!(" "),
        json!("0"),
        json!("null"),
        json!("2099-01-01T00:00:00Z"),
        json!("2026-02-30T00:00:00Z"),
        json!("9999-12-31T23:59:59Z"),
        json!("0000-01-01T00:00:00Z"),
        json!("1970-01-01T00:00:00Z"),
        json!("2026-03-02T00:12:03.123456789+14:00"),
        json!("-2026-03-02T00:12:03Z"),
        json!("arn:aws:kms:us-east-1:111111111111:key/"),
        json!("arn:aws:kms:::key/x"),
        json!("alias/"),
        json!("arn:aws:iam::111111111111:role/"),
        json!("arn:aws:sts::111111111111:assumed-role//"),
        json!("kms.amazonaws.com"),
        json!("AWS Internal"),
        json!("\u{0}"),
        json!("é😀"),
        json!("%"),
        json!([]),
        json!({}),
        json!([null]),
        json!({"": null}),
    ];
    all[pick as usize % all.len()].clone()
}

/// Counts the nodes of `v` in pre-order.
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// The `i`-th node of `v` in pre-order (`i` < `count(v)`).
fn nth(v: &mut Value, i: usize) -> &mut Value {
    fn go<'a>(v: &'a mut Value, i: &mut usize) -> Option<&'a mut Value> {
        if *i == 0 {
            return Some(v);
        }
        *i -= 1;
        match v {
            Value::Array(a) => a.iter_mut().find_map(|c| go(c, i)),
            Value::Object(o) => o.values_mut().find_map(|c| go(c, i)),
            _ => None,
        }
    }
    let mut i = i;
    go(v, &mut i).expect("node index below the count")
}

/// The `i`-th node of `v` in pre-order, read only.
fn nth_ref(v: &Value, i: usize) -> &Value {
    fn go<'a>(v: &'a Value, i: &mut usize) -> Option<&'a Value> {
        if *i == 0 {
            return Some(v);
        }
        *i -= 1;
        match v {
            Value::Array(a) => a.iter().find_map(|c| go(c, i)),
            Value::Object(o) => o.values().find_map(|c| go(c, i)),
            _ => None,
        }
    }
    let mut i = i;
    go(v, &mut i).expect("node index below the count")
}

/// Arrays are grown only in trees of fewer nodes than this.
const MAX_GROWN_ITEMS: usize = 100_000;

/// The most bytes one edit grows a string to.
const MAX_GROWN_BYTES: usize = 300 * 1024;

/// Applies tree edits to `v`; `donors` are other seeds' trees to take subtrees from.
pub fn tree(v: &mut Value, ops: &[Op], donors: &[&Value]) {
    for op in ops {
        let nodes = count(v);
        let at = op.at as usize % nodes;
        let donor = || {
            let d = donors.get(op.pick as usize % donors.len().max(1))?;
            Some(nth_ref(d, op.len as usize % count(d)).clone())
        };
        let node = nth(v, at);
        match op.kind % 9 {
            0 | 1 => *node = interesting(op.pick),
            2 => match node {
                Value::Object(o) if !o.is_empty() => {
                    let k = o.keys().nth(op.len as usize % o.len()).cloned();
                    k.map(|k| o.remove(&k));
                }
                Value::Array(a) if !a.is_empty() => {
                    a.remove(op.len as usize % a.len());
                }
                _ => *node = Value::Null,
            },
            3 => match node {
                // A renamed field: unknown-field and did-you-mean paths.
                Value::Object(o) if !o.is_empty() => {
                    let k = o.keys().nth(op.len as usize % o.len()).cloned();
                    if let Some(k) = k {
                        let val = o.remove(&k).unwrap_or_default();
                        let renamed = match op.pick % 3 {
                            0 => format!("{k}s"),
                            1 => k.to_uppercase(),
                            _ => k.chars().skip(1).collect(),
                        };
                        o.insert(renamed, val);
                    }
                }
                Value::Array(a) if !a.is_empty() => {
                    let c = a[op.len as usize % a.len()].clone();
                    a.push(c);
                }
                _ => {}
            },
            4 => {
                let inner = node.take();
                *node = if op.pick % 2 == 0 {
                    json!([inner])
                } else {
                    let mut m = Map::new();
                    m.insert("x".to_owned(), inner);
                    Value::Object(m)
                };
            }
            5 => {
                if let Some(n) = numeric(node, op) {
                    *node = n;
                }
            }
            6 => {
                if let Value::String(s) = node {
                    let mut b = s.clone().into_bytes();
                    let one = Op {
                        kind: (op.pick % 10) as u8,
                        at: op.len,
                        len: op.len >> 4,
                        pick: op.pick >> 4,
                    };
                    bytes(&mut b, &[one], JSON_TOKENS, &[]);
                    *s = String::from_utf8_lossy(&b).into_owned();
                } else if let Some(d) = donor() {
                    *node = d;
                }
            }
            7 => {
                if let Some(d) = donor() {
                    *node = d;
                }
            }
            // Growth is capped: repeated edits of one node must not multiply without bound.
            _ => match node {
                Value::Array(a) if !a.is_empty() && nodes < MAX_GROWN_ITEMS => {
                    let c = a[op.pick as usize % a.len()].clone();
                    let times = op.len as usize % 64;
                    a.extend(std::iter::repeat_n(c, times));
                }
                Value::String(s) if !s.is_empty() => {
                    let times = (op.len as usize % 512 + 1)
                        .min(MAX_GROWN_BYTES / s.len())
                        .max(1);
                    *s = s.repeat(times);
                }
                _ => *node = interesting(op.pick),
            },
        }
    }
}

/// A number nudged: off by one, scaled, negated, made fractional or extreme.
fn numeric(node: &Value, op: &Op) -> Option<Value> {
    let n = node.as_i64().or_else(|| node.as_f64().map(|f| f as i64))?;
    Some(match op.pick % 7 {
        0 => json!(n.wrapping_add(1)),
        1 => json!(n.wrapping_sub(1)),
        2 => json!(n.saturating_mul(1 << (op.len % 40))),
        3 => json!(n.wrapping_neg()),
        4 => json!(n as f64 + 0.5),
        5 => json!(n.saturating_add(i64::MAX / 2)),
        _ => json!(n / 2),
    })
}

/// Tree edits that keep every value's JSON type (numbers stay integers, arrays lose or repeat
/// elements, strings change), so a typed reader accepts the tree and what reads it is reached.
pub fn typed(v: &mut Value, ops: &[Op]) {
    const INTEGERS: &[i64] = &[
        0,
        1,
        -1,
        i64::MAX,
        i64::MIN,
        i64::MAX - 299,
        86_400,
        -86_400,
    ];
    for op in ops {
        let at = op.at as usize % count(v);
        match nth(v, at) {
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                let i = n.as_i64().unwrap_or(i64::MAX);
                *n = match op.kind % 3 {
                    0 => INTEGERS[op.pick as usize % INTEGERS.len()].into(),
                    1 => match numeric(&json!(i), op) {
                        Some(Value::Number(m)) if m.is_i64() => m,
                        _ => i.wrapping_add(1).into(),
                    },
                    // Unsigned fields (counts) get an extreme unsigned value.
                    _ => (u64::MAX - u64::from(op.pick % 3)).into(),
                };
            }
            Value::String(s) if s.starts_with(BIG) => {
                const BIGS: &[&str] = &[
                    "0",
                    "340282366920938463463374607431768211455",
                    "340282366920938463463374607431768211456",
                    "18446744073709551616",
                ];
                *s = format!("{BIG}{}", BIGS[op.pick as usize % BIGS.len()]);
            }
            Value::String(s) => {
                let mut b = s.clone().into_bytes();
                let one = Op {
                    kind: op.kind,
                    at: op.len,
                    len: op.len >> 4,
                    pick: op.pick,
                };
                bytes(&mut b, &[one], JSON_TOKENS, &[]);
                *s = String::from_utf8_lossy(&b).into_owned();
            }
            Value::Array(a) if !a.is_empty() => {
                let i = op.len as usize % a.len();
                match op.kind % 3 {
                    0 => {
                        a.remove(i);
                    }
                    1 => {
                        let c = a[i].clone();
                        a.insert(op.pick as usize % (a.len() + 1), c);
                    }
                    _ => {
                        let j = op.pick as usize % a.len();
                        a.swap(i, j);
                    }
                }
            }
            Value::Bool(b) => *b = !*b,
            _ => {}
        }
    }
}

/// Marks an integer too large for `Value` (a 128-bit call id), held as a string while edited.
const BIG: &str = "\u{1}big:";

/// The marker as JSON writes it, opening the string.
const BIG_JSON: &[u8] = b"\"\\u0001big:";

/// JSON text with every integer of 20 or more digits turned into a marked string.
pub fn protect_big_integers(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + json.len() / 8);
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if in_string {
            in_string = escaped || b != b'"';
            escaped = !escaped && b == b'\\';
        } else if b == b'"' {
            in_string = true;
        } else if b.is_ascii_digit() && (i == 0 || !json[i - 1].is_ascii_alphanumeric()) {
            let end = i + json[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if end - i >= 20 {
                out.extend_from_slice(BIG_JSON);
                out.extend_from_slice(&json[i..end]);
                out.push(b'"');
                i = end;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Undoes [`protect_big_integers`] on JSON text written from an edited tree.
pub fn unprotect_big_integers(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut rest = json;
    while let Some(at) = rest.windows(BIG_JSON.len()).position(|w| w == BIG_JSON) {
        out.extend_from_slice(&rest[..at]);
        let digits = &rest[at + BIG_JSON.len()..];
        let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits.get(n) == Some(&b'"') {
            out.extend_from_slice(&digits[..n]);
            rest = &digits[n + 1..];
        } else {
            out.extend_from_slice(&BIG_JSON[..1]);
            rest = &rest[at + 1..];
        }
    }
    out.extend_from_slice(rest);
    out
}
