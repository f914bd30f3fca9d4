//! The benchmark profile: at least `target_bytes` of uncompressed JSON in files of about 0.5–4 MB,
//! spread over six accounts, four regions and `span_days` days (a week by default), about 30% KMS
//! records, no incidents.
//!
//! Each file is a pure function of `(seed, index)`, so files are generated in parallel (rayon) and
//! the output is identical whatever the thread count. No digest files.

use std::path::Path;

use rayon::prelude::*;

use super::actors::{
    Caller, Channel, Ctx, Key, KeyForm, Op, Principal, UA_BOTO, UA_CLI, UA_GO, UA_JAVA, UA_NODE,
};
use super::clock::DAY;
use super::json::obj;
use super::kms::{self, Call, Failure};
use super::other::{self, Scene};
use super::output;
use super::rng::Rng;
use super::{GenerateError, GenerateReport};

/// 2026-03-01T00:00:00Z.
const START: i64 = 1_772_323_200;
const MIN_FILE: u64 = 512 * 1024;
const MAX_FILE: u64 = 4 * 1024 * 1024;
const GZIP_LEVEL: u32 = 6;
const KMS_SHARE: f64 = 0.3;

const ACCOUNTS: [&str; 6] = [
    "111111111111",
    "222222222222",
    "333333333333",
    "444444444444",
    "555555555555",
    "666666666666",
];
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2"];
const KEY_NAMES: [&str; 12] = [
    "app",
    "db",
    "s3",
    "logs",
    "secrets",
    "ebs",
    "backup",
    "analytics",
    "payments",
    "ml",
    "queue",
    "reports",
];
const BUCKETS: &[&str] = &["bench-data", "bench-exports", "bench-assets"];

/// Operations on keys and their relative weights.
const OPS: [(Op, u32); 10] = [
    (Op::Decrypt, 45),
    (Op::GenerateDataKey, 22),
    (Op::Encrypt, 10),
    (Op::GenerateDataKeyWithoutPlaintext, 3),
    (Op::DescribeKey, 10),
    (Op::GetKeyPolicy, 2),
    (Op::GetKeyRotationStatus, 2),
    (Op::ListAliases, 3),
    (Op::ListKeys, 2),
    (Op::CreateGrant, 1),
];

/// Keys per account-region and callers per account.
struct World {
    keys: Vec<Vec<Key>>,
    callers: Vec<Vec<Caller>>,
}

fn world() -> World {
    let mut keys = Vec::new();
    for account in ACCOUNTS {
        for region in REGIONS {
            keys.push(
                KEY_NAMES
                    .iter()
                    .map(|n| Key::new(n, account, region, None))
                    .collect(),
            );
        }
    }
    let callers = ACCOUNTS
        .iter()
        .map(|&account| {
            let role = |name| Principal::Role { account, name };
            vec![
                Caller::new(
                    role("api"),
                    Channel::Direct {
                        ips: &["10.1.0.10", "10.1.0.11", "10.1.0.12"],
                        agent: UA_JAVA,
                    },
                    &["api-task-1", "api-task-2", "api-task-3"],
                ),
                Caller::new(
                    role("worker"),
                    Channel::Internal(Ctx::Lambda { function: "worker" }),
                    &["worker"],
                ),
                Caller::new(
                    role("etl"),
                    Channel::Direct {
                        ips: &["10.1.2.5"],
                        agent: UA_BOTO,
                    },
                    &["etl-run"],
                ),
                Caller::new(
                    role("ingest"),
                    Channel::Internal(Ctx::S3 {
                        bucket: "bench-data",
                    }),
                    &["ingest"],
                ),
                Caller::new(
                    role("web"),
                    Channel::Direct {
                        ips: &["10.1.3.7", "10.1.3.8"],
                        agent: UA_NODE,
                    },
                    &["web-1", "web-2"],
                ),
                Caller::new(
                    role("batch"),
                    Channel::Internal(Ctx::Rds {
                        db: "db-BENCHBENCHBENCHBENCHBENCH",
                    }),
                    &["batch"],
                ),
                Caller::new(
                    role("stream"),
                    Channel::Internal(Ctx::Dynamo { table: "events" }),
                    &["stream"],
                ),
                Caller::new(
                    role("config-reader"),
                    Channel::Internal(Ctx::Ssm {
                        parameter: "/bench/config",
                    }),
                    &["config-reader"],
                ),
                Caller::new(
                    role("app-secrets"),
                    Channel::Via {
                        service: "secretsmanager.amazonaws.com",
                        ctx: Some(Ctx::Secret { name: "bench/app" }),
                    },
                    &["app-secrets"],
                ),
                Caller::new(
                    Principal::User {
                        account,
                        name: "deploy-bot",
                    },
                    Channel::Direct {
                        ips: &["203.0.113.9"],
                        agent: UA_GO,
                    },
                    &[],
                ),
                Caller::new(
                    role("ops"),
                    Channel::Direct {
                        ips: &["198.51.100.7"],
                        agent: UA_CLI,
                    },
                    &["ops-1"],
                ),
                Caller::new(
                    Principal::Service("cloudtrail.amazonaws.com"),
                    Channel::Via {
                        service: "cloudtrail.amazonaws.com",
                        ctx: Some(Ctx::CloudTrail),
                    },
                    &[],
                ),
                Caller::new(
                    role("asg"),
                    Channel::Via {
                        service: "ec2.amazonaws.com",
                        ctx: Some(Ctx::Ebs),
                    },
                    &["asg"],
                ),
            ]
        })
        .collect();
    World { keys, callers }
}

