//! Gzip decompression with a cap on the decompressed size (gzip bombs) and clear truncation errors.

use std::borrow::Cow;

use flate2::{Decompress, FlushDecompress, Status};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most memory reserved up front per compressed byte. CloudTrail logs compress 10 to 20 times;
/// a stream that really expands more (deflate allows 1032 times) grows as it is read, but an
/// object claiming more in its trailer cannot make the decoder reserve it before it is read.
const MAX_RESERVED_RATIO: usize = 64;

/// The least a full output buffer grows by.
const MIN_GROWTH: usize = 64 << 10;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GzipError {
    #[error("gzip stream ends early (truncated object)")]
    Truncated,
    #[error("corrupt gzip stream: {0}")]
    Corrupt(String),
    #[error("decompressed size exceeds max_object_bytes ({limit} bytes)")]
    TooLarge { limit: usize },
}

/// Returns the decompressed bytes of a gzip stream (several members are concatenated, as `gzip`
/// does), or the input itself when it is not gzip. Stops reading once `max_bytes` is exceeded.
pub fn decompress(bytes: &[u8], max_bytes: usize) -> Result<Cow<'_, [u8]>, GzipError> {
    let mut out = Vec::new();
    let gzip = is_gzip(bytes);
    decompress_with(bytes, max_bytes, &mut out)?;
    Ok(if gzip {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(bytes)
    })
}

/// As [`decompress`], into `buf` (see [`decompress_into`]) when `bytes` are gzip: the JSON, either
/// `bytes` themselves or `buf`'s contents.
pub fn decompress_with<'a>(
    bytes: &'a [u8],
    max_bytes: usize,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8], GzipError> {
    if !is_gzip(bytes) {
        if bytes.len() > max_bytes {
            return Err(GzipError::TooLarge { limit: max_bytes });
        }
        return Ok(bytes);
    }
    decompress_into(bytes, max_bytes, buf)?;
    Ok(buf)
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Decompresses the gzip stream `bytes` (one member or several) into `out`, replacing what it
/// held and reusing its room: a buffer kept between objects is neither zeroed nor faulted in
/// again. Writes at most `max_bytes + 1` bytes before giving up with [`GzipError::TooLarge`].
pub fn decompress_into(bytes: &[u8], max_bytes: usize, out: &mut Vec<u8>) -> Result<(), GzipError> {
    out.clear();
    let room = max_bytes.saturating_add(1);
    out.reserve_exact(reserve_for(bytes, max_bytes));
    let mut input = bytes;
    // One member at a time: each is a gzip header, a deflate stream and a checked trailer.
    while !input.is_empty() {
        let mut member = Decompress::new_gzip(15);
        loop {
            if out.len() == out.capacity() {
                if out.len() >= room {
                    return Err(GzipError::TooLarge { limit: max_bytes });
                }
                let grow = (out.len() / 2).max(MIN_GROWTH).min(room - out.len());
                out.reserve_exact(grow);
            }
            let (was_in, was_out) = (member.total_in(), out.len());
            let status = member
                .decompress_vec(input, out, FlushDecompress::None)
                .map_err(|e| GzipError::Corrupt(e.to_string()))?;
            let used = usize::try_from(member.total_in() - was_in).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            if out.len() > max_bytes {
                return Err(GzipError::TooLarge { limit: max_bytes });
            }
            match status {
                Status::StreamEnd => break,
                // Input all read with room left over: the stream needs more than the object has.
                _ if input.is_empty() && out.len() < out.capacity() => {
                    return Err(GzipError::Truncated)
                }
                // No progress with room and input left: nothing more will come of this stream.
                _ if used == 0 && out.len() == was_out && out.len() < out.capacity() => {
                    return Err(GzipError::Corrupt("inflate made no progress".into()))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The capacity to start decompressing `bytes` into. ISIZE (the last four bytes) is the size mod
/// 2^32 of the last member: a good first guess, but the object's own claim, so taken no larger
/// than [`MAX_RESERVED_RATIO`] times the input, and never over the cap (which may be below the
/// compressed size).
fn reserve_for(bytes: &[u8], max_bytes: usize) -> usize {
    let hint = bytes
        .len()
        .checked_sub(4)
        .and_then(|at| bytes.get(at..))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0);
    hint.min(bytes.len().saturating_mul(MAX_RESERVED_RATIO))
        .max(bytes.len())
        .min(max_bytes.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn round_trips_and_passes_plain_through() {
        let data = br#"{"Records":[]}"#;
        assert_eq!(&*decompress(&gz(data), 1 << 20).unwrap(), data);
        assert!(matches!(
            decompress(data, 1 << 20).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn concatenated_members_are_read_whole() {
        let mut two = gz(b"abc");
        two.extend(gz(b"def"));
        assert_eq!(&*decompress(&two, 100).unwrap(), b"abcdef");
    }

    #[test]
    fn truncated_and_corrupt_streams_are_errors() {
        let full = gz(&vec![b'x'; 10_000]);
        for cut in [3, 10, full.len() / 2, full.len() - 4] {
            assert_eq!(
                decompress(&full[..cut], 1 << 20),
                Err(GzipError::Truncated),
                "cut at {cut}"
            );
        }
        let mut bad = full.clone();
        for b in bad.iter_mut().skip(12).take(20) {
            *b ^= 0x5a;
        }
        assert!(matches!(
            decompress(&bad, 1 << 20),
            Err(GzipError::Corrupt(_) | GzipError::Truncated)
        ));
    }

    /// Found by fuzzing: a compressed object longer than `max_object_bytes` panicked (`clamp`
    /// with its minimum over its maximum) instead of being read against the cap.
    #[test]
    fn regression_compressed_object_longer_than_the_cap() {
        let data = br#"{"Records":[]}"#;
        let object = gz(data);
        assert!(object.len() > data.len() + 1);
        for max in [0, 1, data.len() - 1] {
            assert_eq!(
                decompress(&object, max),
                Err(GzipError::TooLarge { limit: max })
            );
        }
        assert_eq!(&*decompress(&object, data.len()).unwrap(), data);
    }

    /// Found by fuzzing (the memory bound): the size in a gzip trailer (the object's own claim,
    /// up to 4 GiB) was reserved up to `max_object_bytes` before reading, so a 20-byte object
    /// reserved 512 MiB.
    #[test]
    fn regression_a_lying_size_trailer_reserves_little() {
        let mut object = gz(b"[]");
        let n = object.len();
        assert_eq!(reserve_for(&object, 512 << 20), n, "an honest small hint");
        object[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(reserve_for(&object, 512 << 20), n * MAX_RESERVED_RATIO);
        assert_eq!(reserve_for(&object, 100), 101);
        assert!(matches!(
            decompress(&object, 512 << 20),
            Err(GzipError::Corrupt(_))
        ));
    }

    #[test]
    fn bomb_is_stopped_at_the_cap() {
        let bomb = gz(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 100_000);
        assert_eq!(
            decompress(&bomb, 1 << 20),
            Err(GzipError::TooLarge { limit: 1 << 20 })
        );
        assert_eq!(
            decompress(&vec![b' '; 2000], 1000),
            Err(GzipError::TooLarge { limit: 1000 })
        );
    }
}
