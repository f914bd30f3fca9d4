//! What an auditor must act on, from the report's tables: each finding with its evidence (rows and
//! counts) and a recommendation. Pure and deterministic.

use std::collections::BTreeMap;

use super::rows::{KeyRow, Tables};
use crate::timefmt::format_rfc3339;
use crate::totals::KeyState;

/// A principal with at least this many failed calls is listed as failing repeatedly.
pub const REPEATED_FAILURES: u64 = 5;

/// One finding: what holds, the evidence, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable identifier (`unused_keys`, ...).
    pub id: &'static str,
    pub title: &'static str,
    /// One sentence with the evidence counts.
    pub evidence: String,
    /// Column names of `rows`.
    pub columns: &'static [&'static str],
    /// The evidence, one row per key or principal, sorted.
    pub rows: Vec<Vec<String>>,
    pub recommendation: &'static str,
}

/// `1 key`, `2 keys`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn t(secs: Option<i64>) -> String {
    secs.map_or_else(|| "-".to_owned(), format_rfc3339)
}

fn arn(k: &KeyRow) -> String {
    k.key_arn.clone().unwrap_or_default()
}

fn live(k: &KeyRow) -> bool {
    k.key_arn.is_some()
        && !matches!(
            k.lifecycle_state,
            KeyState::Deleted | KeyState::PendingDeletion
        )
}

/// The account of a principal: an ARN's account field, or `aws-account:<id>`.
fn principal_account(p: &str) -> Option<&str> {
    p.strip_prefix("aws-account:")
        .or_else(|| p.split(':').nth(4).filter(|a| !a.is_empty()))
}

