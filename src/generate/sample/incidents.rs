//! The sample's scripted events: alias and key creation, `legacy-reports`' short life, and the
//! incidents each shipped rule must catch, at fixed times; plus the list of alerts they must raise.

use super::catalog::{ar_of, at, Catalog, KeyDef, ARS, DATA, EU, PARTNER, PROD, START};
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
    /// The alert's group: `(dimension, value)` in the rule's `group_by` order.
    pub group: Vec<(&'static str, String)>,
    /// Start of the rule's window containing the incident (unix seconds); for `unused-key`, the
    /// moment the key becomes due (30 days after its last use).
    pub window_start: i64,
    /// `window_start` is only approximately when the engine reports it (`unused-key`).
    pub approximate: bool,
}

impl Incident {
    /// `key=<arn>, principal=<arn>`: the rule's group dimensions as alerts name them.
    pub fn group(&self) -> String {
        let parts: Vec<String> = self.group.iter().map(|(d, v)| format!("{d}={v}")).collect();
        parts.join(", ")
    }
}

/// Keys that appear only in the incidents below, never in the background traffic.
pub(crate) mod extra_keys {
    use crate::generate::actors::Key;
    use crate::generate::sample::catalog::{PROD, US};

    /// Origin `EXTERNAL`: created, given imported material, then the material deleted.
    pub fn byok() -> Key {
        Key::new("byok-archive", PROD, US, None)
    }

    /// A multi-Region key (`mrk-` id), replicated to eu-west-1.
    pub fn global() -> Key {
        let mut k = Key::new("global-config", PROD, US, None);
        k.id = format!("mrk-{}", k.id.replace('-', ""));
        k.arn = format!("arn:aws:kms:{US}:{PROD}:key/{}", k.id);
        k
    }

    /// Created with the policy lockout safety check bypassed.
    pub fn break_glass() -> Key {
        Key::new("break-glass", PROD, US, None)
    }

    /// Deletion scheduled before the sample began; AWS KMS deletes it on day 3.
    pub fn retired() -> Key {
        Key::new("retired-2025", PROD, US, None)
    }
}

