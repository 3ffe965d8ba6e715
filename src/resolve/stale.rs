//! Every rule of "the lock does not cover this recipe as it is now", in one place: pins
//! (`--locked` before anything is fetched) and outputs (`--locked` after the build, for
//! every platform built). `verify` and `push` judge a lock by the same rules.

use super::error::{Error, Result};
use super::lock::{self, Lock, LockedDebian, LockedImage};
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
    if locked.sources != wanted.sources {
        out.push("the recipe's further archives (`sources:`) are not the ones the lock was made from".to_string());
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
        moved_platforms("the base", a, b, false, &mut out);
    }
    for b in &wanted.from_images {
        match locked.from_images.iter().find(|a| a.reference == b.reference) {
            Some(a) => moved_platforms("the image", a, b, true, &mut out),
            None => out.push(format!("the image {} that files are taken from is not in the lock", b.reference)),
        }
    }
    for a in &locked.from_images {
        if !wanted.from_images.iter().any(|b| b.reference == a.reference) {
            out.push(format!("the lock pins the image {}, which the recipe no longer takes files from", a.reference));
        }
    }
    out
}

/// The platforms of an image `wanted` pins to other manifests than `locked` does; with
/// `every_platform`, also those the lock does not pin at all (an image files are taken from
/// is pinned per platform the build takes from it).
fn moved_platforms(
    what: &str,
    locked: &lock::LockedBaseImage,
    wanted: &lock::LockedBaseImage,
    every_platform: bool,
    out: &mut Vec<String>,
) {
    for p in &wanted.platforms {
        match locked.platforms.iter().find(|q| q.arch == p.arch) {
            Some(q) if q.manifest != p.manifest => out.push(format!(
                "{what} {} ({}) is now {}, the lock pins {} (rebuilt from a changed recipe?)",
                wanted.reference, p.arch, p.manifest, q.manifest
            )),
            Some(_) => {}
            None if every_platform => {
                out.push(format!("{what} {} ({}) is not pinned in the lock", wanted.reference, p.arch))
            }
            None => {}
        }
    }
}

