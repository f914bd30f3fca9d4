//! Maps one CloudTrail KMS record to a [`KmsCall`]: key, principal, calling service, class, outcome.

use super::record::RawRecord;
use super::{KeyEffect, KeyRef, KmsCall, OpClass, RequestFacts, ServiceSource};

/// `eventSource` of KMS calls.
pub const KMS_EVENT_SOURCE: &str = "kms.amazonaws.com";

const AWS_INTERNAL: &str = "AWS Internal";
const SERVICE_SUFFIX: &str = ".amazonaws.com";

/// The operations that use key material, listed once: as the arms of one `match` in
/// [`op_class`] (which runs for every call), and as a list for the tests. Everything else is
/// management.
macro_rules! crypto_operations {
    ($($op:literal,)*) => {
        /// Operations that use key material. Everything else is management.
        #[cfg(test)]
        const CRYPTO_OPERATIONS: &[&str] = &[$($op),*];

        pub fn op_class(operation: &str) -> OpClass {
            match operation {
                $($op)|* => OpClass::Crypto,
                _ => OpClass::Management,
            }
        }
    };
}

crypto_operations!(
    "Decrypt",
    "DeriveSharedSecret",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "ReEncrypt",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "VerifyMac",
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    #[error("missing required field {0}")]
    Missing(&'static str),
    #[error("invalid eventTime {0:?} (expected RFC 3339, e.g. 2026-03-02T00:12:03Z)")]
    BadTime(String),
}

/// `AccessDenied` and `AccessDeniedException` are one error; empty codes are no error.
fn normalise_error_code(code: Option<&str>) -> Option<Box<str>> {
    match code? {
        "" => None,
        "AccessDenied" => Some("AccessDeniedException".into()),
        c => Some(c.into()),
    }
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// A key id, key ARN, alias name or alias ARN as a [`KeyRef`] with a full ARN.
fn key_ref_from_id(id: &str, region: &str, account: &str) -> Option<KeyRef> {
    if id.is_empty() {
        None
    } else if id.starts_with("arn:") {
        if id.contains(":alias/") {
            Some(KeyRef::Alias(id.into()))
        } else {
            Some(KeyRef::Key(id.into()))
        }
    } else if id.starts_with("alias/") {
        Some(KeyRef::Alias(
            format!("arn:{}:kms:{region}:{account}:{id}", partition(region)).into(),
        ))
    } else {
        Some(KeyRef::Key(
            format!("arn:{}:kms:{region}:{account}:key/{id}", partition(region)).into(),
        ))
    }
}

/// The account field (the fifth) of an ARN.
pub(crate) fn arn_account(arn: &str) -> Option<&str> {
    // `split(':').nth(4)`, a byte search instead of a char pattern: this runs for every call.
    let mut colons = memchr::memchr_iter(b':', arn.as_bytes());
    let start = colons.nth(3)? + 1;
    let end = colons.next().unwrap_or(arn.len());
    Some(&arn[start..end]).filter(|a| !a.is_empty())
}

fn nonempty<'a>(s: &'a Option<std::borrow::Cow<'a, str>>) -> Option<&'a str> {
    s.as_deref().filter(|s| !s.is_empty())
}

pub fn normalise(r: &RawRecord<'_>) -> Result<KmsCall, NormaliseError> {
    let event_id = nonempty(&r.event_id).ok_or(NormaliseError::Missing("eventID"))?;
    let operation = nonempty(&r.event_name).ok_or(NormaliseError::Missing("eventName"))?;
    let time_str = nonempty(&r.event_time).ok_or(NormaliseError::Missing("eventTime"))?;
    let time = crate::timefmt::parse_event_time(time_str)
        .ok_or_else(|| NormaliseError::BadTime(time_str.to_owned()))?;
    let region = nonempty(&r.aws_region).ok_or(NormaliseError::Missing("awsRegion"))?;
    let ui = r
        .user_identity
        .as_ref()
        .ok_or(NormaliseError::Missing("userIdentity"))?;
    // Events AWS KMS logs on its own (`DeleteKey` when a waiting period ends, `RotateKey` of
    // automatic rotation) carry a `userIdentity` with only `accountId` and `invokedBy`.
    let identity_type = nonempty(&ui.kind);
    if identity_type.is_none()
        && nonempty(&ui.invoked_by).is_none()
        && nonempty(&ui.account_id).is_none()
    {
        return Err(NormaliseError::Missing("userIdentity.type"));
    }
    let caller_account = nonempty(&ui.account_id);
    let recipient = nonempty(&r.recipient_account_id)
        .or(caller_account)
        .unwrap_or("unknown");

    let key = key_ref(r, region, recipient);
    let key_account = key.as_ref().and_then(|k| match k {
        KeyRef::Key(a) | KeyRef::Alias(a) => arn_account(a),
    });
    let issuer_arn = ui
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref())
        .and_then(|i| nonempty(&i.arn));

    let principal: Box<str> = match identity_type {
        Some("AssumedRole" | "FederatedUser") => issuer_arn.or(nonempty(&ui.arn)).map(Into::into),
        Some("AWSService") | None => nonempty(&ui.invoked_by).map(Into::into),
        Some("AWSAccount") => caller_account.map(|a| format!("aws-account:{a}").into()),
        Some(_) => None,
    }
    .or_else(|| {
        nonempty(&ui.arn)
            .or(nonempty(&ui.principal_id))
            .or(nonempty(&ui.user_name))
            .map(Into::into)
    })
    .or_else(|| caller_account.map(|a| format!("aws-account:{a}").into()))
    .unwrap_or_else(|| format!("unknown:{}", identity_type.unwrap_or("")).into());

    let (service, service_source) = calling_service(r, issuer_arn.or(nonempty(&ui.arn)));
    let error_code = normalise_error_code(r.error_code.as_deref());
    let effect = if error_code.is_none() {
        key_effect(r, operation, region, recipient)
    } else {
        None
    };
    let request = request_facts(r, operation, key_account.unwrap_or(recipient));
    // The low 64 bits of the 128-bit hash earlier versions used, so their saved ids carry over.
    let dedupe_id = match nonempty(&r.shared_event_id) {
        Some(shared) => xxhash_rust::xxh3::xxh3_128_with_seed(shared.as_bytes(), 1),
        None => xxhash_rust::xxh3::xxh3_128(event_id.as_bytes()),
    } as u64;
    Ok(KmsCall {
        event_id: event_id.into(),
        dedupe_id,
        time,
        class: op_class(operation),
        operation: operation.into(),
        cross_account: matches!((caller_account, key_account), (Some(c), Some(k)) if c != k),
        account: key_account.unwrap_or(recipient).into(),
        caller_account: caller_account.map(Into::into),
        key,
        principal,
        region: region.into(),
        service: service.into(),
        service_source,
        error_code,
        effect,
        request,
    })
}

/// The request facts of the management operations that carry them (`CreateKey`, `PutKeyPolicy`,
/// `CreateGrant`); `None` for every other call. `key_account` is the key's account.
fn request_facts(
    r: &RawRecord<'_>,
    operation: &str,
    key_account: &str,
) -> Option<Box<RequestFacts>> {
    if !matches!(operation, "CreateKey" | "PutKeyPolicy" | "CreateGrant") {
        return None;
    }
    let params = r.request_parameters.as_ref()?;
    let grantee = nonempty(&params.grantee_principal);
    let facts = RequestFacts {
        policy_public: nonempty(&params.policy).is_some_and(super::policy::is_public),
        policy_lockout_bypass: params.bypass_policy_lockout_safety_check == Some(true),
        grantee_cross_account: grantee
            .filter(|g| g.starts_with("arn:"))
            .and_then(arn_account)
            .is_some_and(|a| a != key_account),
        grantee: grantee.map(Into::into),
    };
    Some(Box::new(facts))
}

fn key_ref(r: &RawRecord<'_>, region: &str, account: &str) -> Option<KeyRef> {
    let from_resources = r.resources.as_ref().and_then(|rs| {
        rs.iter()
            .filter(|res| res.kind.as_deref() == Some("AWS::KMS::Key"))
            .find_map(|res| nonempty(&res.arn))
    });
    let created = r
        .response_elements
        .as_ref()
        .and_then(|e| e.key_metadata.as_ref())
        .and_then(|m| nonempty(&m.arn));
    if let Some(arn) = from_resources.or(created) {
        return Some(KeyRef::Key(arn.into()));
    }
    let params = r.request_parameters.as_ref()?;
    key_ref_from_id(nonempty(&params.key_id)?, region, account)
}

fn key_effect(
    r: &RawRecord<'_>,
    operation: &str,
    region: &str,
    account: &str,
) -> Option<KeyEffect> {
    let params = r.request_parameters.as_ref();
    let alias = || {
        let name = nonempty(&params?.alias_name)?;
        match key_ref_from_id(name, region, account)? {
            KeyRef::Alias(a) => Some(a),
            KeyRef::Key(_) => None,
        }
    };
    match operation {
        "CreateAlias" | "UpdateAlias" => {
            let target = key_ref_from_id(nonempty(&params?.target_key_id)?, region, account)?;
            match target {
                KeyRef::Key(key) => Some(KeyEffect::AliasSet {
                    alias: alias()?,
                    key,
                }),
                KeyRef::Alias(_) => None,
            }
        }
        "DeleteAlias" => Some(KeyEffect::AliasDeleted { alias: alias()? }),
        "ScheduleKeyDeletion" => Some(KeyEffect::DeletionScheduled),
        "DeleteKey" => Some(KeyEffect::Deleted),
        "CancelKeyDeletion" => Some(KeyEffect::DeletionCancelled),
        _ => None,
    }
}

/// The calling service and the step that decided it (see [`ServiceSource`]).
fn calling_service(r: &RawRecord<'_>, caller_arn: Option<&str>) -> (String, ServiceSource) {
    let invoked_by = r
        .user_identity
        .as_ref()
        .and_then(|u| nonempty(&u.invoked_by));
    let source_ip = nonempty(&r.source_ip_address);
    let service_name = |s: &str| s.strip_suffix(SERVICE_SUFFIX).map(str::to_owned);
    if let Some(s) = invoked_by.and_then(service_name) {
        return (s, ServiceSource::InvokedBy);
    }
    if let Some(s) = source_ip.and_then(service_name) {
        return (s, ServiceSource::SourceIp);
    }
    if invoked_by == Some(AWS_INTERNAL) || source_ip == Some(AWS_INTERNAL) {
        let context = r
            .request_parameters
            .as_ref()
            .and_then(|p| p.encryption_context.as_ref())
            .and_then(|c| c.service());
        if let Some(s) = context {
            return (s.to_owned(), ServiceSource::EncryptionContext);
        }
        if caller_arn.is_some_and(|a| a.contains("aws:ec2-infrastructure")) {
            return ("ec2".to_owned(), ServiceSource::Role);
        }
        return ("aws-internal".to_owned(), ServiceSource::AwsInternal);
    }
    ("direct".to_owned(), ServiceSource::Direct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arns_account_is_its_fifth_field() {
        for arn in [
            "arn:aws:kms:us-east-1:111122223333:key/1234",
            "arn:aws:iam::111122223333:role/x:y",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-1:444455556666",
            "arn:aws:kms:eu-west-1:",
            "arn:aws:kms",
            "",
            "::::a:b",
        ] {
            let by_split = arn.split(':').nth(4).filter(|a| !a.is_empty());
            assert_eq!(arn_account(arn), by_split, "{arn}");
        }
        assert_eq!(
            arn_account("arn:aws:kms:us-east-1:111122223333:key/1234"),
            Some("111122223333")
        );
    }

    fn call(json: &str) -> KmsCall {
        let rec: RawRecord = serde_json::from_str(json).unwrap();
        normalise(&rec).unwrap()
    }

    /// A record with the given userIdentity and extra fields.
    fn rec(identity: &str, extra: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.09","eventTime":"2026-03-02T00:12:03Z","eventSource":"kms.amazonaws.com",
            "eventName":"Decrypt","awsRegion":"us-east-1","eventID":"e1","recipientAccountId":"111122223333",
            "userIdentity":{identity}{extra}}}"#
        )
    }

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn delete_key_logged_by_kms_itself_deletes_the_key() {
        // The shape AWS KMS logs when a key's waiting period ends: no userIdentity.type.
        let c = call(&rec(
            r#"{"accountId":"111122223333","invokedBy":"AWS Internal"}"#,
            &format!(
                r#","sourceIPAddress":"AWS Internal","requestParameters":null,"responseElements":{{"keyId":"{KEY}"}},
                "eventType":"AwsServiceEvent","resources":[{{"accountId":"111122223333","type":"AWS::KMS::Key","ARN":"{KEY}"}}]"#
            ),
        )
        .replace("\"Decrypt\"", "\"DeleteKey\""));
        assert_eq!(c.operation.as_ref(), "DeleteKey");
        assert_eq!(c.key, Some(KeyRef::Key(KEY.into())));
        assert_eq!(c.effect, Some(KeyEffect::Deleted));
        assert_eq!(c.principal.as_ref(), "AWS Internal");
        assert_eq!(c.service.as_ref(), "aws-internal");
        // Only an account: the account is the principal.
        let c = call(&rec(r#"{"accountId":"111122223333"}"#, ""));
        assert_eq!(c.principal.as_ref(), "aws-account:111122223333");
    }

    #[test]
    fn request_facts_of_policy_and_grant_calls() {
        let public = r#"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"*\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}"#;
        let user = r#"{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333"}"#;
        let with = |op: &str, params: &str| {
            call(
                &rec(user, &format!(r#","requestParameters":{params}"#))
                    .replace("\"Decrypt\"", &format!("\"{op}\"")),
            )
        };
        let c = with(
            "PutKeyPolicy",
            &format!(
                r#"{{"keyId":"{KEY}","policyName":"default","policy":"{public}","bypassPolicyLockoutSafetyCheck":true}}"#
            ),
        );
        let facts = c.request.as_deref().unwrap();
        assert!(
            facts.policy_public && facts.policy_lockout_bypass,
            "{facts:?}"
        );
        let c = with(
            "CreateKey",
            r#"{"keyUsage":"ENCRYPT_DECRYPT","bypassPolicyLockoutSafetyCheck":false}"#,
        );
        assert_eq!(c.request.as_deref(), Some(&RequestFacts::default()));
        let grant = |grantee: &str| {
            let c = with(
                "CreateGrant",
                &format!(
                    r#"{{"keyId":"{KEY}","granteePrincipal":"{grantee}","operations":["Decrypt"]}}"#
                ),
            );
            c.request.unwrap().grantee_cross_account
        };
        assert!(grant("arn:aws:iam::999988887777:role/outside"));
        assert!(!grant("arn:aws:iam::111122223333:role/inside"));
        assert!(
            !grant("rds.us-east-1.amazonaws.com"),
            "a service principal has no account"
        );
        // Other operations carry no request facts, whatever their parameters say.
        let c = with("Decrypt", &format!(r#"{{"policy":"{public}"}}"#));
        assert_eq!(c.request, None);
    }

    #[test]
    fn crypto_operations_are_listed_once_and_classed_crypto() {
        assert!(CRYPTO_OPERATIONS.windows(2).all(|w| w[0] < w[1]));
        assert!(CRYPTO_OPERATIONS
            .iter()
            .all(|op| op_class(op) == OpClass::Crypto));
        assert_eq!(op_class("decrypt"), OpClass::Management);
        assert_eq!(op_class("GenerateDataKeyWithoutPlaintext"), OpClass::Crypto);
        assert_eq!(op_class("ScheduleKeyDeletion"), OpClass::Management);
    }

    #[test]
    fn arn_account_is_the_fifth_field_unless_empty() {
        for arn in [
            "arn:aws:kms:eu-west-1:111122223333:key/k",
            "arn:aws:iam::111122223333:role/app",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:eu-west-1:111122223333",
            "arn:aws:kms:eu-west-1:",
            "arn:aws:kms:eu-west-1",
            "a:b:c:d:e:f:g",
            "::::",
            ":::::",
            "",
        ] {
            let want = arn.split(':').nth(4).filter(|a| !a.is_empty());
            assert_eq!(arn_account(arn), want, "{arn}");
        }
    }

    #[test]
    fn principal_for_every_identity_type() {
        let cases = [
            (
                r#"{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/i-0abc","accountId":"111122223333",
                   "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/app"}}}"#,
                "arn:aws:iam::111122223333:role/app",
            ),
            (
                r#"{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/s2","accountId":"111122223333","sessionContext":{"sessionIssuer":{}}}"#,
                "arn:aws:sts::111122223333:assumed-role/app/s2",
            ),
            (
                r#"{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333"}"#,
                "arn:aws:iam::111122223333:user/alice",
            ),
            (
                r#"{"type":"Root","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"}"#,
                "arn:aws:iam::111122223333:root",
            ),
            (
                r#"{"type":"AWSService","invokedBy":"cloudtrail.amazonaws.com"}"#,
                "cloudtrail.amazonaws.com",
            ),
            (
                r#"{"type":"AWSAccount","accountId":"444455556666","principalId":"AIDAX"}"#,
                "aws-account:444455556666",
            ),
            (
                r#"{"type":"FederatedUser","arn":"arn:aws:sts::111122223333:federated-user/bob","accountId":"111122223333",
                   "sessionContext":{"sessionIssuer":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/bob"}}}"#,
                "arn:aws:iam::111122223333:user/bob",
            ),
            (
                r#"{"type":"WebIdentityUser","principalId":"accounts.google.com:app:sub","userName":"sub"}"#,
                "accounts.google.com:app:sub",
            ),
            (
                r#"{"type":"IdentityCenterUser"}"#,
                "unknown:IdentityCenterUser",
            ),
        ];
        for (identity, want) in cases {
            assert_eq!(&*call(&rec(identity, "")).principal, want, "{identity}");
        }
    }

    #[test]
    fn key_from_resources_ids_aliases_and_create_key() {
        let user = r#"{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a","accountId":"111122223333"}"#;
        let cases: [(&str, Option<KeyRef>); 7] = [
            (
                &format!(
                    r#","resources":[{{"type":"AWS::IAM::Role","ARN":"x"}},{{"type":"AWS::KMS::Key","ARN":"{KEY}"}}]"#
                ),
                Some(KeyRef::Key(KEY.into())),
            ),
            (
                &format!(r#","requestParameters":{{"keyId":"{KEY}"}}"#),
                Some(KeyRef::Key(KEY.into())),
            ),
            (
                r#","requestParameters":{"keyId":"1234abcd-12ab-34cd-56ef-1234567890ab"}"#,
                Some(KeyRef::Key(KEY.into())),
            ),
            (
                r#","requestParameters":{"keyId":"alias/app"}"#,
                Some(KeyRef::Alias(
                    "arn:aws:kms:us-east-1:111122223333:alias/app".into(),
                )),
            ),
            (
                r#","requestParameters":{"keyId":"arn:aws:kms:us-east-1:999999999999:alias/x"}"#,
                Some(KeyRef::Alias(
                    "arn:aws:kms:us-east-1:999999999999:alias/x".into(),
                )),
            ),
            (
                &format!(
                    r#","responseElements":{{"keyMetadata":{{"arn":"{KEY}","keyState":"Enabled"}}}}"#
                ),
                Some(KeyRef::Key(KEY.into())),
            ),
            (r#","requestParameters":null,"responseElements":null"#, None),
        ];
        for (extra, want) in cases {
            assert_eq!(call(&rec(user, extra)).key, want, "{extra}");
        }
    }

    #[test]
    fn calling_service_each_step() {
        let role = r#"{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/s","accountId":"111122223333","invokedBy":"INVOKED","sessionContext":{"sessionIssuer":{"arn":"arn:aws:iam::111122223333:role/ROLE"}}}"#;
        let cases = [
            (
                "secretsmanager.amazonaws.com",
                "AWS Internal",
                "app",
                "",
                "secretsmanager",
                ServiceSource::InvokedBy,
            ),
            (
                "AWS Internal",
                "s3.amazonaws.com",
                "app",
                "",
                "s3",
                ServiceSource::SourceIp,
            ),
            (
                "AWS Internal",
                "AWS Internal",
                "app",
                r#""encryptionContext":{"PARAMETER_ARN":"arn:aws:ssm:x"}"#,
                "ssm",
                ServiceSource::EncryptionContext,
            ),
            (
                "AWS Internal",
                "AWS Internal",
                "app",
                r#""encryptionContext":{"aws:ebs:id":"vol-1"}"#,
                "ebs",
                ServiceSource::EncryptionContext,
            ),
            (
                "AWS Internal",
                "AWS Internal",
                "aws:ec2-infrastructure",
                "",
                "ec2",
                ServiceSource::Role,
            ),
            (
                "AWS Internal",
                "AWS Internal",
                "app",
                r#""encryptionContext":{"custom":"x"}"#,
                "aws-internal",
                ServiceSource::AwsInternal,
            ),
            (
                "",
                "203.0.113.7",
                "app",
                "",
                "direct",
                ServiceSource::Direct,
            ),
        ];
        for (invoked, ip, role_name, ctx, want, source) in cases {
            let identity = role.replace("INVOKED", invoked).replace("ROLE", role_name);
            let extra = format!(r#","sourceIPAddress":"{ip}","requestParameters":{{{ctx}}}"#);
            let c = call(&rec(&identity, &extra));
            assert_eq!(
                (&*c.service, c.service_source),
                (want, source),
                "{invoked} {ip} {ctx}"
            );
        }
    }

    #[test]
    fn errors_outcome_cross_account_and_dedupe_id() {
        let partner = r#"{"type":"AssumedRole","accountId":"444455556666","sessionContext":{"sessionIssuer":{"arn":"arn:aws:iam::444455556666:role/etl"}}}"#;
        let extra = format!(
            r#","errorCode":"AccessDenied","resources":[{{"type":"AWS::KMS::Key","ARN":"{KEY}"}}]"#
        );
        let c = call(&rec(partner, &extra));
        assert_eq!(c.outcome(), "AccessDeniedException");
        assert!(c.cross_account);
        assert_eq!(&*c.account, "111122223333");
        assert_eq!(c.caller_account.as_deref(), Some("444455556666"));

        let a = call(&rec(partner, r#","sharedEventID":"s1""#));
        let b_json = rec(partner, r#","sharedEventID":"s1""#)
            .replace(r#""eventID":"e1""#, r#""eventID":"e2""#);
        let b = call(&b_json);
        assert_eq!(
            a.dedupe_id, b.dedupe_id,
            "one sharedEventID, two eventIDs: one call"
        );
        assert_ne!(a.dedupe_id, call(&rec(partner, "")).dedupe_id);
        assert!(
            !call(&rec(partner, "")).cross_account,
            "no key: not cross-account"
        );
    }

    #[test]
    fn alias_and_deletion_effects() {
        let user = r#"{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a","accountId":"111122223333"}"#;
        let mk = |op: &str, extra: &str| {
            call(&rec(user, extra).replace(
                r#""eventName":"Decrypt""#,
                &format!(r#""eventName":"{op}""#),
            ))
        };
        let set = mk(
            "CreateAlias",
            r#","requestParameters":{"aliasName":"alias/app","targetKeyId":"1234abcd-12ab-34cd-56ef-1234567890ab"}"#,
        );
        assert_eq!(
            set.effect,
            Some(KeyEffect::AliasSet {
                alias: "arn:aws:kms:us-east-1:111122223333:alias/app".into(),
                key: KEY.into()
            })
        );
        assert_eq!(set.class, OpClass::Management);
        let del = mk(
            "DeleteAlias",
            r#","requestParameters":{"aliasName":"alias/app"}"#,
        );
        assert_eq!(
            del.effect,
            Some(KeyEffect::AliasDeleted {
                alias: "arn:aws:kms:us-east-1:111122223333:alias/app".into()
            })
        );
        assert_eq!(
            mk("ScheduleKeyDeletion", "").effect,
            Some(KeyEffect::DeletionScheduled)
        );
        assert_eq!(
            mk(
                "ScheduleKeyDeletion",
                r#","errorCode":"KMSInvalidStateException""#
            )
            .effect,
            None
        );
        assert_eq!(
            mk("CancelKeyDeletion", "").effect,
            Some(KeyEffect::DeletionCancelled)
        );
    }

    #[test]
    fn missing_required_fields_are_named() {
        let user = r#"{"type":"IAMUser","arn":"a"}"#;
        for (field, want) in [
            (r#""eventID":"e1""#, NormaliseError::Missing("eventID")),
            (
                r#""eventName":"Decrypt""#,
                NormaliseError::Missing("eventName"),
            ),
            (
                r#""awsRegion":"us-east-1""#,
                NormaliseError::Missing("awsRegion"),
            ),
            (
                r#""eventTime":"2026-03-02T00:12:03Z""#,
                NormaliseError::Missing("eventTime"),
            ),
        ] {
            let json = rec(user, "").replace(&format!("{field},"), "");
            let r: RawRecord = serde_json::from_str(&json).unwrap();
            assert_eq!(normalise(&r), Err(want), "{json}");
        }
        // An impossible date is malformed too, not rolled over into March.
        for bad in ["yesterday", "2026-02-30T00:00:00Z"] {
            let json = rec(user, "").replace("2026-03-02T00:12:03Z", bad);
            let r: RawRecord = serde_json::from_str(&json).unwrap();
            assert_eq!(normalise(&r), Err(NormaliseError::BadTime(bad.into())));
        }
        let json = rec("{}", "");
        let r: RawRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(
            normalise(&r),
            Err(NormaliseError::Missing("userIdentity.type"))
        );
    }
}
