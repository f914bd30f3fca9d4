//! Reading an input file as UTF-8 text, and turning its byte offsets into line and column.

use std::fs;
use std::path::Path;

/// Why a file could not be read as text.
pub(crate) enum ReadError {
    Io(std::io::Error),
    /// `offset` is the byte offset of the first invalid byte.
    NotUtf8 {
        offset: usize,
    },
}

/// The whole of `path` as UTF-8 text.
pub(crate) fn read_text(path: &Path) -> Result<String, ReadError> {
    let bytes = fs::read(path).map_err(ReadError::Io)?;
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// A file's text and where its lines start, to turn byte offsets into line and column.
pub(crate) struct Source<'a> {
    pub(crate) file: &'a Path,
    text: &'a str,
    /// Byte offset of the start of each line; the first is 0.
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            file,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let index = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let start = self.line_starts.get(index).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (index + 1, col + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_characters() {
        let src = Source::new(Path::new("f"), "ab\né x\n");
        for (offset, want) in [
            (0, (1, 1)),
            (1, (1, 2)),
            (3, (2, 1)),
            (6, (2, 3)),
            (99, (3, 1)),
        ] {
            assert_eq!(src.position(offset), want, "offset {offset}");
        }
    }
}
