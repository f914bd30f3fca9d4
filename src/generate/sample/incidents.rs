//! The sample's scripted events: alias and key creation, `legacy-reports`' short life, and the
//! incidents each shipped rule must catch, at fixed times; plus the list of alerts they must raise.

use super::catalog::{ar_of, at, Catalog, KeyDef, ARS, PARTNER, PROD, START};
use super::plan::{find, Slot, SlotKind, LATE};
use crate::generate::actors::{Caller, Op};
use crate::generate::kms::{self, Call, Failure};
use crate::generate::other::{s3_object, Scene};
use crate::generate::record::{role_principal_id, Event, Identity};
use crate::generate::rng::Rng;

/// `reports-2026` is created by `CreateKey` on day 20 at 12:03:15.
pub(crate) const REPORTS_CREATED: i64 = at(20, 12, 3, 15);
/// `ml-features` (222222222222 eu-west-1) is created on day 10 at 06:17:20.
pub(crate) const ML_CREATED: i64 = at(10, 6, 17, 20);
/// Incident 6: deletion of `doomed` scheduled.
pub(crate) const DOOMED_SCHEDULED: i64 = at(33, 10, 31, 7);
/// Incident 6: `ledger` disabled.
pub(crate) const LEDGER_DISABLED: i64 = at(33, 10, 37, 41);
/// Last successful use of `legacy-reports` (incident 5 fires 30 days later).
pub(crate) const LEGACY_LAST_USE: i64 = at(0, 5, 42, 17);
const LEGACY_USES: [i64; 4] = [
    at(0, 0, 12, 31),
    at(0, 1, 47, 9),
    at(0, 3, 5, 44),
    LEGACY_LAST_USE,
];
/// Incident 7: partner-etl's cross-account Decrypt.
pub(crate) const CROSS_ACCOUNT: i64 = at(33, 10, 45, 38);
/// Incident 8: contractor-tool's first Decrypts.
const CONTRACTOR: [i64; 3] = [at(32, 15, 0, 12), at(32, 15, 1, 40), at(32, 15, 3, 5)];

/// An alert the sample is built to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Rule id (`rules/*.toml`).
    pub rule: &'static str,
    /// Key ARN.
    pub key: String,
    /// Principal, for rules that group by it (role ARN, user ARN, ...).
    pub principal: Option<String>,
    /// Start of the rule's window containing the incident (unix seconds); for `unused-key`, the
    /// moment the key becomes due (30 days after its last use).
    pub window_start: i64,
    /// `window_start` is only approximately when the engine reports it (`unused-key`).
    pub approximate: bool,
}

impl Incident {
    /// `key=<arn>, principal=<arn>` (only the rule's group dimensions).
    pub fn group(&self) -> String {
        match &self.principal {
            Some(p) => format!("key={}, principal={p}", self.key),
            None => format!("key={}", self.key),
        }
    }
}

