//! The borrowed view of a CloudTrail log file and record: only the fields a KMS call needs.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;

type Str<'a> = Option<Cow<'a, str>>;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RawRecord<'a> {
    #[serde(borrow)]
    pub event_source: Str<'a>,
    #[serde(borrow)]
    pub event_name: Str<'a>,
    #[serde(borrow)]
    pub event_time: Str<'a>,
    #[serde(rename = "eventID", borrow)]
    pub event_id: Str<'a>,
    #[serde(rename = "sharedEventID", borrow)]
    pub shared_event_id: Str<'a>,
    #[serde(borrow)]
    pub aws_region: Str<'a>,
    #[serde(rename = "sourceIPAddress", borrow)]
    pub source_ip_address: Str<'a>,
    #[serde(borrow)]
    pub recipient_account_id: Str<'a>,
    #[serde(borrow)]
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

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Str<'a>,
    #[serde(borrow)]
    pub arn: Str<'a>,
    #[serde(borrow)]
    pub account_id: Str<'a>,
    #[serde(borrow)]
    pub invoked_by: Str<'a>,
    #[serde(borrow)]
    pub principal_id: Str<'a>,
    #[serde(borrow)]
    pub user_name: Str<'a>,
    #[serde(borrow)]
    pub session_context: Option<SessionContext<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    #[serde(borrow)]
    pub session_issuer: Option<SessionIssuer<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Str<'a>,
    #[serde(borrow)]
    pub arn: Str<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RequestParameters<'a> {
    #[serde(borrow)]
    pub key_id: Str<'a>,
    #[serde(borrow)]
    pub alias_name: Str<'a>,
    #[serde(borrow)]
    pub target_key_id: Str<'a>,
    pub encryption_context: Option<EncryptionContext>,
    /// `CreateKey`, `PutKeyPolicy`: the key policy, a JSON document in a string.
    #[serde(borrow)]
    pub policy: Str<'a>,
    /// `CreateKey`, `PutKeyPolicy`.
    pub bypass_policy_lockout_safety_check: Option<bool>,
    /// `CreateGrant`: who the grant lets use the key.
    #[serde(borrow)]
    pub grantee_principal: Str<'a>,
}

/// Only whether each service-identifying key is present matters.
#[derive(Deserialize, Default)]
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

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResponseElements<'a> {
    #[serde(borrow)]
    pub key_metadata: Option<KeyMetadata<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct KeyMetadata<'a> {
    #[serde(borrow)]
    pub arn: Str<'a>,
}

#[derive(Deserialize, Default)]
pub struct Resource<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Str<'a>,
    #[serde(rename = "ARN", borrow)]
    pub arn: Str<'a>,
}
