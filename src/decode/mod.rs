//! Turns log object bytes into normalised KMS calls: decompression, record splitting, normalisation.
//!
//! Pure: no I/O and no clock. `object` handles one object's bytes, `record` the borrowed view of a
//! CloudTrail record, `normalise` the mapping from a record to a [`KmsCall`].

mod extract;
mod gzip;
mod normalise;
mod object;
mod policy;
mod record;
mod split;
mod structural;

pub use gzip::{decompress, decompress_into, decompress_with, GzipError};
pub(crate) use normalise::arn_account;
pub use normalise::{normalise, op_class, NormaliseError};
pub use object::{
    decode_object, decode_object_reusing, DecodeLimits, DecodeStats, DecodedObject, ObjectError,
    RecordError,
};
pub use policy::{is_public as policy_is_public, LIMITING_KEYS};
pub use split::{split_records, SplitError};

use serde::{Deserialize, Serialize};

/// Whether an operation uses key material (`Decrypt`, `Sign`, ...) or manages keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OpClass {
    Crypto,
    Management,
}

/// Which step of the calling-service inference decided [`KmsCall::service`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServiceSource {
    /// `userIdentity.invokedBy` named an `*.amazonaws.com` service.
    InvokedBy,
    /// `sourceIPAddress` named an `*.amazonaws.com` service.
    SourceIp,
    /// The call came from `AWS Internal`; the encryption context named the service.
    EncryptionContext,
    /// The call came from `AWS Internal`; the caller's role named the service.
    Role,
    /// The call came from `AWS Internal` and nothing named the service (`aws-internal`).
    AwsInternal,
    /// A call from outside AWS (`direct`).
    Direct,
}

impl ServiceSource {
    pub const ALL: [ServiceSource; 6] = [
        ServiceSource::InvokedBy,
        ServiceSource::SourceIp,
        ServiceSource::EncryptionContext,
        ServiceSource::Role,
        ServiceSource::AwsInternal,
        ServiceSource::Direct,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceSource::InvokedBy => "invoked_by",
            ServiceSource::SourceIp => "source_ip",
            ServiceSource::EncryptionContext => "encryption_context",
            ServiceSource::Role => "role",
            ServiceSource::AwsInternal => "aws_internal",
            ServiceSource::Direct => "direct",
        }
    }
}

/// How a call named its key, before alias resolution (which needs state, so the engine does it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyRef {
    /// A key ARN (`arn:aws:kms:region:account:key/id`).
    Key(Box<str>),
    /// An alias ARN (`arn:aws:kms:region:account:alias/name`).
    Alias(Box<str>),
}

/// A key-state change a management call makes, which the engine's key catalogue tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyEffect {
    /// `CreateAlias` / `UpdateAlias`: the alias ARN now points at the key ARN.
    AliasSet { alias: Box<str>, key: Box<str> },
    /// `DeleteAlias`.
    AliasDeleted { alias: Box<str> },
    /// `ScheduleKeyDeletion` succeeded.
    DeletionScheduled,
    /// `CancelKeyDeletion` succeeded.
    DeletionCancelled,
    /// `DeleteKey`: AWS KMS deleted the key at the end of its waiting period.
    Deleted,
}

/// What the request of a management call says, for the operations whose request decides a rule:
/// `CreateKey` and `PutKeyPolicy` (the policy, the lockout check), `CreateGrant` (the grantee).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFacts {
    /// The key policy lets anyone use the key (see `decode::policy`).
    pub policy_public: bool,
    /// `bypassPolicyLockoutSafetyCheck` was `true`.
    pub policy_lockout_bypass: bool,
    /// `CreateGrant`: the grantee principal.
    pub grantee: Option<Box<str>>,
    /// `CreateGrant`: the grantee is an ARN in another account than the key's.
    pub grantee_cross_account: bool,
}

/// One KMS API call, normalised. Owned, so decoded objects can cross threads. Serialized in the
/// state journal (`engine::journal`): any change to its fields changes that encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KmsCall {
    /// CloudTrail `eventID`, kept for evidence.
    pub event_id: Box<str>,
    /// Hash of `sharedEventID` when present, else of `eventID`: a cross-account call logged in both
    /// accounts, and a redelivered record, dedupe to one. 64 bits (the low half of a 128-bit
    /// xxh3, as older state files held it): among the few million ids a dedupe horizon holds, a
    /// collision (two calls counted as one) has odds of about one in a million.
    pub dedupe_id: u64,
    /// Event time, seconds since the Unix epoch.
    pub time: i64,
    pub operation: Box<str>,
    pub class: OpClass,
    pub key: Option<KeyRef>,
    /// Stable identity: role ARN for assumed roles, user ARN, root ARN, service name, or account.
    pub principal: Box<str>,
    /// The account that made the call (`userIdentity.accountId`), when known.
    pub caller_account: Option<Box<str>>,
    /// The key's account when the key is known, else `recipientAccountId`.
    pub account: Box<str>,
    pub region: Box<str>,
    /// Calling service (`s3`, `ebs`, ..., `aws-internal`, `direct`).
    pub service: Box<str>,
    pub service_source: ServiceSource,
    /// `None` for success; normalised `errorCode` otherwise.
    pub error_code: Option<Box<str>>,
    /// Caller account and key account both known and different.
    pub cross_account: bool,
    pub effect: Option<KeyEffect>,
    /// `CreateKey`, `PutKeyPolicy` and `CreateGrant` only; boxed, as few calls have it.
    pub request: Option<Box<RequestFacts>>,
}

impl KmsCall {
    /// `ok` or the error code.
    pub fn outcome(&self) -> &str {
        self.error_code.as_deref().unwrap_or("ok")
    }
}

#[cfg(test)]
mod tests {
    use super::ServiceSource;

    #[test]
    fn service_sources_index_in_declaration_order() {
        for (i, s) in ServiceSource::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "{}", s.as_str());
        }
    }
}
