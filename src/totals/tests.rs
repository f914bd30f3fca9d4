use super::*;
use crate::decode::{KeyEffect, KeyRef};
use crate::rules::test_support::op;

const K: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";

fn at(time: i64, operation: &str) -> KmsCall {
    let mut c = op(operation, K, "arn:aws:iam::111122223333:role/admin");
    c.time = time;
    c
}

fn failed(mut c: KmsCall) -> KmsCall {
    c.error_code = Some("AccessDeniedException".into());
    c
}

fn facts(t: &Totals) -> &KeyFacts {
    &t.keys[K].facts
}

/// (calls in fold order as (time, operation), state at the end, since)
type Case = (&'static [(i64, &'static str)], KeyState, Option<i64>);

#[test]
fn lifecycle_state_is_the_latest_by_event_time_not_by_arrival() {
    let cases: &[Case] = &[
        (&[(5, "Decrypt")], KeyState::Enabled, None),
        (
            &[(1, "CreateKey"), (9, "DisableKey")],
            KeyState::Disabled,
            Some(9),
        ),
        (
            &[(9, "DisableKey"), (1, "CreateKey")],
            KeyState::Disabled,
            Some(9),
        ),
        (
            &[(2, "ScheduleKeyDeletion"), (3, "CancelKeyDeletion")],
            KeyState::Disabled,
            Some(3),
        ),
        (
            &[(2, "ScheduleKeyDeletion")],
            KeyState::PendingDeletion,
            Some(2),
        ),
        (
            &[(2, "ScheduleKeyDeletion"), (8, "DeleteKey")],
            KeyState::Deleted,
            Some(8),
        ),
        (
            &[(4, "DisableKey"), (6, "EnableKey")],
            KeyState::Enabled,
            Some(6),
        ),
    ];
    for (calls, state, since) in cases {
        let mut t = Totals::new(100);
        for (time, operation) in calls.iter() {
            t.record(&at(*time, operation), Some(K));
        }
        assert_eq!(
            (facts(&t).state, facts(&t).state_since),
            (*state, *since),
            "{calls:?}"
        );
    }
}

#[test]
fn failed_calls_change_nothing_but_are_logged() {
    let mut t = Totals::new(100);
    t.record(&failed(at(5, "ScheduleKeyDeletion")), Some(K));
    t.record(&failed(at(6, "PutKeyPolicy")), Some(K));
    assert_eq!(facts(&t), &KeyFacts::default());
    let outcomes: Vec<&str> = t.lifecycle.iter().map(|e| &*e.outcome).collect();
    assert_eq!(outcomes, ["AccessDeniedException", "AccessDeniedException"]);
    assert_eq!(t.keys[K].failures, 2);
}

#[test]
fn rotation_policy_and_grants_are_counted_with_times() {
    let mut t = Totals::new(100);
    for (time, operation) in [
        (10, "EnableKeyRotation"),
        (20, "DisableKeyRotation"),
        (15, "RotateKeyOnDemand"),
        (30, "RotateKey"),
        (31, "PutKeyPolicy"),
        (32, "CreateGrant"),
        (33, "CreateGrant"),
        (34, "RevokeGrant"),
        (35, "DescribeKey"),
    ] {
        t.record(&at(time, operation), Some(K));
    }
    let f = facts(&t);
    assert_eq!(
        (
            f.rotation_enabled,
            f.rotation_disabled,
            f.rotated,
            f.rotations
        ),
        (Some(10), Some(20), Some(30), 2)
    );
    assert_eq!(f.rotation_on(), Some(false));
    assert_eq!(
        (f.policy_changes, f.grants_created, f.grants_removed),
        (1, 2, 1)
    );
    assert_eq!(t.lifecycle.len(), 8, "DescribeKey is not a lifecycle call");
    assert_eq!((t.keys[K].crypto_calls, t.keys[K].management_calls), (0, 9));
}

#[test]
fn daily_counts_split_by_utc_day_and_class() {
    let mut t = Totals::new(100);
    t.record(&at(86_399, "Decrypt"), Some(K));
    t.record(&failed(at(86_400, "Decrypt")), Some(K));
    t.record(&at(86_401, "DescribeKey"), Some(K));
    let day = |d: i64| {
        let (_, _, c) = t
            .daily_rows()
            .find(|&(k, day, _)| k == K && day == d)
            .unwrap();
        (c.crypto_calls, c.management_calls, c.failures)
    };
    assert_eq!((day(0), day(1)), ((1, 0, 0), (1, 1, 1)));
}

#[test]
fn aliases_are_recorded_on_the_key_they_name() {
    let alias = "arn:aws:kms:us-east-1:111122223333:alias/app";
    let mut t = Totals::new(100);
    let mut create = at(1, "CreateAlias");
    create.effect = Some(KeyEffect::AliasSet {
        alias: alias.into(),
        key: K.into(),
    });
    t.record(&create, Some(K));
    let mut via = at(2, "Decrypt");
    via.key = Some(KeyRef::Alias(alias.into()));
    t.record(&via, Some(K));
    // An alias never resolved is its own "key": not an alias of anything.
    t.record(&via, Some(alias));
    assert_eq!(t.aliases.len(), 1);
    assert_eq!(t.alias_rows().collect::<Vec<_>>(), vec![([K, alias], 2)]);
}

