//! What an SQS message body announces: CloudTrail's own notification, S3 event notifications and
//! EventBridge "Object Created" events, each raw or inside an SNS envelope; `s3:TestEvent`.
//!
//! Pure: no I/O. Bucket allowlists and digest/Insights skipping are the caller's (see
//! [`super::classify`]).

use serde::Deserialize;
use serde_json::Value;

/// Largest body accepted (SQS' own maximum message size).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Most objects one message may announce.
pub const MAX_OBJECTS_PER_MESSAGE: usize = 1000;

/// One object a notification announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    /// Size in bytes, when the notification says.
    pub size: Option<u64>,
}

/// Which notification format a body was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    CloudTrail,
    S3Event,
    EventBridge,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::CloudTrail => "cloudtrail",
            Shape::S3Event => "s3_event",
            Shape::EventBridge => "eventbridge",
        }
    }
}

/// What a message body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Objects to read; may be empty (an S3 notification of removals only).
    Objects {
        shape: Shape,
        /// The body came inside an SNS envelope.
        sns: bool,
        objects: Vec<Announced>,
    },
    /// `s3:TestEvent`, sent when a notification is configured: nothing to do.
    Test,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("body is not JSON ({0})")]
    NotJson(String),
    #[error("body is JSON but not a known notification (expected CloudTrail's s3Bucket/s3ObjectKey, S3 Records[], an EventBridge Object Created event, or any of them in an SNS envelope); top-level fields: {0}")]
    UnknownShape(String),
    #[error("{shape} notification: {message}")]
    BadField {
        shape: &'static str,
        message: String,
    },
    #[error("body is {0} bytes, over the SQS maximum of {MAX_BODY_BYTES}")]
    TooLarge(usize),
    #[error("notification announces {0} objects, over the cap of {MAX_OBJECTS_PER_MESSAGE}")]
    TooManyObjects(usize),
}

impl NotifyError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            NotifyError::NotJson(_) => "not_json",
            NotifyError::UnknownShape(_) => "unknown_shape",
            NotifyError::BadField { .. } => "bad_field",
            NotifyError::TooLarge(_) => "too_large_body",
            NotifyError::TooManyObjects(_) => "too_many_objects",
        }
    }
}

#[derive(Deserialize)]
struct CloudTrailBody {
    #[serde(rename = "s3Bucket")]
    bucket: String,
    #[serde(rename = "s3ObjectKey")]
    keys: Vec<String>,
}

#[derive(Deserialize)]
struct S3EventBody {
    #[serde(rename = "Records")]
    records: Vec<S3Record>,
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: Named,
    object: S3Object,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Deserialize)]
struct EventBridgeDetail {
    bucket: Named,
    object: S3Object,
}

/// Parses one SQS message body.
pub fn parse_notification(body: &str) -> Result<Notification, NotifyError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(NotifyError::TooLarge(body.len()));
    }
    let v: Value = serde_json::from_str(body).map_err(|e| NotifyError::NotJson(e.to_string()))?;
    if v.get("Type").and_then(Value::as_str) == Some("Notification") {
        let inner =
            v.get("Message")
                .and_then(Value::as_str)
                .ok_or_else(|| NotifyError::BadField {
                    shape: "sns",
                    message: "envelope has no string \"Message\"".into(),
                })?;
        let inner: Value = serde_json::from_str(inner)
            .map_err(|e| NotifyError::NotJson(format!("SNS Message: {e}")))?;
        return parse_value(inner, true);
    }
    parse_value(v, false)
}

fn parse_value(v: Value, sns: bool) -> Result<Notification, NotifyError> {
    let Some(obj) = v.as_object() else {
        return Err(NotifyError::UnknownShape(format!(
            "not an object: {}",
            kind_of(&v)
        )));
    };
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::Test);
    }
    let (shape, objects) = if obj.contains_key("s3Bucket") {
        let b: CloudTrailBody = field(v, Shape::CloudTrail)?;
        check_count(b.keys.len())?;
        let objects = b
            .keys
            .into_iter()
            .map(|key| Announced {
                bucket: b.bucket.clone(),
                key,
                size: None,
            })
            .collect();
        (Shape::CloudTrail, objects)
    } else if obj.contains_key("Records") {
        let b: S3EventBody = field(v, Shape::S3Event)?;
        check_count(b.records.len())?;
        let mut objects = Vec::new();
        for r in b.records {
            if !r.event_name.starts_with("ObjectCreated:") {
                continue;
            }
            let key = form_decode(&r.s3.object.key).ok_or_else(|| NotifyError::BadField {
                shape: Shape::S3Event.as_str(),
                message: format!(
                    "object key {:?} is not valid form-URL encoding",
                    r.s3.object.key
                ),
            })?;
            objects.push(Announced {
                bucket: r.s3.bucket.name,
                key,
                size: r.s3.object.size,
            });
        }
        (Shape::S3Event, objects)
    } else if obj.get("detail-type").and_then(Value::as_str) == Some("Object Created") {
        let detail = obj.get("detail").cloned().unwrap_or(Value::Null);
        let d: EventBridgeDetail = field(detail, Shape::EventBridge)?;
        let objects = vec![Announced {
            bucket: d.bucket.name,
            key: d.object.key,
            size: d.object.size,
        }];
        (Shape::EventBridge, objects)
    } else {
        let mut names: Vec<&str> = obj.keys().map(String::as_str).take(8).collect();
        names.sort_unstable();
        return Err(NotifyError::UnknownShape(names.join(", ")));
    };
    Ok(Notification::Objects {
        shape,
        sns,
        objects,
    })
}

