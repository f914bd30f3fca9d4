//! Interned names: each distinct string a table row is keyed by (key ARN, principal, service,
//! operation, alias) is stored once and rows hold its [`Sym`], a 4-byte index.
//!
//! A leaf: no other module of the crate is imported. The totals' names are only ever added (ids
//! stay valid for the life of the table and across a state file); what adds them is bounded by its
//! own caps (rows per table), so a flood of made-up names grows this table no further than the
//! rows it creates. A rule's group names are forgotten again ([`Names::retain`]) once no window,
//! baseline or alert holds them. Ids are given in insertion order, so the same calls folded in the same order give the
//! same ids; anything shown to people is sorted by the strings, never by id.

use std::fmt;

use indexmap::IndexSet;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id of an interned name in its [`Names`].
/// Ordered by id, which is insertion order, not by the string.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Sym(u32);

impl Sym {
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id at `index` of a table (which holds fewer than `u32::MAX` entries).
    pub(crate) fn from_index(index: usize) -> Sym {
        Sym(u32::try_from(index).unwrap_or(u32::MAX - 1))
    }
}

/// A table of distinct strings, each named by a [`Sym`]. Saved as the list of strings in id order.
#[derive(Debug, Clone, Default)]
pub struct Names {
    set: IndexSet<Box<str>, foldhash::fast::RandomState>,
}

impl Names {
    /// The id of `s`, if interned.
    pub fn get(&self, s: &str) -> Option<Sym> {
        self.set.get_index_of(s).map(|i| Sym(i as u32))
    }

    /// The id of `s`, interning it when new. Callers bound what they intern by their own row caps,
    /// far below `u32::MAX`; past it (about 4 billion names) the last id is reused, so a name
    /// could be shown wrongly but nothing breaks.
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(sym) = self.get(s) {
            return sym;
        }
        if self.set.len() >= u32::MAX as usize {
            return Sym(u32::MAX - 1);
        }
        let (i, _) = self.set.insert_full(s.into());
        Sym(i as u32)
    }

    /// The string of `sym`; empty for an id this table never gave (restored tables are checked
    /// with [`Names::contains`] first).
    pub fn resolve(&self, sym: Sym) -> &str {
        self.set.get_index(sym.index()).map_or("", |s| s)
    }

    /// Whether `sym` is an id of this table.
    pub fn contains(&self, sym: Sym) -> bool {
        sym.index() < self.set.len()
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Forgets the names `live` does not mark (indexed by id) and gives the survivors new ids in
    /// the same order. Returns each old id's new one (`None`: forgotten); the caller renames
    /// everything that holds ids. For tables whose holders forget names (a rule's groups).
    pub fn retain(&mut self, live: &[bool]) -> Vec<Option<Sym>> {
        let mut next = 0u32;
        let remap = (0..self.set.len())
            .map(|i| {
                live.get(i).copied().unwrap_or(false).then(|| {
                    next += 1;
                    Sym(next - 1)
                })
            })
            .collect();
        let mut i = 0;
        self.set.retain(|_| {
            i += 1;
            live.get(i - 1).copied().unwrap_or(false)
        });
        remap
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

impl Serialize for Names {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.set.iter())
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NamesVisitor;
        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of distinct names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Names::default();
                while let Some(s) = seq.next_element::<Box<str>>()? {
                    if names.set.len() >= u32::MAX as usize {
                        return Err(de::Error::custom("more than 2^32 names"));
                    }
                    if !names.set.insert(s) {
                        let dup = names.set.len();
                        return Err(de::Error::custom(format_args!(
                            "name {dup} repeats an earlier one"
                        )));
                    }
                }
                Ok(names)
            }
        }
        d.deserialize_seq(NamesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_gives_stable_ids_and_resolves_them() {
        let mut n = Names::default();
        let a = n.intern("arn:aws:kms:us-east-1:1:key/a");
        let b = n.intern("role/x");
        assert_eq!(n.intern("arn:aws:kms:us-east-1:1:key/a"), a);
        assert_ne!(a, b);
        assert_eq!(n.get("role/x"), Some(b));
        assert_eq!(n.get("role/y"), None);
        assert_eq!(n.resolve(b), "role/x");
        assert_eq!(n.len(), 2);
        assert!(n.contains(b) && !n.contains(Sym(2)));
        assert_eq!(n.resolve(Sym(7)), "");
    }

    #[test]
    fn retain_keeps_order_and_renumbers() {
        let mut n = Names::default();
        for s in ["a", "b", "c", "d"] {
            n.intern(s);
        }
        let remap = n.retain(&[false, true, false, true]);
        assert_eq!(remap, [None, Some(Sym(0)), None, Some(Sym(1))]);
        assert_eq!(
            (n.len(), n.resolve(Sym(0)), n.resolve(Sym(1))),
            (2, "b", "d")
        );
        assert_eq!((n.get("a"), n.get("d")), (None, Some(Sym(1))));
        assert_eq!(n.intern("a"), Sym(2));
    }

    #[test]
    fn saved_names_round_trip_and_repeats_are_refused() {
        let mut n = Names::default();
        for s in ["", "b", "a"] {
            n.intern(s);
        }
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, r#"["","b","a"]"#);
        let back: Names = serde_json::from_str(&json).unwrap();
        assert_eq!(back.get("a"), n.get("a"));
        let err = serde_json::from_str::<Names>(r#"["a","b","a"]"#).unwrap_err();
        assert!(err.to_string().contains("name 2 repeats"), "{err}");
    }
}
