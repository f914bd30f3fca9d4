//! Did-you-mean hints: the closest known name to a misspelt one, by edit distance.

/// `message` plus a did-you-mean, or the list of valid values.
pub(crate) fn with_hint(message: String, got: &str, options: &[&str]) -> String {
    match suggest(got, options) {
        Some(s) => format!("{message} (did you mean \"{s}\"?)"),
        None => format!("{message} (expected one of: {})", options.join(", ")),
    }
}

/// The closest of `options` within edit distance 2 (and closer than its own length), if any.
pub(crate) fn suggest<'o>(got: &str, options: &[&'o str]) -> Option<&'o str> {
    options
        .iter()
        .filter_map(|o| distance_if_close(got, o).map(|d| (d, *o)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

/// The edit distance from `got` to `option` when it is close enough to suggest `option`: at most 2,
/// and less than the length of `option`.
pub(crate) fn distance_if_close(got: &str, option: &str) -> Option<usize> {
    let d = levenshtein(got, option);
    (d <= 2 && d < option.chars().count()).then_some(d)
}

/// Edit distance (insertions, deletions, substitutions) between two strings, by characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "", 3),
            ("treshold", "threshold", 1),
            ("min_cont", "min_count", 1),
            ("kitten", "sitting", 3),
            ("é", "e", 1),
        ] {
            assert_eq!(levenshtein(a, b), d, "{a} {b}");
        }
    }
}