/// Every alert the committed sample must raise, in time order. Key ids do not depend on the seed.
pub fn sample_incidents() -> Vec<Incident> {
    let cat = super::catalog::build();
    let key = |n: &str| cat.keys[cat.key(n)].key.arn.clone();
    let who = |n: &str| Some(cat.callers[cat.caller(n)].principal());
    let w5 = |t: i64| t - t.rem_euclid(300);
    let inc = |rule, key: String, principal: Option<String>, window_start| {
        let mut group = vec![("key", key)];
        group.extend(principal.map(|p| ("principal", p)));
        Incident {
            rule,
            group,
            window_start,
            approximate: false,
        }
    };
    let other = |rule, group: Vec<(&'static str, String)>, window_start| Incident {
        rule,
        group,
        window_start,
        approximate: false,
    };
    let mut v = vec![
        Incident {
            rule: "unused-key",
            group: vec![("key", key("legacy-reports"))],
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
        inc(
            "key-deletion-cancelled",
            key("doomed"),
            who("kms-admin"),
            w5(DELETION_CANCELLED),
        ),
        inc(
            "key-material-imported",
            extra_keys::byok().arn,
            who("kms-admin"),
            w5(MATERIAL_IMPORTED),
        ),
        inc(
            "key-material-deleted",
            extra_keys::byok().arn,
            who("kms-admin"),
            w5(MATERIAL_DELETED),
        ),
        other(
            "key-replicated",
            vec![
                ("key", extra_keys::global().arn),
                ("principal", who("kms-admin").unwrap()),
                ("operation", "ReplicateKey".into()),
            ],
            w5(REPLICATED),
        ),
        other(
            "custom-key-store-changed",
            vec![
                ("account", PROD.into()),
                ("principal", who("kms-admin").unwrap()),
                ("operation", "CreateCustomKeyStore".into()),
            ],
            w5(KEY_STORE_CREATED),
        ),
        inc(
            "key-policy-public",
            key("shared-exports"),
            who("ops-alice"),
            w5(POLICY_PUBLIC),
        ),
        inc(
            "key-policy-changed",
            key("shared-exports"),
            who("ops-alice"),
            w5(POLICY_PUBLIC),
        ),
        inc(
            "key-policy-lockout-bypass",
            extra_keys::break_glass().arn,
            who("terraform-deployer"),
            w5(BREAK_GLASS_CREATED),
        ),
        inc(
            "grant-to-external-account",
            key("app-data"),
            who("ops-alice"),
            w5(EXTERNAL_GRANT),
        ),
        inc(
            "grant-created",
            key("app-data"),
            who("ops-alice"),
            w5(EXTERNAL_GRANT),
        ),
        other(
            "failed-calls-spray",
            vec![("principal", who("contractor-tool").unwrap())],
            w5(SPRAY),
        ),
        other(
            "account-failure-spike",
            vec![("account", DATA.into())],
            at(34, 12, 0, 0),
        ),
    ];
    v.sort_by_key(|i| i.window_start);
    v
}

const ROTATION_DISABLED: i64 = at(33, 10, 42, 13);
const POLICY_CHANGED: i64 = at(33, 10, 43, 55);
const GRANT_CREATED: i64 = at(33, 10, 52, 30);
const DOOMED_DECRYPT: i64 = at(33, 11, 10, 26);
const DELETION_CANCELLED: i64 = at(33, 11, 15, 20);
const BYOK_CREATED: i64 = at(33, 11, 20, 5);
const MATERIAL_IMPORTED: i64 = at(33, 11, 21, 40);
const GLOBAL_CREATED: i64 = at(33, 11, 24, 0);
const REPLICATED: i64 = at(33, 11, 25, 30);
const POLICY_PUBLIC: i64 = at(33, 11, 32, 45);
const BREAK_GLASS_CREATED: i64 = at(33, 11, 38, 15);
const KEY_STORE_CREATED: i64 = at(33, 11, 41, 0);
const MATERIAL_DELETED: i64 = at(33, 11, 47, 10);
const EXTERNAL_GRANT: i64 = at(33, 11, 52, 30);
/// `retired-2025` is deleted by AWS KMS (its deletion was scheduled in 2025).
pub(crate) const RETIRED_DELETED: i64 = at(3, 6, 4, 30);
/// contractor-tool's Decrypts fail on 12 keys, one every 8 seconds from here (day 34 06:03:10).
const SPRAY: i64 = at(34, 6, 3, 10);
/// An account outside the organization, given a grant.
const VENDOR: &str = "444455556666";

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

    /// Incident 9, day 33 11:15-11:55: what the public rule sets watch for. kms-admin cancels
    /// doomed's deletion, creates an EXTERNAL key, imports its material and (later) deletes the
    /// material, creates a multi-Region key and replicates it, creates a CloudHSM key store;
    /// ops-alice opens shared-exports' policy to everyone and grants a vendor account use of
    /// app-data; terraform-deployer creates a key bypassing the policy lockout check.
    fn breadth(&mut self) {
        let admin = self.caller("kms-admin");
        let alice = self.caller("ops-alice");
        let terraform = self.caller("terraform-deployer");
        self.call(
            DELETION_CANCELLED,
            Op::CancelKeyDeletion,
            "kms-admin",
            "doomed",
            None,
        );
        let byok = extra_keys::byok();
        let new = kms::NewKey {
            origin: "EXTERNAL",
            ..kms::NewKey::plain("Archive key with imported material")
        };
        let e = kms::create_key_with(&mut self.rng, BYOK_CREATED, admin, &byok, &new);
        self.put(0, e);
        let e = kms::import_key_material(&mut self.rng, MATERIAL_IMPORTED, admin, &byok);
        self.put(0, e);
        let call = Call::on(
            MATERIAL_DELETED,
            Op::DeleteImportedKeyMaterial,
            admin,
            &byok,
        );
        let e = kms::event(&mut self.rng, &call);
        self.put(0, e);
        let global = extra_keys::global();
        let new = kms::NewKey {
            multi_region: true,
            ..kms::NewKey::plain("Global configuration")
        };
        let e = kms::create_key_with(&mut self.rng, GLOBAL_CREATED, admin, &global, &new);
        self.put(0, e);
        let e = kms::replicate_key(&mut self.rng, REPLICATED, admin, &global, EU);
        self.put(0, e);
        let e = kms::create_custom_key_store(
            &mut self.rng,
            KEY_STORE_CREATED,
            admin,
            PROD,
            ARS[0].region,
            "hsm-payments",
        );
        self.put(0, e);
        let shared = self.key("shared-exports");
        let public = format!(
            r#"{{"Version":"2012-10-17","Id":"key-consolidated","Statement":[{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{PROD}:root"}},"Action":"kms:*","Resource":"*"}},{{"Sid":"Allow partners to read exports","Effect":"Allow","Principal":{{"AWS":"*"}},"Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"*"}}]}}"#
        );
        let e = kms::put_key_policy_doc(&mut self.rng, POLICY_PUBLIC, alice, &shared.key, public);
        self.put(shared.ar, e);
        let root_only = format!(
            r#"{{"Version":"2012-10-17","Id":"break-glass","Statement":[{{"Sid":"Break glass only","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{PROD}:role/terraform-deployer"}},"Action":"kms:*","Resource":"*"}}]}}"#
        );
        let new = kms::NewKey {
            bypass_lockout: true,
            policy: Some(root_only),
            ..kms::NewKey::plain("Break-glass key")
        };
        let glass = extra_keys::break_glass();
        let e = kms::create_key_with(&mut self.rng, BREAK_GLASS_CREATED, terraform, &glass, &new);
        self.put(0, e);
        let app = self.key("app-data");
        let grant = Call::on(EXTERNAL_GRANT, Op::CreateGrant, alice, &app.key);
        let grantee = format!("arn:aws:iam::{VENDOR}:role/vendor-sync");
        let e = kms::create_grant(
            &mut self.rng,
            &grant,
            grantee,
            &["Decrypt", "GenerateDataKey"],
            None,
        );
        self.put(app.ar, e);
    }

    /// Incident 10: `retired-2025`, whose deletion was scheduled in December 2025, is deleted by
    /// AWS KMS on day 3. It is never reported unused afterwards.
    fn deleted(&mut self) {
        let key = extra_keys::retired();
        let admin = self.caller("kms-admin");
        let e = kms::delete_key(&mut self.rng, RETIRED_DELETED, admin, &key);
        self.put(0, e);
    }

    /// Incident 11, day 34 06:03: contractor-tool's Decrypts fail on 12 keys in 90 seconds, once
    /// each: a stolen credential trying which keys it can use.
    fn spray(&mut self) {
        let keys: Vec<&'static str> = self
            .cat
            .keys
            .iter()
            .filter(|k| k.ar == 0 && k.key.name != "doomed")
            .map(|k| k.key.name)
            .take(12)
            .collect();
        assert_eq!(
            keys.len(),
            12,
            "the spray needs 12 keys in 111111111111 us-east-1"
        );
        for (i, name) in keys.into_iter().enumerate() {
            let failure = Some(Failure::AccessDenied);
            self.call(
                SPRAY + 8 * i as i64,
                Op::Decrypt,
                "contractor-tool",
                name,
                failure,
            );
        }
    }

    /// Incident 12, day 34 12:07-12:12: a bad deploy denies GenerateDataKey to every workload of
    /// 222222222222 us-east-1: 392 failures, 14 per principal and key, none standing out alone.
    fn account_failures(&mut self) {
        let callers = [
            "lake-reader",
            "athena-query",
            "glue-etl",
            "warehouse-app",
            "stream-processor",
            "ingest-fn",
            "backup-agent",
        ];
        let keys = ["data-lake", "warehouse", "orders-table", "lambda-env"];
        let start = at(34, 12, 7, 5);
        let total = (callers.len() * keys.len() * 14) as i64;
        let mut i = 0;
        for _ in 0..14 {
            for caller in callers {
                for key in keys {
                    let t = start + i * 290 / total;
                    self.call(
                        t,
                        Op::GenerateDataKey,
                        caller,
                        key,
                        Some(Failure::AccessDenied),
                    );
                    i += 1;
                }
            }
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
    script.breadth();
    script.deleted();
    script.spray();
    script.account_failures();
    script.late();
}
