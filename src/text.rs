//! Small text helpers shared by the job file, the source checks and storage.

/// Levenshtein edit distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A URI's scheme, or `None` for a plain local path.
pub(crate) fn scheme_of(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once("://")?;
    (!scheme.is_empty() && rest.len() + scheme.len() + 3 == uri.len()).then_some(scheme)
}

/// Is `uri` on the local file system?
pub(crate) fn is_local(uri: &str) -> bool {
    matches!(scheme_of(uri), None | Some("file"))
}
