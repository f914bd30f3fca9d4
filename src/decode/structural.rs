//! Finds the end of a JSON object fast: 64 bytes at a time, quote and brace bitmasks with AVX2
//! (SSE2 where the CPU lacks it), a prefix XOR for "inside a string", and a scalar stepper for
//! blocks with backslashes (rare in CloudTrail) and for the tail. Other architectures use the
//! scalar stepper throughout.

/// Scanning state carried across blocks.
#[derive(Debug, Default, Clone, Copy)]
struct State {
    depth: usize,
    in_string: bool,
    /// The previous byte was a backslash inside a string.
    escape: bool,
}

/// Steps byte by byte over `b[from..to]`; returns the index after the object's closing brace.
fn scalar(b: &[u8], from: usize, to: usize, st: &mut State) -> Option<usize> {
    for (k, &c) in b[from..to].iter().enumerate() {
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
                    return Some(from + k + 1);
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
    #[cfg(target_arch = "x86_64")]
    {
        if avx2::detected() {
            // SAFETY: the CPU has AVX2, PCLMULQDQ and POPCNT (checked just above).
            return unsafe { avx2::skip_object(b, i) };
        }
        // SAFETY: `masks` is given a pointer to 64 readable bytes; SSE2 is part of the x86_64
        // baseline.
        blocks(b, i, |p| unsafe { sse2::masks(p) }, prefix_xor)
    }
    #[cfg(not(target_arch = "x86_64"))]
    scalar(b, i, b.len(), &mut State::default())
}

/// Bitmasks of `"`, `\`, `{` and `}` in 64 bytes (bit k: byte k).
#[cfg(target_arch = "x86_64")]
struct Masks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

/// [`skip_object`] a 64-byte block at a time, `masks` reading a block (given a pointer to 64
/// readable bytes); inlined into each instruction set's caller so the masks are too.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn blocks(
    b: &[u8],
    i: usize,
    masks: impl Fn(*const u8) -> Masks,
    prefix_xor: impl Fn(u64) -> u64,
) -> Option<usize> {
    let mut st = State::default();
    let mut p = i;
    while p + 64 <= b.len() {
        // `p + 64 <= b.len()`: the 64 bytes read are in bounds.
        let m = masks(b[p..].as_ptr());
        if m.backslash != 0 || st.escape {
            if let Some(end) = scalar(b, p, p + 64, &mut st) {
                return Some(end);
            }
        } else {
            let carry = if st.in_string { !0u64 } else { 0 };
            let in_string = prefix_xor(m.quote) ^ carry;
            st.in_string = in_string >> 63 == 1;
            let (open, close) = (m.open & !in_string, m.close & !in_string);
            // Fewer closing braces than the depth: the object cannot end in this block.
            let closes = close.count_ones() as usize;
            if st.depth > closes {
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
                        return Some(p + bit as usize + 1);
                    }
                }
                structural &= structural - 1;
            }
        }
        p += 64;
    }
    scalar(b, p, b.len(), &mut st)
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

    /// The masks of the 64 bytes at `p`, 16 at a time.
    ///
    /// # Safety
    /// `p..p + 64` must be readable.
    #[inline(always)]
    pub(super) unsafe fn masks(p: *const u8) -> Masks {
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
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
        _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set1_epi8, _mm_set_epi64x,
    };

    use super::{blocks, Masks};

    /// Whether the CPU has what [`skip_object`] uses (every CPU with AVX2 has the other two).
    pub(super) fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("popcnt")
    }

    /// [`super::skip_object`] with AVX2: half the compares of SSE2, the prefix XOR in one
    /// carry-less multiplication, brace counts by POPCNT.
    ///
    /// # Safety
    /// The CPU must support AVX2, PCLMULQDQ and POPCNT ([`detected`]).
    #[target_feature(enable = "avx2,pclmulqdq,popcnt")]
    pub(super) unsafe fn skip_object(b: &[u8], i: usize) -> Option<usize> {
        // SAFETY: `blocks` passes pointers to 64 readable bytes; the features are enabled here.
        blocks(
            b,
            i,
            |p| unsafe { masks(p) },
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

    /// The masks of the 64 bytes at `p`, 32 at a time.
    ///
    /// # Safety
    /// `p..p + 64` must be readable and the CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn masks(p: *const u8) -> Masks {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(b: &[u8]) -> Option<usize> {
        scalar(b, 0, b.len(), &mut State::default())
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
                let sse2 = blocks(b, 0, |p| unsafe { sse2::masks(p) }, prefix_xor);
                assert_eq!(sse2, want, "{c}");
                if avx2::detected() {
                    // SAFETY: the CPU has the features.
                    assert_eq!(unsafe { avx2::skip_object(b, 0) }, want, "{c}");
                }
            }
        }
        assert_eq!(skip_object(inner.as_bytes(), 0), Some(inner.len()));
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
