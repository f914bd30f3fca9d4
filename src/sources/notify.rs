//! Notification bodies: what an SQS message announcing new CloudTrail log objects says. Pure: no
//! I/O, no clock. Which announced objects are log files is [`classify`](super::classify)'s call.
//!
//! Accepted, each raw or inside an SNS envelope: CloudTrail's own notification, an S3 event
//! notification, an EventBridge S3 event, and the `s3:TestEvent` S3 sends when a notification is
//! configured.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::ObjectRef;

/// Largest body accepted, in bytes: the SQS message size limit.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Most objects one message may announce. CloudTrail lists a handful and S3 one per record; a
/// message over this is not a notification we understand.
pub const MAX_OBJECTS_PER_MESSAGE: usize = 1000;

/// One object a notification announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub bucket: String,
    /// Decoded: S3 event keys arrive form-URL-encoded and are decoded here.
    pub key: String,
    /// Bytes, when the notification says (CloudTrail's own does not).
    pub size: Option<u64>,
}

impl Announced {
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::S3 {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
        }
    }
}

/// What a message body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Objects to fetch (one or more; CloudTrail's own notification may list several keys). Empty
    /// when the message announces no new object (e.g. only `ObjectRemoved` records): delete it.
    Objects {
        shape: Shape,
        /// The body came wrapped in an SNS envelope.
        sns: bool,
        objects: Vec<Announced>,
    },
    /// `s3:TestEvent` (sent when a notification is configured): nothing to do, delete the message.
    Test,
}

/// Which kind of notification announced the objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// CloudTrail's own notification: `{"s3Bucket":..,"s3ObjectKey":[..]}`.
    CloudTrail,
    /// An S3 event notification: `{"Records":[{"eventSource":"aws:s3",..}]}`.
    S3Event,
    /// An EventBridge event from `aws.s3`.
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

    /// The name error messages use.
    fn label(self) -> &'static str {
        match self {
            Shape::CloudTrail => "CloudTrail",
            Shape::S3Event => "S3 event",
            Shape::EventBridge => "EventBridge",
        }
    }
}

/// Why a message body announces nothing usable. All are permanent: retrying the message cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("message body is {bytes} bytes, over the {limit}-byte SQS limit (is this queue fed by S3, CloudTrail or EventBridge?)")]
    TooLarge { bytes: usize, limit: usize },
    /// `what` is "message body" or "SNS Message".
    #[error("{what} is not JSON: {detail}")]
    NotJson { what: &'static str, detail: String },
    #[error("unrecognised notification: {what}; expected a CloudTrail, S3 event or EventBridge \"Object Created\" notification, raw or in an SNS envelope")]
    UnknownShape { what: String },
    #[error("bad {} notification: {detail}", shape.label())]
    BadField { shape: Shape, detail: String },
    #[error("{} notification announces {count} objects, over {limit} per message", shape.label())]
    TooManyObjects {
        shape: Shape,
        count: usize,
        limit: usize,
    },
}

impl NotifyError {
    /// A short, fixed label for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            NotifyError::TooLarge { .. } => "body_too_large",
            NotifyError::NotJson { .. } => "not_json",
            NotifyError::UnknownShape { .. } => "unknown_shape",
            NotifyError::BadField { .. } => "bad_field",
            NotifyError::TooManyObjects { .. } => "too_many_objects",
        }
    }
}

