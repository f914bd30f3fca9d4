//! The time formats CloudTrail writes besides event times (object key stamps, date folders, the
//! `Feb 10, 2026, 10:31:07 AM` form of some response fields), on `timefmt`'s calendar arithmetic.

pub(crate) const MINUTE: i64 = 60;
pub(crate) const HOUR: i64 = 3600;
pub(crate) const DAY: i64 = 86_400;

pub(crate) use crate::timefmt::{civil, format_rfc3339 as rfc3339};

/// `YYYY/MM/DD`, the date folders of the object key.
pub(crate) fn date_path(t: i64) -> String {
    let c = civil(t);
    format!("{:04}/{:02}/{:02}", c.year, c.month, c.day)
}

/// `20260101T0012Z`, the stamp in log file names.
pub(crate) fn stamp_minutes(t: i64) -> String {
    let c = civil(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute
    )
}

/// `20260101T001203Z`, the stamp in digest file names.
pub(crate) fn stamp_seconds(t: i64) -> String {
    let c = civil(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `Feb 10, 2026, 10:31:07 AM`, as KMS writes `deletionDate` and STS writes `expiration`.
pub(crate) fn human(t: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = civil(t);
    let (h12, ampm) = match c.hour {
        0 => (12, "AM"),
        1..=11 => (c.hour, "AM"),
        12 => (12, "PM"),
        _ => (c.hour - 12, "PM"),
    };
    format!(
        "{} {}, {}, {}:{:02}:{:02} {}",
        MONTHS[(c.month - 1) as usize],
        c.day,
        c.year,
        h12,
        c.minute,
        c.second,
        ampm
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::parse_event_time;

    #[test]
    fn formats_agree_with_the_parser() {
        for s in [
            "2026-01-01T00:00:00Z",
            "2026-02-03T10:31:07Z",
            "2024-02-29T23:59:59Z",
            "1970-01-01T00:00:00Z",
        ] {
            let t = parse_event_time(s).unwrap();
            assert_eq!(rfc3339(t), s);
        }
        let t = parse_event_time("2026-02-03T10:31:07Z").unwrap();
        assert_eq!(stamp_minutes(t), "20260203T1031Z");
        assert_eq!(stamp_seconds(t), "20260203T103107Z");
        assert_eq!(date_path(t), "2026/02/03");
        assert_eq!(human(t), "Feb 3, 2026, 10:31:07 AM");
        assert_eq!(human(t + 4 * HOUR), "Feb 3, 2026, 2:31:07 PM");
        assert_eq!(
            human(t - 10 * HOUR - 31 * MINUTE),
            "Feb 3, 2026, 12:00:07 AM"
        );
    }
}
