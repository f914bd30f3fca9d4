//! What the management calls on a key say about it: lifecycle state as of the latest event time,
//! rotation evidence, policy changes and grants; and the lifecycle log's entries.

use serde::{Deserialize, Serialize};

use crate::decode::KmsCall;

/// A key's state as the calls seen so far leave it. Without a state-changing call it is assumed
/// enabled (a key in use is enabled unless a call said otherwise).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    #[default]
    Enabled,
    Disabled,
    PendingDeletion,
    Deleted,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
            KeyState::PendingDeletion => "pending_deletion",
            KeyState::Deleted => "deleted",
        }
    }

    /// The state a successful call leaves the key in, if it changes it. `CancelKeyDeletion`
    /// leaves a key disabled (KMS behaviour); `DeleteKey` is what KMS logs when the waiting period
    /// ends.
    fn after(operation: &str) -> Option<KeyState> {
        Some(match operation {
            "CreateKey" | "EnableKey" => KeyState::Enabled,
            "DisableKey" | "CancelKeyDeletion" => KeyState::Disabled,
            "ScheduleKeyDeletion" => KeyState::PendingDeletion,
            "DeleteKey" => KeyState::Deleted,
            _ => return None,
        })
    }
}

/// The facts of one key from its successful management calls. Times are event times; "latest"
/// means by event time, so the order objects arrive in does not matter (ties: the later fold).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFacts {
    pub state: KeyState,
    /// Event time of the call that set `state`; `None` when no call changed it.
    pub state_since: Option<i64>,
    /// Latest successful `EnableKeyRotation`.
    pub rotation_enabled: Option<i64>,
    /// Latest successful `DisableKeyRotation`.
    pub rotation_disabled: Option<i64>,
    /// Latest successful `RotateKeyOnDemand` or `RotateKey` (the automatic rotation KMS logs).
    pub rotated: Option<i64>,
    /// Successful `RotateKeyOnDemand` and `RotateKey` calls.
    pub rotations: u64,
    /// Successful `PutKeyPolicy` calls.
    pub policy_changes: u64,
    /// Successful `CreateGrant` calls.
    pub grants_created: u64,
    /// Successful `RetireGrant` and `RevokeGrant` calls.
    pub grants_removed: u64,
}

fn latest(slot: &mut Option<i64>, time: i64) -> bool {
    if slot.is_some_and(|t| t > time) {
        return false;
    }
    *slot = Some(time);
    true
}

impl KeyFacts {
    /// Applies one successful call.
    pub(crate) fn apply(&mut self, operation: &str, time: i64) {
        if let Some(state) = KeyState::after(operation) {
            if latest(&mut self.state_since, time) {
                self.state = state;
            }
        }
        match operation {
            "EnableKeyRotation" => {
                latest(&mut self.rotation_enabled, time);
            }
            "DisableKeyRotation" => {
                latest(&mut self.rotation_disabled, time);
            }
            "RotateKeyOnDemand" | "RotateKey" => {
                latest(&mut self.rotated, time);
                self.rotations = self.rotations.saturating_add(1);
            }
            "PutKeyPolicy" => self.policy_changes = self.policy_changes.saturating_add(1),
            "CreateGrant" => self.grants_created = self.grants_created.saturating_add(1),
            "RetireGrant" | "RevokeGrant" => {
                self.grants_removed = self.grants_removed.saturating_add(1)
            }
            _ => {}
        }
    }

    /// Automatic rotation as the calls leave it: `Some(true)` when the latest rotation switch was
    /// an `EnableKeyRotation`, `Some(false)` for a `DisableKeyRotation`, `None` when neither was seen.
    pub fn rotation_on(&self) -> Option<bool> {
        match (self.rotation_enabled, self.rotation_disabled) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(e), Some(d)) => Some(e > d),
        }
    }
}

/// The lifecycle category of a management operation that changes a key or who may use it, or
/// `None` for calls that do not (reads such as `DescribeKey`, and cryptographic calls).
pub fn lifecycle_category(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "CreateKey" | "ReplicateKey" => "create",
        "EnableKey" | "DisableKey" => "state",
        "ScheduleKeyDeletion" | "CancelKeyDeletion" | "DeleteKey" => "deletion",
        "PutKeyPolicy" => "policy",
        "CreateGrant" | "RetireGrant" | "RevokeGrant" => "grant",
        "CreateAlias" | "UpdateAlias" | "DeleteAlias" => "alias",
        "EnableKeyRotation" | "DisableKeyRotation" | "RotateKeyOnDemand" | "RotateKey" => {
            "rotation"
        }
        "ImportKeyMaterial" | "DeleteImportedKeyMaterial" => "key_material",
        "UpdateKeyDescription" | "TagResource" | "UntagResource" | "UpdatePrimaryRegion" => {
            "metadata"
        }
        _ => return None,
    })
}

/// One lifecycle call, as the lifecycle table lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleEvent {
    pub time: i64,
    /// Resolved key ARN ("" when the call named none).
    pub key: Box<str>,
    pub operation: Box<str>,
    pub principal: Box<str>,
    /// `ok` or the error code.
    pub outcome: Box<str>,
    /// CloudTrail `eventID`, so each row can be found in the logs.
    pub event_id: Box<str>,
}

impl LifecycleEvent {
    pub(crate) fn new(call: &KmsCall, key: &str) -> Self {
        LifecycleEvent {
            time: call.time,
            key: key.into(),
            operation: call.operation.clone(),
            principal: call.principal.clone(),
            outcome: call.outcome().into(),
            event_id: call.event_id.clone(),
        }
    }
}
