//! The lock file (`<recipe>.lock`, TOML): the pins that make a build repeatable and the
//! digests it produced. Pins are what `--locked` enforces; the recorded digests are what
//! `verify` compares against. Tables are sorted so the file only changes when its content
//! does. Each source has its own table (`[[download]]`, `[[package]]`, `[[apk]]`,
//! `[base_image]`); `[[image]]` records what was built, with an `inputs` hash that lets `push`
//! skip a build the registry already holds. Unknown tables are ignored, not rejected.
//!
//! The file's tables are this module's own types, not the sources' structs: a source that
//! gains a field does not change the lock format, and every architecture a lock names is
//! checked when it is read.

use crate::model::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const VERSION: u32 = 1;

/// The generation of the bytes assemble writes for the same inputs. A lock records the one
/// its image was written with, so that an image that differs only because a newer assemble
/// writes it differently is told apart from a build that does not reproduce.
/// 1: the first. 2: the recipe's `metadata` (`org.opencontainers.image.*`) is also written as
/// config labels.
pub const IMAGE_FORMAT: u32 = 2;

/// The `recorded` image's format, when it is older than [`IMAGE_FORMAT`] and the change
/// between them can explain how `rebuilt` differs from it: format 2 writes the
/// `org.opencontainers.image.*` annotations as labels — configs only, so only for a recipe
/// with such annotations, and only while every layer is the same.
pub fn older_format(
    recorded: &LockedImage,
    rebuilt: &LockedImage,
    annotations: &BTreeMap<String, String>,
) -> Option<u32> {
    let layers_same = rebuilt.platforms.iter().all(|p| {
        recorded.platforms.iter().find(|o| o.arch == p.arch).is_none_or(|o| {
            o.layers.iter().map(|l| (l.diff_id, l.digest)).eq(p.layers.iter().map(|l| (l.diff_id, l.digest)))
        })
    });
    let touched = annotations.keys().any(|k| k.starts_with("org.opencontainers.image."));
    (recorded.format < 2 && touched && layers_same).then_some(recorded.format)
}

fn first_format() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub version: u32,
    pub recipe: String,
    pub archs: Vec<String>,
    pub epoch: u64,
    #[serde(default, rename = "download", skip_serializing_if = "Vec::is_empty")]
    pub downloads: Vec<LockedDownload>,
    #[serde(default, rename = "image", skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<LockedImage>,
    /// The registry image the recipe builds on, pinned by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<LockedBaseImage>,
    /// The registry images files are taken from (`files: [{image: …}]`), pinned by digest.
    #[serde(default, rename = "from_image", skip_serializing_if = "Vec::is_empty")]
    pub from_images: Vec<LockedBaseImage>,
    /// What the Debian packages were resolved from, and for which requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<LockedDebian>,
    /// Every package of every architecture and layer: what `--locked` fetches.
    #[serde(default, rename = "package", skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<LockedPackage>,
    /// Every Alpine package of every architecture and layer.
    #[serde(default, rename = "apk", skip_serializing_if = "Vec::is_empty")]
    pub apk_packages: Vec<LockedApk>,
}

/// `[[package]]`: one Debian package pinned for one architecture and layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LockedPackage {
    pub arch: String,
    pub layer: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub url: String,
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multi_arch_same: bool,
}

/// `[[apk]]`: one Alpine package pinned for one architecture and layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LockedApk {
    pub arch: String,
    pub layer: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub repository: String,
    pub checksum: String,
    pub size: u64,
    /// The index's `I:` (installed size), which bounds decompression.
    #[serde(default)]
    pub installed_size: u64,
    pub url: String,
    #[serde(default)]
    pub sha256: String,
}

/// `[[debian.release]]`: a verified suite the packages were resolved from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LockedRelease {
    pub suite: String,
    pub mirror: String,
    pub date: String,
    pub signed_by: String,
}

