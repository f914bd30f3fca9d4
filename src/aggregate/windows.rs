//! Tumbling event-time windows of per-group cells, closed in order as the watermark passes them.

use std::collections::hash_map::Entry;
use std::collections::BTreeMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::timefmt::check_time;
use crate::Map;

/// Start of the window of length `len` that holds `t` (windows are aligned to the Unix epoch).
pub fn window_start(t: i64, len: i64) -> i64 {
    t - t.rem_euclid(len)
}

/// Why a call could not be counted in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The watermark has passed the end of the call's window.
    Late,
    /// `max_groups` cells are already open.
    Overflow,
}

/// Open windows of one rule. `K` names a group (the rule's interned group key), `C` is what a
/// group accumulates in a window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(bound(
    serialize = "K: Ord + Serialize, C: Serialize",
    deserialize = "K: Hash + Eq + Deserialize<'de>, C: Deserialize<'de>"
))]
pub struct Windows<K, C> {
    /// The rule's window length: configuration, set again on restore.
    #[serde(skip)]
    len: i64,
    /// Window start -> group key -> cell.
    #[serde(serialize_with = "crate::serde_sorted::map_of_maps")]
    open: BTreeMap<i64, Map<K, C>>,
    /// Every window starting before this has been closed; `None` before the first close.
    closed_before: Option<i64>,
    /// Cells in `open`, counted against `max_groups`; recomputed on restore.
    #[serde(skip)]
    groups_in_open: usize,
}

impl<K: Hash + Eq + Copy, C: Default> Windows<K, C> {
    pub fn new(len: i64) -> Self {
        Windows {
            len,
            open: BTreeMap::new(),
            closed_before: None,
            groups_in_open: 0,
        }
    }

    pub fn len_secs(&self) -> i64 {
        self.len
    }

    /// Whether [`Windows::cell`] would make a new cell for a group not yet open at `t` (so a
    /// caller can leave a group it would have to name unnamed).
    pub fn admits_new(
        &self,
        t: i64,
        max_groups: usize,
        watermark: Option<i64>,
    ) -> Result<(), Rejected> {
        if self.is_late(t, watermark) {
            Err(Rejected::Late)
        } else if self.groups_in_open >= max_groups {
            Err(Rejected::Overflow)
        } else {
            Ok(())
        }
    }

    fn is_late(&self, t: i64, watermark: Option<i64>) -> bool {
        let start = window_start(t, self.len);
        watermark.is_some_and(|w| start + self.len <= w)
            || self.closed_before.is_some_and(|c| start < c)
    }

    /// The cell of `group` in the window holding `t`. A call is late when the watermark has
    /// passed the end of its window (the engine closes such windows before the next call).
    pub fn cell(
        &mut self,
        t: i64,
        group: K,
        max_groups: usize,
        watermark: Option<i64>,
    ) -> Result<&mut C, Rejected> {
        if self.is_late(t, watermark) {
            return Err(Rejected::Late);
        }
        let start = window_start(t, self.len);
        match self.open.entry(start).or_default().entry(group) {
            Entry::Occupied(cell) => Ok(cell.into_mut()),
            Entry::Vacant(_) if self.groups_in_open >= max_groups => Err(Rejected::Overflow),
            Entry::Vacant(slot) => {
                self.groups_in_open += 1;
                Ok(slot.insert(C::default()))
            }
        }
    }

    /// Start of the next window to close: after the last closed one, else the earliest open one.
    fn next_start(&self) -> Option<i64> {
        self.closed_before
            .or_else(|| self.open.keys().next().copied())
    }

    /// End of the next window to close, if any.
    pub fn next_end(&self) -> Option<i64> {
        self.next_start().map(|s| s + self.len)
    }

