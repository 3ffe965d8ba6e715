//! Files and directories taken out of a registry image, as a Dockerfile's `COPY --from=IMAGE`
//! takes them. The image is pinned by digest, per platform ([`pin`]); then [`pick`] reads its
//! layers from the top down only as far as the path needs ([`merged`]): a layer below one
//! that holds the whole answer, replaces the path or hides it (whiteouts, opaque directories)
//! is never downloaded. Every layer read is checked against its digest as it arrives and
//! against its config's diff_id as it is decompressed; member names get the checks every
//! archive's get. Symlinks on the way, and at the path itself, are followed inside the
//! image's root; inside a directory taken whole they stay symlinks, and hard links become
//! files. What is taken is a listing of members (the path itself as `""`, what a directory
//! holds by relative path) with file contents in the store, kept under the manifest digest and
//! the path, so that a rebuild neither downloads nor unpacks anything.

pub mod merged;

use crate::model::digest::{Digest, HashReader};
use crate::model::member::{Member, MemberKind};
use crate::model::platform::Arch;
use crate::registry::{self, pull};
use crate::source::archive::{self, Guard, TarKind};
use crate::source::image;
use crate::store::Store;
use merged::{LayerIndex, Merged, Node, NodeKind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {reference}: {message}")]
    Invalid { reference: String, message: String },
    #[error("image {reference}")]
    Registry {
        reference: String,
        #[source]
        source: registry::Error,
    },
    #[error("image {reference}: cannot read layer {digest}")]
    Layer {
        reference: String,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error("image {reference}: layer {digest}")]
    Refused {
        reference: String,
        digest: Digest,
        #[source]
        source: Box<archive::Refused>,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<image::Error> for Error {
    fn from(e: image::Error) -> Error {
        match e {
            image::Error::Invalid { reference, message } => Error::Invalid { reference, message },
            image::Error::Registry { reference, source } => Error::Registry { reference, source },
            image::Error::Layer { reference, digest, source } => Error::Layer { reference, digest, source },
        }
    }
}

/// An image files are taken from, pinned: what its reference resolved to and, per
/// architecture, the platform manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub reference: String,
    pub digest: Digest,
    pub platforms: BTreeMap<Arch, Digest>,
}

/// Pins `reference` (or the digest the lock gave it) for `archs`: its index's manifest for
/// each, or its one manifest when its config is of that one architecture.
pub fn pin(store: &Store, reference: &str, archs: &[Arch], pinned: Option<Digest>) -> Result<Pinned, Error> {
    let invalid = |message: String| Error::Invalid { reference: reference.into(), message };
    let reg = |source| Error::Registry { reference: reference.into(), source };
    let (r, client, rt) = image::connect(reference)?;
    rt.block_on(async {
        let want = pinned.map_or_else(|| r.reference(), |d| d.to_string());
        let top = pull::manifest(&client, &r, &want).await.map_err(reg)?;
        let v: Value =
            serde_json::from_slice(&top.bytes).map_err(|e| invalid(format!("its manifest is not JSON: {e}")))?;
        let mut platforms = BTreeMap::new();
        if let Some(list) = v["manifests"].as_array() {
            for &arch in archs {
                platforms.insert(arch, image::choose(list, arch).map_err(invalid)?);
            }
        } else {
            // One manifest: its config says which platform it is.
            let (digest, size) = descriptor(&v["config"]).ok_or_else(|| invalid("its manifest has no config".into()))?;
            pull::blob(&client, store, &r.repository, &digest, size).await.map_err(reg)?;
            let config: Value = serde_json::from_slice(&fs_err::read(store.blob_path(&digest))?)
                .map_err(|e| invalid(format!("config {digest} is not JSON: {e}")))?;
            let label = |c: &Value| {
                let v = c["variant"].as_str().map(|v| format!("/{v}")).unwrap_or_default();
                format!("{}/{}{v}", c["os"].as_str().unwrap_or("?"), c["architecture"].as_str().unwrap_or("?"))
            };
            for &arch in archs {
                let same = config["os"] == "linux"
                    && config["architecture"] == arch.oci_arch()
                    && (config["variant"].as_str() == arch.variant() || config["variant"].is_null());
                if !same {
                    return Err(invalid(format!(
                        "is a single-platform image ({}) and has no linux/{} image; name `platform:` to take the file from it for every architecture",
                        label(&config),
                        arch.name()
                    )));
                }
                platforms.insert(arch, top.digest);
            }
        }
        Ok(Pinned { reference: reference.into(), digest: top.digest, platforms })
    })
}

/// The digest `reference` names in its registry now.
pub fn current_digest(reference: &str) -> Result<Digest, Error> {
    Ok(image::current_digest(reference)?)
}

/// A descriptor's digest and size.
fn descriptor(d: &Value) -> Option<(Digest, u64)> {
    Some((d["digest"].as_str()?.parse().ok()?, d["size"].as_u64()?))
}

/// A path a recipe takes from an image, for one architecture being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub arch: Arch,
    /// The platform of the image it is taken from.
    pub platform: Arch,
    pub reference: String,
    pub path: String,
}

