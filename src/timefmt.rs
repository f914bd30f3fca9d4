//! Event-time parsing (CloudTrail `eventTime`) and RFC 3339 formatting, in whole Unix seconds.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Parses `2026-03-02T00:12:03Z` (the CloudTrail form) fast, and any other RFC 3339 time slower.
/// The farthest from 1970 a time held in engine state may be, in seconds (about 34,800 years):
/// event times are years 0000 to 9999 (within ±2^38), and windows, lateness and horizons are at
/// most a year, so arithmetic on times within this bound cannot overflow. A state file holding a
/// time beyond it is inconsistent.
pub const TIME_BOUND_SECS: i64 = 1 << 40;

/// `Err` naming `what` when `t` is beyond [`TIME_BOUND_SECS`].
pub fn check_time(what: &str, t: i64) -> Result<(), String> {
    if t.unsigned_abs() > TIME_BOUND_SECS as u64 {
        return Err(format!(
            "{what} is {t}, which is no event time (beyond {TIME_BOUND_SECS} seconds of 1970)"
        ));
    }
    Ok(())
}

/// [`check_time`] for a time that may be `i64::MIN`, meaning "since the start".
pub fn check_time_or_start(what: &str, t: i64) -> Result<(), String> {
    if t == i64::MIN {
        return Ok(());
    }
    check_time(what, t)
}

pub fn parse_event_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
    {
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let mut v = 0i64;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
            }
            Some(v)
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo)
            || !(1..=days_in_month(y, mo)).contains(&d)
            || h > 23
            || mi > 59
            || sec > 60
        {
            return None;
        }
        return Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec);
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Days in month `m` (1-12) of year `y` (proleptic Gregorian).
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC date and time split into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Splits Unix seconds into a UTC date and time (Howard Hinnant's `civil_from_days`, the inverse
/// of `days_from_civil`).
pub fn civil(t: i64) -> Civil {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (secs / 3600) as u32,
        minute: (secs % 3600 / 60) as u32,
        second: (secs % 60) as u32,
    }
}

/// Formats Unix seconds as `2026-03-02T00:12:03Z`.
pub fn format_rfc3339(secs: i64) -> String {
    let c = civil(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cloudtrail_times_and_round_trips() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2026-03-02T00:12:03Z",
            "2000-02-29T23:59:59Z",
            "2024-02-29T00:00:00Z",
            "2026-12-31T23:59:59Z",
            "2100-12-31T00:00:00Z",
        ] {
            let t = parse_event_time(s).unwrap();
            assert_eq!(format_rfc3339(t), s);
            let via_time_crate = OffsetDateTime::from_unix_timestamp(t)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(format_rfc3339(t), via_time_crate);
        }
        for t in [-86_401, -1, 0, 951_782_400, 4_102_444_799, 253_402_300_799] {
            let via_time_crate = OffsetDateTime::from_unix_timestamp(t)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(format_rfc3339(t), via_time_crate, "{t}");
            assert_eq!(parse_event_time(&format_rfc3339(t)), Some(t), "{t}");
        }
        assert_eq!(
            parse_event_time("2026-03-02T00:12:03.500+01:00"),
            Some(parse_event_time("2026-03-01T23:12:03Z").unwrap())
        );
        for bad in [
            "",
            "2026-13-02T00:12:03Z",
            "2026-03-02 00:12:03",
            "yesterday",
            "2026-03-02T0a:12:03Z",
            // Regression: days past the month's end were accepted and rolled over.
            "2026-02-30T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
        ] {
            assert_eq!(parse_event_time(bad), None, "{bad}");
        }
    }
}