    /// Closes the next window if it ends by `limit` and returns its start and cells. With
    /// `skip_empty`, first jumps over empty windows (none ending after `limit` is closed).
    pub fn close_next(&mut self, limit: i64, skip_empty: bool) -> Option<(i64, Map<K, C>)> {
        let mut start = self.next_start()?;
        if skip_empty {
            let bound = window_start(limit, self.len);
            start = self
                .open
                .keys()
                .next()
                .copied()
                .unwrap_or(bound)
                .min(bound)
                .max(start);
            self.closed_before = Some(start);
        }
        if start + self.len > limit {
            return None;
        }
        self.closed_before = Some(start + self.len);
        let cells = self.open.remove(&start).unwrap_or_default();
        self.groups_in_open -= cells.len();
        Some((start, cells))
    }

    /// After loading from a state file: every window start is a time arithmetic can use.
    pub(crate) fn check_times(&self) -> Result<(), String> {
        if let Some(c) = self.closed_before {
            check_time("windows.closed_before", c)?;
        }
        self.open
            .keys()
            .try_for_each(|&s| check_time("the start of an open window", s))
    }

    /// After loading from a state file: the window length, and the derived cell count.
    pub(crate) fn restore_len(&mut self, len: i64) {
        self.len = len;
        self.groups_in_open = self.count_cells();
    }

    /// Cells in open windows, counted (valid also before `restore_len`).
    pub(crate) fn count_cells(&self) -> usize {
        self.open.values().map(|w| w.len()).sum()
    }

    /// Groups with a cell in any open window.
    pub fn open_groups(&self) -> usize {
        self.groups_in_open
    }

    /// The group of every open cell, in no order (a group open in two windows comes twice).
    pub fn groups(&self) -> impl Iterator<Item = K> + '_ {
        self.open.values().flat_map(|w| w.keys().copied())
    }

    /// Renames every open cell's group by `f`, which must be one-to-one on them.
    pub fn rename_groups(&mut self, f: impl Fn(K) -> K) {
        for w in self.open.values_mut() {
            *w = w.drain().map(|(k, c)| (f(k), c)).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_start_aligns_to_the_epoch() {
        for (t, want) in [
            (0, 0),
            (299, 0),
            (300, 300),
            (-1, -300),
            (1_700_000_123, 1_700_000_100),
        ] {
            assert_eq!(window_start(t, 300), want, "{t}");
        }
    }

    #[test]
    fn closes_in_order_and_rejects_late_events() {
        let mut w: Windows<&str, u32> = Windows::new(300);
        *w.cell(950, "a", 10, None).unwrap() += 1;
        // Earlier than the first call, but the watermark (50) has not passed window 300's end.
        *w.cell(310, "a", 10, Some(50)).unwrap() += 1;
        assert_eq!(
            w.close_next(600, false).map(|(s, c)| (s, c["a"])),
            Some((300, 1))
        );
        assert_eq!(
            w.cell(599, "a", 10, Some(600)).err(),
            Some(Rejected::Late),
            "window 300 ended at 600"
        );
        assert_eq!(
            w.cell(200, "a", 10, None).err(),
            Some(Rejected::Late),
            "before the last closed window"
        );
        assert_eq!(w.close_next(899, false), None, "window 600 ends at 900");
        let (s, c) = w.close_next(900, false).unwrap();
        assert_eq!((s, c.len()), (600, 0), "an empty window still closes");
        assert_eq!(
            w.close_next(10_000, true).map(|(s, c)| (s, c["a"])),
            Some((900, 1))
        );
        // Nothing is open: skipping jumps past every empty window that ends by the limit.
        assert_eq!(w.close_next(10_000, true), None);
        assert_eq!(w.next_end(), Some(10_200));
    }

    #[test]
    fn group_cap_overflows() {
        let mut w: Windows<&str, u32> = Windows::new(60);
        assert!(w.cell(0, "a", 2, None).is_ok());
        assert!(w.cell(0, "b", 2, None).is_ok());
        assert_eq!(w.cell(0, "c", 2, None).err(), Some(Rejected::Overflow));
        assert!(
            w.cell(0, "a", 2, None).is_ok(),
            "existing groups still count"
        );
        w.close_next(60, false);
        assert_eq!(w.open_groups(), 0);
        assert!(w.cell(61, "c", 2, None).is_ok());
    }
}
