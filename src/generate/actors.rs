//! Who calls and with what: keys, callers (principal + how the call reaches AWS), encryption
//! contexts, and the KMS operations the generator emits.

use super::clock::HOUR;
use super::json::{obj, J};
use super::record::Identity;
use super::rng::{stable_upper, stable_uuid, Rng};

/// A KMS key. Its id depends on its name, account and region only, never on the seed.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub name: &'static str,
    pub account: &'static str,
    pub region: &'static str,
    pub id: String,
    pub arn: String,
    /// `alias/<name>` pointing at this key, created at the start of the sample.
    pub alias: Option<&'static str>,
}

impl Key {
    pub fn new(
        name: &'static str,
        account: &'static str,
        region: &'static str,
        alias: Option<&'static str>,
    ) -> Key {
        let id = stable_uuid(&format!("kmswatch/key/{account}/{region}/{name}"));
        let arn = format!("arn:aws:kms:{region}:{account}:key/{id}");
        Key {
            name,
            account,
            region,
            id,
            arn,
            alias,
        }
    }

    pub fn alias_arn(&self) -> Option<String> {
        self.alias
            .map(|a| format!("arn:aws:kms:{}:{}:alias/{a}", self.region, self.account))
    }
}

/// How a record names its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyForm {
    /// `resources[]` with the key ARN (and `keyId` as the caller passed it, for calls that take
    /// one).
    Resources,
    /// No `resources`; `requestParameters.keyId` is the key ARN.
    ParamArn,
    /// No `resources`; `keyId` is the bare key id.
    ParamId,
    /// No `resources`; `keyId` is `alias/<name>`.
    ParamAliasName,
    /// No `resources`; `keyId` is the alias ARN.
    ParamAliasArn,
}

impl KeyForm {
    /// A share `bare` of records name the key only in `keyId` (no `resources`), the rest list it
    /// in `resources`. Alias forms only when the key has an alias and `aliases_ready` (the alias
    /// was created before).
    pub fn pick(rng: &mut Rng, key: &Key, aliases_ready: bool, bare: f64) -> KeyForm {
        if !rng.chance(bare) {
            return KeyForm::Resources;
        }
        let with_alias = aliases_ready && key.alias.is_some();
        match rng.below(if with_alias { 4 } else { 2 }) {
            0 => KeyForm::ParamArn,
            1 => KeyForm::ParamId,
            2 => KeyForm::ParamAliasName,
            _ => KeyForm::ParamAliasArn,
        }
    }

    /// The `keyId` request parameter for this form, `None` when the form lists resources and the
    /// operation takes no `keyId`.
    pub fn key_param(self, key: &Key, op_takes_key: bool) -> Option<String> {
        match self {
            KeyForm::Resources if op_takes_key => Some(key.arn.clone()),
            KeyForm::Resources => None,
            KeyForm::ParamArn => Some(key.arn.clone()),
            KeyForm::ParamId => Some(key.id.clone()),
            KeyForm::ParamAliasName => Some(format!("alias/{}", key.alias.unwrap_or(key.name))),
            KeyForm::ParamAliasArn => Some(key.alias_arn().unwrap_or_else(|| key.arn.clone())),
        }
    }
}

/// The stable identity behind a call.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    Role {
        account: &'static str,
        name: &'static str,
    },
    User {
        account: &'static str,
        name: &'static str,
    },
    Root {
        account: &'static str,
    },
    /// An AWS service acting as itself (`AWSService`), e.g. `cloudtrail.amazonaws.com`.
    Service(&'static str),
}

