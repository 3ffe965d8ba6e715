//! Resolve: turn what a recipe names into exact, pinned things — package versions with
//! their checksums per architecture, download digests, a base image's digest — and keep them
//! in the lock file ([`lock`]). Every rule of "the lock does not cover this recipe any more"
//! is in [`stale`], so `--locked`, `verify` and `push` all judge a lock the same way.

pub mod alpine;
pub mod debian;
pub mod error;
pub mod lock;
pub mod outdated;
pub mod stale;

use crate::model::platform::Arch;
use crate::recipe::{Base, Packages, Recipe};
use crate::source::{apk, deb, image, pick};
use crate::store::Store;
use crate::tree::View;
pub use error::{Error, Result};
pub use lock::Facts;
use std::collections::BTreeMap;

/// An image base as resolved: the image and, per architecture, the merged view of its layers.
pub type ResolvedBase = (image::BaseImage, BTreeMap<Arch, View>);

/// Everything a build pins beyond its own files.
pub struct Resolved {
    pub base: Option<ResolvedBase>,
    pub debian: Option<lock::LockedDebian>,
    pub packages: Vec<deb::Pin>,
    pub apk: Vec<apk::Pin>,
    /// The images files are taken from, by reference.
    pub images: BTreeMap<String, pick::Pinned>,
}

/// What the build already has for resolving: the image of a recipe base built just before,
/// and the paths the plan takes from images.
pub struct Given<'a> {
    pub parent: Option<&'a image::BaseImage>,
    pub picks: &'a [pick::Wanted],
    /// Told each architecture's Debian packages as soon as they are resolved against the
    /// archive (a build starts fetching and reading them while the next architecture's index
    /// is read).
    pub resolved_arch: Option<deb::Told<'a>>,
}

/// Pins the recipe's base image (the lock's digest for its reference, else what it names
/// now; `parent` when it is a recipe base built just before) and its packages, for `archs`.
/// `upgrade` resolves anew even where the lock covers the recipe.
pub fn resolve(
    recipe: &Recipe,
    store: &Store,
    archives: &deb::Archives,
    archs: &[Arch],
    given: Given<'_>,
    facts: Facts<'_>,
    upgrade: bool,
) -> Result<Resolved> {
    let Given { parent, picks, resolved_arch } = given;
    let base = match &recipe.base {
        Base::Image(b) => {
            let pinned = facts
                .existing
                .and_then(|l| l.base_image.as_ref())
                .filter(|p| p.reference == b.reference && !upgrade)
                .map(|p| p.digest);
            if facts.locked && pinned.is_none() && parent.is_none() {
                return Err(Error::Stale {
                    path: facts.path.to_path_buf(),
                    changes: vec![format!("the lock pins no digest for the base image {}", b.reference)],
                });
            }
            let image = match parent {
                Some(image) => image.clone(),
                None => image::resolve(store, &b.reference, archs, pinned)?,
            };
            let mut views = BTreeMap::new();
            for (arch, p) in &image.platforms {
                views.insert(*arch, image::view(store, &image.reference, p)?);
            }
            Some((image, views))
        }
        _ => None,
    };
    // An image base's package databases, per architecture (empty without one).
    let base_file = |path: &str| -> BTreeMap<Arch, String> {
        let views = base.iter().flat_map(|(_, views)| views);
        views
            .map(|(a, v)| (*a, String::from_utf8_lossy(&v.read(path).ok().flatten().unwrap_or_default()).into_owned()))
            .collect()
    };
    let (debian, packages) = match recipe.base.packages() {
        Some(Packages::Debian(spec)) => {
            let installed: BTreeMap<Arch, Vec<deb::index::Package>> = base_file("/var/lib/dpkg/status")
                .into_iter()
                .map(|(a, status)| (a, deb::installed(&status, a)))
                .collect();
            let reuse = Facts { existing: if upgrade { None } else { facts.existing }, ..facts };
            let (d, p) = debian::pins(recipe, spec, store, archives, archs, &installed, reuse, resolved_arch)?;
            (Some(d), p)
        }
        _ => (None, Vec::new()),
    };
    let apk = match recipe.base.packages() {
        Some(Packages::Alpine(spec)) => {
            alpine::pins(recipe, spec, store, archs, &base_file("/lib/apk/db/installed"), facts)?
        }
        _ => Vec::new(),
    };
    let images = pin_images(store, picks, facts, upgrade)?;
    Ok(Resolved { base, debian, packages, apk, images })
}

/// Pins each image files are taken from, for the platforms they are taken from: the lock's
/// digest for its reference while there is one, else what the reference names now.
fn pin_images(
    store: &Store,
    picks: &[pick::Wanted],
    facts: Facts<'_>,
    upgrade: bool,
) -> Result<BTreeMap<String, pick::Pinned>> {
    let mut platforms: BTreeMap<&str, Vec<Arch>> = BTreeMap::new();
    for p in picks {
        let list = platforms.entry(p.reference.as_str()).or_default();
        if !list.contains(&p.platform) {
            list.push(p.platform);
        }
    }
    let mut out = BTreeMap::new();
    for (reference, archs) in platforms {
        let locked = facts.existing.and_then(|l| l.from_images.iter().find(|i| i.reference == reference));
        let pinned = locked.filter(|_| !upgrade).map(|l| l.digest);
        if facts.locked && pinned.is_none() {
            return Err(Error::Stale {
                path: facts.path.to_path_buf(),
                changes: vec![format!("the lock pins no digest for the image {reference} that files are taken from")],
            });
        }
        out.insert(reference.to_string(), pick::pin(store, reference, &archs, pinned)?);
    }
    Ok(out)
}
