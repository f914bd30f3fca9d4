//! Reads a key policy (the JSON document `CreateKey` and `PutKeyPolicy` log in
//! `requestParameters.policy`): whether it lets anyone at all use the key.
//!
//! A policy is *public* when one of its `Allow` statements names every principal (`"*"`,
//! `{"AWS": "*"}`, or a `NotPrincipal`) and has no condition that limits who the caller can be.
//! A limiting condition is a non-negated string, ARN or IP comparison (`StringEquals`, `StringLike`,
//! `ArnEquals`, `ArnLike`, `IpAddress`, optionally `ForAnyValue:`, never `...IfExists`) on a key
//! that names the caller's identity, account, organization or network (`kms:CallerAccount`,
//! `aws:PrincipalAccount`, `aws:PrincipalOrgID`, `aws:SourceVpce`, ... see [`LIMITING_KEYS`]), with
//! no value that is a bare `*`. `kms:ViaService` alone does not limit: any account's principals
//! can call through the service. A policy that is not valid JSON is not judged public (AWS KMS
//! rejects such policies, so a successful call never carries one).

use serde_json::Value;

/// Condition keys (lowercase; IAM compares them case-insensitively) that limit who the caller is.
pub const LIMITING_KEYS: &[&str] = &[
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalservicename",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceip",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:userid",
    "aws:username",
    "kms:calleraccount",
];

/// Condition operators that, on a limiting key, restrict the caller.
const LIMITING_OPERATORS: &[&str] = &[
    "arnequals",
    "arnlike",
    "ipaddress",
    "stringequals",
    "stringequalsignorecase",
    "stringlike",
];

/// Whether `policy` lets anyone use the key (see the module documentation).
pub fn is_public(policy: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    match doc.get("Statement") {
        Some(Value::Array(statements)) => statements.iter().any(statement_is_public),
        Some(statement @ Value::Object(_)) => statement_is_public(statement),
        _ => false,
    }
}

fn statement_is_public(s: &Value) -> bool {
    if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
        return false;
    }
    let everyone = s.get("NotPrincipal").is_some() || s.get("Principal").is_some_and(is_everyone);
    everyone && !s.get("Condition").is_some_and(limits_caller)
}

/// `"*"`, or an object whose `AWS` member is `"*"` or a list holding `"*"`.
fn is_everyone(principal: &Value) -> bool {
    let star = |v: &Value| v.as_str() == Some("*");
    match principal {
        Value::String(_) => star(principal),
        Value::Object(m) => match m.get("AWS") {
            Some(Value::Array(list)) => list.iter().any(star),
            Some(v) => star(v),
            None => false,
        },
        _ => false,
    }
}

/// Whether a `Condition` block holds at least one comparison that restricts who the caller is.
fn limits_caller(condition: &Value) -> bool {
    let Some(operators) = condition.as_object() else {
        return false;
    };
    operators.iter().any(|(operator, tests)| {
        let op = operator.to_ascii_lowercase();
        let op = op.strip_prefix("foranyvalue:").unwrap_or(&op);
        LIMITING_OPERATORS.contains(&op)
            && tests.as_object().is_some_and(|tests| {
                tests.iter().any(|(key, values)| {
                    LIMITING_KEYS.contains(&key.to_ascii_lowercase().as_str()) && restricts(values)
                })
            })
    })
}

/// A condition value restricts unless it is empty or a bare wildcard.
fn restricts(values: &Value) -> bool {
    let narrow = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty() && s != "*");
    match values {
        Value::Array(list) => !list.is_empty() && list.iter().all(narrow),
        v => narrow(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(statement: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:root"}},"Action":"kms:*","Resource":"*"}},{statement}]}}"#
        )
    }

    #[test]
    fn an_allow_for_everyone_without_a_limiting_condition_is_public() {
        for s in [
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#,
            r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}"#,
            r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:root","*"]},"Action":"kms:*","Resource":"*"}"#,
            r#"{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::1:root"},"Action":"kms:*","Resource":"*"}"#,
            // Conditions that do not restrict who calls.
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"111122223333"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:SourceAccount":"111122223333"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringLike":{"aws:PrincipalArn":"*"}}}"#,
        ] {
            assert!(is_public(&policy(s)), "{s}");
        }
        // A single statement object rather than a list.
        assert!(is_public(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}"#
        ));
    }

    #[test]
    fn named_principals_denies_and_limiting_conditions_are_not_public() {
        for s in [
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:role/app"},"Action":"kms:Decrypt","Resource":"*"}"#,
            r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}"#,
            r#"{"Effect":"Allow","Principal":{"Service":"*"},"Action":"kms:*","Resource":"*"}"#,
            r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333","kms:ViaService":"ebs.us-east-1.amazonaws.com"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc123"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"ForAnyValue:StringLike":{"aws:PrincipalOrgPaths":["o-a/r-b/ou-c/*"]}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"stringequals":{"AWS:SOURCEVPCE":"vpce-1a2b3c"}}}"#,
        ] {
            assert!(!is_public(&policy(s)), "{s}");
        }
        for bad in ["", "not json", "[]", r#"{"Statement":"x"}"#] {
            assert!(!is_public(bad), "{bad:?}");
        }
    }
}