/// Every finding that holds, in a fixed order; the ids of the checks that found nothing are in
/// [`CHECKS`] less those returned.
pub fn findings(t_: &Tables) -> Vec<Finding> {
    let mut out = Vec::new();
    let keys = &t_.keys;

    let unused: Vec<Vec<String>> = keys
        .iter()
        .filter(|k| live(k) && k.last_crypto_use.is_none())
        .map(|k| {
            vec![
                arn(k),
                k.lifecycle_state.as_str().to_owned(),
                k.calls.to_string(),
                t(Some(k.last_seen)),
            ]
        })
        .collect();
    if !unused.is_empty() {
        out.push(Finding {
            id: "unused_keys",
            title: "Keys unused for the period",
            evidence: format!(
                "{} of {} had no successful cryptographic call in the period (only management calls or failures).",
                unused.len(),
                count(keys.iter().filter(|k| k.key_arn.is_some()).count(), "key", "keys")
            ),
            columns: &["key_arn", "lifecycle_state", "calls", "last_seen"],
            rows: unused,
            recommendation: "Confirm with the key owner that nothing still needs the key, then disable it; schedule its deletion once a disabled period has passed without failed calls.",
        });
    }

    let rotation_off: Vec<Vec<String>> = keys
        .iter()
        .filter(|k| {
            live(k)
                && match (k.rotation_enabled_at, k.rotation_disabled_at) {
                    (None, Some(_)) => true,
                    (Some(e), Some(d)) => d >= e,
                    _ => false,
                }
        })
        .map(|k| vec![arn(k), t(k.rotation_disabled_at), t(k.rotated_at)])
        .collect();
    if !rotation_off.is_empty() {
        out.push(Finding {
            id: "rotation_disabled",
            title: "Key rotation disabled",
            evidence: format!(
                "{} automatic rotation switched off (DisableKeyRotation, not re-enabled later).",
                count(rotation_off.len(), "key had", "keys had")
            ),
            columns: &["key_arn", "rotation_disabled_at", "rotated_at"],
            rows: rotation_off,
            recommendation: "Re-enable automatic rotation (EnableKeyRotation) or record why the key must not rotate.",
        });
    }

    let no_rotation: Vec<Vec<String>> = keys
        .iter()
        .filter(|k| {
            live(k)
                && k.rotation_enabled_at.is_none()
                && k.rotation_disabled_at.is_none()
                && k.rotations == 0
        })
        .map(|k| vec![arn(k), k.calls.to_string()])
        .collect();
    if !no_rotation.is_empty() {
        out.push(Finding {
            id: "rotation_not_evidenced",
            title: "Key rotation never evidenced",
            evidence: format!(
                "{} no EnableKeyRotation, RotateKey or RotateKeyOnDemand in the period.",
                count(no_rotation.len(), "key shows", "keys show")
            ),
            columns: &["key_arn", "calls"],
            rows: no_rotation,
            recommendation: "Check each key with GetKeyRotationStatus (rotation enabled before the period leaves no trace here) and enable rotation where it is off.",
        });
    }

    let key_account: BTreeMap<&str, &str> = keys
        .iter()
        .filter_map(|k| Some((k.key_arn.as_deref()?, k.account.as_deref()?)))
        .collect();
    let cross: Vec<Vec<String>> = t_
        .key_principal_service
        .iter()
        .filter_map(|r| {
            let key = r.key_arn.as_deref()?;
            let owner = key_account.get(key)?;
            let caller = principal_account(&r.principal)?;
            (caller != *owner).then(|| {
                vec![
                    key.to_owned(),
                    r.principal.clone(),
                    r.calls.to_string(),
                    r.failures.to_string(),
                ]
            })
        })
        .collect();
    if !cross.is_empty() {
        let calls: u64 = cross.iter().filter_map(|r| r[2].parse::<u64>().ok()).sum();
        out.push(Finding {
            id: "cross_account_use",
            title: "Keys used across accounts",
            evidence: format!(
                "{} from another account made {}.",
                count(cross.len(), "key and principal pair", "key and principal pairs"),
                count(calls as usize, "call", "calls")
            ),
            columns: &["key_arn", "principal", "calls", "failures"],
            rows: cross,
            recommendation: "Confirm each external account is meant to use the key; remove the key policy statements or grants that allow the others.",
        });
    }

    let mut by_principal: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for r in &t_.key_principal_service {
        let e = by_principal.entry(r.principal.as_str()).or_default();
        e.0 += r.failures;
        e.1 += r.calls;
        e.2 += u64::from(r.failures > 0);
    }
    let failing: Vec<Vec<String>> = by_principal
        .iter()
        .filter(|(_, (f, _, _))| *f >= REPEATED_FAILURES)
        .map(|(p, (f, c, k))| vec![p.to_string(), f.to_string(), c.to_string(), k.to_string()])
        .collect();
    if !failing.is_empty() {
        out.push(Finding {
            id: "repeated_failures",
            title: "Principals with repeated failures",
            evidence: format!(
                "{} {REPEATED_FAILURES} or more failed calls.",
                count(failing.len(), "principal had", "principals had")
            ),
            columns: &["principal", "failures", "calls", "keys_with_failures"],
            rows: failing,
            recommendation: "Find out why each principal fails (missing permission, a disabled key, or probing for access) and fix the permission or the caller.",
        });
    }

    let mut invalid_state: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &t_.key_operation_outcome {
        if let (Some(k), "KMSInvalidStateException") = (r.key_arn.as_deref(), r.outcome.as_str()) {
            *invalid_state.entry(k).or_default() += r.calls;
        }
    }
    let doomed: Vec<Vec<String>> = keys
        .iter()
        .filter(|k| {
            matches!(
                k.lifecycle_state,
                KeyState::PendingDeletion | KeyState::Deleted
            ) && k.lifecycle_state_since.is_some_and(|s| k.last_seen > s)
        })
        .map(|k| {
            let key = arn(k);
            let failed = invalid_state.get(key.as_str()).copied().unwrap_or(0);
            vec![
                key,
                k.lifecycle_state.as_str().to_owned(),
                t(k.lifecycle_state_since),
                t(Some(k.last_seen)),
                failed.to_string(),
            ]
        })
        .collect();
    if !doomed.is_empty() {
        out.push(Finding {
            id: "pending_deletion_in_use",
            title: "Keys pending deletion still called",
            evidence: format!(
                "{} called after deletion was scheduled.",
                count(doomed.len(), "key was", "keys were")
            ),
            columns: &[
                "key_arn",
                "lifecycle_state",
                "since",
                "last_seen",
                "invalid_state_failures",
            ],
            rows: doomed,
            recommendation: "Cancel the deletion (CancelKeyDeletion) until the callers are moved to another key: data encrypted under a deleted key cannot be recovered.",
        });
    }
    out
}