#[test]
fn every_table_is_bounded_and_what_is_over_is_counted() {
    let mut t = Totals::new(2);
    for day in 0..3 {
        t.record(&at(day * 86_400, "CreateGrant"), Some(K));
    }
    assert_eq!(t.daily.len(), 2);
    assert_eq!(t.lifecycle.len(), 2);
    assert_eq!(t.overflow, 2, "one daily row and one lifecycle call over");
    assert_eq!(t.restore_limit(1), Some(2));
    assert_eq!(t.restore_limit(2), None);
}

#[test]
fn a_row_named_by_several_steps_keeps_each_steps_count() {
    use crate::decode::ServiceSource;
    let mut t = Totals::new(100);
    let mut c = at(1, "Decrypt");
    t.record(&c, Some(K));
    t.record(&c, Some(K));
    c.service_source = ServiceSource::ALL[2];
    t.record(&failed(c), Some(K));
    let rows: Vec<_> = t.kps_rows().collect();
    assert_eq!(rows.len(), 1);
    let (_, counts) = &rows[0];
    let mut want = [0; 6];
    want[at(1, "Decrypt").service_source as usize] += 2;
    want[2] += 1;
    assert_eq!(
        (counts.calls, counts.failures, counts.by_source()),
        (3, 1, want)
    );
}

#[test]
fn saved_totals_round_trip_and_bad_ids_are_refused() {
    let mut t = Totals::new(100);
    t.record(&at(1, "Decrypt"), Some(K));
    t.record(&at(86_401, "CreateGrant"), Some(K));
    let json = serde_json::to_string(&t).unwrap();
    let back: Totals = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    assert_eq!(back.kps_rows().count(), 1);
    // Point a row at a name the table does not hold.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["kps"][0][1][0][0] = 99.into();
    let err = serde_json::from_value::<Totals>(v).unwrap_err();
    assert!(
        err.to_string().contains("totals.kps[0] names an id"),
        "{err}"
    );
}

#[test]
fn key_principal_service_rows_are_capped_and_saved_in_id_order() {
    let mut t = Totals::new(2);
    for p in ["role/c", "role/a", "role/b"] {
        let mut c = at(1, "Decrypt");
        c.principal = p.into();
        t.record(&c, Some(K));
        t.record(&c, Some(K));
    }
    assert_eq!((t.kps.len, t.kps_rows().count()), (2, 2));
    assert_eq!(t.overflow, 2, "both calls of the third row are over");
    let mut principals: Vec<&str> = t.kps_rows().map(|([_, p, _], _)| p).collect();
    principals.sort_unstable();
    assert_eq!(principals, ["role/a", "role/c"]);
    let v = serde_json::to_value(&t).unwrap();
    // One key, its rows in (principal, service) id order.
    assert_eq!(v["kps"].as_array().map(Vec::len), Some(1));
    let ids: Vec<(u64, u64)> = v["kps"][0][1]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let back: Totals = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(back.kps.len, 2);
    // Rows out of order, and a key twice, are refused.
    let mut swapped = v.clone();
    let rows = swapped["kps"][0][1].as_array_mut().unwrap();
    rows.swap(0, 1);
    let err = serde_json::from_value::<Totals>(swapped).unwrap_err();
    assert!(err.to_string().contains("out of order or twice"), "{err}");
    let mut twice = v;
    let entry = twice["kps"][0].clone();
    twice["kps"].as_array_mut().unwrap().push(entry);
    let err = serde_json::from_value::<Totals>(twice).unwrap_err();
    assert!(err.to_string().contains("totals.kps[1] repeats"), "{err}");
}

#[test]
fn key_principal_service_rows_sorted_one_key_at_a_time_are_in_name_order() {
    let mut t = Totals::new(1000);
    // Keys, principals and services interned in an order unlike their names', with prefixes.
    let keys = [None, Some("k-b"), Some("k"), Some("k-a"), Some("kk")];
    let principals = ["p2", "p", "p10", "p1"];
    let services = ["s3", "ebs", "direct"];
    for (i, key) in keys.iter().enumerate() {
        for (j, p) in principals.iter().enumerate().skip(i % 2) {
            let mut c = op("Decrypt", key.unwrap_or(""), p);
            c.service = services[(i + j) % services.len()].into();
            t.record(&c, *key);
        }
    }
    let mut want: Vec<_> = t.kps_rows().map(|(names, c)| (names, c.calls)).collect();
    want.sort_unstable();
    let got: Vec<_> = (t.kps_rows_sorted())
        .map(|(names, c)| (names, c.calls))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 18);
}

