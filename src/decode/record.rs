//! The borrowed view of a CloudTrail log file and record: only the fields a KMS call needs.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};

pub(super) type Str<'a> = Option<Cow<'a, str>>;

/// A string field, borrowed from the record when it has no escapes. (serde's own `Cow<str>`
/// borrows only as a field's whole type, not inside an `Option`: every string was copied.)
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Str<'de>, D::Error> {
    struct Text<'a>(Cow<'a, str>);
    impl<'de> Deserialize<'de> for Text<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Text<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(v)))
                }
            }
            d.deserialize_str(V)
        }
    }
    Ok(Option::<Text<'de>>::deserialize(d)?.map(|t| t.0))
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RawRecord<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    pub event_source: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub event_name: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub event_time: Str<'a>,
    #[serde(rename = "eventID", borrow, default, deserialize_with = "text")]
    pub event_id: Str<'a>,
    #[serde(rename = "sharedEventID", borrow, default, deserialize_with = "text")]
    pub shared_event_id: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub aws_region: Str<'a>,
    #[serde(rename = "sourceIPAddress", borrow, default, deserialize_with = "text")]
    pub source_ip_address: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub recipient_account_id: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub error_code: Str<'a>,
    #[serde(borrow)]
    pub user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow)]
    pub request_parameters: Option<RequestParameters<'a>>,
    #[serde(borrow)]
    pub response_elements: Option<ResponseElements<'a>>,
    #[serde(borrow)]
    pub resources: Option<Vec<Resource<'a>>>,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "text")]
    pub kind: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub arn: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub account_id: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub invoked_by: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub principal_id: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub user_name: Str<'a>,
    #[serde(borrow)]
    pub session_context: Option<SessionContext<'a>>,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    #[serde(borrow)]
    pub session_issuer: Option<SessionIssuer<'a>>,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "text")]
    pub kind: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub arn: Str<'a>,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RequestParameters<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    pub key_id: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub alias_name: Str<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub target_key_id: Str<'a>,
    pub encryption_context: Option<EncryptionContext>,
    /// `CreateKey`, `PutKeyPolicy`: the key policy, a JSON document in a string.
    #[serde(borrow, default, deserialize_with = "text")]
    pub policy: Str<'a>,
    /// `CreateKey`, `PutKeyPolicy`.
    pub bypass_policy_lockout_safety_check: Option<bool>,
    /// `CreateGrant`: who the grant lets use the key.
    #[serde(borrow, default, deserialize_with = "text")]
    pub grantee_principal: Str<'a>,
}

/// Only whether each service-identifying key is present matters.
#[derive(Debug, PartialEq, Deserialize, Default)]
pub struct EncryptionContext {
    #[serde(rename = "aws:s3:arn")]
    pub s3: Option<IgnoredAny>,
    #[serde(rename = "aws:ebs:id")]
    pub ebs: Option<IgnoredAny>,
    #[serde(rename = "PARAMETER_ARN")]
    pub ssm: Option<IgnoredAny>,
    #[serde(rename = "SecretARN")]
    pub secretsmanager: Option<IgnoredAny>,
    #[serde(rename = "aws:lambda:FunctionArn")]
    pub lambda: Option<IgnoredAny>,
    #[serde(rename = "aws:cloudtrail:arn")]
    pub cloudtrail: Option<IgnoredAny>,
    #[serde(rename = "aws:rds:db-id")]
    pub rds: Option<IgnoredAny>,
    #[serde(rename = "aws:dynamodb:tableName")]
    pub dynamodb: Option<IgnoredAny>,
    #[serde(rename = "aws:logs:arn")]
    pub logs: Option<IgnoredAny>,
    #[serde(rename = "aws:sqs:arn")]
    pub sqs: Option<IgnoredAny>,
    #[serde(rename = "aws:sns:topicArn")]
    pub sns: Option<IgnoredAny>,
}

impl EncryptionContext {
    /// The service the context names, in a fixed order of precedence.
    pub fn service(&self) -> Option<&'static str> {
        [
            (self.s3.is_some(), "s3"),
            (self.ebs.is_some(), "ebs"),
            (self.ssm.is_some(), "ssm"),
            (self.secretsmanager.is_some(), "secretsmanager"),
            (self.lambda.is_some(), "lambda"),
            (self.cloudtrail.is_some(), "cloudtrail"),
            (self.rds.is_some(), "rds"),
            (self.dynamodb.is_some(), "dynamodb"),
            (self.logs.is_some(), "logs"),
            (self.sqs.is_some(), "sqs"),
            (self.sns.is_some(), "sns"),
        ]
        .into_iter()
        .find_map(|(present, name)| present.then_some(name))
    }
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResponseElements<'a> {
    #[serde(borrow)]
    pub key_metadata: Option<KeyMetadata<'a>>,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct KeyMetadata<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    pub arn: Str<'a>,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
pub struct Resource<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "text")]
    pub kind: Str<'a>,
    #[serde(rename = "ARN", borrow, default, deserialize_with = "text")]
    pub arn: Str<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_borrowed_unless_escaped_and_null_is_none() {
        let json = r#"{"eventName":"Decrypt","eventID":"a\"b","awsRegion":null,
            "userIdentity":{"arn":"arn:aws:iam::111122223333:role/x"}}"#;
        let r: RawRecord = serde_json::from_str(json).unwrap();
        assert!(matches!(r.event_name, Some(Cow::Borrowed("Decrypt"))));
        assert!(matches!(r.event_id.as_deref(), Some("a\"b")));
        assert!(matches!(r.event_id, Some(Cow::Owned(_))));
        assert!(r.aws_region.is_none() && r.event_source.is_none());
        let arn = r.user_identity.and_then(|u| u.arn);
        assert!(matches!(arn, Some(Cow::Borrowed(_))));
        let Err(wrong) = serde_json::from_str::<RawRecord>(r#"{"eventName":7}"#) else {
            panic!("a number is not a string");
        };
        assert!(
            wrong
                .to_string()
                .starts_with("invalid type: integer `7`, expected a string"),
            "{wrong}"
        );
    }
}
