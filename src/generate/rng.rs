//! Deterministic pseudo-random numbers: xoshiro256** seeded through SplitMix64, no dependency, so a
//! seed gives the same bytes on every platform and in every build.

use xxhash_rust::xxh3::{xxh3_128, xxh3_64_with_seed};

const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const HEX: &[u8; 16] = b"0123456789abcdef";

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256**: fast, small state, good enough statistics for synthetic logs.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        Rng {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    /// An independent stream for one thing (a file, a slot): the same `(seed, label, index)` always
    /// gives the same stream, whatever else was generated before.
    pub fn derive(seed: u64, label: &str, index: u64) -> Rng {
        let mut buf = Vec::with_capacity(label.len() + 8);
        buf.extend_from_slice(label.as_bytes());
        buf.extend_from_slice(&index.to_le_bytes());
        Rng::new(xxh3_64_with_seed(&buf, seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n`; `n` must be non-zero.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A count around `mean`: uniform in `[mean/2, 3*mean/2]`, rounded stochastically. Bounded, so
    /// per-window limits can be guaranteed from the rates alone.
    pub fn count(&mut self, mean: f64) -> u32 {
        if mean <= 0.0 {
            return 0;
        }
        let x = mean * (0.5 + self.f64());
        let whole = x.floor();
        whole as u32 + u32::from(self.chance(x - whole))
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// Index into `weights` with probability proportional to its weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(u64::from(total.max(1))) as u32;
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    fn chars(&mut self, set: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| char::from(set[self.below(set.len() as u64) as usize]))
            .collect()
    }

    /// `[A-Za-z0-9]{n}`, as in log file names.
    pub fn alnum(&mut self, n: usize) -> String {
        self.chars(ALNUM, n)
    }

    /// `[A-Z0-9]{n}`, as in S3 request ids and access key ids.
    pub fn upper(&mut self, n: usize) -> String {
        self.chars(UPPER, n)
    }

    pub fn hex(&mut self, n: usize) -> String {
        self.chars(HEX, n)
    }

    /// A random (version 4) UUID, lowercase.
    pub fn uuid(&mut self) -> String {
        let v = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        format_uuid(v)
    }
}

/// Formats 128 bits as a version-4 UUID (`8-4-4-4-12`, lowercase).
pub(crate) fn format_uuid(v: u128) -> String {
    let v =
        (v & !(0xF000u128 << 64) & !(0xC000u128 << 48)) | (0x4000u128 << 64) | (0x8000u128 << 48);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A UUID that depends on `name` only (not on the seed): key ids stay the same whatever the seed,
/// so documentation naming keys holds for every seed.
pub(crate) fn stable_uuid(name: &str) -> String {
    format_uuid(xxh3_128(name.as_bytes()))
}

/// `prefix` + `n` chars of `[A-Z0-9]` derived from `name` only (principal ids, access key ids).
pub(crate) fn stable_upper(prefix: &str, name: &str, n: usize) -> String {
    let mut v = xxh3_128(name.as_bytes());
    let mut out = String::with_capacity(prefix.len() + n);
    out.push_str(prefix);
    for _ in 0..n {
        out.push(char::from(UPPER[(v % 36) as usize]));
        v /= 36;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u64> = {
            let mut r = Rng::derive(7, "slot", 3);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::derive(7, "slot", 3);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::derive(7, "slot", 4);
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn helpers_stay_in_range() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            assert!(r.below(7) < 7);
            let x = r.range(-3, 4);
            assert!((-3..4).contains(&x));
            let c = r.count(10.0);
            assert!((5..=15).contains(&c), "{c}");
        }
        assert_eq!(r.alnum(16).len(), 16);
        let u = r.uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(stable_uuid("k"), stable_uuid("k"));
        assert_eq!(stable_upper("AROA", "r", 17).len(), 21);
    }
}
