//! I/O errors that name the path they happened on, keeping the operating system's error as
//! their source.

use std::io;
use std::path::{Path, PathBuf};

/// An I/O error on `path`. Carried inside an [`io::Error`] of the same kind by [`with_path`],
/// so callers keep `io::Result` and `ErrorKind` checks, and error reports walking the source
/// chain print the path once and the operating system's error once.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct PathError {
    /// The file or directory the operation was on.
    pub path: PathBuf,
    /// What the operating system said.
    #[source]
    pub source: io::Error,
}

impl PathError {
    /// The `PathError` inside `err`, if [`with_path`] made it.
    pub fn of(err: &io::Error) -> Option<&PathError> {
        err.get_ref()?.downcast_ref::<PathError>()
    }
}

/// `err` with `path` attached as a [`PathError`], keeping its kind. An error that already
/// names `path` is returned as it is, so a path never appears twice.
pub fn with_path(err: io::Error, path: &Path) -> io::Error {
    if PathError::of(&err).is_some_and(|e| e.path == path) {
        return err;
    }
    io::Error::new(
        err.kind(),
        PathError {
            path: path.to_owned(),
            source: err,
        },
    )
}

/// An I/O error of an operation from one path to another (`rename`, `link`, `move`).
#[derive(Debug, thiserror::Error)]
#[error("{op} {} -> {}: {source}", from.display(), to.display())]
pub struct PathsError {
    /// The operation: `rename`, `link`, `move`.
    pub op: &'static str,
    /// Where from.
    pub from: PathBuf,
    /// Where to.
    pub to: PathBuf,
    /// What the operating system said.
    #[source]
    pub source: io::Error,
}

/// `err` of `op` from `from` to `to` as a [`PathsError`], keeping its kind.
pub fn with_paths(err: io::Error, op: &'static str, from: &Path, to: &Path) -> io::Error {
    io::Error::new(
        err.kind(),
        PathsError {
            op,
            from: from.to_owned(),
            to: to.to_owned(),
            source: err,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn not_found(path: &Path) -> io::Error {
        std::fs::File::open(path).unwrap_err()
    }

    #[test]
    fn keeps_kind_and_names_the_path_once() {
        let path = Path::new("/nonexistent/lander/x");
        let err = with_path(not_found(path), path);
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let text = err.to_string();
        assert!(text.starts_with("/nonexistent/lander/x: "), "{text}");
        assert_eq!(text.matches("/nonexistent/lander/x").count(), 1, "{text}");
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
    }

    #[test]
    fn the_os_error_is_the_source() {
        let path = Path::new("/nonexistent/lander/y");
        let err = with_path(not_found(path), path);
        let source = err.source().expect("a source");
        let os = source.downcast_ref::<io::Error>().expect("an io::Error");
        assert_eq!(os.raw_os_error(), Some(libc::ENOENT));
        assert!(source.source().is_none());
        assert_eq!(PathError::of(&err).unwrap().path, path);
    }

    #[test]
    fn the_same_path_is_not_added_twice() {
        let path = Path::new("/nonexistent/lander/z");
        let once = with_path(not_found(path), path);
        let twice = with_path(once, path);
        assert_eq!(twice.to_string().matches("lander/z").count(), 1);
        let other = with_path(twice, Path::new("/elsewhere"));
        assert!(other
            .to_string()
            .starts_with("/elsewhere: /nonexistent/lander/z: "));
    }

    #[test]
    fn two_paths_keep_kind_and_source() {
        let (from, to) = (Path::new("/nonexistent/a"), Path::new("/nonexistent/b"));
        let err = with_paths(not_found(from), "rename", from, to);
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let text = err.to_string();
        assert!(
            text.starts_with("rename /nonexistent/a -> /nonexistent/b: "),
            "{text}"
        );
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
        let os = err.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(os.and_then(io::Error::raw_os_error), Some(libc::ENOENT));
    }

    #[test]
    fn a_plain_error_has_no_path_error() {
        assert!(PathError::of(&io::Error::other("x")).is_none());
        assert!(PathError::of(&io::Error::from(io::ErrorKind::NotFound)).is_none());
    }
}
