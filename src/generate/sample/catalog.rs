//! The sample's world: accounts and regions, keys, callers, and which caller uses which key how
//! often. Nothing here depends on the seed.

use xxhash_rust::xxh3::xxh3_128;

use crate::generate::actors::{
    Caller, Channel, Ctx, Key, Mix, Principal, UA_BOTO, UA_CLI, UA_GO, UA_JAVA, UA_NODE,
    UA_TERRAFORM,
};
use crate::generate::clock::{DAY, HOUR, MINUTE};

pub(crate) const PROD: &str = "111111111111";
pub(crate) const DATA: &str = "222222222222";
pub(crate) const PARTNER: &str = "333333333333";
pub(crate) const US: &str = "us-east-1";
pub(crate) const EU: &str = "eu-west-1";

/// 2026-01-01T00:00:00Z, whatever the seed.
pub(crate) const START: i64 = 1_767_225_600;
pub(crate) const DAYS: i64 = 35;
/// End of the sample (exclusive); the self-check measures unused keys up to it.
#[cfg(test)]
pub(crate) const END: i64 = START + DAYS * DAY;

/// `START + day + h:m:s`.
pub(crate) const fn at(day: i64, h: i64, m: i64, s: i64) -> i64 {
    START + day * DAY + h * HOUR + m * MINUTE + s
}

/// One account and region: one stream of log files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ar {
    pub account: &'static str,
    pub region: &'static str,
    /// Quiet-day activity starts this long after 00:00, 06:00, 12:00 and 18:00.
    pub slot_offset: i64,
    /// Digests end this long after each full hour.
    pub digest_offset: i64,
    /// Gets a file every 5 minutes during the busy periods.
    pub busy: bool,
    pub buckets: &'static [&'static str],
}

pub(crate) const ARS: [Ar; 6] = [
    Ar {
        account: PROD,
        region: US,
        slot_offset: 3 * MINUTE,
        digest_offset: 41 * MINUTE + 17,
        busy: true,
        buckets: &["prod-media-uploads", "prod-app-assets", "prod-exports"],
    },
    Ar {
        account: PROD,
        region: EU,
        slot_offset: 11 * MINUTE,
        digest_offset: 12 * MINUTE + 5,
        busy: false,
        buckets: &["prod-eu-app-assets"],
    },
    Ar {
        account: DATA,
        region: US,
        slot_offset: 7 * MINUTE,
        digest_offset: 33 * MINUTE + 50,
        busy: true,
        buckets: &["data-lake-raw", "data-lake-curated"],
    },
    Ar {
        account: DATA,
        region: EU,
        slot_offset: 17 * MINUTE,
        digest_offset: 4 * MINUTE + 44,
        busy: false,
        buckets: &["ml-features-eu"],
    },
    Ar {
        account: PARTNER,
        region: US,
        slot_offset: 23 * MINUTE,
        digest_offset: 52 * MINUTE + 9,
        busy: false,
        buckets: &["partner-inbound"],
    },
    Ar {
        account: PARTNER,
        region: EU,
        slot_offset: 29 * MINUTE,
        digest_offset: 27 * MINUTE + 31,
        busy: false,
        buckets: &["partner-eu-inbound"],
    },
];

/// Busy periods `(day, from hour, to hour)` of the busy account-regions: a file every 5 minutes.
pub(crate) const BUSY: [(i64, i64, i64); 3] = [(0, 0, 6), (31, 8, 14), (33, 8, 12)];

/// Index of `(account, region)` in [`ARS`].
pub(crate) fn ar_of(account: &str, region: &str) -> usize {
    ARS.iter()
        .position(|a| a.account == account && a.region == region)
        .unwrap_or(0)
}

/// A key of the sample and its life.
#[derive(Debug, Clone)]
pub(crate) struct KeyDef {
    pub key: Key,
    pub ar: usize,
    /// First appearance: [`START`], or the time of its `CreateKey`.
    pub from: i64,
    /// No successful cryptographic use from this time on (deletion scheduled, disabled).
    pub crypto_until: i64,
}

/// One caller's use of one key.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub key: usize,
    pub caller: usize,
    pub mix: Mix,
    /// Mean calls per 5-minute file in each busy period (see [`BUSY`]).
    pub busy: [f64; 3],
    /// Mean calls per quiet-day slot.
    pub quiet: f64,
    /// Minimum calls per window in each busy period (keeps spike baselines populated).
    pub busy_floor: [u32; 3],
}