/// What an SQS message body announces.
pub fn parse_notification(body: &str) -> Result<Notification, NotifyError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(NotifyError::TooLarge {
            bytes: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    parse_body(body, false)
}

/// Parses one body; `sns` says it is the `Message` of an SNS envelope.
fn parse_body(body: &str, sns: bool) -> Result<Notification, NotifyError> {
    // First only the top-level field names, to tell the shape; then the shape's own struct, so a
    // bad field is reported against the shape it belongs to.
    let fields: BTreeMap<String, IgnoredAny> = serde_json::from_str(body).map_err(|e| {
        if e.is_data() {
            NotifyError::UnknownShape {
                what: "not a JSON object".to_owned(),
            }
        } else {
            NotifyError::NotJson {
                what: if sns { "SNS Message" } else { "message body" },
                detail: e.to_string(),
            }
        }
    })?;
    let has = |name: &str| fields.contains_key(name);
    if has("Type") && has("Message") {
        if sns {
            return Err(NotifyError::UnknownShape {
                what: "an SNS envelope inside an SNS envelope".to_owned(),
            });
        }
        return parse_sns(body);
    }
    if has("Event") {
        return parse_test(body);
    }
    let objects = if has("s3Bucket") || has("s3ObjectKey") {
        cloudtrail(body)?
    } else if has("Records") {
        s3_event(body)?
    } else if has("detail-type") {
        eventbridge(body)?
    } else {
        return Err(NotifyError::UnknownShape {
            what: describe_fields(&fields),
        });
    };
    if objects.objects.len() > MAX_OBJECTS_PER_MESSAGE {
        return Err(NotifyError::TooManyObjects {
            shape: objects.shape,
            count: objects.objects.len(),
            limit: MAX_OBJECTS_PER_MESSAGE,
        });
    }
    Ok(Notification::Objects {
        shape: objects.shape,
        sns,
        objects: objects.objects,
    })
}

/// "top-level fields a, b, c" (the first few, each shortened), for an unrecognised body.
fn describe_fields(fields: &BTreeMap<String, IgnoredAny>) -> String {
    const SHOWN: usize = 8;
    const NAME_CHARS: usize = 40;
    if fields.is_empty() {
        return "an empty JSON object".to_owned();
    }
    let mut names: Vec<String> = fields
        .keys()
        .take(SHOWN)
        .map(|n| {
            if n.chars().count() > NAME_CHARS {
                format!("{:?}..", n.chars().take(NAME_CHARS).collect::<String>())
            } else {
                format!("{n:?}")
            }
        })
        .collect();
    if fields.len() > SHOWN {
        names.push(format!("and {} more", fields.len() - SHOWN));
    }
    format!("top-level fields {}", names.join(", "))
}

struct Found {
    shape: Shape,
    objects: Vec<Announced>,
}

fn bad(shape: Shape, detail: impl Into<String>) -> NotifyError {
    NotifyError::BadField {
        shape,
        detail: detail.into(),
    }
}

/// Deserializes the whole body as `shape`'s struct; a type error is a bad field of that shape.
fn typed<'a, T: Deserialize<'a>>(body: &'a str, shape: Shape) -> Result<T, NotifyError> {
    serde_json::from_str(body).map_err(|e| bad(shape, e.to_string()))
}

/// A required string field: present and not empty.
fn required(shape: Shape, field: &str, value: Cow<'_, str>) -> Result<String, NotifyError> {
    if value.is_empty() {
        Err(bad(shape, format!("{field} is missing or empty")))
    } else {
        Ok(value.into_owned())
    }
}

#[derive(Deserialize)]
struct Sns<'a> {
    #[serde(rename = "Type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "Message", borrow)]
    message: Cow<'a, str>,
}

fn parse_sns(body: &str) -> Result<Notification, NotifyError> {
    let sns: Sns = serde_json::from_str(body).map_err(|e| NotifyError::UnknownShape {
        what: format!("SNS envelope: {e}"),
    })?;
    if sns.kind != "Notification" {
        let hint = if sns.kind == "SubscriptionConfirmation" {
            " (confirm the subscription: open its SubscribeURL)"
        } else {
            ""
        };
        return Err(NotifyError::UnknownShape {
            what: format!("SNS message of Type {:?}{hint}", sns.kind),
        });
    }
    parse_body(&sns.message, true)
}

#[derive(Deserialize)]
struct TestEvent<'a> {
    #[serde(rename = "Event", borrow)]
    event: Cow<'a, str>,
}

fn parse_test(body: &str) -> Result<Notification, NotifyError> {
    let t: TestEvent = serde_json::from_str(body).map_err(|e| NotifyError::UnknownShape {
        what: format!("S3 \"Event\" message: {e}"),
    })?;
    if t.event == "s3:TestEvent" {
        Ok(Notification::Test)
    } else {
        Err(NotifyError::UnknownShape {
            what: format!("S3 \"Event\" {:?}, not \"s3:TestEvent\"", t.event),
        })
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct CloudTrailBody<'a> {
    #[serde(rename = "s3Bucket", borrow)]
    s3_bucket: Cow<'a, str>,
    #[serde(rename = "s3ObjectKey")]
    s3_object_key: Option<Vec<String>>,
}

impl Default for CloudTrailBody<'_> {
    fn default() -> Self {
        CloudTrailBody {
            s3_bucket: Cow::Borrowed(""),
            s3_object_key: None,
        }
    }
}

