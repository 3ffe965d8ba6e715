//! What planning can fail with.

use crate::recipe::Diagnostic;
use crate::source::{apk, archive, deb};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Recipe(#[from] Box<Diagnostic>),
    #[error(transparent)]
    Archive(#[from] archive::Error),
    #[error(transparent)]
    Debian(#[from] deb::Error),
    #[error(transparent)]
    Alpine(#[from] apk::Error),
    #[error("{0}")]
    Blob(#[from] crate::store::BlobError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Error {
        Error::Recipe(Box::new(d))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
