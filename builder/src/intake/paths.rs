//! Checking the names found in an archive, before anything touches the disk.
//!
//! Both `/` and `\` separate components, in every archive kind: zips made on
//! Windows use `\`, and a name like `..\evil` must not slip through just
//! because Linux would treat it as one odd file name.

use std::path::PathBuf;

use super::{Limits, Problem};

/// An archive name as it may appear in an error message: control characters
/// escaped (no forged log lines) and at most 200 characters.
pub(crate) fn shown(raw: &str) -> String {
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if i == 200 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Like [`shown`], for names that are not valid UTF-8.
pub(crate) fn shown_bytes(raw: &[u8]) -> String {
    shown(&String::from_utf8_lossy(raw))
}

/// Turns an entry name into a relative path made only of normal components.
/// `./` prefixes and doubled separators are dropped; the archive root itself
/// (`.` or `./`) gives an empty path.
pub(crate) fn entry_path(raw: &str, limits: &Limits) -> Result<PathBuf, Problem> {
    let parts = checked_parts(raw, limits)?;
    if parts.contains(&"..") {
        return Err(Problem::ParentDir);
    }
    if parts.len() > limits.max_depth {
        return Err(Problem::PathTooDeep { depth: parts.len(), limit: limits.max_depth });
    }
    Ok(parts.iter().collect())
}

/// Checks a symlink target and returns it as components (normal names and
/// `..`) to be joined with `/`.
///
/// The target is resolved *lexically*, relative to the directory holding the
/// link: `a/b/link -> ../../x` is fine (it lands on `x`), `a/link -> ../../x`
/// is not. Lexical resolution cannot see other symlinks on the way; the
/// final pass in `tree.rs` resolves every link again through the finished tree.
pub(crate) fn symlink_target(link: &std::path::Path, raw: &str, limits: &Limits) -> Result<Vec<String>, Problem> {
    let target = shown(raw);
    if is_absolute(raw) {
        return Err(Problem::AbsoluteSymlink { target });
    }
    let parts = checked_parts(raw, limits)?;
    if raw.is_empty() {
        return Err(Problem::EmptyPath);
    }
    let mut depth = link.parent().map_or(0, |p| p.components().count());
    for part in &parts {
        if *part == ".." {
            depth = depth.checked_sub(1).ok_or(Problem::SymlinkEscapes { target: target.clone() })?;
        } else {
            depth += 1;
        }
    }
    Ok(parts.into_iter().map(str::to_owned).collect())
}

/// Checks a hard link target: it names an entry of the same archive, so it
/// follows the rules of entry names.
pub(crate) fn hard_link_target(raw: &str, limits: &Limits) -> Result<PathBuf, Problem> {
    match entry_path(raw, limits) {
        Err(Problem::ParentDir | Problem::Absolute) => Err(Problem::HardLinkOutside { target: shown(raw) }),
        Ok(path) if path.as_os_str().is_empty() => Err(Problem::HardLinkNotFile { target: shown(raw) }),
        other => other,
    }
}

/// Length, NUL and absoluteness checks shared by names and targets; returns
/// the components without empty ones and `.`.
fn checked_parts<'a>(raw: &'a str, limits: &Limits) -> Result<Vec<&'a str>, Problem> {
    if raw.len() > limits.max_path_len {
        return Err(Problem::PathTooLong { len: raw.len() as u64, limit: limits.max_path_len });
    }
    if raw.contains('\0') {
        return Err(Problem::Nul);
    }
    if is_absolute(raw) {
        return Err(Problem::Absolute);
    }
    Ok(raw.split(['/', '\\']).filter(|p| !p.is_empty() && *p != ".").collect())
}

/// `/x`, `\x`, `\\server\share` and Windows drive paths like `C:\x` or `C:x`.
fn is_absolute(raw: &str) -> bool {
    let b = raw.as_bytes();
    matches!(b.first(), Some(b'/' | b'\\')) || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn entry_names() {
        let l = Limits::default();
        assert_eq!(entry_path("./a//b/./c", &l), Ok(PathBuf::from("a/b/c")));
        assert_eq!(entry_path("a\\b", &l), Ok(PathBuf::from("a/b")));
        assert_eq!(entry_path("./", &l), Ok(PathBuf::new()));
        assert_eq!(entry_path("a/../b", &l), Err(Problem::ParentDir));
        assert_eq!(entry_path("..\\x", &l), Err(Problem::ParentDir));
        assert_eq!(entry_path("/etc/x", &l), Err(Problem::Absolute));
        assert_eq!(entry_path("C:\\x", &l), Err(Problem::Absolute));
        assert_eq!(entry_path("c:x", &l), Err(Problem::Absolute));
        assert_eq!(entry_path("a\0b", &l), Err(Problem::Nul));
        let deep = "d/".repeat(65);
        assert!(matches!(entry_path(&deep, &l), Err(Problem::PathTooDeep { depth: 65, .. })));
    }

    #[test]
    fn symlink_targets_resolve_lexically_from_the_link_directory() {
        let l = Limits::default();
        let t = |link: &str, target: &str| symlink_target(Path::new(link), target, &l);
        assert!(t("a/b/link", "../../x").is_ok());
        assert!(t("a/link", "../x").is_ok());
        assert!(t("link", ".").is_ok());
        assert!(matches!(t("a/link", "../../x"), Err(Problem::SymlinkEscapes { .. })));
        assert!(matches!(t("link", "x/../../y"), Err(Problem::SymlinkEscapes { .. })));
        assert!(matches!(t("link", "/etc/passwd"), Err(Problem::AbsoluteSymlink { .. })));
        assert!(matches!(t("link", "C:\\Windows"), Err(Problem::AbsoluteSymlink { .. })));
    }

    #[test]
    fn shown_escapes_control_characters() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown(&"x".repeat(300)).chars().count(), 201);
    }
}
