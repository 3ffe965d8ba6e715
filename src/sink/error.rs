//! What writing an image to a destination can fail with.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown destination `{0}`: expected `oci:DIR`, `oci-archive:FILE` or `docker-archive:FILE`")]
    BadDest(String),
    #[error("a docker archive holds one platform; the image has {0}")]
    NeedOnePlatform(String),
    #[error("blob {digest} in the cache is damaged: expected {digest}, read {actual}")]
    Damaged { digest: String, actual: String },
    #[error("writing `{path}` failed")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tar(#[from] crate::layer::tar::Error),
}
