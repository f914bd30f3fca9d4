//! What a replay covers: a time range of events and the accounts and regions of the trail layout,
//! and which log objects can hold such events (pure, shared by the directory walk and the S3
//! lister so both admit exactly the same objects).
//!
//! The trail layout is `[prefix/]AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>`,
//! with `<file>` = `<account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<id>.json.gz`; the date in the
//! path and the time in the name are the delivery time. An object is left out only when its path
//! or name proves it holds nothing selected; events are then cut exactly by `eventTime`.

use std::collections::BTreeSet;

use crate::timefmt::civil;

const DAY: i64 = 86_400;

/// The part of the history a replay covers. The default selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// First event time included (Unix seconds).
    pub from: Option<i64>,
    /// First event time excluded: events are in `[from, to)`.
    pub to: Option<i64>,
    /// Only the log files of these accounts (12-digit ids), by the trail layout.
    pub accounts: Option<BTreeSet<String>>,
    /// Only the log files of these regions, by the trail layout.
    pub regions: Option<BTreeSet<String>>,
}

/// Where a folder sits in the trail layout, as far as its path tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// No selected object can be below it: do not list or walk it.
    Outside,
    /// Above `AWSLogs/` (a trail prefix, or a folder holding one).
    AboveLayout,
    /// Inside the layout, at a level whose children have a known form (accounts, regions,
    /// years, ...): list it level by level to prune.
    Structured,
    /// Below a day folder (its delivery day), or somewhere the layout does not describe (`None`):
    /// list everything below it.
    Flat { day: Option<i64> },
}

/// The layout levels below `AWSLogs/`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    AccountOrOrg,
    Account,
    Kind,
    Region,
    Year,
    Month,
    Day,
    Files,
}

/// What the path of an object tells about it.
#[derive(Default)]
struct Facts<'a> {
    account: Option<&'a str>,
    region: Option<&'a str>,
    /// Delivery day (days since the epoch).
    day: Option<i64>,
}

impl Selection {
    /// True when nothing is left out (no range, no accounts, no regions).
    pub fn is_all(&self) -> bool {
        *self == Selection::default()
    }

    /// Whether an event at `time` is in `[from, to)`.
    pub fn admits_time(&self, time: i64) -> bool {
        self.from.is_none_or(|f| time >= f) && self.to.is_none_or(|t| time < t)
    }

    /// The delivery days that can hold selected events: from the day of `from` to the day after
    /// the day of the last selected second (CloudTrail delivers within minutes, not hours, but a
    /// file written just before midnight lands on the next day).
    fn days(&self) -> (i64, i64) {
        let first = self.from.map_or(i64::MIN, |f| f.div_euclid(DAY));
        let last = self
            .to
            .map_or(i64::MAX, |t| (t - 1).div_euclid(DAY).saturating_add(1));
        (first, last)
    }

    /// Where the folder `dir` (`/`-separated, without the object name) sits, and whether it can
    /// hold selected objects.
    pub fn place(&self, dir: &str) -> Placement {
        let segments: Vec<&str> = dir.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
        let mut facts = Facts::default();
        match self.walk_layout(&segments, &mut facts) {
            None => Placement::Outside,
            Some(None) => Placement::AboveLayout,
            Some(Some(Level::Files)) => Placement::Flat { day: facts.day },
            Some(Some(_)) => Placement::Structured,
        }
    }

    /// Whether the object at `path` (a file path or an S3 key) can hold selected events. With
    /// `--accounts` or `--regions`, an object whose account or region neither its folder nor its
    /// name tells is left out.
    pub fn admits_object(&self, path: &str) -> bool {
        if self.is_all() {
            return true;
        }
        let segments: Vec<&str> = path.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
        let Some((name, dirs)) = segments.split_last() else {
            return false;
        };
        let mut facts = Facts::default();
        if self.walk_layout(dirs, &mut facts).is_none() {
            return false;
        }
        if let Some(n) = super::parse_log_name(name) {
            facts.account = facts.account.or(Some(n.account));
            facts.region = facts.region.or(Some(n.region));
            facts.day = facts.day.or(n.delivered.map(|t| t.div_euclid(DAY)));
        }
        let wanted = |set: &Option<BTreeSet<String>>, v: Option<&str>| {
            set.as_ref()
                .is_none_or(|s| v.is_some_and(|v| s.contains(v)))
        };
        let (first, last) = self.days();
        wanted(&self.accounts, facts.account)
            && wanted(&self.regions, facts.region)
            && facts.day.is_none_or(|d| (first..=last).contains(&d))
    }

