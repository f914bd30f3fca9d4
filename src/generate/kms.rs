//! KMS records: the generic builder for every operation, and the special request/response shapes of
//! CreateAlias, CreateKey, CreateGrant, ScheduleKeyDeletion, PutKeyPolicy, ImportKeyMaterial,
//! ReplicateKey, CreateCustomKeyStore, and the DeleteKey AWS KMS logs on its own.

use super::actors::{Caller, Key, KeyForm, Op};
use super::clock::{human, DAY};
use super::json::{obj, J};
use super::record::{Event, Resource};
use super::rng::Rng;

/// Why a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    AccessDenied,
    Throttling,
    InvalidCiphertext,
    /// The key is pending deletion.
    InvalidState,
}

/// One KMS call to render.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    pub time: i64,
    pub op: Op,
    pub caller: &'a Caller,
    pub key: Option<&'a Key>,
    pub form: KeyForm,
    pub failure: Option<Failure>,
    /// `awsRegion`; the key's region for calls on a key.
    pub region: &'a str,
    /// `recipientAccountId`: the account whose trail logs the record.
    pub recipient: &'a str,
}

impl<'a> Call<'a> {
    /// A call on `key`, logged in the key's account and region, listing the key in `resources`.
    pub fn on(time: i64, op: Op, caller: &'a Caller, key: &'a Key) -> Call<'a> {
        Call {
            time,
            op,
            caller,
            key: Some(key),
            form: KeyForm::Resources,
            failure: None,
            region: key.region,
            recipient: key.account,
        }
    }
}

fn event_version(rng: &mut Rng) -> &'static str {
    if rng.chance(0.9) {
        "1.09"
    } else {
        "1.08"
    }
}

/// Renders a call. Operation-specific requests use the generic shape here; the special builders
/// below replace request and response where an operation needs more.
pub(crate) fn event(rng: &mut Rng, call: &Call) -> Event {
    let identity = call.caller.identity(rng, call.time);
    let endpoint = format!("kms.{}.amazonaws.com", call.region);
    let (source_ip, user_agent, tls_host) = call.caller.origin(rng, &endpoint);
    let op = call.op;
    let takes_key = !matches!(op, Op::Decrypt | Op::ListAliases | Op::ListKeys);
    let key_param = call
        .key
        .and_then(|k| call.form.key_param(k, takes_key))
        .map(J::Str);
    let context = if op.is_crypto() {
        call.caller.context(rng, call.recipient, call.region)
    } else {
        None
    };
    let mut fields: Vec<(&'static str, J)> = Vec::with_capacity(4);
    if let Some(k) = key_param {
        fields.push(("keyId", k));
    }
    match op {
        Op::Decrypt | Op::Encrypt => {
            fields.push(("encryptionAlgorithm", J::S("SYMMETRIC_DEFAULT")));
        }
        Op::GenerateDataKey | Op::GenerateDataKeyWithoutPlaintext => {
            fields.push(("keySpec", J::S("AES_256")));
        }
        Op::GetKeyPolicy => fields.push(("policyName", J::S("default"))),
        _ => {}
    }
    if let Some(c) = context {
        fields.push(("encryptionContext", c));
    }
    let request = if fields.is_empty() {
        J::Null
    } else {
        J::Obj(fields)
    };
    let resources = match (call.key, call.form) {
        (Some(k), KeyForm::Resources) => vec![key_resource(k)],
        _ => Vec::new(),
    };
    let error = call.failure.map(|f| {
        let key_arn = call.key.map_or("*", |k| k.arn.as_str());
        match f {
            Failure::AccessDenied => (
                "AccessDeniedException",
                format!(
                    "User: {} is not authorized to perform: kms:{} on resource: {key_arn} because no identity-based policy allows the kms:{} action",
                    identity_arn(&identity),
                    op.name(),
                    op.name()
                ),
            ),
            Failure::Throttling => (
                "ThrottlingException",
                "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.".to_string(),
            ),
            Failure::InvalidCiphertext => (
                "InvalidCiphertextException",
                "The ciphertext is invalid or was not encrypted under this KMS key.".to_string(),
            ),
            Failure::InvalidState => (
                "KMSInvalidStateException",
                format!("{key_arn} is pending deletion."),
            ),
        }
    });
    Event {
        time: call.time,
        version: event_version(rng),
        identity,
        source: "kms.amazonaws.com",
        name: op.name(),
        region: call.region.to_string(),
        source_ip,
        user_agent,
        error,
        request,
        response: J::Null,
        additional: None,
        request_id: rng.uuid(),
        event_id: rng.uuid(),
        read_only: op.read_only(),
        resources,
        management: true,
        recipient: call.recipient.to_string(),
        shared_event_id: None,
        tls_host,
    }
}

fn identity_arn(identity: &super::record::Identity) -> String {
    use super::record::Identity as I;
    match identity {
        I::AssumedRole {
            account,
            role,
            session,
            ..
        } => format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
        other => other.principal(),
    }
}

pub(crate) fn key_resource(key: &Key) -> Resource {
    Resource {
        account: Some(key.account.to_string()),
        kind: "AWS::KMS::Key",
        arn: key.arn.clone(),
    }
}

/// `CreateAlias`: `requestParameters` aliasName + targetKeyId (bare id), resources key then alias.
pub(crate) fn create_alias(rng: &mut Rng, time: i64, caller: &Caller, key: &Key) -> Event {
    let mut e = event(rng, &Call::on(time, Op::CreateAlias, caller, key));
    let alias = key.alias.unwrap_or(key.name);
    e.request = obj! { "aliasName" => format!("alias/{alias}"), "targetKeyId" => key.id.clone() };
    e.response = obj! { "keyId" => key.arn.clone() };
    e.resources.push(Resource {
        account: Some(key.account.to_string()),
        kind: "AWS::KMS::Key",
        arn: key.alias_arn().unwrap_or_else(|| key.arn.clone()),
    });
    e
}

/// What a `CreateKey` asks for.
#[derive(Debug, Clone)]
pub(crate) struct NewKey<'a> {
    pub description: &'a str,
    /// `AWS_KMS`, or `EXTERNAL` for imported key material.
    pub origin: &'static str,
    pub multi_region: bool,
    pub bypass_lockout: bool,
    /// The key policy, when the caller gives one (else AWS KMS applies the default policy).
    pub policy: Option<String>,
}