/// One layer of the platform manifest: its blob and what it decompresses to.
struct Layer {
    digest: Digest,
    size: u64,
    media_type: String,
    diff_id: Digest,
}

/// Takes `path` out of the platform manifest `manifest` (for `platform`) of `reference` (see
/// the module header); `limit` bounds what each layer decompresses to and what is taken.
pub fn pick(
    store: &Store,
    reference: &str,
    manifest: &Digest,
    platform: Arch,
    path: &str,
    limit: u64,
) -> Result<Vec<Member>, Error> {
    if let Some(members) = cached(store, manifest, path) {
        return Ok(members);
    }
    let listing = listing_path(store, manifest, path);
    let invalid = |message: String| Error::Invalid { reference: reference.into(), message };
    let reg = |source| Error::Registry { reference: reference.into(), source };
    let (r, client, rt) = image::connect(reference)?;
    let layers = rt.block_on(async {
        let m = pull::manifest(&client, &r, &manifest.to_string()).await.map_err(reg)?;
        let v: Value =
            serde_json::from_slice(&m.bytes).map_err(|e| invalid(format!("manifest {manifest} is not JSON: {e}")))?;
        let (cdigest, csize) =
            descriptor(&v["config"]).ok_or_else(|| invalid(format!("manifest {manifest} has no config")))?;
        pull::blob(&client, store, &r.repository, &cdigest, csize).await.map_err(reg)?;
        let config: Value = serde_json::from_slice(&fs_err::read(store.blob_path(&cdigest))?)
            .map_err(|e| invalid(format!("config {cdigest} is not JSON: {e}")))?;
        // The index said which platform this is; its config must agree.
        if config["architecture"] != platform.oci_arch() {
            return Err(invalid(format!(
                "manifest {manifest}, listed for linux/{}, has a config of architecture {}",
                platform.name(),
                config["architecture"]
            )));
        }
        let blobs = v["layers"].as_array().cloned().unwrap_or_default();
        let diff_ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
        if blobs.len() != diff_ids.len() {
            return Err(invalid(format!(
                "config {cdigest} lists {} diff_ids for {} layers",
                diff_ids.len(),
                blobs.len()
            )));
        }
        blobs
            .iter()
            .zip(&diff_ids)
            .map(|(b, d)| {
                let (digest, size) = descriptor(b)
                    .ok_or_else(|| invalid(format!("manifest {manifest} has a layer without a digest")))?;
                let diff_id = d
                    .as_str()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| invalid(format!("config {cdigest} has an invalid diff_id")))?;
                Ok(Layer { digest, size, media_type: b["mediaType"].as_str().unwrap_or("").to_string(), diff_id })
            })
            .collect::<Result<Vec<Layer>, Error>>()
    })?;
    // Top layer first.
    let top_down: Vec<&Layer> = layers.iter().rev().collect();
    let mut merged = Merged::new(top_down.len(), |i| {
        let l = top_down[i];
        rt.block_on(pull::blob(&client, store, &r.repository, &l.digest, l.size)).map_err(reg)?;
        index(store, reference, l, limit)
    });
    let (at, top, node) = merged.resolve(path)?.map_err(|m| invalid(format!("{m} (platform manifest {manifest})")))?;
    let mut taken: Vec<(String, usize, String, Node)> = vec![(String::new(), top, at.clone(), node.clone())];
    if node.kind == NodeKind::Dir {
        for (rel, (layer, node)) in merged.below(&at, top)? {
            taken.push((rel.clone(), layer, format!("{at}/{rel}"), node));
        }
    }
    tracing::info!(
        "took {path} from {reference} ({manifest}): {} of {} layers read",
        merged.layers.len(),
        layers.len()
    );
    // What each layer must give: its regular files taken, and the targets of its hard links.
    let mut wanted: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (rel, layer, full, node) in &taken {
        let shown = if rel.is_empty() { path.to_string() } else { format!("/{full}") };
        match &node.kind {
            NodeKind::File { .. } => {
                wanted.entry(*layer).or_default().insert(full.clone());
            }
            NodeKind::Hardlink(target) => {
                let is_file =
                    merged.layers[*layer].entries.get(target).is_some_and(|n| matches!(n.kind, NodeKind::File { .. }));
                if !is_file {
                    return Err(invalid(format!(
                        "`{shown}` is a hard link to `/{target}`, which is not a file of its layer"
                    )));
                }
                wanted.entry(*layer).or_default().insert(target.clone());
            }
            NodeKind::Special => {
                return Err(invalid(format!("`{shown}` is a device, FIFO or socket, which an image file cannot be")));
            }
            NodeKind::Dir | NodeKind::Symlink(_) => {}
        }
    }
    let mut contents: BTreeMap<(usize, String), (Digest, u64)> = BTreeMap::new();
    let mut budget = limit;
    for (layer, paths) in &wanted {
        for (p, got) in extract(store, reference, top_down[*layer], paths, &mut budget)? {
            contents.insert((*layer, p), got);
        }
    }
    let members: Vec<Member> = taken
        .into_iter()
        .map(|(rel, layer, full, node)| {
            let kind = match node.kind {
                NodeKind::Dir => MemberKind::Dir,
                NodeKind::Symlink(t) => MemberKind::Symlink(t),
                NodeKind::File { .. } => {
                    let (digest, size) = contents[&(layer, full)];
                    MemberKind::File { digest, size }
                }
                NodeKind::Hardlink(t) => {
                    let (digest, size) = contents[&(layer, t)];
                    MemberKind::File { digest, size }
                }
                NodeKind::Special => unreachable!("refused above"),
            };
            Member { path: rel, kind, mode: node.mode, uid: node.uid, gid: node.gid, mtime: 0 }
        })
        .collect();
    let mut tmp = store.temp()?;
    std::io::Write::write_all(&mut tmp, &serde_json::to_vec(&members).expect("serialisable"))?;
    tmp.persist(&listing).map_err(|e| e.error)?;
    Ok(members)
}

