//! The directory source: walks directory trees for log files, counting what it skips.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{canonical_order_key, classify, ObjectRef, Placement, Selection};

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Log files, in canonical order.
    pub objects: Vec<(ObjectRef, u64)>,
    pub files_found: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    /// Paths that could not be listed or inspected, with the error.
    pub errors: Vec<(PathBuf, std::io::Error)>,
}

/// Walks each input (a directory, recursively, or a single file). Symbolic links to directories
/// are not followed (no cycles); links to files are. Folders and files `sel` excludes are neither
/// walked nor counted.
pub fn walk(inputs: &[PathBuf], sel: &Selection) -> Walk {
    let mut w = Walk::default();
    let mut found = Vec::new();
    for input in inputs {
        visit(input, sel, &mut w, &mut found);
    }
    found.sort_by_cached_key(|(p, _)| canonical_order_key(&p.to_string_lossy()));
    w.objects = found
        .into_iter()
        .map(|(p, size)| (ObjectRef::File(p), size))
        .collect();
    w
}

fn visit(path: &Path, sel: &Selection, w: &mut Walk, found: &mut Vec<(PathBuf, u64)>) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return w.errors.push((path.to_owned(), e)),
    };
    let display = path.to_string_lossy().replace('\\', "/");
    if meta.is_dir() {
        if sel.place(&display) == Placement::Outside {
            return;
        }
        let entries = match std::fs::read_dir(path) {
            Ok(e) => e,
            Err(e) => return w.errors.push((path.to_owned(), e)),
        };
        let mut children = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => children.push(e.path()),
                Err(e) => w.errors.push((path.to_owned(), e)),
            }
        }
        children.sort();
        for child in children {
            let is_dir_link = std::fs::symlink_metadata(&child)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
                && child.is_dir();
            if !is_dir_link {
                visit(&child, sel, w, found);
            }
        }
        return;
    }
    if !sel.admits_object(&display) {
        return;
    }
    w.files_found += 1;
    match classify(&display, Some(meta.len())) {
        Ok(()) => found.push((path.to_owned(), meta.len())),
        Err(reason) => *w.skipped.entry(reason.as_str()).or_default() += 1,
    }
}
