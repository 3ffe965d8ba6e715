//! Opening an image already written, by the name a user gives it — `oci:DIR[:REF]`,
//! `oci-archive:FILE`, `docker-archive:FILE`, or `docker://REGISTRY/REPO[:TAG|@DIGEST]`
//! (pulled into a layout in the cache's temporary directory first) — with every blob checked
//! ([`crate::oci::read`]).

use super::session::Session;
use crate::Error;
use crate::oci::read::{self, Location, Stored};
use crate::registry::{Reference, pull};
use crate::sink::Dest;

/// Whether a command-line target names an image already written (not a recipe).
pub fn is_image_on_disk(target: &str) -> bool {
    target.starts_with("oci:") || target.starts_with("oci-archive:")
}

pub fn open_image(session: &Session, image: &str) -> Result<Stored, Error> {
    let store = &session.store;
    let tmp = store.tmp_dir();
    if let Some(reference) = image.strip_prefix("docker://") {
        let r = Reference::parse(reference).map_err(Error::Usage)?;
        let cache = |source| Error::Cache { path: store.root().into(), source };
        let dir = tempfile::Builder::new().prefix("pulled-").tempdir_in(&tmp).map_err(cache)?;
        let digest = pull::to_layout(store, &r, dir.path())?;
        tracing::info!("pulled {r}: {digest}");
        return Ok(read::open_pulled(dir, image)?);
    }
    let stored = match Dest::parse(image)? {
        Dest::Oci { dir, reference } => read::open(
            Location::Layout { dir: &dir, reference: reference.as_deref(), vouch: Some(store) },
            image,
            &tmp,
        )?,
        Dest::OciArchive(file) => read::open(Location::OciArchive(&file), image, &tmp)?,
        Dest::DockerArchive(file) => read::open(Location::DockerArchive(&file), image, &tmp)?,
    };
    Ok(stored)
}
