//! What the attestations are made of: the documents' media types, what one platform holds
//! (its package databases), the packages and other parts an SBOM lists, and the small
//! encoders the documents share (purls, stable ids, the lock's pins digest).

use crate::model::digest::Digest;
use crate::model::platform::Arch;
use crate::oci::Doc;
use crate::recipe::Recipe;
use crate::resolve::lock::Lock;
use crate::tree::{Tree, View};
use std::collections::BTreeMap;

pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";

/// The generation of the documents' layout, named in them instead of assemble's version (which
/// would change every recorded digest with each release). Raise it when the documents change.
pub const ATTESTATION_FORMAT: u32 = 1;
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";

/// What one platform's image holds that its SBOM lists: the package databases and the
/// distribution's identity, as read from the image's files.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    pub dpkg_status: Option<String>,
    pub apk_installed: Option<String>,
    pub os_release: Option<String>,
}

impl Contents {
    /// Reads them from the platform's layers (the last layer holding a file wins) over the
    /// image base's view.
    pub fn of(trees: &[(String, Tree)], base: Option<&View>) -> Contents {
        let layers: Vec<&Tree> = trees.iter().map(|(_, t)| t).collect();
        let text = |path: &str| match crate::tree::read_through(&layers, base, path) {
            Ok(b) => b.map(|b| String::from_utf8_lossy(&b).into_owned()),
            Err(e) => {
                tracing::warn!("/{path} cannot be read ({e}): the SBOM lists nothing from it");
                None
            }
        };
        Contents {
            dpkg_status: text("var/lib/dpkg/status"),
            apk_installed: text("lib/apk/db/installed"),
            os_release: text("etc/os-release").or_else(|| text("usr/lib/os-release")),
        }
    }
}

/// The attestations of one image.
#[derive(Debug, Clone)]
pub struct Attestations {
    /// Per platform: the SPDX and the CycloneDX SBOM.
    pub sboms: Vec<(Arch, Doc, Doc)>,
    pub provenance: Doc,
}

impl Attestations {
    pub fn sbom(&self, arch: Arch) -> Option<(&Doc, &Doc)> {
        self.sboms.iter().find(|(a, _, _)| *a == arch).map(|(_, s, c)| (s, c))
    }
}

/// One package installed in the image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// `deb` or `apk`.
    pub kind: &'static str,
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The source package (Debian `Source`, Alpine origin).
    pub source: Option<String>,
    /// The maintainer the package names.
    pub supplier: Option<String>,
    /// The license the package's metadata declares (Alpine's `L:`; Debian has none).
    pub license: Option<String>,
    pub homepage: Option<String>,
    /// From the lock: where it was fetched, its file's sha256, the recipe layer.
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub layer: Option<String>,
    pub purl: String,
}

/// Another piece of the image: a pinned download, the base image, a recipe layer.
#[derive(Debug, Clone)]
pub struct Part {
    pub id: String,
    pub name: String,
    pub version: Option<String>,
    pub url: Option<String>,
    pub sha256: String,
    pub purl: Option<String>,
    pub kind: PartKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    Download,
    BaseImage,
    /// An image files are taken from.
    FilesFrom,
    Layer,
}

/// Everything one platform's SBOM says.
pub struct Inventory<'a> {
    pub recipe: &'a Recipe,
    pub arch: Arch,
    pub platform: String,
    pub manifest: Digest,
    pub epoch: u64,
    pub packages: Vec<Package>,
    pub parts: Vec<Part>,
}