/// What a build produced, without the format, inputs hash, sources and attestation digests
/// (which older locks lack; `verify` compares the attestations).
pub fn outputs(images: &[LockedImage]) -> Vec<LockedImage> {
    images
        .iter()
        .map(|i| LockedImage {
            format: 0,
            inputs: None,
            sources: Default::default(),
            provenance: None,
            platforms: i
                .platforms
                .iter()
                .map(|p| lock::LockedPlatform { spdx: None, cyclonedx: None, ..p.clone() })
                .collect(),
            ..i.clone()
        })
        .collect()
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
/// of the image when every architecture was built, `full`). `older_format`: the lock's image
/// format, when it is older and its change touches this recipe's image (then it is named).
pub fn check_outputs(
    existing: &Lock,
    wanted: &Lock,
    full: bool,
    index: &Digest,
    path: &Path,
    older_format: Option<u32>,
) -> Result<()> {
    let stale = |change: String| {
        let change = if let Some(format) = older_format {
            format!(
                "{change}; the lock's image was written in assemble's image format {format} and this assemble writes format {} (docs/recipe.md, \"Image format\"): build without `--locked` to record it again",
                lock::IMAGE_FORMAT
            )
        } else {
            change
        };
        Err(Error::Stale { path: path.to_path_buf(), changes: vec![change] })
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::lock::{LockedDownload, LockedRequest};

    fn digest(byte: char) -> Digest {
        format!("sha256:{}", byte.to_string().repeat(64)).parse().unwrap()
    }

    fn lock(archs: &[&str], downloads: &[(&str, &str, char)]) -> Lock {
        Lock {
            version: crate::resolve::lock::VERSION,
            recipe: "r".into(),
            archs: archs.iter().map(|a| a.to_string()).collect(),
            epoch: 0,
            downloads: downloads
                .iter()
                .map(|(url, arch, d)| LockedDownload {
                    url: url.to_string(),
                    arch: arch.to_string(),
                    sha256: digest(*d),
                    size: 1,
                })
                .collect(),
            images: Vec::new(),
            base_image: None,
            from_images: Vec::new(),
            debian: None,
            packages: Vec::new(),
            apk_packages: Vec::new(),
        }
    }

    #[test]
    fn a_lock_covers_a_build_of_fewer_architectures_than_it_pins() {
        let locked = lock(&["amd64", "arm64"], &[("u", "amd64", 'a'), ("u", "arm64", 'b')]);
        let wanted = lock(&["arm64"], &[("u", "arm64", 'b')]);
        assert_eq!(pin_changes(&locked, &wanted), Vec::<String>::new());
        assert!(check_pins(Some(&locked), &wanted, Path::new("r.lock")).is_ok());
    }

    #[test]
    fn every_pin_difference_is_one_line() {
        let locked = lock(&["amd64"], &[("kept", "amd64", 'a'), ("moved", "amd64", 'b'), ("dropped", "amd64", 'c')]);
        let mut wanted =
            lock(&["amd64", "arm64"], &[("kept", "amd64", 'a'), ("moved", "amd64", 'd'), ("new", "amd64", 'e')]);
        wanted.epoch = 5;
        assert_eq!(
            pin_changes(&locked, &wanted),
            [
                "architecture `arm64` is not in the lock".to_string(),
                "the epoch is 5, the lock was made with 0".into(),
                format!("download `moved` (amd64): the lock pins {}, the recipe now says {}", digest('b'), digest('d')),
                "download `new` (amd64) is not in the lock".into(),
                "the lock pins download `dropped` (amd64), which the recipe no longer uses".into(),
            ]
        );
        let err = check_pins(Some(&locked), &wanted, Path::new("r.lock")).unwrap_err();
        assert!(matches!(err, Error::Stale { ref changes, .. } if changes.len() == 5), "{err}");
        assert!(matches!(check_pins(None, &wanted, Path::new("r.lock")), Err(Error::NoLock(_))));
    }

    #[test]
    fn package_requests_are_compared_by_layer_not_by_what_was_found() {
        let debian = |packages: &[&str]| LockedDebian {
            suites: vec!["bookworm".into()],
            components: vec!["main".into()],
            essential: false,
            recommends: false,
            requests: vec![LockedRequest {
                layer: "base".into(),
                packages: packages.iter().map(|p| p.to_string()).collect(),
            }],
            releases: Vec::new(),
            sources: Vec::new(),
        };
        let mut locked = debian(&["curl"]);
        locked.releases.push(crate::resolve::lock::LockedRelease {
            suite: "bookworm".into(),
            mirror: "http://m".into(),
            date: "then".into(),
            signed_by: "key".into(),
        });
        assert_eq!(request_changes(&locked, &debian(&["curl"])), Vec::<String>::new());
        assert_eq!(
            request_changes(&locked, &debian(&["curl", "jq"])),
            ["layer `base` asks for packages [curl, jq]; the lock was made for [curl]"]
        );
        let mut other = debian(&["curl"]);
        other.requests[0].layer = "tools".into();
        other.recommends = true;
        assert_eq!(
            request_changes(&locked, &other),
            ["`essential` or `recommends` changed", "layer `tools` and its packages are not in the lock"]
        );
    }

    #[test]
    fn outputs_are_judged_per_platform_when_only_some_were_built() {
        use crate::resolve::lock::LockedPlatform;
        let image = |platforms: &[(&str, char)]| LockedImage {
            format: crate::resolve::lock::IMAGE_FORMAT,
            inputs: None,
            sources: Default::default(),
            provenance: None,
            tags: vec!["1".into()],
            index: digest('f'),
            platforms: platforms
                .iter()
                .map(|(arch, m)| LockedPlatform {
                    arch: arch.to_string(),
                    manifest: digest(*m),
                    config: digest('c'),
                    spdx: None,
                    cyclonedx: None,
                    layers: Vec::new(),
                })
                .collect(),
        };
        let mut existing = lock(&["amd64", "arm64"], &[]);
        existing.images.push(image(&[("amd64", 'a'), ("arm64", 'b')]));
        let mut one = lock(&["arm64"], &[]);
        one.images.push(image(&[("arm64", 'b')]));
        assert!(check_outputs(&existing, &one, false, &digest('f'), Path::new("r.lock"), None).is_ok());
        one.images[0].platforms[0].manifest = digest('9');
        let err = check_outputs(&existing, &one, false, &digest('f'), Path::new("r.lock"), None).unwrap_err();
        assert!(err.to_string().contains("r.lock"), "{err}");
        let Error::Stale { changes, .. } = err else { panic!("not stale") };
        assert!(changes[0].starts_with(&format!("the build gives arm64 manifest {}", digest('9'))), "{changes:?}");
    }
}
