//! A registry image as a base: its index resolved to each platform, its manifests,
//! configs and layers downloaded and checked, and its layers reused byte for byte. The
//! merged file system of its layers (whiteouts honoured) becomes the view that packages,
//! accounts and files of the recipe's own layers are laid on.

use crate::layer::LayerInfo;
use crate::model::digest::Digest;
use crate::model::path::ImagePath;
use crate::model::platform::Arch;
use crate::registry::{self, Reference, pull};
use crate::source::archive::{self, TarKind};
use crate::store::Store;
use crate::tree::{Content, Entry, Kind, Tree, View};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("base image {reference}: {message}")]
    Invalid { reference: String, message: String },
    #[error("base image {reference}")]
    Registry {
        reference: String,
        #[source]
        source: registry::Error,
    },
    #[error("base image {reference}: cannot read layer {digest}")]
    Layer {
        reference: String,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
}

/// One platform of the base: its manifest, config and layers (all in the store).
#[derive(Debug, Clone)]
pub struct Platform {
    pub manifest: Digest,
    pub config: Value,
    pub layers: Vec<LayerInfo>,
}

#[derive(Debug, Clone)]
pub struct BaseImage {
    /// As the recipe gives it.
    pub reference: String,
    /// The digest the reference resolved to (an index, or one manifest).
    pub digest: Digest,
    pub platforms: BTreeMap<Arch, Platform>,
}

const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Resolves `reference` (or the digest the lock pinned for it) for `archs` and downloads
/// what those platforms need into the store.
pub fn resolve(store: &Store, reference: &str, archs: &[Arch], pinned: Option<Digest>) -> Result<BaseImage, Error> {
    let invalid = |message: String| Error::Invalid { reference: reference.into(), message };
    let reg = |source| Error::Registry { reference: reference.into(), source };
    let (r, client, rt) = connect(reference)?;
    rt.block_on(async {
        let want = pinned.map_or_else(|| r.reference(), |d| d.to_string());
        let top = pull::manifest(&client, &r, &want).await.map_err(reg)?;
        let v: Value =
            serde_json::from_slice(&top.bytes).map_err(|e| invalid(format!("its manifest is not JSON: {e}")))?;
        let mut chosen: Vec<(Arch, Digest)> = Vec::new();
        if let Some(list) = v["manifests"].as_array() {
            for &arch in archs {
                chosen.push((arch, choose(list, arch).map_err(invalid)?));
            }
        } else {
            if archs.len() != 1 {
                return Err(invalid(format!(
                    "is a single-platform image; the recipe builds {} platforms",
                    archs.len()
                )));
            }
            chosen.push((archs[0], top.digest));
        }
        let mut platforms = BTreeMap::new();
        for (arch, digest) in chosen {
            let m = pull::manifest(&client, &r, &digest.to_string()).await.map_err(reg)?;
            store.put_bytes(&m.bytes, false).map_err(|e| invalid(e.to_string()))?;
            let mv: Value =
                serde_json::from_slice(&m.bytes).map_err(|e| invalid(format!("manifest {digest} is not JSON: {e}")))?;
            let desc = |d: &Value| -> Result<(Digest, u64, String), Error> {
                let digest = d["digest"]
                    .as_str()
                    .and_then(|x| x.parse().ok())
                    .ok_or_else(|| invalid(format!("manifest {digest} has a descriptor without a valid digest")))?;
                Ok((digest, d["size"].as_u64().unwrap_or(0), d["mediaType"].as_str().unwrap_or("").to_string()))
            };
            let (cdigest, csize, _) = desc(&mv["config"])?;
            pull::blob(&client, store, &r.repository, &cdigest, csize).await.map_err(reg)?;
            let config: Value =
                serde_json::from_slice(&fs_err::read(store.blob_path(&cdigest)).map_err(|e| invalid(e.to_string()))?)
                    .map_err(|e| invalid(format!("config {cdigest} is not JSON: {e}")))?;
            if config["architecture"] != arch.oci_arch() {
                return Err(invalid(format!(
                    "its {} manifest's config says architecture {}",
                    arch.name(),
                    config["architecture"]
                )));
            }
            let layers: Vec<(Digest, u64, String)> = mv["layers"]
                .as_array()
                .map(|a| a.iter().map(desc).collect::<Result<_, _>>())
                .transpose()?
                .unwrap_or_default();
            let diff_ids: Vec<Digest> = config["rootfs"]["diff_ids"]
                .as_array()
                .map(|a| a.iter().filter_map(|d| d.as_str().and_then(|d| d.parse().ok())).collect())
                .unwrap_or_default();
            if diff_ids.len() != layers.len() {
                return Err(invalid(format!(
                    "the {} config lists {} diff_ids for {} layers",
                    arch.name(),
                    diff_ids.len(),
                    layers.len()
                )));
            }
            let results: Vec<Result<(), registry::Error>> = futures_util::stream::iter(&layers)
                .map(|(d, size, _)| pull::blob(&client, store, &r.repository, d, *size))
                .buffer_unordered(4)
                .collect()
                .await;
            results.into_iter().collect::<Result<(), _>>().map_err(reg)?;
            let infos = layers
                .into_iter()
                .zip(diff_ids)
                .map(|((digest, size, media), diff_id)| LayerInfo {
                    digest,
                    diff_id,
                    size,
                    uncompressed_size: 0,
                    media_type: oci_media_type(&media).to_string(),
                })
                .collect();
            platforms.insert(arch, Platform { manifest: digest, config, layers: infos });
        }
        Ok(BaseImage { reference: reference.into(), digest: top.digest, platforms })
    })
}

