//! Paging of HKube's search answers: by `cursor` (the key of the last item
//! of the previous page) or by 1-based page number.

/// Where the requested page starts in `keys`, or `None` when `cursor` is
/// not one of them (each route says what that means).
pub fn start<'a>(
    mut keys: impl Iterator<Item = &'a str>,
    cursor: Option<&str>,
    page: Option<u64>,
    limit: usize,
) -> Option<usize> {
    match (cursor, page) {
        (Some(cursor), _) => keys.position(|k| k == cursor).map(|at| at + 1),
        (None, Some(page)) => Some((page.max(1) as usize - 1) * limit),
        (None, None) => Some(0),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages_start_after_the_cursor_or_at_the_page() {
        let keys = ["a", "b", "c"];
        assert_eq!(super::start(keys.into_iter(), Some("b"), Some(9), 2), Some(2));
        assert_eq!(super::start(keys.into_iter(), Some("z"), None, 2), None);
        assert_eq!(super::start(keys.into_iter(), None, Some(2), 2), Some(2));
        assert_eq!(super::start(keys.into_iter(), None, None, 2), Some(0));
    }
}
