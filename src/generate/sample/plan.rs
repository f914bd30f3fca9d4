//! The sample's delivery plan: which log files exist (slots), what time span each covers, and when
//! it is delivered.
//!
//! A slot is a span of at most 5 minutes whose events go into one file delivered a few minutes
//! after the span ends, so no event is delivered more than 10 minutes after it happened (the
//! engine's watermark trails the newest event by 15 minutes, so nothing is late). Quiet days have
//! one short burst of activity per account-region every 6 hours; the busy periods have a file every
//! 5 minutes.

use super::catalog::{at, ARS, BUSY, DAYS, START};
use crate::generate::clock::{DAY, HOUR, MINUTE};
use crate::generate::record::Event;

pub(crate) const WINDOW: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotKind {
    /// The 6-hourly burst starting at `hour` + the account-region's offset.
    Quiet { hour: i64 },
    /// A 5-minute file during busy period `period` (index into [`BUSY`]).
    Busy { period: usize },
    /// An extra file for an incident outside the regular slots.
    Extra,
    /// The deliberately late file: delivered two hours after its span.
    Late,
}

#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub ar: usize,
    pub start: i64,
    pub end: i64,
    pub kind: SlotKind,
    /// Delivered a second time under another name.
    pub duplicate: bool,
    pub events: Vec<Event>,
}

/// Extra incident files: `(account-region, start, end)`.
pub(crate) const EXTRA: [(usize, i64, i64); 2] = [
    // 333333333333 us-east-1: partner-etl's cross-account Decrypt at 10:45:38 on day 33, delivered
    // before 111111111111's copy (10:45-10:50 file).
    (4, at(33, 10, 44, 0), at(33, 10, 47, 0)),
    // 111111111111 us-east-1: contractor-tool's first Decrypts on day 32 at 15:00.
    (0, at(32, 15, 0, 0), at(32, 15, 5, 0)),
];

/// The late file: 111111111111 eu-west-1, events 10:00-10:05 on day 31, delivered at 12:0x.
pub(crate) const LATE: (usize, i64, i64) = (1, at(31, 10, 0, 0), at(31, 10, 5, 0));

/// The file delivered twice: 222222222222 eu-west-1, day 12, the 06:00 burst.
pub(crate) const DUPLICATE: (usize, i64) = (3, at(12, 6, 17, 0));

fn in_busy(t: i64) -> Option<usize> {
    BUSY.iter().position(|&(day, from, to)| {
        t >= START + day * DAY + from * HOUR && t < START + day * DAY + to * HOUR
    })
}

/// Every slot, sorted by account-region, then start.
pub(crate) fn slots() -> Vec<Slot> {
    let mut out = Vec::new();
    let slot = |ar, start, end, kind| Slot {
        ar,
        start,
        end,
        kind,
        duplicate: false,
        events: Vec::new(),
    };
    for (ar, a) in ARS.iter().enumerate() {
        for day in 0..DAYS {
            for hour in [0, 6, 12, 18] {
                let start = START + day * DAY + hour * HOUR + a.slot_offset;
                if a.busy && in_busy(start).is_some() {
                    continue;
                }
                let mut s = slot(ar, start, start + 5 * MINUTE, SlotKind::Quiet { hour });
                s.duplicate = (ar, start) == DUPLICATE;
                out.push(s);
            }
        }
        if a.busy {
            for (period, &(day, from, to)) in BUSY.iter().enumerate() {
                let mut t = START + day * DAY + from * HOUR;
                while t < START + day * DAY + to * HOUR {
                    out.push(slot(ar, t, t + WINDOW, SlotKind::Busy { period }));
                    t += WINDOW;
                }
            }
        }
    }
    for (ar, start, end) in EXTRA {
        out.push(slot(ar, start, end, SlotKind::Extra));
    }
    out.push(slot(LATE.0, LATE.1, LATE.2, SlotKind::Late));
    out.sort_by_key(|s| (s.ar, s.start));
    out
}

/// The slot of `ar` whose span contains `t`. Incidents are only placed where a slot exists.
pub(crate) fn find(slots: &mut [Slot], ar: usize, t: i64) -> Option<&mut Slot> {
    slots
        .iter_mut()
        .find(|s| s.ar == ar && s.start <= t && t < s.end && s.kind != SlotKind::Late)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_do_not_overlap_within_an_account_region() {
        let s = slots();
        for w in s.windows(2) {
            if w[0].ar == w[1].ar && w[0].kind != SlotKind::Late && w[1].kind != SlotKind::Late {
                assert!(w[0].end <= w[1].start, "{:?} {:?}", w[0].start, w[1].start);
            }
        }
        assert_eq!(s.iter().filter(|s| s.duplicate).count(), 1);
        assert!(s.iter().all(|s| s.end - s.start <= WINDOW));
    }
}
