//! Reading rule and inventory files: the `*.toml` files of a directory, a whole file as UTF-8 text,
//! and byte offsets of a rule file turned into line and column.

use std::fs;
use std::path::{Path, PathBuf};

/// The `*.toml` files directly inside `dir`, sorted by file name.
pub(super) fn toml_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Why a file could not be read as text.
pub(super) enum ReadError {
    Io(std::io::Error),
    /// `offset` is the byte offset of the first invalid byte.
    NotUtf8 {
        offset: usize,
    },
}

/// The whole of `path` as UTF-8 text.
pub(super) fn read_text(path: &Path) -> Result<String, ReadError> {
    let bytes = fs::read(path).map_err(ReadError::Io)?;
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// A rule file's text and where its lines start, to turn byte offsets into line and column.
pub(super) struct Source<'a> {
    pub(super) file: &'a Path,
    text: &'a str,
    /// Byte offset of the start of each line; the first is 0.
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub(super) fn new(file: &'a Path, text: &'a str) -> Self {
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
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
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
