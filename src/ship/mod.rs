//! `assemble ship`: send an image to a server over the system `ssh`, into an OCI image
//! layout there (the store), sending only the blobs the store lacks, then load it into the
//! server's engine from the store. Its attestations go along, listed in the store's
//! `index.json`; a fleet is this, several servers at a time (`crate::ops::ship::to_fleet`).
//!
//! One ssh session does it all: the server's side (`remote.sh`, run by `sh -c`) reports the
//! store's blobs and `index.json`; we answer with one tar stream of the missing blobs, the
//! merged `index.json` and a load plan; it checks every blob's sha256 before moving any into
//! place. The server needs a POSIX shell, `tar` and `sha256sum`.

mod error;
mod history;
mod rollback;
mod send;
mod stream;

pub use error::{Error, Result};
pub use history::Version;
pub use rollback::{rollback, versions};
pub use send::{Image, Load, Loaded, Options, Pruned, Report, Target, ship};