fn cloudtrail(body: &str) -> Result<Found, NotifyError> {
    let shape = Shape::CloudTrail;
    let b: CloudTrailBody = typed(body, shape)?;
    let bucket = required(shape, "s3Bucket", b.s3_bucket)?;
    let keys = b
        .s3_object_key
        .ok_or_else(|| bad(shape, "s3ObjectKey is missing"))?;
    let mut objects = Vec::with_capacity(keys.len().min(MAX_OBJECTS_PER_MESSAGE + 1));
    for (i, key) in keys.into_iter().enumerate() {
        if key.is_empty() {
            return Err(bad(shape, format!("s3ObjectKey[{i}] is empty")));
        }
        objects.push(Announced {
            bucket: bucket.clone(),
            key,
            size: None,
        });
    }
    Ok(Found { shape, objects })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct S3EventBody<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<S3Record<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct S3Record<'a> {
    #[serde(rename = "eventSource", borrow)]
    event_source: Cow<'a, str>,
    #[serde(rename = "eventName", borrow)]
    event_name: Cow<'a, str>,
    #[serde(borrow)]
    s3: S3Entity<'a>,
}

/// The `s3` part of an S3 event record, and the `detail` of an EventBridge event.
#[derive(Deserialize, Default)]
#[serde(default)]
struct S3Entity<'a> {
    #[serde(borrow)]
    bucket: Named<'a>,
    #[serde(borrow)]
    object: Object<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Named<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Object<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    size: Option<u64>,
}

fn s3_event(body: &str) -> Result<Found, NotifyError> {
    let shape = Shape::S3Event;
    let b: S3EventBody = typed(body, shape)?;
    let mut objects = Vec::new();
    for (i, r) in b.records.into_iter().enumerate() {
        if r.event_source != "aws:s3" {
            return Err(NotifyError::UnknownShape {
                what: format!(
                    "Records[{i}].eventSource is {:?}, not \"aws:s3\"",
                    r.event_source
                ),
            });
        }
        if !r.event_name.starts_with("ObjectCreated:") {
            continue;
        }
        let at = format!("Records[{i}].s3");
        let bucket = required(shape, &format!("{at}.bucket.name"), r.s3.bucket.name)?;
        let raw = required(shape, &format!("{at}.object.key"), r.s3.object.key)?;
        let key = decode_form_key(&raw).map_err(|problem| {
            bad(
                shape,
                format!("{at}.object.key {raw:?}: {problem} (S3 event keys are form-URL-encoded)"),
            )
        })?;
        objects.push(Announced {
            bucket,
            key,
            size: r.s3.object.size,
        });
    }
    Ok(Found { shape, objects })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EventBridgeBody<'a> {
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(rename = "detail-type", borrow)]
    detail_type: Cow<'a, str>,
    #[serde(borrow)]
    detail: Option<S3Entity<'a>>,
}

fn eventbridge(body: &str) -> Result<Found, NotifyError> {
    let shape = Shape::EventBridge;
    let b: EventBridgeBody = typed(body, shape)?;
    if b.source != "aws.s3" {
        return Err(NotifyError::UnknownShape {
            what: format!(
                "EventBridge event from source {:?}, not \"aws.s3\"",
                b.source
            ),
        });
    }
    // Other S3 events ("Object Deleted", ...) announce nothing to read, like ObjectRemoved records.
    if b.detail_type != "Object Created" {
        return Ok(Found {
            shape,
            objects: Vec::new(),
        });
    }
    let detail = b.detail.ok_or_else(|| bad(shape, "detail is missing"))?;
    let bucket = required(shape, "detail.bucket.name", detail.bucket.name)?;
    let key = required(shape, "detail.object.key", detail.object.key)?;
    Ok(Found {
        shape,
        objects: vec![Announced {
            bucket,
            key,
            size: detail.object.size,
        }],
    })
}

