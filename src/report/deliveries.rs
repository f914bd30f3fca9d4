//! Delivery coverage: per account and region, when log files were delivered (from the object
//! names), and the gaps of more than an hour with no file, which auditors must explain.
//!
//! Fed in the order replay folds objects, which is by delivery time, so each pair keeps only its
//! first and last delivery and the gaps found so far. Bounded: at most [`MAX_PAIRS`] pairs and
//! [`MAX_GAPS`] gaps; what is over is counted.

use std::collections::BTreeMap;

use crate::sources::parse_log_name;

/// Account-region pairs tracked.
pub const MAX_PAIRS: usize = 10_000;
/// Gaps kept (over all pairs).
pub const MAX_GAPS: usize = 10_000;
/// A pair with no log file for longer than this has a gap.
pub const GAP_SECS: i64 = 3_600;

/// The deliveries of one account and region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairDeliveries {
    pub objects: u64,
    pub first: i64,
    pub last: i64,
    /// `(last delivery before, next delivery)` more than [`GAP_SECS`] apart.
    pub gaps: Vec<(i64, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deliveries {
    /// By (account, region).
    pub pairs: BTreeMap<(String, String), PairDeliveries>,
    /// Objects whose name says no account, region or delivery time (not in the trail layout).
    pub unnamed: u64,
    /// Objects of pairs over [`MAX_PAIRS`], and gaps over [`MAX_GAPS`].
    pub overflow: u64,
    gaps: usize,
}

/// `(account, region, delivery time)` of `111122223333_CloudTrail_us-east-1_20260302T0005Z_x.json.gz`.
fn parse(path: &str) -> Option<(&str, &str, i64)> {
    let n = parse_log_name(path).filter(|n| n.kind == "CloudTrail")?;
    Some((n.account, n.region, n.delivered?))
}

impl Deliveries {
    /// One object read (decoded or not: a file was delivered either way).
    pub fn record(&mut self, path: &str) {
        let Some((account, region, time)) = parse(path) else {
            self.unnamed += 1;
            return;
        };
        let key = (account.to_owned(), region.to_owned());
        if !self.pairs.contains_key(&key) && self.pairs.len() >= MAX_PAIRS {
            self.overflow += 1;
            return;
        }
        let p = self.pairs.entry(key).or_insert(PairDeliveries {
            objects: 0,
            first: time,
            last: time,
            gaps: Vec::new(),
        });
        if time - p.last > GAP_SECS {
            if self.gaps < MAX_GAPS {
                p.gaps.push((p.last, time));
                self.gaps += 1;
            } else {
                self.overflow += 1;
            }
        }
        p.objects += 1;
        p.first = p.first.min(time);
        p.last = p.last.max(time);
    }

    /// Every gap inside `[from, to)` (defaults: the first and last delivery of any pair),
    /// including a pair's silence from `from` to its first file and from its last file to `to`,
    /// as `(account, region, from, to)` sorted.
    pub fn gaps(&self, from: Option<i64>, to: Option<i64>) -> Vec<(String, String, i64, i64)> {
        let first = self.pairs.values().map(|p| p.first).min();
        let last = self.pairs.values().map(|p| p.last).max();
        let (Some(from), Some(to)) = (from.or(first), to.or(last)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for ((account, region), p) in &self.pairs {
            let mut push = |a: i64, b: i64| {
                let (a, b) = (a.max(from), b.min(to));
                if b - a > GAP_SECS {
                    out.push((account.clone(), region.clone(), a, b));
                }
            };
            push(from, p.first);
            for &(a, b) in &p.gaps {
                push(a, b);
            }
            push(p.last, to);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(account: &str, region: &str, hhmm: &str) -> String {
        format!("AWSLogs/{account}/CloudTrail/{region}/2026/03/02/{account}_CloudTrail_{region}_20260302T{hhmm}Z_x.json.gz")
    }

    #[test]
    fn gaps_over_an_hour_per_pair_and_at_the_edges() {
        let mut d = Deliveries::default();
        for (account, region, hhmm) in [
            ("111122223333", "us-east-1", "0000"),
            ("444455556666", "eu-west-1", "0000"),
            ("111122223333", "us-east-1", "0055"),
            ("111122223333", "us-east-1", "0300"),
            ("111122223333", "us-east-1", "0400"),
            ("444455556666", "eu-west-1", "0130"),
        ] {
            d.record(&name(account, region, hhmm));
        }
        d.record("logs/notes.json");
        assert_eq!(d.unnamed, 1);
        let t = |hhmm: &str| {
            crate::timefmt::parse_event_time(&format!(
                "2026-03-02T{}:{}:00Z",
                &hhmm[..2],
                &hhmm[2..]
            ))
            .unwrap()
        };
        assert_eq!(
            d.gaps(None, None),
            vec![
                (
                    "111122223333".into(),
                    "us-east-1".into(),
                    t("0055"),
                    t("0300")
                ),
                (
                    "444455556666".into(),
                    "eu-west-1".into(),
                    t("0000"),
                    t("0130")
                ),
                (
                    "444455556666".into(),
                    "eu-west-1".into(),
                    t("0130"),
                    t("0400")
                ),
            ]
        );
        // A range cuts gaps to it; silence before the first file counts.
        assert_eq!(
            d.gaps(Some(t("0200")), Some(t("0510"))),
            vec![
                (
                    "111122223333".into(),
                    "us-east-1".into(),
                    t("0400"),
                    t("0510")
                ),
                (
                    "444455556666".into(),
                    "eu-west-1".into(),
                    t("0200"),
                    t("0510")
                ),
            ]
        );
    }
}