fn field<T: for<'de> Deserialize<'de>>(v: Value, shape: Shape) -> Result<T, NotifyError> {
    serde_json::from_value(v).map_err(|e| NotifyError::BadField {
        shape: shape.as_str(),
        message: e.to_string(),
    })
}

fn check_count(n: usize) -> Result<(), NotifyError> {
    if n > MAX_OBJECTS_PER_MESSAGE {
        Err(NotifyError::TooManyObjects(n))
    } else {
        Ok(())
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes an S3 notification key: `+` to space first, then `%xx` escapes; `None` on a bad escape
/// or bytes that are not UTF-8.
pub fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let h = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sns(inner: &str) -> String {
        serde_json::json!({"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":inner}).to_string()
    }

    fn obj(bucket: &str, key: &str, size: Option<u64>) -> Announced {
        Announced {
            bucket: bucket.into(),
            key: key.into(),
            size,
        }
    }

    const CT: &str = r#"{"s3Bucket":"b","s3ObjectKey":["k1","k 2+x"]}"#;
    const S3: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a+b%2Bc%20d.json.gz","size":12}}},{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"gone"}}}]}"#;
    const EB: &str = r#"{"version":"0","detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k+1","size":5}}}"#;
    const TEST: &str = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"t","Bucket":"b"}"#;

    #[test]
    fn every_shape_raw_and_in_sns() {
        let cases = [
            (
                CT,
                Shape::CloudTrail,
                vec![obj("b", "k1", None), obj("b", "k 2+x", None)],
            ),
            (
                S3,
                Shape::S3Event,
                vec![obj("b", "a b+c d.json.gz", Some(12))],
            ),
            (EB, Shape::EventBridge, vec![obj("b", "k+1", Some(5))]),
        ];
        for (body, shape, objects) in cases {
            for wrapped in [false, true] {
                let text = if wrapped { sns(body) } else { body.to_string() };
                assert_eq!(
                    parse_notification(&text),
                    Ok(Notification::Objects {
                        shape,
                        sns: wrapped,
                        objects: objects.clone()
                    }),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn test_events_raw_and_in_sns() {
        assert_eq!(parse_notification(TEST), Ok(Notification::Test));
        assert_eq!(parse_notification(&sns(TEST)), Ok(Notification::Test));
    }

    #[test]
    fn removals_only_announce_nothing() {
        let body = r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        assert_eq!(
            parse_notification(body),
            Ok(Notification::Objects {
                shape: Shape::S3Event,
                sns: false,
                objects: vec![]
            })
        );
    }

    #[test]
    fn errors_and_their_kinds() {
        let many = serde_json::json!({"s3Bucket":"b","s3ObjectKey": vec!["k"; 1001]}).to_string();
        let cases: [(String, &str); 9] = [
            ("not json".into(), "not_json"),
            (r#"{"hello":"world"}"#.into(), "unknown_shape"),
            ("[1,2]".into(), "unknown_shape"),
            (sns("not json either"), "not_json"),
            (r#"{"Type":"Notification"}"#.into(), "bad_field"),
            (r#"{"s3Bucket":"b"}"#.into(), "bad_field"),
            (r#"{"s3Bucket":"b","s3ObjectKey":"k"}"#.into(), "bad_field"),
            (many, "too_many_objects"),
            (" ".repeat(MAX_BODY_BYTES + 1), "too_large_body"),
        ];
        for (body, kind) in cases {
            let e = parse_notification(&body).unwrap_err();
            assert_eq!(e.kind(), kind, "{e}");
        }
        let e = parse_notification(r#"{"hello":"world","a":1}"#).unwrap_err();
        assert!(e.to_string().ends_with("top-level fields: a, hello"), "{e}");
        let bad = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"x%zz"}}}]}"#;
        assert_eq!(
            parse_notification(bad).unwrap_err().to_string(),
            "s3_event notification: object key \"x%zz\" is not valid form-URL encoding"
        );
    }

    #[test]
    fn form_decoding_turns_plus_to_space_before_escapes() {
        let cases = [
            ("a+b", Some("a b")),
            ("a%2Bb", Some("a+b")),
            ("%20", Some(" ")),
            ("%E2%9C%93", Some("\u{2713}")),
            ("%", None),
            ("%4", None),
            ("%FF", None),
            ("plain/key.json.gz", Some("plain/key.json.gz")),
        ];
        for (input, want) in cases {
            assert_eq!(form_decode(input).as_deref(), want, "{input}");
        }
    }
}