impl From<&crate::source::deb::Pin> for LockedPackage {
    fn from(p: &crate::source::deb::Pin) -> LockedPackage {
        LockedPackage {
            arch: p.arch.clone(),
            layer: p.layer.clone(),
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.architecture.clone(),
            url: p.url.clone(),
            sha256: p.sha256.clone(),
            size: p.size,
            multi_arch_same: p.multi_arch_same,
        }
    }
}

impl From<&LockedPackage> for crate::source::deb::Pin {
    fn from(p: &LockedPackage) -> crate::source::deb::Pin {
        crate::source::deb::Pin {
            arch: p.arch.clone(),
            layer: p.layer.clone(),
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.architecture.clone(),
            url: p.url.clone(),
            sha256: p.sha256.clone(),
            size: p.size,
            multi_arch_same: p.multi_arch_same,
        }
    }
}

impl From<&crate::source::apk::Pin> for LockedApk {
    fn from(p: &crate::source::apk::Pin) -> LockedApk {
        LockedApk {
            arch: p.arch.clone(),
            layer: p.layer.clone(),
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.architecture.clone(),
            repository: p.repository.clone(),
            checksum: p.checksum.clone(),
            size: p.size,
            installed_size: p.installed_size,
            url: p.url.clone(),
            sha256: p.sha256.clone(),
        }
    }
}

impl From<&LockedApk> for crate::source::apk::Pin {
    fn from(p: &LockedApk) -> crate::source::apk::Pin {
        crate::source::apk::Pin {
            arch: p.arch.clone(),
            layer: p.layer.clone(),
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.architecture.clone(),
            repository: p.repository.clone(),
            checksum: p.checksum.clone(),
            size: p.size,
            installed_size: p.installed_size,
            url: p.url.clone(),
            sha256: p.sha256.clone(),
        }
    }
}

impl From<&crate::source::deb::ReleaseInfo> for LockedRelease {
    fn from(r: &crate::source::deb::ReleaseInfo) -> LockedRelease {
        LockedRelease {
            suite: r.suite.clone(),
            mirror: r.mirror.clone(),
            date: r.date.clone(),
            signed_by: r.signed_by.clone(),
        }
    }
}

impl Lock {
    /// The Debian pins, as the resolver and installer take them.
    pub fn debian_pins(&self) -> Vec<crate::source::deb::Pin> {
        self.packages.iter().map(Into::into).collect()
    }

    /// The Alpine pins, as the resolver and installer take them.
    pub fn apk_pins(&self) -> Vec<crate::source::apk::Pin> {
        self.apk_packages.iter().map(Into::into).collect()
    }
}