pub(super) fn inventory<'a>(
    recipe: &'a Recipe,
    lock: &Lock,
    p: &crate::oci::PlatformImage,
    c: &Contents,
    epoch: u64,
) -> Inventory<'a> {
    let arch = p.arch.name();
    let distro = distro(c.os_release.as_deref(), lock);
    let mut packages = Vec::new();
    for para in crate::source::deb::control::parse(c.dpkg_status.as_deref().unwrap_or("")) {
        let (Some(name), Some(version)) = (para.get("Package"), para.get("Version")) else { continue };
        if !para.get("Status").is_some_and(|s| s.ends_with(" installed")) {
            continue;
        }
        let architecture = para.get("Architecture").unwrap_or("").to_string();
        let pin = lock
            .packages
            .iter()
            .find(|l| l.arch == arch && l.name == name && l.version == version && l.architecture == architecture);
        packages.push(Package {
            kind: "deb",
            name: name.into(),
            version: version.into(),
            source: para.get("Source").map(|s| s.split(' ').next().unwrap_or(s).to_string()),
            supplier: para.get("Maintainer").map(String::from),
            license: None,
            homepage: web(para.get("Homepage")),
            url: web(pin.map(|l| l.url.as_str())),
            sha256: pin.map(|l| l.sha256.clone()),
            layer: pin.map(|l| l.layer.clone()),
            purl: purl("deb", distro.0.as_deref().unwrap_or("debian"), name, version, &architecture, &distro.1),
            architecture,
        });
    }
    for rec in apk_records(c.apk_installed.as_deref().unwrap_or("")) {
        let (Some(name), Some(version)) = (rec.get("P"), rec.get("V")) else { continue };
        let architecture = rec.get("A").cloned().unwrap_or_default();
        let pin = lock.apk_packages.iter().find(|l| l.arch == arch && &l.name == name && &l.version == version);
        packages.push(Package {
            kind: "apk",
            name: name.clone(),
            version: version.clone(),
            source: rec.get("o").cloned(),
            supplier: rec.get("m").cloned(),
            license: rec.get("L").cloned(),
            homepage: web(rec.get("U").map(String::as_str)),
            url: web(pin.map(|l| l.url.as_str())),
            sha256: pin.map(|l| l.sha256.clone()).filter(|s| !s.is_empty()),
            layer: pin.map(|l| l.layer.clone()),
            purl: purl("apk", distro.0.as_deref().unwrap_or("alpine"), name, version, &architecture, &distro.1),
            architecture,
        });
    }
    packages.sort();
    packages.dedup();
    let mut parts = Vec::new();
    for d in lock.downloads.iter().filter(|d| d.arch == arch) {
        let file = d.url.split(['?', '#']).next().unwrap_or(&d.url).rsplit('/').next().unwrap_or("download");
        parts.push(Part {
            id: format!("download-{}", d.sha256.hex()),
            name: file.to_string(),
            version: None,
            url: web(Some(&d.url)),
            sha256: d.sha256.hex().to_string(),
            purl: None,
            kind: PartKind::Download,
        });
    }
    // An image by its platform manifest, the index digest as its version.
    let image = |id: String, i: &crate::resolve::lock::LockedBaseImage, manifest: Digest, kind| Part {
        id,
        name: i.reference.clone(),
        version: Some(i.digest.to_string()),
        url: None,
        sha256: manifest.hex().to_string(),
        purl: oci_purl(&i.reference, &manifest),
        kind,
    };
    if let Some(b) = &lock.base_image {
        let manifest = b.platforms.iter().find(|bp| bp.arch == arch).map_or(b.digest, |bp| bp.manifest);
        parts.push(image("base-image".into(), b, manifest, PartKind::BaseImage));
    }
    for (n, f) in lock.from_images.iter().enumerate() {
        // This platform's manifest, or the one platform a recipe names for every architecture.
        let manifest =
            f.platforms.iter().find(|fp| fp.arch == arch).or(f.platforms.first()).map_or(f.digest, |fp| fp.manifest);
        parts.push(image(format!("files-from-{}", n + 1), f, manifest, PartKind::FilesFrom));
    }
    for (i, l) in p.layers.iter().enumerate() {
        parts.push(Part {
            id: format!("layer-{}", i + 1),
            name: format!("layer {} ({})", i + 1, l.name),
            version: None,
            url: None,
            sha256: l.info.diff_id.hex().to_string(),
            purl: None,
            kind: PartKind::Layer,
        });
    }
    Inventory {
        recipe,
        arch: p.arch,
        platform: p.arch.oci_platform(),
        manifest: p.manifest.digest,
        epoch,
        packages,
        parts,
    }
}

/// A location the documents (which are published) can give as a URL: http(s) only (a
/// repository on the build machine's disk is not somewhere a reader can fetch from, and its
/// path is the builder's business), without credentials, query or fragment (where tokens go).
pub fn web(s: Option<&str>) -> Option<String> {
    let s = s.filter(|s| s.starts_with("https://") || s.starts_with("http://"))?;
    let s = s.split(['?', '#']).next().unwrap_or(s);
    let (scheme, rest) = s.split_once("://")?;
    let host_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..host_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    Some(format!("{scheme}://{rest}"))
}

