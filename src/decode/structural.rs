//! Finds the end of a JSON object fast, or the first mention of a needle before it (replay's
//! test for a KMS record, in the same pass): 64 bytes at a time, quote and brace bitmasks with
//! AVX2 (SSE2 where the CPU lacks it), a prefix XOR for "inside a string", and a scalar stepper
//! for blocks with backslashes (rare in CloudTrail) and for the tail. Other architectures use the
//! scalar stepper throughout.

/// Scanning state carried across blocks.
#[derive(Debug, Default, Clone, Copy)]
struct State {
    depth: usize,
    in_string: bool,
    /// The previous byte was a backslash inside a string.
    escape: bool,
}

/// What a scan from an object's `{` found first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// The index after the object's closing brace.
    End(usize),
    /// The needle [`scan_object`] watches for, before the object's end (anywhere: in a key, in a
    /// string, between values).
    Mention,
}

/// Whether `needle` starts at `b[at]`.
#[inline]
fn mention_at(b: &[u8], at: usize, needle: &[u8]) -> bool {
    b.get(at..at + needle.len()) == Some(needle)
}

/// Steps byte by byte over `b[from..to]`: the object's end, or a mention of `needle` before it.
fn scalar(
    b: &[u8],
    from: usize,
    to: usize,
    st: &mut State,
    needle: Option<&[u8]>,
) -> Option<Found> {
    for (k, &c) in b[from..to].iter().enumerate() {
        if let Some(n) = needle {
            if c == n[0] && mention_at(b, from + k, n) {
                return Some(Found::Mention);
            }
        }
        if st.in_string {
            if st.escape {
                st.escape = false;
            } else if c == b'\\' {
                st.escape = true;
            } else if c == b'"' {
                st.in_string = false;
            }
            continue;
        }
        match c {
            b'"' => st.in_string = true,
            b'{' => st.depth += 1,
            b'}' => {
                st.depth = st.depth.saturating_sub(1);
                if st.depth == 0 {
                    return Some(Found::End(from + k + 1));
                }
            }
            _ => {}
        }
    }
    None
}

/// `b[i]` is `{`: the index after its matching `}`, or `None` if the input ends first. Brackets
/// are not counted: inside an object they balance whenever its braces do.
pub(super) fn skip_object(b: &[u8], i: usize) -> Option<usize> {
    match scan(b, i, None)? {
        Found::End(end) => Some(end),
        Found::Mention => unreachable!("no needle is watched for"),
    }
}

/// `b[i]` is `{`: as [`skip_object`], but a mention of `needle` (not empty) before the object's
/// end is found first, in the same pass. `None`: the input ends first, without a mention.
pub(super) fn scan_object(b: &[u8], i: usize, needle: &[u8]) -> Option<Found> {
    assert!(!needle.is_empty(), "an empty needle is everywhere");
    scan(b, i, Some(needle))
}

fn scan(b: &[u8], i: usize, needle: Option<&[u8]>) -> Option<Found> {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2::detected() {
            // SAFETY: the CPU has AVX2, PCLMULQDQ and POPCNT (checked just above).
            return unsafe { avx2::scan(b, i, needle) };
        }
        // SAFETY: `masks` is given a pointer to 64 readable bytes; SSE2 is part of the x86_64
        // baseline.
        blocks(
            b,
            i,
            needle,
            |p, f| unsafe { sse2::masks(p, f) },
            prefix_xor,
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    scalar(b, i, b.len(), &mut State::default(), needle)
}

/// Bitmasks of `"`, `\`, `{`, `}` and of the needle's first byte (0 when none is watched for)
/// in 64 bytes (bit k: byte k).
#[cfg(target_arch = "x86_64")]
struct Masks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
    first: u64,
}

/// [`scan`] a 64-byte block at a time, `masks` reading a block (given a pointer to 64 readable
/// bytes, and the needle's first byte if any); inlined into each instruction set's caller so the
/// masks are too.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn blocks(
    b: &[u8],
    i: usize,
    needle: Option<&[u8]>,
    masks: impl Fn(*const u8, Option<u8>) -> Masks,
    prefix_xor: impl Fn(u64) -> u64,
) -> Option<Found> {
    let mut st = State::default();
    let mut p = i;
    while p + 64 <= b.len() {
        // `p + 64 <= b.len()`: the 64 bytes read are in bounds.
        let m = masks(b[p..].as_ptr(), needle.map(|n| n[0]));
        // The block's first mention, if any: it counts only before the object's end.
        let mention = match needle {
            Some(n) if m.first != 0 => first_mention(b, p, m.first, n),
            _ => None,
        };
        if m.backslash != 0 || st.escape {
            if let Some(found) = scalar(b, p, p + 64, &mut st, needle) {
                return Some(found);
            }
        } else {
            let carry = if st.in_string { !0u64 } else { 0 };
            let in_string = prefix_xor(m.quote) ^ carry;
            st.in_string = in_string >> 63 == 1;
            let (open, close) = (m.open & !in_string, m.close & !in_string);
            // Fewer closing braces than the depth: the object cannot end in this block.
            let closes = close.count_ones() as usize;
            if st.depth > closes {
                if mention.is_some() {
                    return Some(Found::Mention);
                }
                st.depth = st.depth + open.count_ones() as usize - closes;
                p += 64;
                continue;
            }
            let mut structural = open | close;
            while structural != 0 {
                let bit = structural.trailing_zeros();
                if m.open >> bit & 1 == 1 {
                    st.depth += 1;
                } else {
                    st.depth = st.depth.saturating_sub(1);
                    if st.depth == 0 {
                        let end = p + bit as usize + 1;
                        if mention.is_some_and(|at| at < end) {
                            return Some(Found::Mention);
                        }
                        return Some(Found::End(end));
                    }
                }
                structural &= structural - 1;
            }
            if mention.is_some() {
                return Some(Found::Mention);
            }
        }
        p += 64;
    }
    scalar(b, p, b.len(), &mut st, needle)
}

