//! What reading a recipe can fail with.

use super::diag::Diagnostic;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read recipe `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no recipe `{name}`: looked for {looked}")]
    NotFound { name: String, looked: String },
    #[error(transparent)]
    Invalid(#[from] Box<Diagnostic>),
    #[error("recipes build on each other in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Error {
        Error::Invalid(Box::new(d))
    }
}