/// Every check, by id, in the order findings are listed.
pub const CHECKS: &[(&str, &str)] = &[
    ("unused_keys", "Keys unused for the period"),
    ("rotation_disabled", "Key rotation disabled"),
    ("rotation_not_evidenced", "Key rotation never evidenced"),
    ("cross_account_use", "Keys used across accounts"),
    ("repeated_failures", "Principals with repeated failures"),
    (
        "pending_deletion_in_use",
        "Keys pending deletion still called",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rows::{OutcomeRow, PrincipalRow};

    const K: &str = "arn:aws:kms:us-east-1:111122223333:key/k";

    fn key(f: impl FnOnce(&mut KeyRow)) -> KeyRow {
        let mut k = KeyRow {
            key_arn: Some(K.into()),
            account: Some("111122223333".into()),
            last_crypto_use: Some(50),
            last_seen: 50,
            rotation_enabled_at: Some(1),
            ..KeyRow::default()
        };
        f(&mut k);
        k
    }

    fn ids(keys: Vec<KeyRow>, kps: Vec<PrincipalRow>) -> Vec<&'static str> {
        let t = Tables {
            keys,
            key_principal_service: kps,
            key_operation_outcome: vec![OutcomeRow {
                key_arn: Some(K.into()),
                operation: "Decrypt".into(),
                outcome: "KMSInvalidStateException".into(),
                calls: 3,
            }],
            ..Tables::default()
        };
        findings(&t).iter().map(|f| f.id).collect()
    }

    fn principal(p: &str, failures: u64) -> PrincipalRow {
        PrincipalRow {
            key_arn: Some(K.into()),
            principal: p.into(),
            service: "direct".into(),
            calls: 10,
            failures,
            ..PrincipalRow::default()
        }
    }

    /// (what, keys, key_principal_service rows, the finding ids expected)
    type Case = (
        &'static str,
        Vec<KeyRow>,
        Vec<PrincipalRow>,
        Vec<&'static str>,
    );

    #[test]
    fn each_check_fires_on_its_evidence_only() {
        let own = "arn:aws:iam::111122223333:role/app";
        let cases: Vec<Case> = vec![
            (
                "a healthy key",
                vec![key(|_| {})],
                vec![principal(own, 4)],
                vec![],
            ),
            (
                "unused",
                vec![key(|k| k.last_crypto_use = None)],
                vec![],
                vec!["unused_keys"],
            ),
            (
                "unused but already pending deletion",
                vec![key(|k| {
                    k.last_crypto_use = None;
                    k.lifecycle_state = KeyState::PendingDeletion;
                    k.lifecycle_state_since = Some(60);
                })],
                vec![],
                vec![],
            ),
            (
                "rotation switched off",
                vec![key(|k| k.rotation_disabled_at = Some(2))],
                vec![],
                vec!["rotation_disabled"],
            ),
            (
                "rotation switched off then on",
                vec![key(|k| {
                    k.rotation_disabled_at = Some(2);
                    k.rotation_enabled_at = Some(3);
                })],
                vec![],
                vec![],
            ),
            (
                "no rotation evidence",
                vec![key(|k| k.rotation_enabled_at = None)],
                vec![],
                vec!["rotation_not_evidenced"],
            ),
            (
                "another account",
                vec![key(|_| {})],
                vec![principal("arn:aws:iam::444455556666:role/x", 0)],
                vec!["cross_account_use"],
            ),
            (
                "an account principal",
                vec![key(|_| {})],
                vec![principal("aws-account:444455556666", 0)],
                vec!["cross_account_use"],
            ),
            (
                "repeated failures",
                vec![key(|_| {})],
                vec![principal(own, REPEATED_FAILURES)],
                vec!["repeated_failures"],
            ),
            (
                "called after deletion was scheduled",
                vec![key(|k| {
                    k.lifecycle_state = KeyState::PendingDeletion;
                    k.lifecycle_state_since = Some(40);
                })],
                vec![],
                vec!["pending_deletion_in_use"],
            ),
            (
                "quiet after deletion was scheduled",
                vec![key(|k| {
                    k.lifecycle_state = KeyState::PendingDeletion;
                    k.lifecycle_state_since = Some(50);
                })],
                vec![],
                vec![],
            ),
        ];
        for (what, keys, kps, want) in cases {
            assert_eq!(ids(keys, kps), want, "{what}");
        }
    }
}
