//! Tumbling event-time windows of per-group cells, closed in order as the watermark passes them.

use std::collections::BTreeMap;

use crate::Map;

/// Start of the window of length `len` that holds `t` (windows are aligned to the Unix epoch).
pub fn window_start(t: i64, len: i64) -> i64 {
    t - t.rem_euclid(len)
}

/// Open windows of one rule. `C` is what a group accumulates in a window.
#[derive(Debug)]
pub struct Windows<C> {
    len: i64,
    open: BTreeMap<i64, Map<Box<str>, C>>,
    /// Start of the earliest window not yet closed; `None` before the first event.
    next_start: Option<i64>,
    groups_in_open: usize,
}

impl<C: Default> Windows<C> {
    pub fn new(len: i64) -> Self {
        Windows {
            len,
            open: BTreeMap::new(),
            next_start: None,
            groups_in_open: 0,
        }
    }

    pub fn len_secs(&self) -> i64 {
        self.len
    }

    /// The cell of `group` in the window holding `t`, or `None` when that window is closed (a late
    /// event) or `max_groups` cells are already open (overflow; the caller counts it).
    pub fn cell(&mut self, t: i64, group: &str, max_groups: usize) -> Option<&mut C> {
        let start = window_start(t, self.len);
        let next = *self.next_start.get_or_insert(start);
        if start < next {
            return None;
        }
        let window = self.open.entry(start).or_default();
        if !window.contains_key(group) {
            if self.groups_in_open >= max_groups {
                return None;
            }
            self.groups_in_open += 1;
            window.insert(group.into(), C::default());
        }
        window.get_mut(group)
    }

    /// Whether an event at `t` would land in a closed window.
    pub fn is_closed(&self, t: i64) -> bool {
        self.next_start
            .is_some_and(|n| window_start(t, self.len) < n)
    }

    /// End of the next window to close, if any window was ever opened.
    pub fn next_end(&self) -> Option<i64> {
        self.next_start.map(|s| s + self.len)
    }

    /// Closes the next window and returns its start and cells. With `skip_empty`, first jumps over
    /// empty windows up to the one holding `limit` (no window ending after `limit` is closed).
    pub fn close_next(&mut self, limit: i64, skip_empty: bool) -> Option<(i64, Map<Box<str>, C>)> {
        let mut start = self.next_start?;
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
        }
        if start + self.len > limit {
            self.next_start = Some(start);
            return None;
        }
        self.next_start = Some(start + self.len);
        let cells = self.open.remove(&start).unwrap_or_default();
        self.groups_in_open -= cells.len();
        Some((start, cells))
    }

    /// Groups with a cell in any open window.
    pub fn open_groups(&self) -> usize {
        self.groups_in_open
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
        let mut w: Windows<u32> = Windows::new(300);
        *w.cell(310, "a", 10).unwrap() += 1;
        *w.cell(950, "a", 10).unwrap() += 1;
        assert_eq!(
            w.close_next(600, false).map(|(s, c)| (s, c["a"])),
            Some((300, 1))
        );
        assert!(w.is_closed(599));
        assert!(w.cell(599, "a", 10).is_none(), "window 300 is closed: late");
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
        let mut w: Windows<u32> = Windows::new(60);
        assert!(w.cell(0, "a", 2).is_some());
        assert!(w.cell(0, "b", 2).is_some());
        assert!(w.cell(0, "c", 2).is_none());
        assert!(w.cell(0, "a", 2).is_some(), "existing groups still count");
        w.close_next(60, false);
        assert_eq!(w.open_groups(), 0);
        assert!(w.cell(61, "c", 2).is_some());
    }
}