/// Every alert the committed sample must raise, in time order. Key ids do not depend on the seed.
pub fn sample_incidents() -> Vec<Incident> {
    let cat = super::catalog::build();
    let key = |n: &str| cat.keys[cat.key(n)].key.arn.clone();
    let who = |n: &str| Some(cat.callers[cat.caller(n)].principal());
    let w5 = |t: i64| t - t.rem_euclid(300);
    let inc = |rule, key, principal, window_start| Incident {
        rule,
        key,
        principal,
        window_start,
        approximate: false,
    };
    let mut v = vec![
        Incident {
            rule: "unused-key",
            key: key("legacy-reports"),
            principal: None,
            window_start: LEGACY_LAST_USE + 30 * 86_400,
            approximate: true,
        },
        inc(
            "key-request-volume",
            key("s3-uploads"),
            None,
            at(31, 10, 0, 0),
        ),
        inc(
            "failed-decrypts",
            key("payments"),
            who("payments-api"),
            at(31, 11, 0, 0),
        ),
        inc(
            "decrypt-spike-key",
            key("customer-pii"),
            None,
            at(31, 12, 0, 0),
        ),
        inc(
            "decrypt-spike-key-principal",
            key("customer-pii"),
            who("analytics-etl"),
            at(31, 12, 0, 0),
        ),
        inc(
            "new-principal-on-key",
            key("app-data"),
            who("contractor-tool"),
            w5(CONTRACTOR[0]),
        ),
        inc(
            "decrypt-encrypt-ratio",
            key("data-lake"),
            None,
            at(33, 9, 0, 0),
        ),
        inc(
            "key-deletion-scheduled",
            key("doomed"),
            who("kms-admin"),
            w5(DOOMED_SCHEDULED),
        ),
        inc(
            "key-disabled",
            key("ledger"),
            who("kms-admin"),
            w5(LEDGER_DISABLED),
        ),
        inc(
            "key-rotation-disabled",
            key("billing"),
            who("kms-admin"),
            w5(ROTATION_DISABLED),
        ),
        inc(
            "key-policy-changed",
            key("billing"),
            who("kms-admin"),
            w5(POLICY_CHANGED),
        ),
        inc(
            "cross-account-key-use",
            key("shared-exports"),
            who("partner-etl"),
            w5(CROSS_ACCOUNT),
        ),
        inc(
            "new-principal-on-key",
            key("shared-exports"),
            who("partner-etl"),
            w5(CROSS_ACCOUNT),
        ),
        inc(
            "grant-created",
            key("app-data"),
            who("ops-alice"),
            w5(GRANT_CREATED),
        ),
        inc(
            "call-on-key-pending-deletion",
            key("doomed"),
            who("orders-api"),
            w5(DOOMED_DECRYPT),
        ),
    ];
    v.sort_by_key(|i| i.window_start);
    v
}

const ROTATION_DISABLED: i64 = at(33, 10, 42, 13);
const POLICY_CHANGED: i64 = at(33, 10, 43, 55);
const GRANT_CREATED: i64 = at(33, 10, 52, 30);
const DOOMED_DECRYPT: i64 = at(33, 11, 10, 26);

/// Scripted events being placed into the plan's slots.
struct Script<'a> {
    cat: &'a Catalog,
    slots: &'a mut [Slot],
    rng: Rng,
}