/// Target sizes of the files: random in `[MIN_FILE, MAX_FILE)`, the last one absorbing the rest.
fn plan(seed: u64, target_bytes: u64) -> Vec<u64> {
    let mut sizes = Vec::new();
    let mut remaining = target_bytes;
    let mut i = 0u64;
    while remaining > 0 {
        let mut rng = Rng::derive(seed, "bench/size", i);
        let mut s = MIN_FILE + rng.below(MAX_FILE - MIN_FILE);
        if remaining < s + MIN_FILE {
            s = remaining;
        }
        sizes.push(s);
        remaining -= s;
        i += 1;
    }
    sizes
}

fn kms_record(world: &World, rng: &mut Rng, time: i64, ar: usize) -> super::record::Event {
    let account = ar / REGIONS.len();
    let keys = &world.keys[ar];
    let callers = &world.callers[account];
    // A few hot keys, a long tail.
    let n = keys.len() as u64;
    let key = &keys[rng.below(n).min(rng.below(n)) as usize];
    let weights: Vec<u32> = OPS.iter().map(|(_, w)| *w).collect();
    let op = OPS[rng.weighted(&weights)].0;
    let caller = match op {
        Op::CreateGrant => &callers[12],
        op if !op.is_crypto() => &callers[if rng.chance(0.8) { 10 } else { 9 }],
        Op::GenerateDataKey if rng.chance(0.05) => &callers[11],
        _ => &callers[rng.below(9) as usize],
    };
    let mut call = Call::on(time, op, caller, key);
    if matches!(op, Op::ListAliases | Op::ListKeys) {
        call.key = None;
    } else {
        call.form = KeyForm::pick(rng, key, false, 0.1);
    }
    if rng.chance(0.005) {
        call.failure = Some(if rng.chance(0.5) {
            Failure::AccessDenied
        } else {
            Failure::Throttling
        });
    }
    if op == Op::CreateGrant {
        let grantee = format!("arn:aws:iam::{}:role/aws:ec2-infrastructure", key.account);
        let volume = format!("vol-0{}", rng.hex(16));
        kms::create_grant(
            rng,
            &call,
            grantee,
            &["Decrypt", "GenerateDataKeyWithoutPlaintext", "CreateGrant"],
            Some(obj! { "aws:ebs:id" => volume }),
        )
    } else {
        kms::event(rng, &call)
    }
}

/// Generates file `index` of `target` bytes and writes it; returns its share of the report.
fn file(
    world: &World,
    out: &Path,
    seed: u64,
    index: u64,
    target: u64,
    step: i64,
) -> Result<GenerateReport, GenerateError> {
    let mut rng = Rng::derive(seed, "bench/file", index);
    let n_ar = world.keys.len() as u64;
    let ar = (index % n_ar) as usize;
    let seq = (index / n_ar) as i64;
    let start = START + seq * step;
    let (account, region) = (ACCOUNTS[ar / REGIONS.len()], REGIONS[ar % REGIONS.len()]);
    let actors: Vec<&Caller> = world.callers[ar / REGIONS.len()]
        .iter()
        .filter(|c| !matches!(c.who, Principal::Service(_)))
        .collect();
    let mut log = output::LogFile::with_capacity(target as usize);
    let mut newest = start;
    while (log.len() as u64) < target {
        // Times rise with the bytes written, so records come out in time order over 5 minutes.
        let time = start + (300 * log.len() as u64 / target.max(1)) as i64;
        newest = time;
        let event = if rng.chance(KMS_SHARE) {
            log.report.kms_records += 1;
            kms_record(world, &mut rng, time, ar)
        } else {
            let scene = Scene {
                time,
                account,
                region,
                actor: actors[rng.below(actors.len() as u64) as usize],
                buckets: BUCKETS,
            };
            other::event(&mut rng, &scene)
        };
        log.push(&event);
    }
    log.write(out, (account, region), newest, &mut rng, GZIP_LEVEL)
}

/// Generates the bench profile under `out`.
pub(crate) fn generate(
    out: &Path,
    seed: u64,
    target_bytes: u64,
    span_days: i64,
) -> Result<GenerateReport, GenerateError> {
    let sizes = plan(seed, target_bytes);
    let world = world();
    let n_ar = world.keys.len() as i64;
    let per_ar = (sizes.len() as i64 + n_ar - 1) / n_ar;
    let windows = (span_days.max(1) * DAY / 300 / per_ar.max(1)).max(1);
    let step = windows * 300;
    let parts = sizes
        .par_iter()
        .enumerate()
        .map(|(i, &size)| file(&world, out, seed, i as u64, size, step))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GenerateReport::total(&parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_the_target_with_bounded_files() {
        for target in [1, MIN_FILE, 10 * MAX_FILE + 17, 600 << 20] {
            let sizes = plan(9, target);
            assert_eq!(sizes.iter().sum::<u64>(), target);
            for &s in &sizes[..sizes.len() - 1] {
                assert!((MIN_FILE..MAX_FILE).contains(&s));
            }
            assert!(*sizes.last().unwrap() < MAX_FILE + MIN_FILE);
        }
    }
}