#[test]
fn a_row_is_twenty_four_bytes_and_one_that_outgrows_it_keeps_exact_counts() {
    assert_eq!(std::mem::size_of::<KpsRow>(), 24);
    let epoch = KpsRow::EPOCH;
    let mut t = Totals::new(100);
    let early = at(epoch, "Decrypt");
    let late = at(epoch + i64::from(u32::MAX) + 10, "Decrypt");
    let mut other = at(epoch + i64::from(u32::MAX), "Decrypt");
    other.principal = "arn:aws:iam::111122223333:role/other".into();
    t.record(&early, Some(K));
    t.record(&other, Some(K));
    assert!(t.kps.wide.is_empty(), "both rows fit");
    t.record(&failed(late), Some(K));
    assert_eq!(t.kps.wide.len(), 1, "a span over 2^32 seconds");
    let mut rows: Vec<_> = t.kps_rows().map(|([_, p, _], c)| (p, c)).collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let c = &rows[0].1;
    assert_eq!(rows[0].0, "arn:aws:iam::111122223333:role/admin");
    assert_eq!(
        (c.calls, c.failures, c.first_seen, c.last_seen),
        (2, 1, epoch, epoch + i64::from(u32::MAX) + 10)
    );
    assert_eq!(
        (rows[1].1.calls, rows[1].1.first_seen),
        (1, epoch + i64::from(u32::MAX))
    );
    // A first call before 2000 or past 2136 makes a row wide, with its exact times.
    let mut old = Totals::new(100);
    old.record(&at(epoch - 1, "Decrypt"), Some(K));
    old.record(&at(-5, "Decrypt"), Some(K));
    let mut far = at(epoch + i64::from(u32::MAX) + 1, "Decrypt");
    far.principal = "arn:aws:iam::111122223333:role/other".into();
    old.record(&far, Some(K));
    assert_eq!(old.kps.wide.len(), 2);
    let mut times: Vec<_> = (old.kps_rows())
        .map(|(_, c)| (c.first_seen, c.last_seen, c.calls))
        .collect();
    times.sort_unstable();
    assert_eq!(
        times,
        [
            (-5, epoch - 1, 2),
            (
                epoch + i64::from(u32::MAX) + 1,
                epoch + i64::from(u32::MAX) + 1,
                1
            )
        ]
    );
    // Saved and loaded, the wide row is wide again and its counts the same.
    let json = serde_json::to_string(&t).unwrap();
    let back: Totals = serde_json::from_str(&json).unwrap();
    assert_eq!(back.kps.wide.len(), 1);
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    // Going on after the load adds to the wide row.
    let mut back = back;
    back.record(&at(7, "Decrypt"), Some(K));
    let calls: u64 = back.kps_rows().map(|(_, c)| c.calls).sum();
    assert_eq!(calls, 4);
    // Failures from 2^24 make a row wide too; just under, it stays compact.
    let mut two = Totals::new(100);
    two.record(&early, Some(K));
    two.record(&other, Some(K));
    let mut v = serde_json::to_value(&two).unwrap();
    let rows = v["kps"][0][1].as_array_mut().unwrap();
    for (row, failures) in rows.iter_mut().zip([1u64 << 24, (1 << 24) - 1]) {
        row[2]["failures"] = failures.into();
        row[2]["calls"] = failures.into();
    }
    let many: Totals = serde_json::from_value(v).unwrap();
    assert_eq!(many.kps.wide.len(), 1);
    let mut failures: Vec<u64> = many.kps_rows().map(|(_, c)| c.failures).collect();
    failures.sort_unstable();
    assert_eq!(failures, [(1 << 24) - 1, 1 << 24]);
    // So do calls past 2^32, with few failures.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for row in v["kps"][0][1].as_array_mut().unwrap() {
        row[2]["calls"] = (u64::from(u32::MAX) + 2).into();
    }
    let busy: Totals = serde_json::from_value(v).unwrap();
    assert_eq!(busy.kps.wide.len(), 2);
    assert!(busy
        .kps_rows()
        .all(|(_, c)| c.calls == u64::from(u32::MAX) + 2));
}

#[test]
fn calls_by_operation_are_kept_sorted_and_saved_as_the_map_they_replaced() {
    let mut ops = OpCounts::default();
    for o in [
        "Encrypt",
        "Decrypt",
        "Encrypt",
        "CreateGrant",
        "Decrypt",
        "Encrypt",
    ] {
        ops.bump(o);
    }
    let got: Vec<_> = ops.iter().collect();
    assert_eq!(got, [("CreateGrant", 1), ("Decrypt", 2), ("Encrypt", 3)]);
    let map: BTreeMap<&str, u64> = got.iter().copied().collect();
    let json = serde_json::to_string(&ops).unwrap();
    assert_eq!(json, serde_json::to_string(&map).unwrap());
    assert_eq!(json, r#"{"CreateGrant":1,"Decrypt":2,"Encrypt":3}"#);
    let back: OpCounts =
        serde_json::from_str(r#"{"Encrypt":3,"CreateGrant":1,"Decrypt":2}"#).unwrap();
    assert_eq!(back, ops);
    let bytes = rmp_serde::to_vec(&ops).unwrap();
    assert_eq!(rmp_serde::from_slice::<OpCounts>(&bytes).unwrap(), ops);
}
