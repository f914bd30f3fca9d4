//! Distinct counts for rules with `distinct = "<dimension>"`: exact up to [`EXACT_CAP`] values,
//! then a HyperLogLog sketch (`simple_hll`, 2^12 registers: about 1.6% standard error, 4 KiB).
//!
//! Values are hashed with 64-bit xxh3 (stable across runs and versions, so saved state stays
//! valid); below the cap the count is exact up to 64-bit hash collisions, which at 512 values
//! have a probability under 10^-14. Memory per cell is bounded: 8 bytes per value below the cap,
//! 4 KiB above it, however many values arrive.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use simple_hll::HyperLogLog;

/// Distinct values counted exactly before switching to the sketch.
pub const EXACT_CAP: usize = 512;

/// Register index bits of the sketch.
const P: usize = 12;

type Sketch = HyperLogLog<P>;

/// The distinct values of one group in one window.
#[derive(Debug, Clone, PartialEq)]
pub enum Distinct {
    /// Sorted, deduplicated hashes: at most [`EXACT_CAP`].
    Exact(Vec<u64>),
    /// Past the cap.
    Sketch(Box<Sketch>),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::Exact(Vec::new())
    }
}

impl Distinct {
    /// The hash a value is counted by.
    pub fn hash(value: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64(value.as_bytes())
    }

    pub fn insert(&mut self, value: &str) {
        let h = Self::hash(value);
        match self {
            Distinct::Exact(hashes) => {
                if let Err(at) = hashes.binary_search(&h) {
                    if hashes.len() < EXACT_CAP {
                        hashes.insert(at, h);
                    } else {
                        let mut sketch = Box::new(Sketch::new());
                        for &x in hashes.iter() {
                            sketch.add_hash(x);
                        }
                        sketch.add_hash(h);
                        *self = Distinct::Sketch(sketch);
                    }
                }
            }
            Distinct::Sketch(sketch) => sketch.add_hash(h),
        }
    }

    /// The number of distinct values: exact below the cap, estimated above it.
    pub fn count(&self) -> u64 {
        match self {
            Distinct::Exact(hashes) => hashes.len() as u64,
            // An estimate never reports fewer values than the exact phase had counted.
            Distinct::Sketch(sketch) => (sketch.count() as u64).max(EXACT_CAP as u64 + 1),
        }
    }

    /// Whether the count is an estimate.
    pub fn estimated(&self) -> bool {
        matches!(self, Distinct::Sketch(_))
    }
}

/// The saved form: the hashes, or the sketch's non-zero registers as `(index, value)` pairs.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Saved {
    Exact(Vec<u64>),
    Sketch(Vec<(u16, u8)>),
}

impl Serialize for Distinct {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Distinct::Exact(hashes) => Saved::Exact(hashes.clone()),
            Distinct::Sketch(sketch) => Saved::Sketch(
                sketch
                    .get_registers()
                    .iter()
                    .enumerate()
                    .filter(|(_, &r)| r != 0)
                    .map(|(i, &r)| (i as u16, r))
                    .collect(),
            ),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Distinct {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Saved::deserialize(d)? {
            Saved::Exact(mut hashes) => {
                if hashes.len() > EXACT_CAP {
                    return Err(D::Error::custom(format!(
                        "distinct: {} exact values, more than the cap of {EXACT_CAP}",
                        hashes.len()
                    )));
                }
                hashes.sort_unstable();
                hashes.dedup();
                Ok(Distinct::Exact(hashes))
            }
            Saved::Sketch(pairs) => {
                let mut registers = vec![0u8; Sketch::number_registers()];
                // A register holds 1 + the leading zeros of the 64 - P hash bits left.
                let max = (64 - P + 1) as u8;
                for (i, r) in pairs {
                    match registers.get_mut(usize::from(i)) {
                        Some(slot) if r <= max => *slot = r,
                        _ => {
                            return Err(D::Error::custom(format!(
                                "distinct: sketch register {i} = {r} is out of range"
                            )))
                        }
                    }
                }
                Ok(Distinct::Sketch(Box::new(Sketch::with_registers(
                    registers,
                ))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: usize) -> Distinct {
        let mut d = Distinct::default();
        for i in 0..n {
            d.insert(&format!("arn:aws:kms:us-east-1:111122223333:key/{i:08}"));
            // Repeats are not counted again.
            d.insert(&format!("arn:aws:kms:us-east-1:111122223333:key/{i:08}"));
        }
        d
    }

    #[test]
    fn exact_up_to_the_cap() {
        for n in [0, 1, 2, 17, EXACT_CAP] {
            let d = filled(n);
            assert_eq!(d.count(), n as u64);
            assert!(!d.estimated());
        }
    }

    #[test]
    fn estimated_past_the_cap_within_the_sketch_error() {
        for n in [EXACT_CAP + 1, 5_000, 100_000] {
            let d = filled(n);
            assert!(d.estimated());
            let got = d.count() as f64;
            let error = (got - n as f64).abs() / n as f64;
            // 1.6% standard error: 5% is more than three standard deviations.
            assert!(error < 0.05, "{n} values estimated as {got}");
        }
    }

    #[test]
    fn saved_and_loaded_it_counts_the_same() {
        for n in [0, 40, 3_000] {
            let d = filled(n);
            let json = serde_json::to_string(&d).unwrap();
            let back: Distinct = serde_json::from_str(&json).unwrap();
            assert_eq!(back, d);
            assert_eq!(serde_json::to_string(&back).unwrap(), json, "same bytes");
        }
    }

    #[test]
    fn corrupt_saved_forms_are_errors_not_panics() {
        let too_many = format!(
            r#"{{"exact":[{}]}}"#,
            (0..=EXACT_CAP)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        for bad in [
            too_many.as_str(),
            r#"{"sketch":[[4096,1]]}"#,
            r#"{"sketch":[[3,60]]}"#,
            r#"{"other":[]}"#,
        ] {
            let err = serde_json::from_str::<Distinct>(bad).unwrap_err();
            assert!(
                err.to_string().contains("distinct") || err.to_string().contains("variant"),
                "{bad}: {err}"
            );
        }
    }
}
