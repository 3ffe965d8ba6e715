//! What resolving can fail with, and what to do about it.

use super::lock;
use crate::source::{apk, deb, fetch, image, pick};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--locked: there is no lock file `{0}`")]
    NoLock(PathBuf),
    #[error("`{0}` has no lock yet: build it first")]
    Unlocked(String),
    #[error("--locked: `{path}` does not cover the recipe as it is now:\n{}", changes.iter().map(|c| format!("  - {c}")).collect::<Vec<_>>().join("\n"))]
    Stale { path: PathBuf, changes: Vec<String> },
    #[error(transparent)]
    Lock(#[from] lock::Error),
    #[error(transparent)]
    Debian(#[from] deb::Error),
    #[error(transparent)]
    Alpine(#[from] apk::Error),
    #[error(transparent)]
    BaseImage(#[from] image::Error),
    #[error(transparent)]
    ImageFile(Box<pick::Error>),
    #[error(transparent)]
    Releases(Box<crate::source::releases::Error>),
    #[error(transparent)]
    Fetch(#[from] fetch::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A failure at a place in the recipe (shown with its line).
    #[error(transparent)]
    Recipe(crate::recipe::Diagnostic),
}

impl From<pick::Error> for Error {
    fn from(e: pick::Error) -> Error {
        Error::ImageFile(Box::new(e))
    }
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Recipe(d) => d.hint.clone(),
            Error::NoLock(_) | Error::Stale { .. } => {
                Some("run `assemble lock` (or a build without --locked) and commit the lock file".into())
            }
            Error::Fetch(fetch::Error::Mismatch { .. }) => {
                Some("if the new file is the one you want, update `sha256` in the recipe".into())
            }
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
