//! Background traffic of the sample: every stream's key use, management calls and non-KMS calls,
//! kept below every rule's threshold by construction.
//!
//! Guarantees the incident design relies on (checked by `check.rs`):
//! - each (key, caller) stream makes a successful call in the first slot its key exists, so every
//!   principal of a key is known within the key's first 2 days;
//! - each key's first stream makes a successful call in the 06:00 slot every third day, so no key
//!   goes 7 days without use (except `legacy-reports`, used only by its incident events);
//! - at most one failed call per stream per slot; no lifecycle-changing call; `CreateGrant` only by
//!   AWS services;
//! - per-window counts stay far below the rules' minimum counts (rates in `catalog.rs`).

use super::catalog::{Catalog, ARS, START};
use super::plan::{Slot, SlotKind};
use crate::generate::actors::{KeyForm, Op};
use crate::generate::clock::{DAY, HOUR};
use crate::generate::json::obj;
use crate::generate::kms::{self, Call, Failure};
use crate::generate::other::{self, Scene};
use crate::generate::record::Event;
use crate::generate::rng::Rng;

/// Mean non-KMS calls per slot: quiet bursts, busy 5-minute files, extra/late files.
const NON_KMS_QUIET: f64 = 3.5;
const NON_KMS_BUSY: [f64; 6] = [7.5, 0.0, 4.0, 0.0, 0.0, 0.0];
const NON_KMS_EXTRA: f64 = 3.0;
/// Share of background calls naming their key only in `keyId` (incident calls always list it in
/// `resources`), so that about 10% of all KMS records have no `resources`.
const BARE_KEY_SHARE: f64 = 0.14;

/// Fills every slot with background events (unsorted; files sort by time).
pub(crate) fn fill(cat: &Catalog, slots: &mut [Slot], seed: u64) {
    let mut introduced = vec![false; cat.streams.len()];
    for (index, slot) in slots.iter_mut().enumerate() {
        let mut rng = Rng::derive(seed, "sample/slot", index as u64);
        match slot.kind {
            SlotKind::Quiet { hour } => {
                key_use(cat, slot, &mut rng, &mut introduced, Some(hour));
                management(cat, slot, &mut rng, hour == 0);
                non_kms(cat, slot, &mut rng, NON_KMS_QUIET);
            }
            SlotKind::Busy { .. } => {
                key_use(cat, slot, &mut rng, &mut introduced, None);
                busy_management(cat, slot, &mut rng);
                non_kms(cat, slot, &mut rng, NON_KMS_BUSY[slot.ar]);
            }
            SlotKind::Extra | SlotKind::Late => non_kms(cat, slot, &mut rng, NON_KMS_EXTRA),
        }
    }
}

/// A uniformly random second in `[lo, hi)`.
fn time_in(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    rng.range(lo, hi.max(lo + 1))
}

fn key_use(
    cat: &Catalog,
    slot: &mut Slot,
    rng: &mut Rng,
    introduced: &mut [bool],
    quiet_hour: Option<i64>,
) {
    for (si, stream) in cat.streams.iter().enumerate() {
        let kd = &cat.keys[stream.key];
        if kd.ar != slot.ar {
            continue;
        }
        let lo = slot.start.max(kd.from + 5);
        let hi = slot.end.min(kd.crypto_until);
        if lo >= hi
            || cat
                .hush
                .iter()
                .any(|&(k, from, to)| k == stream.key && slot.start < to && slot.end > from)
        {
            continue;
        }
        let primary = cat.streams.iter().position(|s| s.key == stream.key) == Some(si);
        let mut n = match (slot.kind, quiet_hour) {
            (SlotKind::Busy { period }, _) => rng
                .count(stream.busy[period])
                .max(stream.busy_floor[period]),
            _ => rng.count(stream.quiet),
        };
        // Forced successes: the first slot of every stream, and the 06:00 slot of each key's
        // primary stream.
        let mut forced = 0;
        if !introduced[si] {
            introduced[si] = true;
            forced = 1;
        }
        if primary && quiet_hour == Some(6) && (slot.start - START) / DAY % 3 == 0 {
            forced = 1;
        }
        n = n.max(forced);
        let caller = &cat.callers[stream.caller];
        let mut failed = false;
        for i in 0..n {
            let time = time_in(rng, lo, hi);
            let op = stream.mix.pick(rng);
            let mut call = Call::on(time, op, caller, &kd.key);
            if i >= forced {
                call.form = KeyForm::pick(rng, &kd.key, time >= START + HOUR, BARE_KEY_SHARE);
                if !failed && rng.chance(0.004) {
                    failed = true;
                    call.failure = Some(if rng.chance(0.6) {
                        Failure::AccessDenied
                    } else {
                        Failure::Throttling
                    });
                }
            }
            slot.events.push(kms::event(rng, &call));
        }
    }
}

