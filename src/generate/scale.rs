//! The scale profile: the organization-scale set of issue 10. Every pair of `keys` keys and
//! `principals` role principals calls `Decrypt` successfully `repeat` times, spread evenly over
//! `repeat` × 50 minutes (the same call rate whatever `repeat`), so a larger `repeat` means more
//! events over the same live series. `attack` adds that many failed calls, each from a made-up
//! principal on a made-up key (a flood of attacker-chosen names). One account and region; files of
//! [`RECORDS_PER_FILE`] records, all KMS. No digest files.
//!
//! Each file is a pure function of `(seed, index)`, generated in parallel.

use std::path::Path;

use rayon::prelude::*;

use super::actors::{Caller, Channel, Key, Op, Principal, UA_JAVA};
use super::clock::MINUTE;
use super::kms::{self, Call, Failure};
use super::output;
use super::rng::Rng;
use super::{GenerateError, GenerateReport};

/// 2026-04-01T00:00:00Z.
const START: i64 = 1_775_001_600;
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const GZIP_LEVEL: u32 = 6;
/// Records per log file (about 6 MB of JSON).
pub const RECORDS_PER_FILE: u64 = 5_000;
/// Seconds the events of `repeat = 1` span.
const SPAN_SECS: i64 = 50 * MINUTE;

/// What the scale set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleShape {
    pub keys: u64,
    pub principals: u64,
    pub repeat: u64,
    pub attack: u64,
}

impl ScaleShape {
    fn calls(&self) -> u64 {
        self.keys * self.principals * self.repeat
    }
}

/// Names live as long as the generator run; the actor types borrow `'static` strings.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

struct World {
    keys: Vec<Key>,
    callers: Vec<Caller>,
}

fn world(shape: &ScaleShape) -> World {
    let keys = (0..shape.keys)
        .map(|k| Key::new(leak(format!("scale-{k:05}")), ACCOUNT, REGION, None))
        .collect();
    let callers = (0..shape.principals)
        .map(|p| {
            let name = leak(format!("app-{p:03}"));
            Caller::new(
                Principal::Role {
                    account: ACCOUNT,
                    name,
                },
                Channel::Direct {
                    ips: &["10.20.0.10", "10.20.0.11"],
                    agent: UA_JAVA,
                },
                &[name],
            )
        })
        .collect();
    World { keys, callers }
}

/// The `i`-th successful call: keys vary fastest, so every key sees every principal once per
/// `keys × principals` calls.
fn pair(shape: &ScaleShape, i: u64) -> (usize, usize) {
    (
        (i % shape.keys) as usize,
        ((i / shape.keys) % shape.principals) as usize,
    )
}

fn time_of(shape: &ScaleShape, i: u64, total: u64) -> i64 {
    let span = SPAN_SECS * shape.repeat.max(1) as i64;
    START + (i as u128 * span as u128 / total.max(1) as u128) as i64
}

fn file(
    world: &World,
    shape: &ScaleShape,
    out: &Path,
    seed: u64,
    index: u64,
) -> Result<GenerateReport, GenerateError> {
    let mut rng = Rng::derive(seed, "scale/file", index);
    let calls = shape.calls();
    let total = calls + shape.attack;
    let first = index * RECORDS_PER_FILE;
    let last = (first + RECORDS_PER_FILE).min(total);
    let mut log = output::LogFile::with_capacity(((last - first) * 1400) as usize);
    let mut newest = START;
    for i in first..last {
        let event = if i < calls {
            let (k, p) = pair(shape, i);
            let time = time_of(shape, i, calls);
            newest = newest.max(time);
            let call = Call::on(time, Op::Decrypt, &world.callers[p], &world.keys[k]);
            kms::event(&mut rng, &call)
        } else {
            // The flood: fresh names for every call, spread over the same span.
            let a = i - calls;
            let time = time_of(shape, a, shape.attack);
            newest = newest.max(time);
            let key = Key::new(leak(format!("made-up-{a}")), ACCOUNT, REGION, None);
            let caller = Caller::new(
                Principal::Role {
                    account: ACCOUNT,
                    name: leak(format!("intruder-{a}")),
                },
                Channel::Direct {
                    ips: &["198.51.100.66"],
                    agent: UA_JAVA,
                },
                &["probe"],
            );
            let mut call = Call::on(time, Op::Decrypt, &caller, &key);
            call.failure = Some(Failure::AccessDenied);
            kms::event(&mut rng, &call)
        };
        log.push(&event);
        log.report.kms_records += 1;
    }
    log.write(out, (ACCOUNT, REGION), newest, &mut rng, GZIP_LEVEL)
}

/// Generates the scale profile under `out`.
pub(crate) fn generate(
    out: &Path,
    seed: u64,
    shape: ScaleShape,
) -> Result<GenerateReport, GenerateError> {
    let shape = ScaleShape {
        keys: shape.keys.max(1),
        principals: shape.principals.max(1),
        repeat: shape.repeat.max(1),
        attack: shape.attack,
    };
    let world = world(&shape);
    let files = (shape.calls() + shape.attack).div_ceil(RECORDS_PER_FILE);
    let parts = (0..files)
        .into_par_iter()
        .map(|i| file(&world, &shape, out, seed, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GenerateReport::total(&parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_is_called_once_per_round_in_time_order() {
        let shape = ScaleShape {
            keys: 7,
            principals: 3,
            repeat: 2,
            attack: 0,
        };
        let mut seen = std::collections::BTreeMap::new();
        let mut last = i64::MIN;
        for i in 0..shape.calls() {
            *seen.entry(pair(&shape, i)).or_insert(0) += 1;
            let t = time_of(&shape, i, shape.calls());
            assert!(t >= last);
            last = t;
        }
        assert_eq!(seen.len(), 21);
        assert!(seen.values().all(|&n| n == 2));
        assert!(last < START + 2 * SPAN_SECS);
    }
}