    /// Walks the folders below the last `AWSLogs` segment level by level: `None` when a level
    /// proves nothing selected is below, else the level the next segment would be at (`None`
    /// above the layout, `Some(Files)` where the layout ends or stops matching).
    fn walk_layout<'a>(&self, dirs: &[&'a str], facts: &mut Facts<'a>) -> Option<Option<Level>> {
        let Some(root) = dirs.iter().rposition(|s| *s == "AWSLogs") else {
            return Some(None);
        };
        let (first, last) = self.days();
        let (fc, lc) = (civil_day(first), civil_day(last));
        let mut level = Level::AccountOrOrg;
        let mut ym = (0i64, 0u32);
        for seg in &dirs[root + 1..] {
            level = match level {
                Level::AccountOrOrg if seg.starts_with("o-") => Level::Account,
                Level::AccountOrOrg | Level::Account if is_account(seg) => {
                    if self.accounts.as_ref().is_some_and(|a| !a.contains(*seg)) {
                        return None;
                    }
                    facts.account = Some(seg);
                    Level::Kind
                }
                Level::Kind if *seg == "CloudTrail" => Level::Region,
                // Counted as skipped when everything is read; not even listed otherwise.
                Level::Kind
                    if !self.is_all()
                        && (*seg == "CloudTrail-Digest" || *seg == "CloudTrail-Insight") =>
                {
                    return None
                }
                Level::Region => {
                    if self.regions.as_ref().is_some_and(|r| !r.contains(*seg)) {
                        return None;
                    }
                    facts.region = Some(seg);
                    Level::Year
                }
                Level::Year => match number(seg, 4) {
                    Some(y) if (fc.0..=lc.0).contains(&y) => {
                        ym.0 = y;
                        Level::Month
                    }
                    Some(_) => return None,
                    None => Level::Files,
                },
                Level::Month => match number(seg, 2) {
                    Some(m @ 1..=12) => {
                        let k = (ym.0, m as u32);
                        if k < (fc.0, fc.1) || k > (lc.0, lc.1) {
                            return None;
                        }
                        ym.1 = m as u32;
                        Level::Day
                    }
                    _ => Level::Files,
                },
                Level::Day => match number(seg, 2) {
                    Some(d @ 1..=31) => {
                        let day = crate::timefmt::days_from_civil(ym.0, i64::from(ym.1), d);
                        if !(first..=last).contains(&day) {
                            return None;
                        }
                        facts.day = Some(day);
                        Level::Files
                    }
                    _ => Level::Files,
                },
                _ => Level::Files,
            };
        }
        Some(Some(level))
    }
}

