//! What a build can fail with: planning, resolving (the lock included), packing, and the
//! build's own refusals.

use crate::model::platform::Arch;
use crate::plan;
use crate::recipe::Diagnostic;
use crate::resolve::{self, lock};
use crate::source::fetch;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Plan(#[from] plan::Error),
    #[error(transparent)]
    Resolve(#[from] resolve::Error),
    #[error("cannot pack layer `{layer}` ({arch})")]
    Pack {
        layer: String,
        arch: Arch,
        #[source]
        source: crate::layer::tar::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("`--arch {arch}`: the recipe `{recipe}` builds only {archs}")]
    ArchNotInRecipe { arch: Arch, recipe: String, archs: String },
    #[error("the build context `{0}` is not a directory")]
    Context(PathBuf),
    #[error("recipes build on each other in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error("base recipe `{path}`")]
    BaseRecipe {
        path: PathBuf,
        #[source]
        source: Box<crate::recipe::Error>,
    },
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Resolve(r) => r.hint(),
            _ => None,
        }
    }

    /// The recipe diagnostic behind this error, if it is one (for the snippet).
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            Error::Plan(plan::Error::Recipe(d)) => Some(d),
            Error::Resolve(resolve::Error::Recipe(d)) => Some(d),
            _ => None,
        }
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Error {
        Error::Plan(d.into())
    }
}

impl From<lock::Error> for Error {
    fn from(e: lock::Error) -> Error {
        Error::Resolve(e.into())
    }
}

impl From<fetch::Error> for Error {
    fn from(e: fetch::Error) -> Error {
        Error::Resolve(e.into())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