impl<'a> NewKey<'a> {
    pub fn plain(description: &'a str) -> Self {
        NewKey {
            description,
            origin: "AWS_KMS",
            multi_region: false,
            bypass_lockout: false,
            policy: None,
        }
    }
}

/// `CreateKey` of a key with the defaults.
pub(crate) fn create_key(
    rng: &mut Rng,
    time: i64,
    caller: &Caller,
    key: &Key,
    description: &str,
) -> Event {
    create_key_with(rng, time, caller, key, &NewKey::plain(description))
}

/// `CreateKey`, with the new key's metadata (including its ARN) in the response.
pub(crate) fn create_key_with(
    rng: &mut Rng,
    time: i64,
    caller: &Caller,
    key: &Key,
    new: &NewKey,
) -> Event {
    let mut e = event(rng, &Call::on(time, Op::CreateKey, caller, key));
    let description = new.description;
    let mut fields: Vec<(&'static str, J)> = Vec::with_capacity(7);
    if let Some(policy) = &new.policy {
        fields.push(("policy", J::Str(policy.clone())));
    }
    fields.extend([
        ("description", J::Str(description.to_string())),
        ("keyUsage", J::S("ENCRYPT_DECRYPT")),
        ("keySpec", J::S("SYMMETRIC_DEFAULT")),
        ("origin", J::S(new.origin)),
        (
            "bypassPolicyLockoutSafetyCheck",
            J::Bool(new.bypass_lockout),
        ),
        ("multiRegion", J::Bool(new.multi_region)),
    ]);
    e.request = J::Obj(fields);
    e.response = obj! {
        "keyMetadata" => obj! {
            "aWSAccountId" => key.account,
            "keyId" => key.id.clone(),
            "arn" => key.arn.clone(),
            "creationDate" => human(time),
            "enabled" => true,
            "description" => description.to_string(),
            "keyUsage" => "ENCRYPT_DECRYPT",
            "keyState" => if new.origin == "EXTERNAL" { "PendingImport" } else { "Enabled" },
            "origin" => new.origin,
            "keyManager" => "CUSTOMER",
            "customerMasterKeySpec" => "SYMMETRIC_DEFAULT",
            "keySpec" => "SYMMETRIC_DEFAULT",
            "encryptionAlgorithms" => vec![J::S("SYMMETRIC_DEFAULT")],
            "multiRegion" => new.multi_region,
        },
    };
    e
}

/// `CreateGrant` for `grantee`, allowing `operations`.
pub(crate) fn create_grant(
    rng: &mut Rng,
    call: &Call,
    grantee: String,
    operations: &[&'static str],
    constraint: Option<J>,
) -> Event {
    let mut e = event(rng, call);
    let key = call.key.map_or(String::new(), |k| k.arn.clone());
    let mut fields: Vec<(&'static str, J)> = vec![
        ("keyId", J::Str(key.clone())),
        ("granteePrincipal", J::Str(grantee.clone())),
        (
            "operations",
            J::Arr(operations.iter().map(|o| J::S(o)).collect()),
        ),
    ];
    if let Some(c) = constraint {
        fields.push(("constraints", obj! { "encryptionContextSubset" => c }));
        fields.push(("retiringPrincipal", J::Str(grantee)));
    }
    e.request = J::Obj(fields);
    if call.failure.is_none() {
        e.response = obj! { "grantId" => rng.hex(64), "keyId" => key };
    }
    e
}

/// `ScheduleKeyDeletion` with a 7-day window: the response says `PendingDeletion` and when.
pub(crate) fn schedule_deletion(rng: &mut Rng, time: i64, caller: &Caller, key: &Key) -> Event {
    let mut e = event(rng, &Call::on(time, Op::ScheduleKeyDeletion, caller, key));
    e.request = obj! { "keyId" => key.arn.clone(), "pendingWindowInDays" => 7i64 };
    e.response = obj! {
        "keyId" => key.arn.clone(),
        "keyState" => "PendingDeletion",
        "deletionDate" => human(time + 7 * DAY),
        "pendingWindowInDays" => 7i64,
    };
    e
}

/// `PutKeyPolicy` replacing the default policy with one that also trusts `extra_principal`.
pub(crate) fn put_key_policy(
    rng: &mut Rng,
    time: i64,
    caller: &Caller,
    key: &Key,
    extra_principal: &str,
) -> Event {
    let policy = format!(
        r#"{{"Version":"2012-10-17","Id":"key-default-1","Statement":[{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{acct}:root"}},"Action":"kms:*","Resource":"*"}},{{"Sid":"Allow use of the key","Effect":"Allow","Principal":{{"AWS":"{extra_principal}"}},"Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"*"}}]}}"#,
        acct = key.account
    );
    put_key_policy_doc(rng, time, caller, key, policy)
}

/// `PutKeyPolicy` with the policy document `policy`.
pub(crate) fn put_key_policy_doc(
    rng: &mut Rng,
    time: i64,
    caller: &Caller,
    key: &Key,
    policy: String,
) -> Event {
    let mut e = event(rng, &Call::on(time, Op::PutKeyPolicy, caller, key));
    e.request = obj! {
        "keyId" => key.arn.clone(),
        "policyName" => "default",
        "policy" => policy,
        "bypassPolicyLockoutSafetyCheck" => false,
    };
    e
}

/// `ImportKeyMaterial` into a key of origin `EXTERNAL`.
pub(crate) fn import_key_material(rng: &mut Rng, time: i64, caller: &Caller, key: &Key) -> Event {
    let mut e = event(rng, &Call::on(time, Op::ImportKeyMaterial, caller, key));
    e.request = obj! {
        "keyId" => key.arn.clone(),
        "expirationModel" => "KEY_MATERIAL_DOES_NOT_EXPIRE",
    };
    e
}

/// `ReplicateKey` of the multi-Region key `key` into `replica_region`.
pub(crate) fn replicate_key(
    rng: &mut Rng,
    time: i64,
    caller: &Caller,
    key: &Key,
    replica_region: &'static str,
) -> Event {
    let mut e = event(rng, &Call::on(time, Op::ReplicateKey, caller, key));
    let replica = format!(
        "arn:aws:kms:{replica_region}:{}:key/{}",
        key.account, key.id
    );
    e.request = obj! {
        "keyId" => key.id.clone(),
        "replicaRegion" => replica_region,
        "bypassPolicyLockoutSafetyCheck" => false,
    };
    e.response = obj! {
        "replicaKeyMetadata" => obj! {
            "aWSAccountId" => key.account,
            "keyId" => key.id.clone(),
            "arn" => replica,
            "keyState" => "Creating",
            "multiRegion" => true,
        },
    };
    e
}

/// `CreateCustomKeyStore` of a CloudHSM key store in the caller's account and `region`.
pub(crate) fn create_custom_key_store(
    rng: &mut Rng,
    time: i64,
    caller: &Caller,
    account: &str,
    region: &str,
    name: &str,
) -> Event {
    let call = Call {
        time,
        op: Op::CreateCustomKeyStore,
        caller,
        key: None,
        form: KeyForm::Resources,
        failure: None,
        region,
        recipient: account,
    };
    let mut e = event(rng, &call);
    e.request = obj! {
        "customKeyStoreName" => name.to_string(),
        "cloudHsmClusterId" => format!("cluster-{}", rng.alnum(11).to_lowercase()),
        "trustAnchorCertificate" => "HIDDEN_DUE_TO_SECURITY_REASONS",
        "keyStorePassword" => "HIDDEN_DUE_TO_SECURITY_REASONS",
    };
    e.response = obj! { "customKeyStoreId" => format!("cks-{}", rng.hex(17)) };
    e
}

/// The `DeleteKey` AWS KMS logs itself when a key's waiting period ends: no caller, an
/// `AwsServiceEvent`, the key in `resources` and in `responseElements.keyId`.
pub(crate) fn delete_key(rng: &mut Rng, time: i64, someone: &Caller, key: &Key) -> Event {
    let mut e = event(rng, &Call::on(time, Op::DeleteKey, someone, key));
    e.identity = super::record::Identity::KmsItself {
        account: key.account.to_string(),
    };
    e.source_ip = "AWS Internal".to_string();
    e.user_agent = "AWS Internal".to_string();
    e.tls_host = None;
    e.request = J::Null;
    e.response = obj! { "keyId" => key.arn.clone() };
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::actors::{Channel, Principal, UA_CLI};

    fn admin() -> Caller {
        Caller::new(
            Principal::Role {
                account: "111111111111",
                name: "kms-admin",
            },
            Channel::Direct {
                ips: &["198.51.100.23"],
                agent: UA_CLI,
            },
            &["jsmith"],
        )
    }

    fn render(e: &Event) -> serde_json::Value {
        let mut out = Vec::new();
        e.write_json(&mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn key_forms_name_the_key_as_documented() {
        let key = Key::new("app-data", "111111111111", "us-east-1", Some("app-data"));
        let caller = admin();
        let mut rng = Rng::new(1);
        let mut call = Call::on(1_767_225_600, Op::Encrypt, &caller, &key);
        let v = render(&event(&mut rng, &call));
        assert_eq!(v["resources"][0]["ARN"], key.arn.as_str());
        assert_eq!(v["requestParameters"]["keyId"], key.arn.as_str());
        assert_eq!(v["tlsDetails"]["tlsVersion"], "TLSv1.3");
        call.form = KeyForm::ParamAliasName;
        let v = render(&event(&mut rng, &call));
        assert!(v.get("resources").is_none());
        assert_eq!(v["requestParameters"]["keyId"], "alias/app-data");
        call.form = KeyForm::ParamId;
        let v = render(&event(&mut rng, &call));
        assert_eq!(v["requestParameters"]["keyId"], key.id.as_str());
    }

    #[test]
    fn special_operations_carry_their_fields() {
        let key = Key::new("doomed", "111111111111", "us-east-1", None);
        let caller = admin();
        let mut rng = Rng::new(2);
        let t = 1_770_114_667; // 2026-02-03T10:31:07Z
        let v = render(&schedule_deletion(&mut rng, t, &caller, &key));
        assert_eq!(v["responseElements"]["keyState"], "PendingDeletion");
        assert_eq!(
            v["responseElements"]["deletionDate"],
            "Feb 10, 2026, 10:31:07 AM"
        );
        assert_eq!(v["readOnly"], false);
        let v = render(&create_key(&mut rng, t, &caller, &key, "test"));
        assert_eq!(
            v["responseElements"]["keyMetadata"]["arn"],
            key.arn.as_str()
        );
        let mut call = Call::on(t, Op::Decrypt, &caller, &key);
        call.failure = Some(Failure::InvalidState);
        let v = render(&event(&mut rng, &call));
        assert_eq!(v["errorCode"], "KMSInvalidStateException");
    }
}