/// The (year, month) of a day number, saturating at the ends of the open range.
fn civil_day(day: i64) -> (i64, u32) {
    match day {
        i64::MIN => (i64::MIN, 1),
        i64::MAX => (i64::MAX, 12),
        d => {
            let c = civil(d * DAY);
            (c.year, c.month)
        }
    }
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn number(s: &str, digits: usize) -> Option<i64> {
    (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::parse_event_time;

    fn t(s: &str) -> i64 {
        parse_event_time(s).unwrap()
    }

    fn q1() -> Selection {
        Selection {
            from: Some(t("2026-01-01T00:00:00Z")),
            to: Some(t("2026-04-01T00:00:00Z")),
            accounts: Some(["111122223333".to_owned()].into()),
            regions: Some(["us-east-1".to_owned()].into()),
        }
    }

    fn file(account: &str, region: &str, ymd: &str, hhmm: &str) -> String {
        let (y, m, d) = (&ymd[0..4], &ymd[4..6], &ymd[6..8]);
        format!(
            "AWSLogs/o-abc123/{account}/CloudTrail/{region}/{y}/{m}/{d}/{account}_CloudTrail_{region}_{ymd}T{hhmm}Z_AbCdEfGh12345678.json.gz"
        )
    }

    #[test]
    fn time_range_is_half_open() {
        let s = q1();
        assert!(s.admits_time(t("2026-01-01T00:00:00Z")));
        assert!(s.admits_time(t("2026-03-31T23:59:59Z")));
        assert!(!s.admits_time(t("2026-04-01T00:00:00Z")));
        assert!(!s.admits_time(t("2025-12-31T23:59:59Z")));
        assert!(Selection::default().admits_time(i64::MIN));
    }

    #[test]
    fn objects_by_layout_and_name() {
        let s = q1();
        let a = "111122223333";
        let cases = [
            (file(a, "us-east-1", "20260101", "0005"), true),
            (file(a, "us-east-1", "20260331", "2355"), true),
            // The day after `to`: late deliveries of the range's last minutes.
            (file(a, "us-east-1", "20260401", "0010"), true),
            (file(a, "us-east-1", "20260402", "0010"), false),
            (file(a, "us-east-1", "20251231", "2355"), false),
            (file(a, "eu-west-1", "20260201", "0000"), false),
            (file("444455556666", "us-east-1", "20260201", "0000"), false),
            // Digests and Insights are never read under a selection.
            (
                format!("AWSLogs/o-abc123/{a}/CloudTrail-Digest/us-east-1/2026/02/01/x.json.gz"),
                false,
            ),
            // Outside the layout the name decides; without a name, accounts cannot be told.
            (
                format!("copy/{a}_CloudTrail_us-east-1_20260201T0000Z_x.json.gz"),
                true,
            ),
            (
                format!("copy/{a}_CloudTrail_us-east-1_20250201T0000Z_x.json.gz"),
                false,
            ),
            ("copy/file.json.gz".to_owned(), false),
            // A local path above the layout.
            (
                format!("/tmp/x/{}", file(a, "us-east-1", "20260215", "1200")),
                true,
            ),
        ];
        for (path, want) in cases {
            assert_eq!(s.admits_object(&path), want, "{path}");
        }
        let only_time = Selection {
            accounts: None,
            regions: None,
            ..q1()
        };
        assert!(only_time.admits_object("copy/file.json.gz"));
        assert!(Selection::default().admits_object("anything"));
    }

    #[test]
    fn folders_are_placed_for_pruning() {
        let s = q1();
        let cases = [
            ("", Placement::AboveLayout),
            ("trail/", Placement::AboveLayout),
            ("AWSLogs/", Placement::Structured),
            ("AWSLogs/o-abc123/", Placement::Structured),
            ("AWSLogs/o-abc123/111122223333/", Placement::Structured),
            ("AWSLogs/o-abc123/444455556666/", Placement::Outside),
            (
                "AWSLogs/111122223333/CloudTrail-Digest/",
                Placement::Outside,
            ),
            (
                "AWSLogs/111122223333/CloudTrail/eu-west-1/",
                Placement::Outside,
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2025/",
                Placement::Outside,
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2026/",
                Placement::Structured,
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2026/04/",
                Placement::Structured,
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2026/05/",
                Placement::Outside,
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2026/04/01/",
                Placement::Flat {
                    day: Some(t("2026-04-01T00:00:00Z") / DAY),
                },
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2026/04/02/",
                Placement::Outside,
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2026/odd/",
                Placement::Flat { day: None },
            ),
            ("AWSLogs/stray/", Placement::Flat { day: None }),
        ];
        for (dir, want) in cases {
            assert_eq!(s.place(dir), want, "{dir}");
        }
        // Without a selection the layout is still followed, to read a day at a time.
        assert_eq!(
            Selection::default().place("AWSLogs/"),
            Placement::Structured
        );
    }

    #[test]
    fn open_ended_ranges() {
        let from_only = Selection {
            from: Some(t("2026-03-01T12:00:00Z")),
            ..Selection::default()
        };
        let a = "111122223333";
        assert!(from_only.admits_object(&file(a, "us-east-1", "20990101", "0000")));
        assert!(from_only.admits_object(&file(a, "us-east-1", "20260301", "0000")));
        assert!(!from_only.admits_object(&file(a, "us-east-1", "20260228", "2355")));
        let to_only = Selection {
            to: Some(t("2026-03-01T00:00:00Z")),
            ..Selection::default()
        };
        assert!(to_only.admits_object(&file(a, "us-east-1", "19990101", "0000")));
        assert!(to_only.admits_object(&file(a, "us-east-1", "20260301", "0010")));
        assert!(!to_only.admits_object(&file(a, "us-east-1", "20260302", "0000")));
    }
}