#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub keys: Vec<KeyDef>,
    pub callers: Vec<Caller>,
    pub caller_names: Vec<&'static str>,
    pub streams: Vec<Stream>,
    /// Per account-region: the caller running terraform / admin tooling.
    pub admin: [usize; 6],
    /// Per account: AWS Config's service-linked role.
    pub config: [usize; 3],
    /// Per account: the root user.
    pub root: [usize; 3],
    /// Background crypto on a key is suppressed in `[from, to)` (incident hours).
    pub hush: Vec<(usize, i64, i64)>,
}

impl Catalog {
    pub fn key(&self, name: &str) -> usize {
        self.keys
            .iter()
            .position(|k| k.key.name == name)
            .unwrap_or_else(|| panic!("sample catalog has no key {name}"))
    }

    pub fn caller(&self, name: &str) -> usize {
        self.caller_names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("sample catalog has no caller {name}"))
    }

    /// Callers of non-KMS calls in an account-region: the key users there that are IAM identities.
    pub fn actors(&self, ar: usize) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for s in &self.streams {
            if self.keys[s.key].ar == ar
                && !matches!(self.callers[s.caller].who, Principal::Service(_))
                && !out.contains(&s.caller)
            {
                out.push(s.caller);
            }
        }
        out.push(self.admin[ar]);
        out
    }
}

/// Session names: ECS task ids, instance ids, people, or the role name for functions.
fn sessions_for(name: &str, who: &Principal) -> Vec<String> {
    let h = |i: u32| xxh3_128(format!("{name}/{i}").as_bytes());
    match who {
        Principal::Role { name: role, .. } if role.starts_with("aws:ec2") => (0..3)
            .map(|i| format!("i-0{:016x}", h(i) as u64 >> 4))
            .collect(),
        Principal::Role { name: role, .. } if role.starts_with("AWSServiceRole") => {
            vec!["AWSConfig-Describe".into()]
        }
        Principal::Role { name: role, .. }
            if role.ends_with("-admin") || role.starts_with("terraform") =>
        {
            vec!["jsmith".into(), "mlopez".into(), "terraform-ci".into()]
        }
        Principal::Role { .. } if name.contains("fn") || name.contains("worker") => {
            vec![name.to_string()]
        }
        Principal::Role { .. } => (0..3)
            .map(|i| format!("{name}-{:08x}", h(i) as u32))
            .collect(),
        _ => Vec::new(),
    }
}

const fn role(account: &'static str, name: &'static str) -> Principal {
    Principal::Role { account, name }
}

const fn user(account: &'static str, name: &'static str) -> Principal {
    Principal::User { account, name }
}

const fn ip(ips: &'static [&'static str], agent: &'static str) -> Channel {
    Channel::Direct { ips, agent }
}

const fn internal(ctx: Ctx) -> Channel {
    Channel::Internal(ctx)
}

const fn via(service: &'static str, ctx: Option<Ctx>) -> Channel {
    Channel::Via { service, ctx }
}

