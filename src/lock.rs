//! The lock file (`<recipe>.lock`, TOML): the pins that make a build repeatable and the
//! digests it produced. Pins are what `--locked` enforces; the recorded digests are what
//! `verify` compares against. Tables are sorted so the file only changes when its content
//! does. Each source has its own table (`[[download]]`, `[[package]]`, `[[apk]]`,
//! `[base_image]`); `[[image]]` records what was built, with an `inputs` hash that lets `push`
//! skip a build the registry already holds. Unknown tables are ignored, not rejected.

use crate::model::digest::Digest;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const VERSION: u32 = 1;

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
    /// What the Debian packages were resolved from, and for which requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<LockedDebian>,
    /// Every package of every architecture and layer: what `--locked` fetches.
    #[serde(default, rename = "package", skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<crate::source::deb::Pin>,
    /// Every Alpine package of every architecture and layer.
    #[serde(default, rename = "apk", skip_serializing_if = "Vec::is_empty")]
    pub apk_packages: Vec<crate::source::apk::Pin>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedDebian {
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub essential: bool,
    pub recommends: bool,
    #[serde(rename = "request")]
    pub requests: Vec<LockedRequest>,
    #[serde(default, rename = "release")]
    pub releases: Vec<crate::source::deb::ReleaseInfo>,
}

impl LockedDebian {
    /// The differences in what is asked for (not in what was found), one line each.
    pub fn request_changes(&self, wanted: &LockedDebian) -> Vec<String> {
        let mut out = Vec::new();
        if self.suites != wanted.suites || self.components != wanted.components {
            out.push(format!(
                "the recipe reads suites {:?} components {:?}; the lock was made from {:?} {:?}",
                wanted.suites, wanted.components, self.suites, self.components
            ));
        }
        if self.essential != wanted.essential || self.recommends != wanted.recommends {
            out.push("`essential` or `recommends` changed".to_string());
        }
        for w in &wanted.requests {
            match self.requests.iter().find(|r| r.layer == w.layer) {
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
    /// A hash of what the image was built from (see `build::locked_index`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Digest>,
    pub tags: Vec<String>,
    pub index: Digest,
    #[serde(rename = "platform")]
    pub platforms: Vec<LockedPlatform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedPlatform {
    pub arch: String,
    pub manifest: Digest,
    pub config: Digest,
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

pub fn read(path: &Path) -> Result<Option<Lock>, Error> {
    let text = match std::fs::read_to_string(path) {
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
    toml::from_str(&text).map(Some).map_err(|e| Error::Parse { path: path.into(), message: e.message().to_string() })
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
        if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
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

    /// What a build with these pins would need changed in `self` (the lock on disk):
    /// one line per difference, empty when the lock covers the build.
    pub fn pin_changes(&self, wanted: &Lock) -> Vec<String> {
        let mut out = Vec::new();
        for a in &wanted.archs {
            if !self.archs.contains(a) {
                out.push(format!("architecture `{a}` is not in the lock"));
            }
        }
        if self.epoch != wanted.epoch {
            out.push(format!("the epoch is {}, the lock was made with {}", wanted.epoch, self.epoch));
        }
        for d in &wanted.downloads {
            match self.downloads.iter().find(|l| l.url == d.url && l.arch == d.arch) {
                None => out.push(format!("download `{}` ({}) is not in the lock", d.url, d.arch)),
                Some(l) if l.sha256 != d.sha256 => out.push(format!(
                    "download `{}` ({}): the lock pins {}, the recipe now says {}",
                    d.url, d.arch, l.sha256, d.sha256
                )),
                Some(_) => {}
            }
        }
        for l in &self.downloads {
            if wanted.archs.contains(&l.arch) && !wanted.downloads.iter().any(|d| d.url == l.url && d.arch == l.arch) {
                out.push(format!("the lock pins download `{}` ({}), which the recipe no longer uses", l.url, l.arch));
            }
        }
        // Per platform: a build of fewer architectures resolves a base to another index.
        if let (Some(a), Some(b)) = (&self.base_image, &wanted.base_image)
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
}