/// The images `new` pins to another digest than `old` did (the base and those files are
/// taken from), one line each: `image REF: OLD → NEW`.
pub fn moved_images(old: Option<&Lock>, new: &Lock) -> Vec<String> {
    let Some(old) = old else { return Vec::new() };
    let before: Vec<&LockedBaseImage> = old.base_image.iter().chain(&old.from_images).collect();
    new.base_image
        .iter()
        .chain(&new.from_images)
        .filter_map(|n| {
            let o = before.iter().find(|o| o.reference == n.reference)?;
            (o.digest != n.digest).then(|| format!("image {}: {} → {}", n.reference, o.digest, n.digest))
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedBaseImage {
    /// As the recipe names it; a tag that has moved since does not matter while this holds.
    pub reference: String,
    /// What it resolved to: the index (or the one manifest).
    pub digest: Digest,
    #[serde(rename = "platform")]
    pub platforms: Vec<LockedBasePlatform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedBasePlatform {
    pub arch: String,
    pub manifest: Digest,
}

impl LockedBaseImage {
    /// An image as resolved: what the recipe calls it, its digest and each platform's manifest.
    pub fn of(
        reference: &str,
        digest: Digest,
        platforms: impl Iterator<Item = (crate::model::platform::Arch, Digest)>,
    ) -> LockedBaseImage {
        LockedBaseImage {
            reference: reference.to_string(),
            digest,
            platforms: platforms.map(|(a, manifest)| LockedBasePlatform { arch: a.name().into(), manifest }).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedDebian {
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub essential: bool,
    pub recommends: bool,
    #[serde(rename = "request")]
    pub requests: Vec<LockedRequest>,
    #[serde(default, rename = "release")]
    pub releases: Vec<LockedRelease>,
    /// The further archives the recipe reads (`sources:`), as it gives them.
    #[serde(default, rename = "source", skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<LockedSource>,
}

/// `[[debian.source]]`: another archive the packages may come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedSource {
    pub mirror: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedRequest {
    pub layer: String,
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LockedDownload {
    pub url: String,
    pub arch: String,
    pub sha256: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedImage {
    /// The [`IMAGE_FORMAT`] the image was written with (locks without it: 1).
    #[serde(default = "first_format")]
    pub format: u32,
    /// A hash of what the image was built from (see `build::locked_index`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Digest>,
    pub tags: Vec<String>,
    pub index: Digest,
    /// The local inputs (the recipe, its files, trees, archives and templates) by the path the
    /// recipe gives: a file by its sha256, a directory by a hash of what it holds. Only for
    /// naming what changed; `inputs` is what decides.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, Digest>,
    /// The digest of the image's provenance statement (`assemble provenance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Digest>,
    #[serde(rename = "platform")]
    pub platforms: Vec<LockedPlatform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedPlatform {
    pub arch: String,
    pub manifest: Digest,
    pub config: Digest,
    /// The digests of this platform's SBOMs (`assemble sbom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spdx: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cyclonedx: Option<Digest>,
    #[serde(rename = "layer")]
    pub layers: Vec<LockedLayer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedLayer {
    pub name: String,
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read lock file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lock file `{path}` is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("lock file `{path}` has format version {found}; this assemble reads version {VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write lock file `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the resolvers need of the lock: the one on disk (if it may be reused), whether
/// `--locked` holds the result to it, and its path for messages.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    pub existing: Option<&'a Lock>,
    pub locked: bool,
    pub path: &'a Path,
}

pub fn read(path: &Path) -> Result<Option<Lock>, Error> {
    let text = match fs_err::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Read { path: path.into(), source });
        }
    };
    #[derive(Deserialize)]
    struct Head {
        version: u32,
    }
    let head: Head =
        toml::from_str(&text).map_err(|e| Error::Parse { path: path.into(), message: e.message().to_string() })?;
    if head.version != VERSION {
        return Err(Error::Version { path: path.into(), found: head.version });
    }
    let lock: Lock =
        toml::from_str(&text).map_err(|e| Error::Parse { path: path.into(), message: e.message().to_string() })?;
    // Every architecture the lock names must be one assemble knows (none is guessed).
    let named = lock
        .archs
        .iter()
        .chain(lock.downloads.iter().map(|d| &d.arch))
        .chain(lock.packages.iter().map(|p| &p.arch))
        .chain(lock.apk_packages.iter().map(|p| &p.arch))
        .chain(lock.images.iter().flat_map(|i| i.platforms.iter().map(|p| &p.arch)));
    for a in named {
        if let Err(e) = a.parse::<crate::model::platform::Arch>() {
            return Err(Error::Parse { path: path.into(), message: e });
        }
    }
    Ok(Some(lock))
}

impl Lock {
    pub fn render(&self) -> String {
        let mut sorted = self.clone();
        sorted.downloads.sort();
        sorted.packages.sort();
        sorted.apk_packages.sort();
        let body = toml::to_string(&sorted).expect("lock serialises");
        format!(
            "# Written by assemble. It pins this recipe's inputs and records the digests they give.\n# Commit it; do not edit it by hand.\n{body}"
        )
    }

    /// Writes the lock atomically; returns false when the file already had this content.
    pub fn write(&self, path: &Path) -> Result<bool, Error> {
        let text = self.render();
        if fs_err::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        let err = |source| Error::Write { path: path.into(), source };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new().prefix(".lock-").tempfile_in(dir).map_err(err)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(err)?;
        tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(true)
    }
}