/// Keys of the slot's account-region that exist at `t`.
fn keys_at(cat: &Catalog, ar: usize, t: i64) -> Vec<usize> {
    (0..cat.keys.len())
        .filter(|&k| cat.keys[k].ar == ar && cat.keys[k].from < t)
        .collect()
}

fn mgmt(
    cat: &Catalog,
    rng: &mut Rng,
    t: i64,
    op: Op,
    caller: usize,
    key: Option<usize>,
    ar: usize,
) -> Event {
    let a = ARS[ar];
    let form = match key {
        Some(k) => KeyForm::pick(rng, &cat.keys[k].key, t >= START + HOUR, BARE_KEY_SHARE),
        None => KeyForm::Resources,
    };
    let call = Call {
        time: t,
        op,
        caller: &cat.callers[caller],
        key: key.map(|k| &cat.keys[k].key),
        form,
        failure: None,
        region: a.region,
        recipient: a.account,
    };
    kms::event(rng, &call)
}

fn management(cat: &Catalog, slot: &mut Slot, rng: &mut Rng, daily: bool) {
    let ar = slot.ar;
    let account_index = ar / 2;
    let admin = cat.admin[ar];
    // Each time leaves room for up to 3 calls a second apart before the slot ends.
    let mut t = || time_in(rng, slot.start, slot.end - 3);
    let times: Vec<i64> = (0..12).map(|_| t()).collect();
    let keys = keys_at(cat, ar, slot.start);
    if keys.is_empty() {
        return;
    }
    // terraform plan: read the key, its policy and rotation status.
    if rng.chance(0.12) {
        let k = *rng.pick(&keys);
        for (i, op) in [Op::DescribeKey, Op::GetKeyPolicy, Op::GetKeyRotationStatus]
            .into_iter()
            .enumerate()
        {
            let e = mgmt(cat, rng, times[0] + i as i64, op, admin, Some(k), ar);
            slot.events.push(e);
        }
    }
    if rng.chance(0.1) {
        let e = mgmt(cat, rng, times[1], Op::ListAliases, admin, None, ar);
        slot.events.push(e);
    }
    if rng.chance(0.05) {
        let e = mgmt(cat, rng, times[2], Op::ListKeys, admin, None, ar);
        slot.events.push(e);
    }
    if rng.chance(0.03) {
        let k = *rng.pick(&keys);
        let e = mgmt(cat, rng, times[8], Op::ListGrants, admin, Some(k), ar);
        slot.events.push(e);
    }
    // AWS Config's daily inventory (once per account, from its us-east-1 slot).
    if daily && ar % 2 == 0 {
        let config = cat.config[account_index];
        let e = mgmt(cat, rng, times[3], Op::ListKeys, config, None, ar);
        slot.events.push(e);
        for (i, &k) in keys.iter().take(2).enumerate() {
            let e = mgmt(
                cat,
                rng,
                times[4] + i as i64,
                Op::DescribeKey,
                config,
                Some(k),
                ar,
            );
            slot.events.push(e);
        }
    }
    // The root user, rarely.
    if rng.chance(0.02) {
        let e = mgmt(
            cat,
            rng,
            times[5],
            Op::ListAliases,
            cat.root[account_index],
            None,
            ar,
        );
        slot.events.push(e);
    }
    // A CI job without permission, denied once.
    if ar == 0 && rng.chance(0.03) {
        let k = *rng.pick(&keys);
        let mut e = mgmt(
            cat,
            rng,
            times[6],
            Op::DescribeKey,
            cat.caller("ci-runner"),
            Some(k),
            ar,
        );
        e.error = Some((
            "AccessDeniedException",
            format!(
                "User: arn:aws:sts::{}:assumed-role/ci-runner/{} is not authorized to perform: kms:DescribeKey on resource: {} because no identity-based policy allows the kms:DescribeKey action",
                ARS[ar].account,
                cat.callers[cat.caller("ci-runner")].sessions.first().map_or("ci", |s| s.as_str()),
                cat.keys[k].key.arn
            ),
        ));
        slot.events.push(e);
    }
    // EBS volume creation: grants by EC2 on the EBS key (never a direct grant).
    if ar == 0 && rng.chance(0.15) {
        ebs_grant(cat, slot, rng, times[7]);
    }
}