/// The reference parsed, a client of its repository and a runtime to drive it.
pub(crate) fn connect(reference: &str) -> Result<(Reference, registry::Client, tokio::runtime::Runtime), Error> {
    let r = Reference::parse(reference).map_err(|message| Error::Invalid { reference: reference.into(), message })?;
    let reg = |source| Error::Registry { reference: reference.into(), source };
    let client = registry::Client::new(&r.registry, &r.repository, &registry::Options::default()).map_err(reg)?;
    Ok((r, client, registry::runtime().map_err(reg)?))
}

/// The manifest an index's `manifests` list gives for `arch` (an arm64 entry without a
/// variant counts as v8), or what the index has instead.
pub(crate) fn choose(list: &[Value], arch: Arch) -> Result<Digest, String> {
    let found = list.iter().find(|m| {
        let p = &m["platform"];
        p["os"] == "linux"
            && p["architecture"] == arch.oci_arch()
            && (p["variant"].as_str() == arch.variant() || (arch == Arch::Arm64 && p["variant"].is_null()))
    });
    let Some(m) = found else {
        let has: Vec<String> = list
            .iter()
            .map(|m| {
                let p = &m["platform"];
                let v = p["variant"].as_str().map(|v| format!("/{v}")).unwrap_or_default();
                format!("{}/{}{v}", p["os"].as_str().unwrap_or("?"), p["architecture"].as_str().unwrap_or("?"))
            })
            .collect();
        return Err(format!("has no linux/{} image (it has {})", arch.name(), has.join(", ")));
    };
    m["digest"].as_str().and_then(|d| d.parse().ok()).ok_or_else(|| "an index entry has no digest".into())
}

/// The digest `reference` names in its registry now (its index, or its one manifest).
pub fn current_digest(reference: &str) -> Result<Digest, Error> {
    let reg = |source| Error::Registry { reference: reference.into(), source };
    let (r, client, rt) = connect(reference)?;
    rt.block_on(async { Ok(pull::manifest(&client, &r, &r.reference()).await.map_err(reg)?.digest) })
}

/// Docker's layer media types name the same bytes as OCI's.
fn oci_media_type(m: &str) -> &str {
    match m {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => OCI_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        other => other,
    }
}

/// Paths whose bytes later steps read (accounts, package databases, certificates); other
/// files are kept as metadata only ([`Content::InBaseLayer`]).
fn keep_content(path: &str) -> bool {
    [
        "etc/",
        "var/lib/dpkg/",
        "lib/apk/",
        "usr/share/ca-certificates/",
        "usr/local/share/ca-certificates/",
        "usr/share/base-passwd/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
        // What /etc/os-release links to: the SBOM names the distribution from it.
        || path == "usr/lib/os-release"
}

/// The merged file system of a platform's layers, as a container would see it.
pub fn view(store: &Store, reference: &str, platform: &Platform) -> Result<View, Error> {
    let mut view = View::default();
    let origin: Arc<str> = Arc::from(format!("base image {reference}"));
    for l in &platform.layers {
        let err = |source| Error::Layer { reference: reference.into(), digest: l.digest, source };
        let file = fs_err::File::open(store.blob_path(&l.digest)).map_err(err)?;
        let mut archive = tar::Archive::new(crate::layer::decoder(file, &l.media_type).map_err(err)?);
        let mut tree = Tree::default();
        for entry in archive.entries().map_err(err)? {
            let mut entry = entry.map_err(err)?;
            let raw = entry.path().map_err(err)?.to_string_lossy().into_owned();
            let Some(path) = ImagePath::new(&raw) else { continue };
            let name = path.file_name().to_string();
            if name == ".wh..wh..opq" {
                if let Some(dir) = path.parent() {
                    view.clear_below(&dir);
                }
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let target = match path.parent() {
                    Some(p) => p.join(hidden),
                    None => ImagePath::new(hidden),
                };
                if let Some(t) = target {
                    view.remove(&t);
                }
                continue;
            }
            let h = entry.header();
            let (mode, uid, gid) =
                (h.mode().map_err(err)? & 0o7777, h.uid().map_err(err)? as u32, h.gid().map_err(err)? as u32);
            let bad = |why: &str| err(std::io::Error::other(format!("`{raw}` is {why}")));
            let mut e = match archive::tar_kind(&entry).map_err(bad)? {
                TarKind::Dir => Entry::dir(mode, uid, gid, origin.clone()),
                TarKind::Symlink(target) => Entry::symlink(target, origin.clone()),
                TarKind::Hardlink(target) => {
                    let Some(target) = ImagePath::new(&target) else { continue };
                    Entry { kind: Kind::Hardlink(target), ..Entry::dir(mode, uid, gid, origin.clone()) }
                }
                TarKind::File if keep_content(path.as_str()) && entry.size() <= 16 << 20 => {
                    let mut bytes = Vec::with_capacity(entry.size() as usize);
                    entry.read_to_end(&mut bytes).map_err(err)?;
                    Entry::bytes(bytes, mode, origin.clone())
                }
                TarKind::File => Entry::file(Content::InBaseLayer, entry.size(), Digest::of(b""), mode, origin.clone()),
                TarKind::Skip => continue,
            };
            e.uid = uid;
            e.gid = gid;
            e.mode = mode;
            tree.put(path, e);
        }
        view.apply(&tree);
    }
    Ok(view)
}