/// The first index of the block at `p` where `needle` starts, among the bits of `first` (where
/// its first byte is). A candidate is judged by its first four bytes in one compare before the
/// whole needle is: in CloudTrail the needle's first byte is common, the four rarely.
#[cfg(target_arch = "x86_64")]
#[inline]
fn first_mention(b: &[u8], p: usize, mut first: u64, needle: &[u8]) -> Option<usize> {
    let head = |s: &[u8]| s.first_chunk::<4>().map(|h| u32::from_le_bytes(*h));
    let want = head(needle);
    while first != 0 {
        let at = p + first.trailing_zeros() as usize;
        if (want.is_none() || head(&b[at..]) == want) && mention_at(b, at, needle) {
            return Some(at);
        }
        first &= first - 1;
    }
    None
}

/// Bit k set when an odd number of bits 0..=k of `x` are set.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };

    use super::Masks;

    /// The masks of the 64 bytes at `p`, 16 at a time (`first`: the needle's first byte).
    ///
    /// # Safety
    /// `p..p + 64` must be readable.
    #[inline(always)]
    pub(super) unsafe fn masks(p: *const u8, first: Option<u8>) -> Masks {
        let chunks: [__m128i; 4] = std::array::from_fn(|k| _mm_loadu_si128(p.add(16 * k).cast()));
        let find = |c: u8| {
            let needle = _mm_set1_epi8(c as i8);
            chunks.iter().enumerate().fold(0u64, |acc, (k, &chunk)| {
                let bits = _mm_movemask_epi8(_mm_cmpeq_epi8(chunk, needle)) as u16;
                acc | u64::from(bits) << (16 * k)
            })
        };
        Masks {
            quote: find(b'"'),
            backslash: find(b'\\'),
            open: find(b'{'),
            close: find(b'}'),
            first: first.map_or(0, find),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
        _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set1_epi8, _mm_set_epi64x,
    };

    use super::{blocks, Found, Masks};

    /// Whether the CPU has what [`skip_object`] uses (every CPU with AVX2 has the other two).
    pub(super) fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("popcnt")
    }

    /// [`super::scan`] with AVX2: half the compares of SSE2, the prefix XOR in one carry-less
    /// multiplication, brace counts by POPCNT.
    ///
    /// # Safety
    /// The CPU must support AVX2, PCLMULQDQ and POPCNT ([`detected`]).
    #[target_feature(enable = "avx2,pclmulqdq,popcnt")]
    pub(super) unsafe fn scan(b: &[u8], i: usize, needle: Option<&[u8]>) -> Option<Found> {
        // SAFETY: `blocks` passes pointers to 64 readable bytes; the features are enabled here.
        blocks(
            b,
            i,
            needle,
            |p, first| unsafe { masks(p, first) },
            |x| unsafe { clmul_prefix_xor(x) },
        )
    }

    /// [`super::prefix_xor`]: `x` multiplied by all ones without carries.
    ///
    /// # Safety
    /// The CPU must support PCLMULQDQ.
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    pub(super) unsafe fn clmul_prefix_xor(x: u64) -> u64 {
        let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1), 0);
        _mm_cvtsi128_si64(product) as u64
    }

    /// The masks of the 64 bytes at `p`, 32 at a time (`first`: the needle's first byte).
    ///
    /// # Safety
    /// `p..p + 64` must be readable and the CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn masks(p: *const u8, first: Option<u8>) -> Masks {
        let lo: __m256i = _mm256_loadu_si256(p.cast());
        let hi: __m256i = _mm256_loadu_si256(p.add(32).cast());
        let find = |c: u8| {
            let needle = _mm256_set1_epi8(c as i8);
            let l = _mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, needle)) as u32;
            let h = _mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, needle)) as u32;
            u64::from(l) | u64::from(h) << 32
        };
        Masks {
            quote: find(b'"'),
            backslash: find(b'\\'),
            open: find(b'{'),
            close: find(b'}'),
            first: first.map_or(0, find),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(b: &[u8]) -> Option<usize> {
        match scalar(b, 0, b.len(), &mut State::default(), None)? {
            Found::End(end) => Some(end),
            Found::Mention => unreachable!(),
        }
    }

    /// The scan's answer from first principles: the end, unless the needle occurs before it.
    fn reference_scan(b: &[u8], needle: &[u8]) -> Option<Found> {
        let mention = memchr::memmem::find(b, needle);
        match (reference(b), mention) {
            (Some(end), Some(at)) if at < end => Some(Found::Mention),
            (Some(end), _) => Some(Found::End(end)),
            (None, Some(_)) => Some(Found::Mention),
            (None, None) => None,
        }
    }

    #[test]
    fn agrees_with_the_scalar_stepper_across_block_boundaries() {
        let inner = r#"{"a":"x{y}\"z\\","b":[{"c":"}}}"},{"d":"\\\""}],"e":{"f":{}}}"#;
        let mut cases = vec![
            inner.to_owned(),
            "{}".to_owned(),
            r#"{"unterminated":"#.to_owned(),
        ];
        // Shift the object across every offset of a 64-byte block, with long strings around.
        for pad in 0..130 {
            let filler = "q".repeat(pad);
            cases.push(format!(
                r#"{{"k":"{filler}","o":{inner},"t":"{filler}\\"}}"#
            ));
            cases.push(format!(
                r#"{{"{filler}":{{"x":"{{{{{{"}},"y":[1,2,{{"z":"}}"}}]}} trailing"#
            ));
        }
        for c in &cases {
            let (b, want) = (c.as_bytes(), reference(c.as_bytes()));
            assert_eq!(skip_object(b, 0), want, "{c}");
            // Both instruction sets, whichever this CPU would pick.
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: `blocks` passes pointers to 64 readable bytes; SSE2 is baseline.
                let sse2 = blocks(b, 0, None, |p, f| unsafe { sse2::masks(p, f) }, prefix_xor);
                assert_eq!(sse2, want.map(Found::End), "{c}");
                if avx2::detected() {
                    // SAFETY: the CPU has the features.
                    assert_eq!(
                        unsafe { avx2::scan(b, 0, None) },
                        want.map(Found::End),
                        "{c}"
                    );
                }
            }
        }
        assert_eq!(skip_object(inner.as_bytes(), 0), Some(inner.len()));
    }

    #[test]
    fn a_mention_before_the_end_is_found_in_every_position_and_one_after_it_is_not() {
        let needle = b"kms.amazonaws.com";
        let mut cases = Vec::new();
        for pad in 0..140 {
            let filler = "q".repeat(pad);
            // In a string, in a key, after an escape, split across blocks, or only after the end.
            cases.push(format!(
                r#"{{"a":"{filler}","s":"kms.amazonaws.com","z":1}}"#
            ));
            cases.push(format!(r#"{{"{filler}kms.amazonaws.com":{{"x":"}}"}}}}"#));
            cases.push(format!(r#"{{"a":"{filler}\"kms.amazonaws.com\""}}"#));
            cases.push(format!(r#"{{"a":"{filler}"}},{{"s":"kms.amazonaws.com"}}"#));
            cases.push(format!(
                r#"{{"a":"{filler}k","b":"kms.amazonaws.co","c":"kkms"}}kms.amazonaws.com"#
            ));
            cases.push(format!(r#"{{"a":"{filler}","s":"kms.amazonaws.com"#));
            cases.push(format!(r#"{{"a":"{filler}"#));
        }
        for c in &cases {
            let (b, want) = (c.as_bytes(), reference_scan(c.as_bytes(), needle));
            assert_eq!(scan_object(b, 0, needle), want, "{c}");
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: `blocks` passes pointers to 64 readable bytes; SSE2 is baseline.
                let sse2 = blocks(
                    b,
                    0,
                    Some(needle),
                    |p, f| unsafe { sse2::masks(p, f) },
                    prefix_xor,
                );
                assert_eq!(sse2, want, "{c}");
                if avx2::detected() {
                    // SAFETY: the CPU has the features.
                    assert_eq!(unsafe { avx2::scan(b, 0, Some(needle)) }, want, "{c}");
                }
            }
        }
        // The cases do reach both answers.
        let ends = cases
            .iter()
            .filter(|c| matches!(scan_object(c.as_bytes(), 0, needle), Some(Found::End(_))))
            .count();
        assert!(
            ends > 100 && ends < cases.len() - 100,
            "{ends} of {}",
            cases.len()
        );
    }

    #[test]
    fn prefix_xor_marks_inside_quotes() {
        assert_eq!(prefix_xor(0b0100_0100), 0b0011_1100);
        assert_eq!(prefix_xor(1 << 63), 1 << 63);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("pclmulqdq") {
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..1000 {
                // SAFETY: the CPU has PCLMULQDQ.
                assert_eq!(
                    unsafe { avx2::clmul_prefix_xor(x) },
                    prefix_xor(x),
                    "{x:#x}"
                );
                x = x.rotate_left(7).wrapping_mul(0x2545_f491_4f6c_dd1d);
            }
        }
    }
}
