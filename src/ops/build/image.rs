//! The image of a build: each platform's config and manifest over its layers (an image
//! base's first, exactly as the registry has them), the index over the platforms, and what
//! the lock records of it.

use crate::oci::{self, Image, Layer};
use crate::ops::build::pack::{Packed, PackedPlatform};
use crate::recipe::Recipe;
use crate::resolve::ResolvedBase;
use crate::resolve::lock::{LockedImage, LockedLayer, LockedPlatform};
use crate::store::Store;
use std::collections::BTreeMap;

/// The image over the packed layers; configs, manifests and the index are kept in the store
/// too, so `verify` can later show what changed.
pub fn form(
    recipe: &Recipe,
    store: &Store,
    epoch: u64,
    platforms_packed: &[PackedPlatform],
    packed: &Packed,
    base: Option<&ResolvedBase>,
) -> std::io::Result<Image> {
    let annotations = annotations(recipe, epoch);
    let mut platforms = Vec::new();
    for PackedPlatform { arch, run, layers } in platforms_packed {
        let layer = |info: &crate::layer::LayerInfo, name: &str, secret: bool| Layer {
            path: store.blob_path(&info.digest),
            info: info.clone(),
            name: name.into(),
            secret,
        };
        let base_layers = base.iter().flat_map(|(image, _)| image.platforms[arch].layers.iter());
        let layers = base_layers
            .map(|info| layer(info, "base", false))
            .chain(layers.iter().map(|(name, key, secret)| layer(&packed.by_key[key].0, name, *secret)))
            .collect();
        platforms.push(oci::platform_image(*arch, epoch, run, layers, &annotations));
    }
    platforms.sort_by_key(|p| p.arch);
    let index = oci::index(&platforms, &annotations);
    for doc in platforms.iter().flat_map(|p| [&p.config, &p.manifest]).chain([&index]) {
        store.put_bytes(&doc.bytes, false)?;
    }
    Ok(Image { name: recipe.name.clone(), tags: recipe.tags.clone(), index, platforms, referrers: Vec::new() })
}

/// What the lock records of an image (its `inputs` are added by the caller).
pub fn locked(recipe: &Recipe, image: &Image) -> LockedImage {
    LockedImage {
        format: crate::resolve::lock::IMAGE_FORMAT,
        inputs: None,
        sources: Default::default(),
        provenance: None,
        tags: recipe.tags.clone(),
        index: image.index.digest,
        platforms: image
            .platforms
            .iter()
            .map(|p| LockedPlatform {
                arch: p.arch.name().into(),
                manifest: p.manifest.digest,
                config: p.config.digest,
                spdx: None,
                cyclonedx: None,
                layers: p
                    .layers
                    .iter()
                    .map(|l| LockedLayer {
                        name: l.name.clone(),
                        diff_id: l.info.diff_id,
                        digest: l.info.digest,
                        size: l.info.size,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn annotations(recipe: &Recipe, epoch: u64) -> BTreeMap<String, String> {
    let mut a = recipe.annotations.clone();
    a.insert(oci::CREATED.into(), oci::rfc3339(epoch));
    a
}
