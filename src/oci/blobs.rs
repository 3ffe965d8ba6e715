//! What publishing an image sends, wherever it goes (a registry by `push`, a server by
//! `ship`): its blobs with where their bytes are on this machine, the platforms' manifests,
//! the index (or the one manifest in its place), the tags, the referrers about the image and
//! any per-platform tags.

use crate::model::digest::Digest;
use crate::oci::{Doc, Image};
use std::path::PathBuf;

/// A blob and where its bytes are on this machine.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub path: PathBuf,
}

/// Everything one image consists of, ready to send.
#[derive(Debug, Clone)]
pub struct ImageBlobs {
    pub blobs: Vec<Blob>,
    /// Per-platform manifests (and other manifests the index lists), sent by digest.
    pub manifests: Vec<Doc>,
    pub index: Doc,
    pub tags: Vec<String>,
    /// Artifacts about the image (SBOMs, provenance), sent after it; their blobs are in `blobs`.
    pub referrers: Vec<crate::oci::Referrer>,
    /// Tags naming one platform's manifest (`2.4.1-amd64`), for consumers that take no index.
    pub platform_tags: Vec<(String, Doc)>,
}

/// A docker archive has no manifests or index to send.
#[derive(Debug, thiserror::Error)]
#[error("{0} is a docker archive; push and ship take oci: and oci-archive: images")]
pub struct NotPublishable(pub String);

impl ImageBlobs {
    /// A built image: its layers are where the build put them, its configs in the store
    /// (`config_path` gives where).
    pub fn of_image(image: &Image, config_path: impl Fn(&Digest) -> PathBuf, tags: &[String]) -> ImageBlobs {
        let mut blobs = Vec::new();
        for p in &image.platforms {
            for l in &p.layers {
                blobs.push(Blob { digest: l.info.digest, size: l.info.size, path: l.path.clone() });
            }
            blobs.push(Blob {
                digest: p.config.digest,
                size: p.config.bytes.len() as u64,
                path: config_path(&p.config.digest),
            });
        }
        // The referrers' documents and their empty config are in the store, as configs are.
        if !image.referrers.is_empty() {
            let empty = crate::oci::referrer::empty_config();
            blobs.push(Blob { digest: empty.digest, size: empty.bytes.len() as u64, path: config_path(&empty.digest) });
        }
        for r in &image.referrers {
            let d = &r.document;
            blobs.push(Blob { digest: d.digest, size: d.bytes.len() as u64, path: config_path(&d.digest) });
        }
        ImageBlobs {
            blobs,
            manifests: image.platforms.iter().map(|p| p.manifest.clone()).collect(),
            index: image.index.clone(),
            tags: tags.to_vec(),
            referrers: image.referrers.clone(),
            platform_tags: Vec::new(),
        }
    }

    /// An image read back from disk (every blob already checked, see [`crate::oci::read`]):
    /// a single manifest goes in the index's place.
    pub fn of_stored(image: &crate::oci::read::Stored) -> Result<ImageBlobs, NotPublishable> {
        let top = image.top.clone().ok_or_else(|| NotPublishable(image.source.clone()))?;
        let mut manifests: Vec<Doc> = Vec::new();
        if image.platforms.iter().any(|p| p.manifest.as_ref() != Some(&top)) {
            manifests.extend(image.platforms.iter().filter_map(|p| p.manifest.clone()));
            manifests.extend(image.artifacts.iter().map(|a| a.manifest.clone()));
        }
        let blobs = image.blobs().into_iter().map(|(digest, size, path)| Blob { digest, size, path }).collect();
        Ok(ImageBlobs {
            blobs,
            manifests,
            index: top,
            tags: image.tags.clone(),
            referrers: Vec::new(),
            platform_tags: Vec::new(),
        })
    }
}

/// `TAG-<arch>` for every tag and platform (`arm/v7` → `armv7`), each naming that platform's
/// manifest; a tag that would not be valid (over 128 characters) is left out.
pub fn platform_tags(
    platforms: impl IntoIterator<Item = (crate::model::platform::Arch, Doc)>,
    tags: &[String],
) -> Vec<(String, Doc)> {
    let mut out = Vec::new();
    for (arch, manifest) in platforms {
        let suffix = arch.name().replace('/', "");
        for tag in tags {
            let t = format!("{tag}-{suffix}");
            if crate::model::reference::valid_tag(&t) {
                out.push((t, manifest.clone()));
            }
        }
    }
    out
}