/// Decodes a form-URL-encoded key: `+` is a space, then `%xx` a byte (so `%2B` is a literal `+`).
fn decode_form_key(raw: &str) -> Result<String, String> {
    if !raw.contains(['+', '%']) {
        return Ok(raw.to_owned());
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let byte = b
                    .get(i + 1..i + 3)
                    .and_then(|h| Some(hex_digit(h[0])? << 4 | hex_digit(h[1])?));
                let Some(byte) = byte else {
                    // `i` is at '%', a char boundary.
                    let escape: String = raw[i..].chars().take(3).collect();
                    return Err(format!("invalid %-escape {escape:?}"));
                };
                out.push(byte);
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "decodes to invalid UTF-8".to_owned())
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `inner` in an SNS envelope, as SNS delivers it to SQS.
    fn sns(inner: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:111122223333:trail",
            "Message": inner,
            "Timestamp": "2026-03-02T00:20:00.000Z",
        })
        .to_string()
    }

    fn obj(bucket: &str, key: &str, size: Option<u64>) -> Announced {
        Announced {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size,
        }
    }

    fn objects(shape: Shape, objects: Vec<Announced>) -> Notification {
        Notification::Objects {
            shape,
            sns: false,
            objects,
        }
    }

    fn bad_field(shape: Shape, detail: &str) -> NotifyError {
        bad(shape, detail)
    }

    fn unknown(what: &str) -> NotifyError {
        NotifyError::UnknownShape {
            what: what.to_owned(),
        }
    }

    fn s3_record(event_name: &str, bucket: &str, key: &str, size: u64) -> String {
        format!(
            r#"{{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventName":"{event_name}","s3":{{"s3SchemaVersion":"1.0","bucket":{{"name":"{bucket}","arn":"arn:aws:s3:::{bucket}"}},"object":{{"key":"{key}","size":{size},"eTag":"0123"}}}}}}"#
        )
    }

    fn s3_body(records: &[String]) -> String {
        format!(r#"{{"Records":[{}]}}"#, records.join(","))
    }

    const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/111122223333_CloudTrail_us-east-1_20260302T0015Z_AbCdEfGh12345678.json.gz";

    /// Bodies that parse the same raw and in an SNS envelope (apart from the `sns` flag).
    fn shared_cases() -> Vec<(&'static str, String, Result<Notification, NotifyError>)> {
        let put = s3_record("ObjectCreated:Put", "trail", KEY, 4123);
        vec![
            (
                "cloudtrail, one key",
                format!(r#"{{"s3Bucket":"trail","s3ObjectKey":["{KEY}"]}}"#),
                Ok(objects(Shape::CloudTrail, vec![obj("trail", KEY, None)])),
            ),
            (
                "cloudtrail, several keys, not url-decoded",
                r#"{"s3Bucket":"trail","s3ObjectKey":["a/x.json.gz","a+b%2Bc.json.gz","c d.json.gz"]}"#.to_owned(),
                Ok(objects(
                    Shape::CloudTrail,
                    vec![
                        obj("trail", "a/x.json.gz", None),
                        obj("trail", "a+b%2Bc.json.gz", None),
                        obj("trail", "c d.json.gz", None),
                    ],
                )),
            ),
            (
                "cloudtrail, empty key list",
                r#"{"s3Bucket":"trail","s3ObjectKey":[]}"#.to_owned(),
                Ok(objects(Shape::CloudTrail, vec![])),
            ),
            (
                "s3 event, one record",
                s3_body(std::slice::from_ref(&put)),
                Ok(objects(Shape::S3Event, vec![obj("trail", KEY, Some(4123))])),
            ),
            (
                "s3 event, several records, ObjectRemoved ignored",
                s3_body(&[
                    s3_record("ObjectCreated:CompleteMultipartUpload", "b1", "k1.json.gz", 1),
                    s3_record("ObjectRemoved:Delete", "b1", "gone.json.gz", 0),
                    s3_record("ObjectCreated:Copy", "b2", "k2.json.gz", 2),
                ]),
                Ok(objects(
                    Shape::S3Event,
                    vec![obj("b1", "k1.json.gz", Some(1)), obj("b2", "k2.json.gz", Some(2))],
                )),
            ),
            (
                "s3 event, only ObjectRemoved",
                s3_body(&[s3_record("ObjectRemoved:Delete", "b", "k", 0)]),
                Ok(objects(Shape::S3Event, vec![])),
            ),
            (
                "s3 event, key decoding: + then %xx",
                s3_body(&[
                    s3_record("ObjectCreated:Put", "b", "a+b%2Bc", 1),
                    s3_record("ObjectCreated:Put", "b", "x%20y%2fz%C3%A9", 1),
                ]),
                Ok(objects(
                    Shape::S3Event,
                    vec![obj("b", "a b+c", Some(1)), obj("b", "x y/zé", Some(1))],
                )),
            ),
            (
                "s3 event, no size",
                r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#.to_owned(),
                Ok(objects(Shape::S3Event, vec![obj("b", "k", None)])),
            ),
            (
                "eventbridge object created, key not decoded",
                r#"{"version":"0","id":"17793124","detail-type":"Object Created","source":"aws.s3","account":"111122223333","detail":{"version":"0","bucket":{"name":"trail"},"object":{"key":"a+b%2Bc.json.gz","size":1,"etag":"e"},"reason":"PutObject"}}"#.to_owned(),
                Ok(objects(Shape::EventBridge, vec![obj("trail", "a+b%2Bc.json.gz", Some(1))])),
            ),
            (
                "eventbridge object deleted ignored",
                r#"{"version":"0","detail-type":"Object Deleted","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k"}}}"#.to_owned(),
                Ok(objects(Shape::EventBridge, vec![])),
            ),
            (
                "s3 test event",
                r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-03-02T00:00:00.000Z","Bucket":"trail","RequestId":"R","HostId":"H"}"#.to_owned(),
                Ok(Notification::Test),
            ),
            // Errors.
            (
                "unknown shape",
                r#"{"hello":1,"world":[]}"#.to_owned(),
                Err(unknown(r#"top-level fields "hello", "world""#)),
            ),
            ("empty object", "{}".to_owned(), Err(unknown("an empty JSON object"))),
            ("json array", "[1,2]".to_owned(), Err(unknown("not a JSON object"))),
            (
                "other S3 Event",
                r#"{"Service":"Amazon S3","Event":"s3:Other"}"#.to_owned(),
                Err(unknown(r#"S3 "Event" "s3:Other", not "s3:TestEvent""#)),
            ),
            (
                "cloudtrail, missing bucket",
                r#"{"s3ObjectKey":["k"]}"#.to_owned(),
                Err(bad_field(Shape::CloudTrail, "s3Bucket is missing or empty")),
            ),
            (
                "cloudtrail, missing keys",
                r#"{"s3Bucket":"b"}"#.to_owned(),
                Err(bad_field(Shape::CloudTrail, "s3ObjectKey is missing")),
            ),
            (
                "cloudtrail, empty key",
                r#"{"s3Bucket":"b","s3ObjectKey":["k",""]}"#.to_owned(),
                Err(bad_field(Shape::CloudTrail, "s3ObjectKey[1] is empty")),
            ),
            (
                "cloudtrail, key list is a string",
                r#"{"s3Bucket":"b","s3ObjectKey":"k"}"#.to_owned(),
                Err(bad_field(
                    Shape::CloudTrail,
                    "invalid type: string \"k\", expected a sequence at line 1 column 33",
                )),
            ),
            (
                "s3 event, missing bucket",
                r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"object":{"key":"k"}}}]}"#.to_owned(),
                Err(bad_field(Shape::S3Event, "Records[0].s3.bucket.name is missing or empty")),
            ),
            (
                "s3 event, size is a string",
                r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k","size":"12"}}}]}"#.to_owned(),
                Err(bad_field(
                    Shape::S3Event,
                    "invalid type: string \"12\", expected u64 at line 1 column 127",
                )),
            ),
            (
                "s3 event, Records is an object",
                r#"{"Records":{}}"#.to_owned(),
                Err(bad_field(
                    Shape::S3Event,
                    "invalid type: map, expected a sequence at line 1 column 11",
                )),
            ),
            (
                "s3 event, bad escape",
                s3_body(&[s3_record("ObjectCreated:Put", "b", "a%zzb", 1)]),
                Err(bad_field(
                    Shape::S3Event,
                    r#"Records[0].s3.object.key "a%zzb": invalid %-escape "%zz" (S3 event keys are form-URL-encoded)"#,
                )),
            ),
            (
                "s3 event, escape cut short",
                s3_body(&[s3_record("ObjectCreated:Put", "b", "a%2", 1)]),
                Err(bad_field(
                    Shape::S3Event,
                    r#"Records[0].s3.object.key "a%2": invalid %-escape "%2" (S3 event keys are form-URL-encoded)"#,
                )),
            ),
            (
                "s3 event, escape decodes to invalid utf-8",
                s3_body(&[
                    s3_record("ObjectCreated:Put", "b", "ok", 1),
                    s3_record("ObjectCreated:Put", "b", "a%FFb", 1),
                ]),
                Err(bad_field(
                    Shape::S3Event,
                    r#"Records[1].s3.object.key "a%FFb": decodes to invalid UTF-8 (S3 event keys are form-URL-encoded)"#,
                )),
            ),
            (
                "records not from s3 (a CloudTrail log, say)",
                r#"{"Records":[{"eventSource":"kms.amazonaws.com","eventName":"Decrypt"}]}"#.to_owned(),
                Err(unknown(r#"Records[0].eventSource is "kms.amazonaws.com", not "aws:s3""#)),
            ),
            (
                "eventbridge, other source",
                r#"{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}}"#.to_owned(),
                Err(unknown(r#"EventBridge event from source "aws.ec2", not "aws.s3""#)),
            ),
            (
                "eventbridge, missing detail",
                r#"{"detail-type":"Object Created","source":"aws.s3"}"#.to_owned(),
                Err(bad_field(Shape::EventBridge, "detail is missing")),
            ),
            (
                "eventbridge, missing key",
                r#"{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{}}}"#.to_owned(),
                Err(bad_field(Shape::EventBridge, "detail.object.key is missing or empty")),
            ),
            (
                "eventbridge, bucket is a number",
                r#"{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":7}}}"#.to_owned(),
                Err(bad_field(
                    Shape::EventBridge,
                    "invalid type: integer `7`, expected a string at line 1 column 78",
                )),
            ),
        ]
    }

    #[test]
    fn parses_each_shape_raw_and_in_sns() {
        for (name, body, want) in shared_cases() {
            assert_eq!(parse_notification(&body), want, "raw: {name}");
            let want_sns = want.map(|n| match n {
                Notification::Objects { shape, objects, .. } => Notification::Objects {
                    shape,
                    sns: true,
                    objects,
                },
                Notification::Test => Notification::Test,
            });
            assert_eq!(parse_notification(&sns(&body)), want_sns, "sns: {name}");
        }
    }

    #[test]
    fn envelope_errors() {
        let cases = [
            (
                "not json",
                "hello".to_owned(),
                NotifyError::NotJson {
                    what: "message body",
                    detail: "expected value at line 1 column 1".to_owned(),
                },
            ),
            (
                "truncated json",
                r#"{"s3Bucket":"b""#.to_owned(),
                NotifyError::NotJson {
                    what: "message body",
                    detail: "EOF while parsing an object at line 1 column 15".to_owned(),
                },
            ),
            (
                "sns message not json",
                sns("hello"),
                NotifyError::NotJson {
                    what: "SNS Message",
                    detail: "expected value at line 1 column 1".to_owned(),
                },
            ),
            (
                "sns in sns",
                sns(&sns(r#"{"s3Bucket":"b","s3ObjectKey":["k"]}"#)),
                unknown("an SNS envelope inside an SNS envelope"),
            ),
            (
                "sns subscription confirmation",
                r#"{"Type":"SubscriptionConfirmation","Message":"You have chosen to subscribe","SubscribeURL":"https://sns"}"#.to_owned(),
                unknown(r#"SNS message of Type "SubscriptionConfirmation" (confirm the subscription: open its SubscribeURL)"#),
            ),
            (
                "sns message not a string",
                r#"{"Type":"Notification","Message":{"s3Bucket":"b"}}"#.to_owned(),
                unknown("SNS envelope: invalid type: map, expected a string at line 1 column 33"),
            ),
        ];
        for (name, body, want) in cases {
            assert_eq!(parse_notification(&body), Err(want), "{name}");
        }
    }

    #[test]
    fn bounds_body_size_and_object_count() {
        // Exactly at the limit is accepted; one byte over is not.
        let head = r#"{"s3Bucket":"b","s3ObjectKey":["k"],"pad":""#;
        let at_limit = format!("{head}{}\"}}", "x".repeat(MAX_BODY_BYTES - head.len() - 2));
        assert_eq!(at_limit.len(), MAX_BODY_BYTES);
        assert_eq!(
            parse_notification(&at_limit),
            Ok(objects(Shape::CloudTrail, vec![obj("b", "k", None)]))
        );
        let over = format!("{head}{}\"}}", "x".repeat(MAX_BODY_BYTES - head.len() - 1));
        assert_eq!(
            parse_notification(&over),
            Err(NotifyError::TooLarge {
                bytes: MAX_BODY_BYTES + 1,
                limit: MAX_BODY_BYTES
            })
        );

        let keys = |n: usize| -> Vec<String> { (0..n).map(|i| format!("\"k{i}\"")).collect() };
        let ct = |n: usize| {
            format!(
                r#"{{"s3Bucket":"b","s3ObjectKey":[{}]}}"#,
                keys(n).join(",")
            )
        };
        let want: Vec<Announced> = (0..MAX_OBJECTS_PER_MESSAGE)
            .map(|i| obj("b", &format!("k{i}"), None))
            .collect();
        assert_eq!(
            parse_notification(&ct(MAX_OBJECTS_PER_MESSAGE)),
            Ok(objects(Shape::CloudTrail, want))
        );
        assert_eq!(
            parse_notification(&ct(MAX_OBJECTS_PER_MESSAGE + 1)),
            Err(NotifyError::TooManyObjects {
                shape: Shape::CloudTrail,
                count: MAX_OBJECTS_PER_MESSAGE + 1,
                limit: MAX_OBJECTS_PER_MESSAGE
            })
        );

        // S3 events count announced objects only: removals do not count towards the cap.
        let mut records =
            vec![s3_record("ObjectCreated:Put", "b", "k", 1); MAX_OBJECTS_PER_MESSAGE];
        records.push(s3_record("ObjectRemoved:Delete", "b", "k", 0));
        assert_eq!(
            parse_notification(&s3_body(&records)),
            Ok(objects(
                Shape::S3Event,
                vec![obj("b", "k", Some(1)); MAX_OBJECTS_PER_MESSAGE]
            ))
        );
        records.push(s3_record("ObjectCreated:Put", "b", "k", 1));
        assert_eq!(
            parse_notification(&s3_body(&records)),
            Err(NotifyError::TooManyObjects {
                shape: Shape::S3Event,
                count: MAX_OBJECTS_PER_MESSAGE + 1,
                limit: MAX_OBJECTS_PER_MESSAGE
            })
        );
    }

    #[test]
    fn error_messages_and_kinds() {
        let cases = [
            (
                NotifyError::TooLarge { bytes: 300_000, limit: MAX_BODY_BYTES },
                "body_too_large",
                "message body is 300000 bytes, over the 262144-byte SQS limit (is this queue fed by S3, CloudTrail or EventBridge?)",
            ),
            (
                NotifyError::NotJson { what: "SNS Message", detail: "expected value at line 1 column 1".to_owned() },
                "not_json",
                "SNS Message is not JSON: expected value at line 1 column 1",
            ),
            (
                unknown("an empty JSON object"),
                "unknown_shape",
                "unrecognised notification: an empty JSON object; expected a CloudTrail, S3 event or EventBridge \"Object Created\" notification, raw or in an SNS envelope",
            ),
            (
                bad_field(Shape::S3Event, "Records[0].s3.bucket.name is missing or empty"),
                "bad_field",
                "bad S3 event notification: Records[0].s3.bucket.name is missing or empty",
            ),
            (
                NotifyError::TooManyObjects { shape: Shape::CloudTrail, count: 1001, limit: 1000 },
                "too_many_objects",
                "CloudTrail notification announces 1001 objects, over 1000 per message",
            ),
        ];
        for (err, kind, msg) in cases {
            assert_eq!(err.kind(), kind);
            assert_eq!(err.to_string(), msg);
        }
    }

    #[test]
    fn shape_labels_and_object_refs() {
        assert_eq!(
            [Shape::CloudTrail, Shape::S3Event, Shape::EventBridge].map(Shape::as_str),
            ["cloudtrail", "s3_event", "eventbridge"]
        );
        assert_eq!(
            obj("b", "a b.json.gz", Some(1)).object_ref(),
            ObjectRef::S3 {
                bucket: "b".to_owned(),
                key: "a b.json.gz".to_owned()
            }
        );
    }

    #[test]
    fn unknown_shape_lists_a_few_field_names() {
        let long = "n".repeat(50);
        let body =
            format!(r#"{{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"{long}":1,"x":1,"y":1}}"#);
        let want = format!(
            r#"top-level fields "a", "b", "c", "d", "e", "f", "g", "{}".., and 2 more"#,
            "n".repeat(40)
        );
        assert_eq!(parse_notification(&body), Err(unknown(&want)));
    }
}
