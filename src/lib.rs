//! `assemble` builds OCI images from a recipe, without a Dockerfile and without a daemon.
//!
//! The crate follows the pipeline; arrows point one way, down this list (see
//! docs/architecture.md):
//! - [`model`] (the `assemble-model` crate): plain types everything uses — digests,
//!   platforms, compression, image paths, archive members, references, source specs.
//! - [`recipe`]: read and validate recipe YAML; every error points at `file:line:col`.
//! - [`resolve`]: pin what a recipe names (packages, base image) and keep the lock file.
//! - [`plan`]: every layer's file tree for one architecture, from the recipe and the pins.
//! - [`source`]: content from outside the recipe: downloads, archives, Debian and Alpine
//!   packages, registry images as bases.
//! - [`tree`]: a layer's file tree, its parent directories, and the account files.
//! - [`layer`]: the deterministic tar writer and thread-count-independent compression.
//! - [`oci`]: canonical JSON, image config, manifests, the index, referrers, and reading
//!   images back.
//! - [`sign`]: signing keys and signatures in the layout cosign verifies.
//! - [`store`]: the content-addressed cache, its layer records and listings.
//! - [`sink`]: destinations: OCI layout, oci-archive, docker-archive.
//! - [`registry`]: the distribution-spec client (auth, pull, push).
//! - [`ship`]: send an image over ssh into a store on a server (or a fleet), only the blobs
//!   it lacks.
//! - [`ops`]: what each command does (build, attest, verify, diff, inspect, test, …) over the
//!   stages.
//! - [`progress`] (a leaf any stage may use): progress of long work, as tracing events.
//!
//! The CLI (`src/cli`) turns arguments into the plain option structs [`ops`] takes.

pub use assemble_model as model;

pub mod layer;
pub mod oci;
pub mod ops;
pub mod plan;
pub mod progress;
pub mod recipe;
pub mod registry;
pub mod resolve;
pub mod ship;
pub mod sign;
pub mod sink;
pub mod source;
pub mod store;
pub mod template;
pub mod tree;

/// Every error the library returns to the command line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Recipe(#[from] recipe::Error),
    #[error(transparent)]
    Build(Box<ops::build::Error>),
    #[error(transparent)]
    Sink(#[from] sink::Error),
    #[error(transparent)]
    Read(#[from] oci::read::Error),
    #[error(transparent)]
    Diff(#[from] ops::diff::Error),
    #[error(transparent)]
    Verify(Box<ops::verify::Error>),
    #[error("cannot write `{path}`")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use the cache directory `{path}`")]
    Cache {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Registry(#[from] registry::Error),
    #[error(transparent)]
    SignKey(#[from] sign::key::Error),
    #[error(transparent)]
    Ship(#[from] ship::Error),
    #[error(transparent)]
    ImageTest(#[from] ops::test::Error),
    #[error(transparent)]
    Init(#[from] ops::init::Error),
    #[error(transparent)]
    Upgrade(Box<ops::upgrade::Error>),
    /// Image tests that failed (or could not run, with `--strict`), already listed.
    #[error("{0}")]
    TestsFailed(String),
    /// Two images, or a rebuild and its lock, that differ (the differences already listed).
    #[error("{0}")]
    Differs(String),
    #[error("{0}")]
    Usage(String),
    /// Work done for several targets (servers) of which some failed, each already reported.
    #[error("{0}")]
    Some(String),
}

impl From<ops::build::Error> for Error {
    fn from(e: ops::build::Error) -> Error {
        Error::Build(Box::new(e))
    }
}

impl From<ops::upgrade::Error> for Error {
    fn from(e: ops::upgrade::Error) -> Error {
        Error::Upgrade(Box::new(e))
    }
}

impl From<ops::verify::Error> for Error {
    fn from(e: ops::verify::Error) -> Error {
        match e {
            ops::verify::Error::Build(b) => Error::Build(b),
            other => Error::Verify(Box::new(other)),
        }
    }
}

/// The exit status of a command, by what went wrong (README, "Exit status").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// Anything not listed below: a network failure, a bad recipe, a full disk, …
    Failure = 1,
    /// The command line is wrong (also clap's own status for a bad flag).
    Usage = 2,
    /// `diff` or `verify` found differences.
    Differs = 3,
    /// An image read back from disk or a registry is damaged or malformed: a blob missing,
    /// of the wrong size, or not matching its digest or diff_id.
    InvalidImage = 4,
    /// `assemble test` ran tests that failed (or, with `--strict`, could not run).
    TestsFailed = 5,
}

impl Error {
    /// The exit status this error ends the command with.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Differs(_) => Exit::Differs,
            Error::TestsFailed(_) => Exit::TestsFailed,
            Error::Read(e) if e.is_invalid_image() => Exit::InvalidImage,
            Error::Verify(v) if matches!(v.as_ref(), ops::verify::Error::Read(e) if e.is_invalid_image()) => {
                Exit::InvalidImage
            }
            Error::Registry(registry::Error::Mismatch { .. }) => Exit::InvalidImage,
            _ => Exit::Failure,
        }
    }

    /// The recipe diagnostic behind this error, if it is one (for the snippet).
    pub fn diagnostic(&self) -> Option<&recipe::Diagnostic> {
        match self {
            Error::Recipe(recipe::Error::Invalid(d)) => Some(d),
            Error::Build(b) => b.diagnostic(),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        if let Some(d) = self.diagnostic() {
            return d.hint.clone();
        }
        match self {
            Error::Build(b) => b.hint(),
            Error::Ship(s) => s.hint(),
            Error::Registry(registry::Error::Rejected { .. }) => Some(
                "check the user and password given with --creds or ASSEMBLE_CREDS, or log in again with `docker login` or `podman login`".into(),
            ),
            Error::Registry(registry::Error::Unreachable { .. }) => Some(
                "check the registry's name and port, and that it is running; nothing was retried, since nothing answered".into(),
            ),
            Error::Recipe(recipe::Error::NotFound { .. }) => {
                Some("give a path to a recipe file, or run from the directory that holds `recipes/`".into())
            }
            _ => None,
        }
    }
}
