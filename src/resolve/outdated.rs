//! `assemble outdated`: what has moved since a lock was made — locked Debian packages for
//! which the archive now has a newer candidate, locked Alpine packages the repositories'
//! signed indexes have newer, image bases (and images files are taken from) whose reference
//! now names another digest, recipe bases whose own lock records another image, and pinned
//! downloads whose feed announces a newer release.

use super::error::{Error, Result};
use super::lock;
use crate::model::digest::Digest;
use crate::recipe::{self, Recipe};
use crate::source::{apk, deb, image, releases};
use crate::store::Store;

/// An image base, or an image files are taken from, whose reference names another image
/// than the lock pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedBase {
    pub recipe: String,
    pub reference: String,
    pub locked: Digest,
    pub now: Digest,
    /// Files are taken from it (else it is the base).
    pub files: bool,
}

/// A pinned download whose feed announces a newer version than the recipe's variable holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewerDownload {
    pub recipe: String,
    /// The variable that holds the version.
    pub variable: String,
    pub locked: String,
    pub available: String,
    /// Where it is announced.
    pub feed: String,
}

#[derive(Debug, Default)]
pub struct Outdated {
    /// `(recipe, package)`.
    pub packages: Vec<(String, deb::Newer)>,
    pub bases: Vec<MovedBase>,
    pub downloads: Vec<NewerDownload>,
}

/// The newest release each of the recipe's tracked downloads announces, when it is newer than
/// the version the recipe holds: `(releases, newest)`, one per version variable.
pub fn newer_downloads(r: &Recipe) -> Result<Vec<(recipe::Releases, String)>> {
    let mut out: Vec<(recipe::Releases, String)> = Vec::new();
    for f in tracked(r) {
        let releases = f.releases.as_ref().expect("tracked");
        if out.iter().any(|(o, _)| o.version == releases.version) {
            continue;
        }
        // One pattern for every architecture may name it, as a URL does: `tool_{version}_{arch}`.
        let patterns: Vec<String> =
            r.archs.iter().filter_map(|a| Some(releases.pattern.get(*a)?.replace("{arch}", a.name()))).collect();
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let found = releases::versions(&releases.feed, &patterns, &releases.loc.to_string())
            .map_err(|e| Error::Releases(Box::new(e)))?;
        if found.is_empty() {
            // Said, not silently taken as "nothing newer": a pattern that matches no asset
            // (a misspelt name, an architecture the project does not build) would otherwise
            // hide every release for good.
            tracing::warn!(
                "{}: no release at {} offers {}; the recipe's `releases` pattern may not match its assets",
                releases.loc,
                crate::model::text::redact(&releases.feed.to_string()),
                patterns
                    .iter()
                    .map(|p| format!("{:?}", p.replace("{version}", "VERSION")))
                    .collect::<Vec<_>>()
                    .join(" and ")
            );
        }
        let current = r.variables.get(&releases.version).cloned().unwrap_or_default();
        if let Some(newest) = found.last()
            && releases::compare(newest, &current).is_gt()
        {
            out.push((releases.clone(), newest.clone()));
        }
    }
    Ok(out)
}

/// The recipe's downloads that say where their releases are announced.
pub fn tracked(r: &Recipe) -> impl Iterator<Item = &recipe::FileSpec> {
    r.layers
        .iter()
        .map(|l| &l.content)
        .chain([&r.config.content])
        .flat_map(|c| &c.files)
        .filter(|f| f.releases.is_some())
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
        for (releases, newest) in newer_downloads(r)? {
            out.downloads.push(NewerDownload {
                recipe: r.name.clone(),
                locked: r.variables.get(&releases.version).cloned().unwrap_or_default(),
                variable: releases.version,
                available: newest,
                feed: crate::model::text::redact(&releases.feed.to_string()),
            });
        }
        if let recipe::Base::Image(b) = &r.base
            && let Some(parent) = &b.recipe
            && let Some(moved) = moved_recipe_base(r, parent)?
        {
            out.bases.push(moved);
        }
        if deb_spec.is_none() && apk_spec.is_none() && image_base.is_none() && !takes_files(r) {
            continue;
        }
        let Some(l) = lock::read(&r.lock_path)? else {
            return Err(Error::Unlocked(r.name.clone()));
        };
        if let Some(spec) = deb_spec {
            let archive = archives.open(store, spec, &r.archs, &r.loc.to_string(), None)?;
            out.packages.extend(deb::newer(&archive, &l.debian_pins()).into_iter().map(|n| (r.name.clone(), n)));
        }
        if let Some(spec) = apk_spec {
            let newer = apk::newer(spec, &l.apk_pins(), &r.dir, &store.releases_dir())?;
            out.packages.extend(newer.into_iter().map(|n| (r.name.clone(), n)));
        }
        // The image base and the images files are taken from, each where its tag has moved.
        let base = image_base.and_then(|b| l.base_image.as_ref().filter(|p| p.reference == b.reference));
        for (pinned, files) in base.map(|p| (p, false)).into_iter().chain(l.from_images.iter().map(|p| (p, true))) {
            // Errors name the image by its role.
            let now = if files {
                crate::source::pick::current_digest(&pinned.reference)?
            } else {
                image::current_digest(&pinned.reference)?
            };
            if now != pinned.digest {
                out.bases.push(MovedBase {
                    recipe: r.name.clone(),
                    reference: pinned.reference.clone(),
                    locked: pinned.digest,
                    now,
                    files,
                });
            }
        }
    }
    Ok(out)
}

/// A recipe base whose own lock now records another image than the one `r`'s lock was
/// built on (the base was rebuilt from a changed recipe or lock since).
fn moved_recipe_base(r: &Recipe, parent: &std::path::Path) -> Result<Option<MovedBase>> {
    let (Some(mine), Some(theirs)) = (lock::read(&r.lock_path)?, lock::read(&parent.with_extension("lock"))?) else {
        return Ok(None);
    };
    let (Some(pinned), Some(now)) = (mine.base_image, theirs.images.first()) else { return Ok(None) };
    Ok((pinned.digest != now.index).then(|| MovedBase {
        recipe: r.name.clone(),
        reference: pinned.reference,
        locked: pinned.digest,
        now: now.index,
        files: false,
    }))
}

/// Whether the recipe takes files from registry images.
fn takes_files(r: &Recipe) -> bool {
    r.layers
        .iter()
        .map(|l| &l.content)
        .chain([&r.config.content])
        .any(|c| c.files.iter().any(|f| matches!(f.source, recipe::FileSource::Image(_))))
}