/// Every caller: its name in this catalog, its principal, and how it reaches KMS.
#[rustfmt::skip]
const CALLERS: &[(&str, Principal, Channel)] = &[
    // 111111111111 (prod), us-east-1
    ("orders-api", role(PROD, "orders-api"), ip(&["10.20.1.17", "10.20.2.41", "10.20.3.9"], UA_JAVA)),
    ("orders-api/secretsmanager", role(PROD, "orders-api"),
        via("secretsmanager.amazonaws.com", Some(Ctx::Secret { name: "prod/orders/db" }))),
    ("app-worker", role(PROD, "app-worker"), internal(Ctx::Lambda { function: "app-worker" })),
    ("app-config", role(PROD, "app-config"), internal(Ctx::Ssm { parameter: "/prod/app/db-password" })),
    ("media-ingest", role(PROD, "media-ingest"), internal(Ctx::S3 { bucket: "prod-media-uploads" })),
    ("thumbnailer", role(PROD, "thumbnailer"), internal(Ctx::S3 { bucket: "prod-media-uploads" })),
    ("payments-api", role(PROD, "payments-api"), ip(&["10.20.8.11", "10.20.8.12"], UA_GO)),
    ("analytics-etl", role(PROD, "analytics-etl"), ip(&["10.20.30.5", "10.20.30.6"], UA_BOTO)),
    ("crm-api", role(PROD, "crm-api"), ip(&["10.20.4.21", "10.20.4.22"], UA_JAVA)),
    ("customer-writer", role(PROD, "customer-writer"), ip(&["10.20.5.8"], UA_NODE)),
    ("support-portal", role(PROD, "support-portal"), ip(&["10.20.6.30"], UA_NODE)),
    ("aws:ec2-infrastructure", role(PROD, "aws:ec2-infrastructure"), internal(Ctx::Ebs)),
    ("platform-asg", role(PROD, "platform-asg"), via("ec2.amazonaws.com", Some(Ctx::Ebs))),
    ("ledger-svc", role(PROD, "ledger-svc"), ip(&["10.20.9.14"], UA_JAVA)),
    ("billing-job", role(PROD, "billing-job"), ip(&["10.20.10.3"], UA_BOTO)),
    ("export-job", role(PROD, "export-job"), ip(&["10.20.11.7"], UA_BOTO)),
    ("legacy-reporting", role(PROD, "legacy-reporting"), ip(&["10.20.12.40"], UA_JAVA)),
    ("cloudtrail", Principal::Service("cloudtrail.amazonaws.com"),
        via("cloudtrail.amazonaws.com", Some(Ctx::CloudTrail))),
    ("reporting", role(PROD, "reporting"), ip(&["10.20.13.2"], UA_BOTO)),
    ("terraform-deployer", role(PROD, "terraform-deployer"), ip(&["10.20.0.5"], UA_TERRAFORM)),
    ("kms-admin", role(PROD, "kms-admin"), ip(&["198.51.100.23"], UA_CLI)),
    ("ops-alice", user(PROD, "ops-alice"), ip(&["198.51.100.23"], UA_CLI)),
    ("contractor-tool", role(PROD, "contractor-tool"), ip(&["203.0.113.77"], UA_BOTO)),
    ("ci-runner", role(PROD, "ci-runner"), ip(&["10.20.0.9"], UA_GO)),
    // 111111111111, eu-west-1
    ("orders-api-eu", role(PROD, "orders-api-eu"), ip(&["10.40.1.10", "10.40.2.10"], UA_JAVA)),
    ("eu-worker", role(PROD, "eu-worker"), internal(Ctx::Lambda { function: "eu-worker" })),
    ("eu-reporting-db", role(PROD, "eu-reporting-db"), internal(Ctx::Rds { db: "db-7QWERTYUIOPASDFGHJKLZXCVBN" })),
    // 222222222222 (data)
    ("lake-reader", role(DATA, "lake-reader"), ip(&["10.60.1.5", "10.60.1.6"], UA_BOTO)),
    ("athena-query", role(DATA, "athena-query"), internal(Ctx::S3 { bucket: "data-lake-curated" })),
    ("glue-etl", role(DATA, "glue-etl"), internal(Ctx::S3 { bucket: "data-lake-raw" })),
    ("warehouse-app", role(DATA, "warehouse-app"), internal(Ctx::Rds { db: "db-ABCDEFGHIJKLMNOPQRSTUVWXY2" })),
    ("stream-processor", role(DATA, "stream-processor"), internal(Ctx::Dynamo { table: "orders-events" })),
    ("ingest-fn", role(DATA, "ingest-fn"), internal(Ctx::Lambda { function: "ingest-fn" })),
    ("backup-agent", user(DATA, "backup-agent"), ip(&["203.0.113.14"], UA_CLI)),
    ("data-platform-admin", role(DATA, "data-platform-admin"), ip(&["10.60.0.4"], UA_TERRAFORM)),
    ("eu-etl", role(DATA, "eu-etl"), ip(&["10.70.1.9"], UA_BOTO)),
    ("ml-training", role(DATA, "ml-training"), ip(&["10.70.2.15", "10.70.2.16"], UA_BOTO)),
    ("sagemaker-execution", role(DATA, "sagemaker-execution"), internal(Ctx::S3 { bucket: "ml-features-eu" })),
    // 333333333333 (partner)
    ("partner-etl", role(PARTNER, "partner-etl"), ip(&["192.0.2.10", "192.0.2.11"], UA_BOTO)),
    ("partner-api", role(PARTNER, "partner-api"), ip(&["192.0.2.20"], UA_NODE)),
    ("partner-etl-eu", role(PARTNER, "partner-etl-eu"), ip(&["192.0.2.40"], UA_BOTO)),
    ("partner-admin", role(PARTNER, "partner-admin"), ip(&["192.0.2.2"], UA_CLI)),
    // Per account: AWS Config's service-linked role and the root user.
    ("config/prod", role(PROD, "AWSServiceRoleForConfig"), via("config.amazonaws.com", None)),
    ("config/data", role(DATA, "AWSServiceRoleForConfig"), via("config.amazonaws.com", None)),
    ("config/partner", role(PARTNER, "AWSServiceRoleForConfig"), via("config.amazonaws.com", None)),
    ("root/prod", Principal::Root { account: PROD }, ip(&["203.0.113.50"], UA_CLI)),
    ("root/data", Principal::Root { account: DATA }, ip(&["203.0.113.51"], UA_CLI)),
    ("root/partner", Principal::Root { account: PARTNER }, ip(&["192.0.2.3"], UA_CLI)),
];