/// The service named by an `AWS Internal` call's encryption context.
#[derive(Debug, Clone)]
pub(crate) enum Ctx {
    S3 { bucket: &'static str },
    Ebs,
    Ssm { parameter: &'static str },
    Secret { name: &'static str },
    Lambda { function: &'static str },
    Rds { db: &'static str },
    Dynamo { table: &'static str },
    CloudTrail,
}

/// How a call reaches KMS.
#[derive(Debug, Clone)]
pub(crate) enum Channel {
    /// From an IP address with an SDK or CLI user agent.
    Direct {
        ips: &'static [&'static str],
        agent: &'static str,
    },
    /// A service on the principal's behalf, `sourceIPAddress` and `invokedBy` `AWS Internal`.
    Internal(Ctx),
    /// A service on the principal's behalf, named by DNS (`secretsmanager.amazonaws.com`).
    Via {
        service: &'static str,
        ctx: Option<Ctx>,
    },
}

/// A principal together with how it calls.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub who: Principal,
    pub channel: Channel,
    /// Role session names this caller uses; one is picked per call.
    pub sessions: Vec<String>,
}

pub(crate) const UA_JAVA: &str =
    "aws-sdk-java/2.25.60 Linux/5.10.219-208.866.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.11 Java/17.0.11";
pub(crate) const UA_BOTO: &str =
    "Boto3/1.34.120 md/Botocore#1.34.120 ua/2.0 os/linux#5.10.217 lang/python#3.11.9";
pub(crate) const UA_GO: &str = "aws-sdk-go-v2/1.30.1 os/linux lang/go#1.22.5 api/kms#1.35.1";
pub(crate) const UA_CLI: &str =
    "aws-cli/2.17.5 md/awscrt#0.20.11 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.11.9";
pub(crate) const UA_NODE: &str = "aws-sdk-js/3.600.0 ua/2.0 os/linux lang/js md/nodejs#20.14.0";
pub(crate) const UA_TERRAFORM: &str =
    "APN/1.0 HashiCorp/1.0 Terraform/1.8.5 terraform-provider-aws/5.54.1 aws-sdk-go-v2/1.30.1";

impl Caller {
    pub fn new(who: Principal, channel: Channel, sessions: &[&str]) -> Caller {
        Caller {
            who,
            channel,
            sessions: sessions.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    /// The account the caller belongs to (`None` for a service acting as itself).
    pub fn account(&self) -> Option<&'static str> {
        match &self.who {
            Principal::Role { account, .. }
            | Principal::User { account, .. }
            | Principal::Root { account } => Some(account),
            Principal::Service(_) => None,
        }
    }

    /// The principal string the engine derives from this caller's records.
    pub fn principal(&self) -> String {
        match &self.who {
            Principal::Role { account, name } => format!("arn:aws:iam::{account}:role/{name}"),
            Principal::User { account, name } => format!("arn:aws:iam::{account}:user/{name}"),
            Principal::Root { account } => format!("arn:aws:iam::{account}:root"),
            Principal::Service(s) => (*s).to_string(),
        }
    }

    fn invoked_by(&self) -> Option<String> {
        match &self.channel {
            Channel::Direct { .. } => None,
            Channel::Internal(_) => Some("AWS Internal".into()),
            Channel::Via { service, .. } => Some((*service).into()),
        }
    }

    /// `userIdentity` for a call at `time`.
    pub fn identity(&self, rng: &mut Rng, time: i64) -> Identity {
        match &self.who {
            Principal::Role { account, name } => {
                let session = if self.sessions.is_empty() {
                    format!("{name}-session")
                } else {
                    rng.pick(&self.sessions).clone()
                };
                Identity::AssumedRole {
                    account: (*account).into(),
                    role: (*name).into(),
                    session,
                    invoked_by: self.invoked_by(),
                    issued: time - time.rem_euclid(HOUR),
                }
            }
            Principal::User { account, name } => Identity::IamUser {
                account: (*account).into(),
                user: (*name).into(),
            },
            Principal::Root { account } => Identity::Root {
                account: (*account).into(),
            },
            Principal::Service(s) => Identity::AwsService {
                invoked_by: (*s).into(),
            },
        }
    }

    /// `sourceIPAddress` and `userAgent`; the TLS host header when the call came over the internet.
    pub fn origin(&self, rng: &mut Rng, endpoint: &str) -> (String, String, Option<String>) {
        match (&self.who, &self.channel) {
            (Principal::Service(s), _) => ((*s).into(), (*s).into(), None),
            (_, Channel::Direct { ips, agent }) => (
                (*rng.pick(ips)).into(),
                (*agent).into(),
                Some(endpoint.to_string()),
            ),
            (_, Channel::Internal(_)) => ("AWS Internal".into(), "AWS Internal".into(), None),
            (_, Channel::Via { service, .. }) => ((*service).into(), (*service).into(), None),
        }
    }

    /// The encryption context of a cryptographic call, naming the calling service when there is
    /// one.
    pub fn context(&self, rng: &mut Rng, account: &str, region: &str) -> Option<J> {
        let ctx = match &self.channel {
            Channel::Internal(ctx) => ctx,
            Channel::Via { ctx: Some(ctx), .. } => ctx,
            Channel::Via { ctx: None, .. } => return None,
            Channel::Direct { .. } => {
                let app = match &self.who {
                    Principal::Role { name, .. } | Principal::User { name, .. } => *name,
                    _ => "app",
                };
                return rng.chance(0.5).then(|| {
                    obj! { "app" => app, "tenant" => format!("t-{:04}", rng.below(40)) }
                });
            }
        };
        let acct = self.account().unwrap_or(account);
        Some(match ctx {
            Ctx::S3 { bucket } => obj! {
                "aws:s3:arn" => format!("arn:aws:s3:::{bucket}/{}/{:04}/part-{:05}.parquet",
                    ["raw", "curated", "uploads", "exports"][rng.below(4) as usize],
                    rng.below(400), rng.below(20_000)),
            },
            Ctx::Ebs => obj! { "aws:ebs:id" => format!("vol-0{}", rng.hex(16)) },
            Ctx::Ssm { parameter } => obj! {
                "PARAMETER_ARN" => format!("arn:aws:ssm:{region}:{acct}:parameter{parameter}"),
            },
            Ctx::Secret { name } => obj! {
                "SecretARN" => format!("arn:aws:secretsmanager:{region}:{acct}:secret:{name}-{}",
                    stable_upper("", name, 6)),
                "SecretVersionId" => rng.uuid(),
            },
            Ctx::Lambda { function } => obj! {
                "aws:lambda:FunctionArn" => format!("arn:aws:lambda:{region}:{acct}:function:{function}"),
            },
            Ctx::Rds { db } => obj! { "aws:rds:db-id" => *db },
            Ctx::Dynamo { table } => obj! {
                "aws:dynamodb:tableName" => *table,
                "aws:dynamodb:subscriberId" => acct.to_string(),
            },
            Ctx::CloudTrail => obj! {
                "aws:cloudtrail:arn" => "arn:aws:cloudtrail:us-east-1:111111111111:trail/org-trail",
                "aws:s3:arn" => format!("arn:aws:s3:::{}/AWSLogs/{}/{account}/CloudTrail/{region}/{}.json.gz",
                    super::output::BUCKET, super::output::ORG_ID, rng.alnum(16)),
            },
        })
    }
}

/// The KMS operations the generator emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Op {
    Decrypt,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    DescribeKey,
    GetKeyPolicy,
    GetKeyRotationStatus,
    ListAliases,
    ListKeys,
    ListGrants,
    CreateGrant,
    CreateAlias,
    CreateKey,
    ScheduleKeyDeletion,
    DisableKey,
    DisableKeyRotation,
    PutKeyPolicy,
    CancelKeyDeletion,
    ImportKeyMaterial,
    DeleteImportedKeyMaterial,
    ReplicateKey,
    CreateCustomKeyStore,
    DeleteKey,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Decrypt => "Decrypt",
            Op::Encrypt => "Encrypt",
            Op::GenerateDataKey => "GenerateDataKey",
            Op::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Op::DescribeKey => "DescribeKey",
            Op::GetKeyPolicy => "GetKeyPolicy",
            Op::GetKeyRotationStatus => "GetKeyRotationStatus",
            Op::ListAliases => "ListAliases",
            Op::ListKeys => "ListKeys",
            Op::ListGrants => "ListGrants",
            Op::CreateGrant => "CreateGrant",
            Op::CreateAlias => "CreateAlias",
            Op::CreateKey => "CreateKey",
            Op::ScheduleKeyDeletion => "ScheduleKeyDeletion",
            Op::DisableKey => "DisableKey",
            Op::DisableKeyRotation => "DisableKeyRotation",
            Op::PutKeyPolicy => "PutKeyPolicy",
            Op::CancelKeyDeletion => "CancelKeyDeletion",
            Op::ImportKeyMaterial => "ImportKeyMaterial",
            Op::DeleteImportedKeyMaterial => "DeleteImportedKeyMaterial",
            Op::ReplicateKey => "ReplicateKey",
            Op::CreateCustomKeyStore => "CreateCustomKeyStore",
            Op::DeleteKey => "DeleteKey",
        }
    }

    pub fn is_crypto(self) -> bool {
        matches!(
            self,
            Op::Decrypt | Op::Encrypt | Op::GenerateDataKey | Op::GenerateDataKeyWithoutPlaintext
        )
    }

    pub fn read_only(self) -> bool {
        self.is_crypto()
            || matches!(
                self,
                Op::DescribeKey
                    | Op::GetKeyPolicy
                    | Op::GetKeyRotationStatus
                    | Op::ListAliases
                    | Op::ListKeys
                    | Op::ListGrants
            )
    }
}

/// How a caller splits its calls on a key between operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mix {
    /// Decrypt only.
    Read,
    /// 70% Decrypt, 30% GenerateDataKey.
    ReadMostly,
    /// 80% GenerateDataKey, 20% Decrypt.
    Write,
    /// GenerateDataKey only (envelope encryption, e.g. CloudTrail).
    Envelope,
    /// 60% Decrypt, 20% Encrypt, 20% GenerateDataKey.
    Mixed,
    /// GenerateDataKeyWithoutPlaintext only (EBS volume creation).
    NoPlaintext,
}

impl Mix {
    pub fn pick(self, rng: &mut Rng) -> Op {
        let x = rng.below(10);
        match self {
            Mix::Read => Op::Decrypt,
            Mix::ReadMostly if x < 7 => Op::Decrypt,
            Mix::ReadMostly => Op::GenerateDataKey,
            Mix::Write if x < 8 => Op::GenerateDataKey,
            Mix::Write => Op::Decrypt,
            Mix::Envelope => Op::GenerateDataKey,
            Mix::Mixed if x < 6 => Op::Decrypt,
            Mix::Mixed if x < 8 => Op::Encrypt,
            Mix::Mixed => Op::GenerateDataKey,
            Mix::NoPlaintext => Op::GenerateDataKeyWithoutPlaintext,
        }
    }
}
