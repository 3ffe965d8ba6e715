//! `ship`: a recipe's image (built first) or an image on disk, to a server over ssh.

use super::build::{self, Options};
use super::session::Session;
use crate::Error;
use crate::oci::blobs::ImageBlobs;
use crate::oci::read::Stored;
use crate::recipe::Recipe;
use crate::ship::{self, Image, Report, Target};

/// Builds `r` and ships it; `progress` hears bytes sent and the total.
pub fn ship_recipe(
    session: &Session,
    server: &Target,
    r: &Recipe,
    opts: &Options,
    ship_opts: &ship::Options,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report, Error> {
    let built = build::build(session, r, opts)?;
    let blobs = ImageBlobs::of_image(&built.image, |d| session.store.blob_path(d), &r.tags);
    Ok(ship::ship(server, &Image { name: &r.name, tags: &r.tags, plan: &blobs }, ship_opts, progress)?)
}

/// Ships an image already opened (every blob checked) as `name` (default: the last
/// component of its path), under its names there (`latest` when it has none).
pub fn ship_image(
    server: &Target,
    image: &Stored,
    name: Option<&str>,
    ship_opts: &ship::Options,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report, Error> {
    let blobs = ImageBlobs::of_stored(image).map_err(|e| Error::Usage(e.to_string()))?;
    let mut tags = image.tags.clone();
    if tags.is_empty() {
        tags.push("latest".into());
    }
    let name = name.map_or_else(|| default_name(&image.source), String::from);
    Ok(ship::ship(server, &Image { name: &name, tags: &tags, plan: &blobs }, ship_opts, progress)?)
}

/// The last path component of `oci:DIR[:REF]` or `oci-archive:FILE`, as an image name.
fn default_name(source: &str) -> String {
    let path = source.split_once(':').map_or(source, |(_, p)| p);
    let path = if source.starts_with("oci:") { path.split(':').next().unwrap_or(path) } else { path };
    let stem = std::path::Path::new(path).file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect();
    if name.is_empty() { "image".into() } else { name }
}