fn busy_management(cat: &Catalog, slot: &mut Slot, rng: &mut Rng) {
    let ar = slot.ar;
    let keys = keys_at(cat, ar, slot.start);
    if !keys.is_empty() && rng.chance(0.15) {
        let k = *rng.pick(&keys);
        let t = time_in(rng, slot.start, slot.end);
        let e = mgmt(cat, rng, t, Op::DescribeKey, cat.admin[ar], Some(k), ar);
        slot.events.push(e);
    }
    if ar == 0 && rng.chance(0.1) {
        let t = time_in(rng, slot.start, slot.end);
        ebs_grant(cat, slot, rng, t);
    }
}

/// `CreateGrant` on the EBS key by EC2: via `ec2.amazonaws.com` or by `aws:ec2-infrastructure`
/// from `AWS Internal`.
fn ebs_grant(cat: &Catalog, slot: &mut Slot, rng: &mut Rng, t: i64) {
    let key = &cat.keys[cat.key("ebs-default")];
    let caller = if rng.chance(0.7) {
        cat.caller("platform-asg")
    } else {
        cat.caller("aws:ec2-infrastructure")
    };
    let call = Call::on(t, Op::CreateGrant, &cat.callers[caller], &key.key);
    let grantee = format!(
        "arn:aws:iam::{}:role/aws:ec2-infrastructure",
        key.key.account
    );
    let volume = format!("vol-0{}", rng.hex(16));
    let e = kms::create_grant(
        rng,
        &call,
        grantee,
        &[
            "Decrypt",
            "Encrypt",
            "GenerateDataKeyWithoutPlaintext",
            "ReEncryptFrom",
            "ReEncryptTo",
            "CreateGrant",
            "DescribeKey",
        ],
        Some(obj! { "aws:ebs:id" => volume }),
    );
    slot.events.push(e);
}

fn non_kms(cat: &Catalog, slot: &mut Slot, rng: &mut Rng, mean: f64) {
    let a = ARS[slot.ar];
    // A burst is a couple of workloads at a time, not the whole account.
    let all = cat.actors(slot.ar);
    let actors = [*rng.pick(&all), *rng.pick(&all)];
    for _ in 0..rng.count(mean) {
        let actor = &cat.callers[*rng.pick(&actors)];
        let scene = Scene {
            time: time_in(rng, slot.start, slot.end),
            account: a.account,
            region: a.region,
            actor,
            buckets: a.buckets,
        };
        slot.events.push(other::event(rng, &scene));
    }
}