/// What [`pick`] took of `path` from `manifest` before, while every file of it is in the store.
pub fn cached(store: &Store, manifest: &Digest, path: &str) -> Option<Vec<Member>> {
    let bytes = fs_err::read(listing_path(store, manifest, path)).ok()?;
    let members = serde_json::from_slice::<Vec<Member>>(&bytes).ok()?;
    // A listing is an optimisation, not trusted: one that could not have been made (a hard
    // link, a path that is not clean, not the path itself first) is a miss.
    let sound = members.first().is_some_and(|m| m.path.is_empty())
        && members
            .iter()
            .skip(1)
            .all(|m| crate::model::path::ImagePath::new(&m.path).is_some_and(|p| p.as_str() == m.path))
        && members.iter().all(|m| match &m.kind {
            MemberKind::File { digest, .. } => store.has_blob(digest),
            MemberKind::Hardlink(_) => false,
            _ => true,
        });
    sound.then_some(members)
}

/// Where the listing of `path` taken from `manifest` is kept.
fn listing_path(store: &Store, manifest: &Digest, path: &str) -> std::path::PathBuf {
    let key = Digest::of(format!("{manifest}\0{path}").as_bytes());
    store.listing_path(&format!("{}.pick.json", key.hex()))
}

/// A layer's tar stream: decompressed, bounded, hashed as it is read.
type LayerTar = tar::Archive<HashReader<archive::Bounded<Box<dyn Read>>>>;

/// A layer's decompressed tar stream, bounded by `limit` and hashed as it is read.
fn open_layer(store: &Store, reference: &str, l: &Layer, limit: u64) -> Result<(Guard, LayerTar), Error> {
    let err = |source| Error::Layer { reference: reference.into(), digest: l.digest, source };
    let file = fs_err::File::open(store.blob_path(&l.digest)).map_err(err)?;
    let guard = Guard::new(&format!("layer {} of {reference}", l.digest));
    let stream = guard.bounded(crate::layer::decoder(file, &l.media_type).map_err(err)?, limit);
    Ok((guard, tar::Archive::new(HashReader::new(stream))))
}

