//! A cache entry that is not what its name says: found by whoever reads it (the store, the
//! tar writer packing a stored file, a layer view reading one), removed on the spot, and
//! reported so that the build can run again and fetch or make it anew. It depends on nothing
//! of the store, so readers below the store can report damage too.

use crate::model::digest::Digest;
use std::io;
use std::path::{Path, PathBuf};

/// A cache entry that does not hold what its name says. It has already been removed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "cache entry damaged: `{path}` should hold {expected}, but holds {actual} (removed; it is fetched or made again)"
)]
pub struct Damaged {
    pub path: PathBuf,
    pub expected: Digest,
    pub actual: Digest,
}

/// Removes a damaged cache entry and says what it was.
pub fn remove_damaged(path: &Path, expected: Digest, actual: Digest) -> Damaged {
    tracing::warn!("cache entry damaged: `{}` should hold {expected}, but holds {actual}; removed", path.display());
    if let Err(e) = fs_err::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove the damaged cache entry `{}`: {e}", path.display());
    }
    Damaged { path: path.to_path_buf(), expected, actual }
}

/// The [`Damaged`] entry behind an error, if any link of its chain is one (also inside an
/// `io::Error`, as file reads report it).
pub fn damaged_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Damaged> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(d) = err.downcast_ref::<Damaged>() {
            return Some(d);
        }
        if let Some(d) = err.downcast_ref::<Box<Damaged>>() {
            return Some(d);
        }
        if let Some(d) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref()) {
            return Some(d);
        }
        cur = err.source();
    }
    None
}

/// A blob whose bytes are not what its name (`…/sha256/<hex>`) says, or part of whose bytes
/// are not what the listing that points into it says: hashed whole, removed, reported.
pub fn damaged_blob(path: &Path) -> Damaged {
    let expected = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(Digest::from_hex)
        .unwrap_or_else(|| Digest::of(b"(unnamed)"));
    let actual = fs_err::File::open(path)
        .and_then(crate::model::digest::hash_reader)
        .map_or_else(|_| Digest::of(b"(unreadable)"), |(d, _)| d);
    remove_damaged(path, expected, actual)
}