impl<'a> Script<'a> {
    fn caller(&self, name: &str) -> &'a Caller {
        &self.cat.callers[self.cat.caller(name)]
    }

    fn key(&self, name: &str) -> &'a KeyDef {
        &self.cat.keys[self.cat.key(name)]
    }

    /// Puts `e` into the slot of account-region `ar` that covers its time.
    fn put(&mut self, ar: usize, e: Event) {
        match find(self.slots, ar, e.time) {
            Some(slot) => slot.events.push(e),
            None => panic!(
                "sample plan has no slot for account-region {ar} at {}",
                e.time
            ),
        }
    }

    /// `op` by `caller` on `key` at `t` (resources form, logged in the key's account), possibly
    /// failing, put into the key's file.
    fn call(&mut self, t: i64, op: Op, caller: &str, key: &str, failure: Option<Failure>) {
        let (caller, kd) = (self.caller(caller), self.key(key));
        let mut call = Call::on(t, op, caller, &kd.key);
        call.failure = failure;
        let e = kms::event(&mut self.rng, &call);
        self.put(kd.ar, e);
    }

    /// An S3 data event by `caller` in `bucket`, in the account-region of `key`.
    fn s3(&mut self, t: i64, caller: &str, key: &str, bucket: &'static str, put: bool) {
        let kd = self.key(key);
        let scene = Scene {
            time: t,
            account: kd.key.account,
            region: kd.key.region,
            actor: self.caller(caller),
            buckets: &[bucket],
        };
        let e = s3_object(&mut self.rng, &scene, put);
        self.put(kd.ar, e);
    }

    /// Aliases at the start of each account-region's first file; keys created during the sample.
    fn setup(&mut self) {
        for ar in 0..ARS.len() {
            let first = self
                .slots
                .iter()
                .filter(|s| s.ar == ar)
                .map(|s| s.start)
                .min()
                .unwrap_or(START);
            let admin = &self.cat.callers[self.cat.admin[ar]];
            let keys = self
                .cat
                .keys
                .iter()
                .filter(|k| k.ar == ar && k.key.alias.is_some());
            for (i, k) in keys.enumerate() {
                let e = kms::create_alias(&mut self.rng, first + 2 + 3 * i as i64, admin, &k.key);
                self.put(ar, e);
            }
        }
        for (name, t, description) in [
            ("reports-2026", REPORTS_CREATED, "Reporting exports 2026"),
            ("ml-features", ML_CREATED, "ML feature store (eu)"),
        ] {
            let k = self.key(name);
            let admin = &self.cat.callers[self.cat.admin[k.ar]];
            let e = kms::create_key(&mut self.rng, t, admin, &k.key, description);
            self.put(k.ar, e);
        }
    }

    /// Incident 5: legacy-reports: four Decrypts on day 0, then only DescribeKey every 3 days.
    fn unused(&mut self) {
        for t in LEGACY_USES {
            self.call(t, Op::Decrypt, "legacy-reporting", "legacy-reports", None);
        }
        for day in (3..=33).step_by(3) {
            let t = at(day, 12, 4, 10);
            self.call(
                t,
                Op::DescribeKey,
                "terraform-deployer",
                "legacy-reports",
                None,
            );
        }
    }

    /// Incident 1: 1500 GenerateDataKey on s3-uploads by S3 for media-ingest, day 31 10:00-10:05;
    /// each is S3 encrypting an uploaded object, so the PutObject data events come along.
    fn volume(&mut self) {
        for i in 0..1500 {
            let t = at(31, 10, 0, 0) + i * 300 / 1500;
            self.s3(t, "media-ingest", "s3-uploads", "prod-media-uploads", true);
            self.call(t, Op::GenerateDataKey, "media-ingest", "s3-uploads", None);
        }
    }

    /// Incident 2: payments-api fails 8 Decrypts on payments, day 31 11:00-11:05.
    fn failed_decrypts(&mut self) {
        for i in 0..8 {
            let t = at(31, 11, 0, 40) + i * 30;
            let failure = if i % 3 == 2 {
                Failure::InvalidCiphertext
            } else {
                Failure::AccessDenied
            };
            self.call(t, Op::Decrypt, "payments-api", "payments", Some(failure));
        }
    }

    /// Incident 3: analytics-etl decrypts 400 times with customer-pii, day 31 12:00-12:05.
    fn spike(&mut self) {
        for i in 0..400 {
            let t = at(31, 12, 0, 0) + i * 299 / 400;
            self.call(t, Op::Decrypt, "analytics-etl", "customer-pii", None);
        }
    }

    /// Incident 4: data-lake, day 33 09:00-10:00: 85 Decrypts per 5 minutes by three established
    /// principals (28 + 28 + 29), each reading an object of the curated zone; 5 GenerateDataKey in
    /// the hour.
    fn ratio(&mut self) {
        for w in 0..12 {
            let w0 = at(33, 9, 0, 0) + w * 300;
            for (name, n) in [("lake-reader", 28), ("athena-query", 28), ("glue-etl", 29)] {
                for i in 0..n {
                    let t = w0 + 3 + i * 296 / n;
                    self.s3(t, name, "data-lake", "data-lake-curated", false);
                    self.call(t, Op::Decrypt, name, "data-lake", None);
                }
            }
            if [0, 3, 6, 9, 11].contains(&w) {
                self.call(w0 + 150, Op::GenerateDataKey, "glue-etl", "data-lake", None);
            }
        }
    }

    /// Incident 6: Key lifecycle on day 33 by kms-admin, ops-alice's direct grant, and a call on
    /// the key pending deletion.
    fn lifecycle(&mut self) {
        let admin = self.caller("kms-admin");
        let (doomed, billing) = (self.key("doomed"), self.key("billing"));
        let e = kms::schedule_deletion(&mut self.rng, DOOMED_SCHEDULED, admin, &doomed.key);
        self.put(0, e);
        self.call(LEDGER_DISABLED, Op::DisableKey, "kms-admin", "ledger", None);
        self.call(
            ROTATION_DISABLED,
            Op::DisableKeyRotation,
            "kms-admin",
            "billing",
            None,
        );
        let partner = format!("arn:aws:iam::{PARTNER}:role/partner-etl");
        let e = kms::put_key_policy(&mut self.rng, POLICY_CHANGED, admin, &billing.key, &partner);
        self.put(0, e);
        let app = self.key("app-data");
        let grant = Call::on(
            GRANT_CREATED,
            Op::CreateGrant,
            self.caller("ops-alice"),
            &app.key,
        );
        let grantee = format!("arn:aws:iam::{PROD}:role/contractor-tool");
        let e = kms::create_grant(
            &mut self.rng,
            &grant,
            grantee,
            &["Decrypt", "DescribeKey"],
            None,
        );
        self.put(0, e);
        let failure = Some(Failure::InvalidState);
        self.call(DOOMED_DECRYPT, Op::Decrypt, "orders-api", "doomed", failure);
    }

    /// Incident 7: partner-etl (333333333333) decrypts with shared-exports (111111111111). Logged
    /// in both accounts: different eventID and recipient, one sharedEventID; the owner's copy names
    /// the caller as `AWSAccount`.
    fn cross_account(&mut self) {
        let shared = self.key("shared-exports");
        let mut call = Call::on(
            CROSS_ACCOUNT,
            Op::Decrypt,
            self.caller("partner-etl"),
            &shared.key,
        );
        call.recipient = PARTNER;
        let mut caller_copy = kms::event(&mut self.rng, &call);
        caller_copy.shared_event_id = Some(self.rng.uuid());
        let mut owner_copy = caller_copy.clone();
        owner_copy.recipient = PROD.to_string();
        owner_copy.event_id = self.rng.uuid();
        if let Identity::AssumedRole { session, .. } = &caller_copy.identity {
            owner_copy.identity = Identity::AwsAccount {
                account: PARTNER.to_string(),
                principal_id: format!("{}:{session}", role_principal_id(PARTNER, "partner-etl")),
            };
        }
        self.put(ar_of(PARTNER, shared.key.region), caller_copy);
        self.put(shared.ar, owner_copy);
    }

    /// Incident 8: contractor-tool's first Decrypts with app-data (known since day 0).
    fn new_principal(&mut self) {
        for t in CONTRACTOR {
            self.call(t, Op::Decrypt, "contractor-tool", "app-data", None);
        }
    }

    /// The late file: three DescribeKey calls besides its non-KMS background.
    fn late(&mut self) {
        let terraform = self.caller("terraform-deployer");
        for (i, name) in ["eu-app-data", "eu-rds", "eu-app-data"]
            .into_iter()
            .enumerate()
        {
            let k = self.key(name);
            let call = Call::on(
                LATE.1 + 70 + 80 * i as i64,
                Op::DescribeKey,
                terraform,
                &k.key,
            );
            let e = kms::event(&mut self.rng, &call);
            if let Some(slot) = self
                .slots
                .iter_mut()
                .find(|s| s.ar == LATE.0 && s.kind == SlotKind::Late)
            {
                slot.events.push(e);
            }
        }
    }
}

/// Adds every scripted event to its slot.
pub(crate) fn inject(cat: &Catalog, slots: &mut [Slot], seed: u64) {
    let mut script = Script {
        cat,
        slots,
        rng: Rng::derive(seed, "sample/incidents", 0),
    };
    script.setup();
    script.unused();
    script.volume();
    script.failed_decrypts();
    script.spike();
    script.ratio();
    script.lifecycle();
    script.cross_account();
    script.new_principal();
    script.late();
}