/// The cleaned name of a layer member (`None` for the root); a leading `/` is allowed, as
/// some image builders write one.
fn member_name(guard: &Guard, raw: &[u8]) -> Result<Option<String>, archive::Refused> {
    guard.name(raw.strip_prefix(b"/").unwrap_or(raw))
}

/// Reads one layer's listing, checking its diff_id.
fn index(store: &Store, reference: &str, l: &Layer, limit: u64) -> Result<LayerIndex, Error> {
    let err = |source| Error::Layer { reference: reference.into(), digest: l.digest, source };
    let refused = |source| Error::Refused { reference: reference.into(), digest: l.digest, source: Box::new(source) };
    let (guard, mut archive) = open_layer(store, reference, l, limit)?;
    let mut out = LayerIndex::default();
    let mut members = 0usize;
    for entry in archive.entries().map_err(err)? {
        let entry = entry.map_err(err)?;
        members += 1;
        if members > archive::MAX_MEMBERS {
            return Err(err(std::io::Error::other(format!("more than {} members", archive::MAX_MEMBERS))));
        }
        let Some(name) = member_name(&guard, &entry.path_bytes()).map_err(refused)? else { continue };
        let (dir, file) = name.rsplit_once('/').unwrap_or(("", &name));
        let too_many = || {
            err(std::io::Error::other(format!(
                "its names and the directories they imply pass {} bytes",
                merged::MAX_NAME_BYTES
            )))
        };
        if file == ".wh..wh..opq" {
            out.opaque.insert(dir.to_string());
            if !dir.is_empty() && !out.add(dir.to_string(), merged::implied_dir()) {
                return Err(too_many());
            }
            continue;
        }
        if let Some(hidden) = file.strip_prefix(".wh.") {
            if !out.whiteout(if dir.is_empty() { hidden.to_string() } else { format!("{dir}/{hidden}") }) {
                return Err(too_many());
            }
            continue;
        }
        let h = entry.header();
        let (mode, uid, gid) =
            (h.mode().map_err(err)? & 0o7777, h.uid().map_err(err)? as u32, h.gid().map_err(err)? as u32);
        let kind = match archive::tar_kind(&entry) {
            Ok(TarKind::Dir) => NodeKind::Dir,
            Ok(TarKind::File) => NodeKind::File { size: entry.size() },
            Ok(TarKind::Symlink(t)) => NodeKind::Symlink(t),
            Ok(TarKind::Hardlink(t)) => match member_name(&guard, t.as_bytes()).map_err(refused)? {
                Some(t) => NodeKind::Hardlink(t),
                None => continue,
            },
            Ok(TarKind::Skip) => continue,
            Err(_) => NodeKind::Special,
        };
        if !out.add(name, Node { kind, mode, uid, gid, implied: false }) {
            return Err(too_many());
        }
    }
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(err)?;
    let (actual, _) = rest.hasher.finish();
    if actual != l.diff_id {
        return Err(Error::Invalid {
            reference: reference.into(),
            message: format!("layer {} decompresses to {actual}, but its config's diff_id is {}", l.digest, l.diff_id),
        });
    }
    Ok(out)
}

/// Stores the regular files `paths` of one layer; `budget` is what may still be taken.
fn extract(
    store: &Store,
    reference: &str,
    l: &Layer,
    paths: &BTreeSet<String>,
    budget: &mut u64,
) -> Result<BTreeMap<String, (Digest, u64)>, Error> {
    let err = |source| Error::Layer { reference: reference.into(), digest: l.digest, source };
    let refused = |source| Error::Refused { reference: reference.into(), digest: l.digest, source: Box::new(source) };
    let (guard, mut archive) = open_layer(store, reference, l, u64::MAX)?;
    let mut out = BTreeMap::new();
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let Some(name) = member_name(&guard, &entry.path_bytes()).map_err(refused)? else { continue };
        if !paths.contains(&name) || !matches!(archive::tar_kind(&entry), Ok(TarKind::File)) {
            continue;
        }
        if entry.size() > *budget {
            return Err(Error::Invalid {
                reference: reference.into(),
                message: format!(
                    "what is taken from it is larger than the unpack limit (`/{name}` is {} bytes)",
                    entry.size()
                ),
            });
        }
        *budget -= entry.size();
        let got = store.put_reader(&mut entry).map_err(err)?;
        out.insert(name, got);
    }
    if let Some(missing) = paths.iter().find(|p| !out.contains_key(*p)) {
        return Err(err(std::io::Error::other(format!("`/{missing}` was listed but not found when read again"))));
    }
    Ok(out)
}