/// Keys: account-region (index into [`ARS`]), name, alias.
#[rustfmt::skip]
const KEYS: &[(usize, &str, Option<&str>)] = &[
    (0, "app-data", Some("app-data")),
    (0, "s3-uploads", None),
    (0, "payments", Some("payments")),
    (0, "customer-pii", None),
    (0, "secrets", None),
    (0, "ebs-default", None),
    (0, "doomed", None),
    (0, "ledger", None),
    (0, "billing", None),
    (0, "shared-exports", None),
    (0, "legacy-reports", None),
    (0, "cloudtrail-logs", None),
    (0, "reports-2026", None),
    (1, "eu-app-data", Some("eu-app")),
    (1, "eu-rds", None),
    (2, "data-lake", Some("lake")),
    (2, "warehouse", None),
    (2, "orders-table", None),
    (2, "lambda-env", None),
    (3, "eu-warehouse", Some("eu-warehouse")),
    (3, "ml-features", None),
    (4, "partner-main", Some("partner-main")),
    (5, "partner-eu", None),
];

type StreamRow = (&'static str, &'static str, Mix, [f64; 3], f64, [u32; 3]);

/// Who uses which key: key, caller, operation mix, mean calls per busy window in each busy period
/// (see [`BUSY`]; only the busy account-regions have busy windows), mean calls per quiet slot, and
/// a minimum per busy window. The first stream of a key is its primary (kept in use).
/// `customer-pii` is busy at month end (day 31): the spike incident's baseline.
#[rustfmt::skip]
const STREAMS: &[StreamRow] = &[
    ("app-data", "orders-api", Mix::ReadMostly, [0.49, 1.5, 0.49], 0.16, [0; 3]),
    ("app-data", "app-worker", Mix::Read, [0.2, 0.6, 0.2], 0.06, [0; 3]),
    ("app-data", "app-config", Mix::Read, [0.13, 0.4, 0.13], 0.04, [0; 3]),
    ("s3-uploads", "media-ingest", Mix::Write, [0.33, 1.0, 0.33], 0.08, [0; 3]),
    ("s3-uploads", "thumbnailer", Mix::Read, [0.16, 0.5, 0.16], 0.04, [0; 3]),
    ("payments", "payments-api", Mix::Mixed, [0.33, 1.0, 0.33], 0.08, [0; 3]),
    ("customer-pii", "analytics-etl", Mix::Read, [0.26, 7.0, 0.26], 0.04, [0, 4, 0]),
    ("customer-pii", "crm-api", Mix::ReadMostly, [0.26, 4.0, 0.26], 0.06, [0; 3]),
    ("customer-pii", "customer-writer", Mix::Envelope, [0.16, 6.0, 0.16], 0.04, [0; 3]),
    ("customer-pii", "support-portal", Mix::Read, [0.07, 1.5, 0.07], 0.02, [0; 3]),
    ("secrets", "orders-api/secretsmanager", Mix::Read, [0.13, 0.4, 0.13], 0.04, [0; 3]),
    ("ebs-default", "aws:ec2-infrastructure", Mix::Read, [0.07, 0.2, 0.07], 0.04, [0; 3]),
    ("ebs-default", "platform-asg", Mix::NoPlaintext, [0.03, 0.1, 0.03], 0.02, [0; 3]),
    ("doomed", "orders-api", Mix::Read, [0.1, 0.3, 0.1], 0.06, [0; 3]),
    ("ledger", "ledger-svc", Mix::Mixed, [0.1, 0.3, 0.1], 0.06, [0; 3]),
    ("billing", "billing-job", Mix::ReadMostly, [0.1, 0.3, 0.1], 0.06, [0; 3]),
    ("shared-exports", "export-job", Mix::Write, [0.1, 0.3, 0.1], 0.06, [0; 3]),
    ("cloudtrail-logs", "cloudtrail", Mix::Envelope, [0.13, 0.4, 0.13], 0.06, [0; 3]),
    ("reports-2026", "reporting", Mix::ReadMostly, [0.16, 0.5, 0.16], 0.06, [0; 3]),
    ("eu-app-data", "orders-api-eu", Mix::ReadMostly, [0.0; 3], 0.44, [0; 3]),
    ("eu-app-data", "eu-worker", Mix::Read, [0.0; 3], 0.17, [0; 3]),
    ("eu-rds", "eu-reporting-db", Mix::Read, [0.0; 3], 0.17, [0; 3]),
    ("data-lake", "lake-reader", Mix::Read, [0.52, 0.8, 0.52], 0.22, [0; 3]),
    ("data-lake", "athena-query", Mix::Read, [0.39, 0.6, 0.39], 0.17, [0; 3]),
    ("data-lake", "glue-etl", Mix::ReadMostly, [0.39, 0.6, 0.39], 0.17, [0; 3]),
    ("warehouse", "warehouse-app", Mix::ReadMostly, [0.33, 0.5, 0.33], 0.17, [0; 3]),
    ("warehouse", "backup-agent", Mix::Mixed, [0.07, 0.1, 0.07], 0.06, [0; 3]),
    ("orders-table", "stream-processor", Mix::ReadMostly, [0.33, 0.5, 0.33], 0.17, [0; 3]),
    ("lambda-env", "ingest-fn", Mix::Read, [0.26, 0.4, 0.26], 0.11, [0; 3]),
    ("eu-warehouse", "eu-etl", Mix::ReadMostly, [0.0; 3], 0.33, [0; 3]),
    ("ml-features", "ml-training", Mix::Mixed, [0.0; 3], 0.28, [0; 3]),
    ("ml-features", "sagemaker-execution", Mix::Read, [0.0; 3], 0.17, [0; 3]),
    ("partner-main", "partner-etl", Mix::ReadMostly, [0.0; 3], 0.33, [0; 3]),
    ("partner-main", "partner-api", Mix::Read, [0.0; 3], 0.17, [0; 3]),
    ("partner-eu", "partner-etl-eu", Mix::ReadMostly, [0.0; 3], 0.33, [0; 3]),
];

