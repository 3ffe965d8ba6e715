//! Every rule of "the lock does not cover this recipe as it is now", in one place: pins
//! (`--locked` before anything is fetched) and outputs (`--locked` after the build, for
//! every platform built). `verify` and `push` judge a lock by the same rules.

use super::error::{Error, Result};
use super::lock::{Lock, LockedDebian, LockedImage};
use crate::model::digest::Digest;
use std::path::Path;

/// The differences in what is asked for (not in what was found), one line each.
pub fn request_changes(locked: &LockedDebian, wanted: &LockedDebian) -> Vec<String> {
    let mut out = Vec::new();
    if locked.suites != wanted.suites || locked.components != wanted.components {
        out.push(format!(
            "the recipe reads suites {:?} components {:?}; the lock was made from {:?} {:?}",
            wanted.suites, wanted.components, locked.suites, locked.components
        ));
    }
    if locked.essential != wanted.essential || locked.recommends != wanted.recommends {
        out.push("`essential` or `recommends` changed".to_string());
    }
    for w in &wanted.requests {
        match locked.requests.iter().find(|r| r.layer == w.layer) {
            Some(r) if r.packages == w.packages => {}
            Some(r) => out.push(format!(
                "layer `{}` asks for packages [{}]; the lock was made for [{}]",
                w.layer,
                w.packages.join(", "),
                r.packages.join(", ")
            )),
            None => out.push(format!("layer `{}` and its packages are not in the lock", w.layer)),
        }
    }
    out
}

/// What a build with these pins would need changed in `locked` (the lock on disk):
/// one line per difference, empty when the lock covers the build.
pub fn pin_changes(locked: &Lock, wanted: &Lock) -> Vec<String> {
    let mut out = Vec::new();
    for a in &wanted.archs {
        if !locked.archs.contains(a) {
            out.push(format!("architecture `{a}` is not in the lock"));
        }
    }
    if locked.epoch != wanted.epoch {
        out.push(format!("the epoch is {}, the lock was made with {}", wanted.epoch, locked.epoch));
    }
    for d in &wanted.downloads {
        match locked.downloads.iter().find(|l| l.url == d.url && l.arch == d.arch) {
            None => out.push(format!("download `{}` ({}) is not in the lock", d.url, d.arch)),
            Some(l) if l.sha256 != d.sha256 => out.push(format!(
                "download `{}` ({}): the lock pins {}, the recipe now says {}",
                d.url, d.arch, l.sha256, d.sha256
            )),
            Some(_) => {}
        }
    }
    for l in &locked.downloads {
        if wanted.archs.contains(&l.arch) && !wanted.downloads.iter().any(|d| d.url == l.url && d.arch == l.arch) {
            out.push(format!("the lock pins download `{}` ({}), which the recipe no longer uses", l.url, l.arch));
        }
    }
    // Per platform: a build of fewer architectures resolves a base to another index.
    if let (Some(a), Some(b)) = (&locked.base_image, &wanted.base_image)
        && a.reference == b.reference
    {
        for p in &b.platforms {
            match a.platforms.iter().find(|q| q.arch == p.arch) {
                Some(q) if q.manifest != p.manifest => out.push(format!(
                    "the base {} ({}) is now {}, the lock pins {} (rebuilt from a changed recipe?)",
                    b.reference, p.arch, p.manifest, q.manifest
                )),
                _ => {}
            }
        }
    }
    out
}

/// What a build produced, without the inputs hash (which older locks lack).
pub fn outputs(images: &[LockedImage]) -> Vec<LockedImage> {
    images.iter().map(|i| LockedImage { inputs: None, ..i.clone() }).collect()
}

/// `--locked`, before fetching: the lock must exist and pin what the build would pin.
pub fn check_pins(existing: Option<&Lock>, wanted: &Lock, path: &Path) -> Result<()> {
    let Some(existing) = existing else {
        return Err(Error::NoLock(path.to_path_buf()));
    };
    let changes = pin_changes(existing, wanted);
    if !changes.is_empty() {
        return Err(Error::Stale { path: path.to_path_buf(), changes });
    }
    Ok(())
}

/// `--locked`, after building: every platform built must be the one the lock records (all
/// of the image when every architecture was built, `full`).
pub fn check_outputs(existing: &Lock, wanted: &Lock, full: bool, index: &Digest, path: &Path) -> Result<()> {
    let stale = |change: String| Err(Error::Stale { path: path.to_path_buf(), changes: vec![change] });
    if full {
        if outputs(&existing.images) != outputs(&wanted.images) {
            let old = existing.images.first().map_or("nothing".to_string(), |i| i.index.to_string());
            return stale(format!(
                "the build gives index {index}, the lock records {old} (run `assemble verify` to see which layer differs)"
            ));
        }
        return Ok(());
    }
    let recorded = existing.images.first().map(|i| i.platforms.as_slice()).unwrap_or_default();
    for p in wanted.images.iter().flat_map(|i| &i.platforms) {
        let was = recorded.iter().find(|r| r.arch == p.arch);
        if was.map(|r| r.manifest) != Some(p.manifest) {
            let old = was.map_or("nothing".to_string(), |r| r.manifest.to_string());
            return stale(format!(
                "the build gives {} manifest {}, the lock records {old} (run `assemble verify` to see which layer differs)",
                p.arch, p.manifest
            ));
        }
    }
    Ok(())
}