/// The distribution as purls name it: (namespace, `distro` qualifier), from os-release
/// (`debian`, `debian-12`; `alpine`, `alpine-3.20.3`), else from the lock's first suite.
fn distro(os_release: Option<&str>, lock: &Lock) -> (Option<String>, Option<String>) {
    let field = |key: &str| {
        os_release?.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).map(|v| v.trim_matches('"').to_string())
    };
    match (field("ID"), field("VERSION_ID")) {
        (Some(id), Some(v)) => (Some(id.clone()), Some(format!("{id}-{v}"))),
        (Some(id), None) => (Some(id), None),
        _ => (None, lock.debian.as_ref().and_then(|d| d.suites.first().cloned())),
    }
}

/// The records of an apk installed database: `K:value` lines, a blank line between packages.
fn apk_records(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut rec = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            if !rec.is_empty() {
                out.push(std::mem::take(&mut rec));
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.len() == 1
        {
            rec.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
    }
    if !rec.is_empty() {
        out.push(rec);
    }
    out
}

/// A package URL (`pkg:deb/debian/curl@7.88.1-10%2Bdeb12u8?arch=amd64&distro=debian-12`).
pub fn purl(kind: &str, namespace: &str, name: &str, version: &str, arch: &str, distro: &Option<String>) -> String {
    let mut q = vec![format!("arch={}", pct(arch))];
    if let Some(d) = distro {
        q.push(format!("distro={}", pct(d)));
    }
    format!("pkg:{kind}/{}/{}@{}?{}", pct(namespace), pct(name), pct(version), q.join("&"))
}

/// `pkg:oci/NAME@sha256%3A…?repository_url=REGISTRY/PATH` for an image reference.
fn oci_purl(reference: &str, digest: &Digest) -> Option<String> {
    let r = crate::model::reference::Reference::parse(reference).ok()?;
    let repo = r.repository.rsplit('/').next().unwrap_or(&r.repository).to_string();
    Some(format!(
        "pkg:oci/{}@{}?repository_url={}",
        pct(&repo),
        pct(&digest.to_string()),
        pct(&format!("{}/{}", r.registry, r.repository))
    ))
}

/// Percent-encoding of everything but the unreserved characters (RFC 3986), as purl asks.
pub fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A stable identifier derived from `seed`, in the UUID form (version 4 bits set, so tools
/// that parse it accept it): the same document gets the same one on every machine.
pub(super) fn uuid_from(seed: &str) -> String {
    let d = Digest::of(seed.as_bytes());
    let mut b: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&d.hex()[2 * i..2 * i + 2], 16).unwrap_or(0)).collect();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The lock as its pins are (without the `[[image]]` tables that record what was built):
/// what provenance names as the lock, since the lock records the provenance's digest.
pub fn pins_digest(lock: &Lock) -> Digest {
    Digest::of(Lock { images: Vec::new(), ..lock.clone() }.render().as_bytes())
}

#[cfg(test)]
mod tests {
    use crate::ops::attest::inventory::*;

    #[test]
    fn public_urls_drop_credentials_queries_and_local_paths() {
        assert_eq!(
            web(Some("https://user:token@mirror.example/debian/pool/c.deb?sig=abc#x")).as_deref(),
            Some("https://mirror.example/debian/pool/c.deb")
        );
        assert_eq!(web(Some("/home/me/repo/x86_64/a.apk")), None);
        assert_eq!(web(Some("file:///srv/repo/a.apk")), None);
        assert_eq!(web(Some("http://h/p")).as_deref(), Some("http://h/p"));
    }

    #[test]
    fn purls_encode_versions_and_qualifiers() {
        assert_eq!(
            purl("deb", "debian", "libstdc++6", "12.2.0-14+deb12u1", "amd64", &Some("debian-12".into())),
            "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14%2Bdeb12u1?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            purl("deb", "debian", "tzdata", "1:2024a", "all", &None),
            "pkg:deb/debian/tzdata@1%3A2024a?arch=all"
        );
    }

    #[test]
    fn ids_from_seeds_are_stable_uuids() {
        let a = uuid_from("x");
        assert_eq!(a, uuid_from("x"));
        assert_ne!(a, uuid_from("y"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn apk_records_are_split_on_blank_lines() {
        let recs = apk_records("C:Q1abc\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\n\nP:busybox\nV:1.36\n");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0]["L"], "MIT");
        assert_eq!(recs[1]["P"], "busybox");
    }
}
