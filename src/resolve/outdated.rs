//! `assemble outdated`: what has moved since a lock was made — locked Debian packages for
//! which the archive now has a newer candidate, locked Alpine packages the repositories'
//! signed indexes have newer, and image bases whose reference now names another digest.

use super::error::{Error, Result};
use super::lock;
use crate::model::digest::Digest;
use crate::recipe::{self, Recipe};
use crate::source::{apk, deb, image};
use crate::store::Store;

/// An image base whose reference names another image than the lock pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedBase {
    pub recipe: String,
    pub reference: String,
    pub locked: Digest,
    pub now: Digest,
}

#[derive(Debug, Default)]
pub struct Outdated {
    /// `(recipe, package)`.
    pub packages: Vec<(String, deb::Newer)>,
    pub bases: Vec<MovedBase>,
}

/// What has moved for each recipe (recipes without packages or an image base are skipped;
/// one without a lock is an error).
pub fn outdated(recipes: &[Recipe], store: &Store) -> Result<Outdated> {
    let mut out = Outdated::default();
    // Recipes on the same suites read their indexes once.
    let archives = deb::Archives::default();
    for r in recipes {
        let (deb_spec, apk_spec) = match r.base.packages() {
            Some(recipe::Packages::Debian(spec)) => (Some(spec), None),
            Some(recipe::Packages::Alpine(spec)) => (None, Some(spec)),
            None => (None, None),
        };
        let image_base = match &r.base {
            recipe::Base::Image(b) if b.recipe.is_none() => Some(b),
            _ => None,
        };
        if deb_spec.is_none() && apk_spec.is_none() && image_base.is_none() {
            continue;
        }
        let Some(l) = lock::read(&r.lock_path)? else {
            return Err(Error::Unlocked(r.name.clone()));
        };
        if let Some(spec) = deb_spec {
            let archive = archives.open(store, spec, &r.archs, &r.loc.to_string())?;
            out.packages.extend(deb::newer(&archive, &l.debian_pins()).into_iter().map(|n| (r.name.clone(), n)));
        }
        if let Some(spec) = apk_spec {
            let newer = apk::newer(spec, &l.apk_pins(), &r.dir, &store.releases_dir())?;
            out.packages.extend(newer.into_iter().map(|n| (r.name.clone(), n)));
        }
        if let Some(b) = image_base
            && let Some(pinned) = l.base_image.as_ref().filter(|p| p.reference == b.reference)
        {
            let now = image::current_digest(&b.reference)?;
            if now != pinned.digest {
                out.bases.push(MovedBase {
                    recipe: r.name.clone(),
                    reference: b.reference.clone(),
                    locked: pinned.digest,
                    now,
                });
            }
        }
    }
    Ok(out)
}