/// The sample's keys, callers and streams.
pub(crate) fn build() -> Catalog {
    let mut c = Catalog::default();
    for (name, who, channel) in CALLERS {
        c.callers.push(Caller {
            who: who.clone(),
            channel: channel.clone(),
            sessions: sessions_for(name, who),
        });
        c.caller_names.push(name);
    }
    for &(ar, name, alias) in KEYS {
        let a = ARS[ar];
        c.keys.push(KeyDef {
            key: Key::new(name, a.account, a.region, alias),
            ar,
            from: START,
            crypto_until: i64::MAX,
        });
    }
    for &(key, caller, mix, busy, quiet, busy_floor) in STREAMS {
        let stream = Stream {
            key: c.key(key),
            caller: c.caller(caller),
            mix,
            busy,
            quiet,
            busy_floor,
        };
        c.streams.push(stream);
    }
    let admins = [
        "terraform-deployer",
        "terraform-deployer",
        "data-platform-admin",
        "data-platform-admin",
        "partner-admin",
        "partner-admin",
    ];
    for (ar, name) in admins.into_iter().enumerate() {
        c.admin[ar] = c.caller(name);
    }
    for (i, account) in ["prod", "data", "partner"].into_iter().enumerate() {
        c.config[i] = c.caller(&format!("config/{account}"));
        c.root[i] = c.caller(&format!("root/{account}"));
    }
    // Keys created during the sample, and keys whose use ends with an incident.
    let (reports, ml) = (c.key("reports-2026"), c.key("ml-features"));
    c.keys[reports].from = super::incidents::REPORTS_CREATED;
    c.keys[ml].from = super::incidents::ML_CREATED;
    let (doomed, ledger) = (c.key("doomed"), c.key("ledger"));
    c.keys[doomed].crypto_until = super::incidents::DOOMED_SCHEDULED;
    c.keys[ledger].crypto_until = super::incidents::LEDGER_DISABLED;
    // The ratio incident's hour carries only the injected calls on its key.
    let lake = c.key("data-lake");
    c.hush.push((lake, at(33, 9, 0, 0), at(33, 10, 0, 0)));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        let c = build();
        for (i, k) in c.keys.iter().enumerate() {
            assert_eq!(ARS[k.ar].account, k.key.account);
            let used = c.streams.iter().any(|s| s.key == i);
            assert!(
                used || k.key.name == "legacy-reports",
                "{} unused",
                k.key.name
            );
        }
        let names: std::collections::BTreeSet<_> = c.keys.iter().map(|k| &k.key.arn).collect();
        assert_eq!(names.len(), c.keys.len());
        assert_eq!(ar_of(DATA, EU), 3);
    }
}
