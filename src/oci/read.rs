//! Reading an image back — an OCI layout directory, an `oci-archive`, a `docker-archive`, or
//! a registry image pulled into a layout — as one checked value that `inspect`, `diff`,
//! `verify --against`, `push oci:…` and `ship oci:…` all read through.
//!
//! Nothing a manifest claims is taken on trust: every document (index, manifests, configs)
//! must have the size and sha256 its descriptor names, and every layer blob is read whole —
//! its size and sha256 against the manifest's descriptor, and its decompressed stream
//! against the config's diff_id — before [`open`] returns (a layout's blob that passed this
//! check before, as the very file it is now by the cache's stat records, is not read again).
//! So when two opened images name the same digest, they hold the same bytes, and comparing
//! digests is comparing content.
//!
//! Archives are unpacked first, by this module and not by a general tar extractor: only
//! regular files with plain names (`index.json`, `blobs/sha256/<hex>`, `<hex>/layer.tar`, …)
//! are written, into a fresh temporary directory; links, devices, `..` and duplicates are
//! refused, so a hostile archive cannot write anywhere else.

use crate::model::digest::{Digest, Hasher};
use crate::oci::{Doc, MEDIA_INDEX, MEDIA_MANIFEST, REF_NAME};
use crate::progress::{self, Phase};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The image is damaged or malformed: a blob that is missing or does not match what
    /// names it, or documents that are not what the image-spec says.
    #[error("{image} is not a valid image: {message}")]
    Invalid { image: String, message: String },
    #[error("{image} has no image named `{reference}`; it has: {known}")]
    NoReference { image: String, reference: String, known: String },
    #[error("{image} holds {count} images; name one as oci:DIR:REF (it has: {known})")]
    Ambiguous { image: String, count: usize, known: String },
}

impl Error {
    /// Whether the image itself is at fault (damaged or malformed), as opposed to a read
    /// failure on this machine or a name it does not hold.
    pub fn is_invalid_image(&self) -> bool {
        matches!(self, Error::Invalid { .. })
    }
}

/// An image read back from disk with every blob checked (see the module header).
pub struct Stored {
    /// The image as the user named it (`oci:DIR`, `oci-archive:FILE`, `docker://REF`, …).
    pub source: String,
    /// The directory its blobs are under (a temporary one for archives and registries).
    pub root: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// The top document: the image index, or a single platform's manifest (`None` for a
    /// docker archive, which has neither).
    pub top: Option<Doc>,
    /// The names `index.json` (or a docker archive's `RepoTags`) gives the image.
    pub tags: Vec<String>,
    pub platforms: Vec<Platform>,
    /// Manifests the index lists that are not platforms (attestations, `unknown/unknown`),
    /// carried along as they are by push and ship.
    pub artifacts: Vec<Artifact>,
}

/// A manifest of the index that is not a platform image, with its blobs (each checked for
/// size and sha256; they are not layers, so there is no diff_id).
pub struct Artifact {
    pub manifest: Doc,
    pub blobs: Vec<(Digest, u64, PathBuf)>,
}

/// One platform of a [`Stored`] image.
pub struct Platform {
    /// `linux/amd64`, `linux/arm64/v8`, … (from the config).
    pub name: String,
    /// `None` in a docker archive.
    pub manifest: Option<Doc>,
    pub config: Doc,
    pub config_value: Value,
    pub layers: Vec<Layer>,
}

/// One layer blob of a [`Stored`] image, checked.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The blob's digest (a docker archive's layers are uncompressed: their diff_id).
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub uncompressed_size: u64,
    pub media_type: String,
    /// Where the blob is inside the layout or archive (`blobs/sha256/<hex>`).
    pub file: String,
    pub path: PathBuf,
    /// The recipe layer's name, when the config's history has it (images assemble wrote).
    pub name: Option<String>,
    /// Written readable by its owner only (how assemble writes layers holding secrets).
    pub private: bool,
}

impl Layer {
    /// `layer 2 (app)`, or `layer 2` when the name is not known.
    pub fn part(&self, index: usize) -> String {
        match &self.name {
            Some(n) => format!("layer {} ({n})", index + 1),
            None => format!("layer {}", index + 1),
        }
    }
}

impl Stored {
    /// The top document's digest (`None` for a docker archive).
    pub fn digest(&self) -> Option<Digest> {
        self.top.as_ref().map(|d| d.digest)
    }

    /// Every blob of the image once: configs and layers (not manifests or the index).
    pub fn blobs(&self) -> Vec<(Digest, u64, PathBuf)> {
        let mut out: Vec<(Digest, u64, PathBuf)> = Vec::new();
        for p in &self.platforms {
            let config = (p.config.digest, p.config.bytes.len() as u64, self.blob_path(&p.config.digest));
            out.push(config);
            out.extend(p.layers.iter().map(|l| (l.digest, l.size, l.path.clone())));
        }
        for a in &self.artifacts {
            out.extend(a.blobs.iter().cloned());
        }
        out.sort_by_key(|b| b.0);
        out.dedup_by_key(|b| b.0);
        out
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }
}

/// Where an image on disk is, as the command line names it.
pub enum Location<'a> {
    /// An OCI layout directory and the `org.opencontainers.image.ref.name` to pick; with
    /// `vouch`, a layer blob that cache's stat records know as checked, as the very file it is
    /// now, is not read again (see [`check_layers`]).
    Layout {
        dir: &'a Path,
        reference: Option<&'a str>,
        vouch: Option<&'a crate::store::Store>,
    },
    OciArchive(&'a Path),
    DockerArchive(&'a Path),
}

/// Opens and checks an image (see the module header). Archives are unpacked into a
/// temporary directory under `tmp`, removed when the [`Stored`] is dropped.
pub fn open(location: Location<'_>, source: &str, tmp: &Path) -> Result<Stored, Error> {
    match location {
        Location::Layout { dir, reference, vouch } => read_layout(dir, reference, source, None, vouch),
        Location::OciArchive(file) => {
            let unpacked = unpack(file, source, tmp)?;
            let dir = unpacked.path().to_path_buf();
            read_layout(&dir, None, source, Some(unpacked), None)
        }
        Location::DockerArchive(file) => {
            let unpacked = unpack(file, source, tmp)?;
            if unpacked.path().join("index.json").is_file() && !unpacked.path().join("manifest.json").is_file() {
                let dir = unpacked.path().to_path_buf();
                return read_layout(&dir, None, source, Some(unpacked), None);
            }
            read_docker(unpacked, source)
        }
    }
}

/// Opens an OCI layout that this process wrote from checked bytes (a registry pull): the
/// same checks as [`open`].
pub fn open_pulled(dir: tempfile::TempDir, source: &str) -> Result<Stored, Error> {
    let path = dir.path().to_path_buf();
    read_layout(&path, None, source, Some(dir), None)
}

fn invalid(image: &str, message: impl Into<String>) -> Error {
    Error::Invalid { image: image.to_string(), message: message.into() }
}

/// A descriptor's digest, size and media type.
struct Descriptor {
    digest: Digest,
    size: Option<u64>,
    media_type: String,
}

fn descriptor(v: &Value, image: &str, what: &str) -> Result<Descriptor, Error> {
    let raw = v["digest"].as_str().ok_or_else(|| invalid(image, format!("{what} has no digest")))?;
    let digest = parse_digest(raw).ok_or_else(|| {
        invalid(image, format!("{what} names `{raw}`, which is not a sha256 digest (sha256:<64 lowercase hex>)"))
    })?;
    let size = match &v["size"] {
        Value::Null => None,
        s => Some(s.as_u64().ok_or_else(|| invalid(image, format!("{what} has a size that is not a whole number")))?),
    };
    Ok(Descriptor { digest, size, media_type: v["mediaType"].as_str().unwrap_or("").to_string() })
}

/// `sha256:<64 lowercase hex>` only (a bare hex string is no digest here).
fn parse_digest(s: &str) -> Option<Digest> {
    s.strip_prefix("sha256:").and_then(Digest::from_hex)
}

/// The largest manifest, index or config read into memory.
/// The largest manifest, index or config read back (16 MiB).
pub const MAX_DOC: u64 = 16 << 20;

/// Reads a document blob and checks it against its descriptor.
fn read_doc(root: &Path, image: &str, part: &str, d: &Descriptor, media_type: &str) -> Result<Doc, Error> {
    let path = root.join("blobs/sha256").join(d.digest.hex());
    if let Ok(meta) = fs_err::metadata(&path) {
        let on_disk = meta.len();
        if d.size.is_some_and(|s| s != on_disk) || on_disk > MAX_DOC {
            let expected = d.size.map_or(format!("at most {MAX_DOC} bytes"), |s| format!("{s} bytes"));
            return Err(invalid(
                image,
                format!("{part}: blob {} has the wrong size: expected {expected}, got {on_disk}", d.digest),
            ));
        }
    }
    let bytes = match fs_err::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(invalid(image, format!("{part}: blob {} is missing", d.digest)));
        }
        Err(source) => return Err(Error::Read { path, source }),
    };
    if let Some(size) = d.size
        && size != bytes.len() as u64
    {
        return Err(invalid(
            image,
            format!("{part}: blob {} has the wrong size: expected {size} bytes, got {}", d.digest, bytes.len()),
        ));
    }
    let actual = Digest::of(&bytes);
    if actual != d.digest {
        return Err(invalid(
            image,
            format!("{part}: blob {} does not match its digest: expected {}, got {actual}", d.digest, d.digest),
        ));
    }
    let media_type = if d.media_type.is_empty() { media_type.to_string() } else { d.media_type.clone() };
    Ok(Doc { bytes, digest: d.digest, media_type })
}

fn json_of(doc: &Doc, image: &str, part: &str) -> Result<Value, Error> {
    serde_json::from_slice(&doc.bytes).map_err(|e| invalid(image, format!("{part} {} is not JSON: {e}", doc.digest)))
}

fn read_layout(
    dir: &Path,
    reference: Option<&str>,
    source: &str,
    tmp: Option<tempfile::TempDir>,
    vouch: Option<&crate::store::Store>,
) -> Result<Stored, Error> {
    let index_path = dir.join("index.json");
    let index_bytes = match fs_err::read(&index_path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound && tmp.is_some() => {
            return Err(invalid(source, "it holds no `index.json`"));
        }
        Err(source) => return Err(Error::Read { path: index_path, source }),
    };
    let index: Value =
        serde_json::from_slice(&index_bytes).map_err(|e| invalid(source, format!("`index.json` is not JSON: {e}")))?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let name_of = |m: &Value| m["annotations"][REF_NAME].as_str().map(String::from);
    let chosen: Vec<&Value> = match reference {
        Some(r) => entries.iter().filter(|m| name_of(m).as_deref() == Some(r)).collect(),
        // Untagged artifacts (SBOMs, provenance, signatures listed as referrers) are about an
        // image, not one.
        None => entries.iter().filter(|m| name_of(m).is_some() || m["artifactType"].as_str().is_none()).collect(),
    };
    let known = || {
        let names: Vec<String> = entries.iter().filter_map(name_of).collect();
        if names.is_empty() { "no named images".to_string() } else { names.join(", ") }
    };
    let digests: BTreeSet<&str> = chosen.iter().filter_map(|m| m["digest"].as_str()).collect();
    match (digests.len(), reference) {
        (0, Some(r)) => {
            return Err(Error::NoReference { image: source.into(), reference: r.into(), known: known() });
        }
        (0, None) => return Err(invalid(source, "`index.json` lists no image")),
        (1, _) => {}
        (n, _) => return Err(Error::Ambiguous { image: source.into(), count: n, known: known() }),
    }
    let top_entry = chosen[0];
    let top_desc = descriptor(top_entry, source, "the `index.json` entry")?;
    let tags: Vec<String> =
        entries.iter().filter(|m| m["digest"].as_str() == top_entry["digest"].as_str()).filter_map(name_of).collect();
    let top_media = if top_desc.media_type.is_empty() { MEDIA_INDEX } else { top_desc.media_type.as_str() };
    let top_part = if top_media.contains("index") || top_media.contains("list") { "index" } else { "manifest" };
    let top = read_doc(dir, source, top_part, &top_desc, top_media)?;
    let top_value = json_of(&top, source, top_part)?;
    let mut artifacts = Vec::new();
    // Each platform's manifest with the platform the index names for it (for messages).
    let manifests: Vec<(Doc, Value, String)> = match top_value["manifests"].as_array() {
        Some(list) => {
            let mut out = Vec::new();
            for (i, m) in list.iter().enumerate() {
                let label = match m["platform"].as_object() {
                    Some(_) => platform_name(&m["platform"]),
                    None => format!("entry {} of the index", i + 1),
                };
                let part = format!("{label} manifest");
                let d = descriptor(m, source, &part)?;
                let doc = read_doc(dir, source, &part, &d, MEDIA_MANIFEST)?;
                let v = json_of(&doc, source, &part)?;
                // Attestation manifests (BuildKit's `unknown/unknown`) are not platforms.
                if m["platform"]["os"].as_str() == Some("unknown") {
                    artifacts.push(artifact(dir, source, &part, doc, &v)?);
                    continue;
                }
                out.push((doc, v, format!("{label} ")));
            }
            out
        }
        None => vec![(top.clone(), top_value.clone(), String::new())],
    };
    let mut platforms = Vec::new();
    for (doc, m, label) in manifests {
        let cd = descriptor(&m["config"], source, &format!("{label}config"))?;
        let config = read_doc(dir, source, &format!("{label}config"), &cd, crate::oci::MEDIA_CONFIG)?;
        let config_value = json_of(&config, source, &format!("{label}config"))?;
        let name = platform_name(&config_value);
        let diff_ids = diff_ids(&config_value, source, &name)?;
        let descs: Vec<Descriptor> = m["layers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .enumerate()
                    .map(|(i, l)| descriptor(l, source, &format!("{name} layer {}", i + 1)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        if descs.len() != diff_ids.len() {
            return Err(invalid(
                source,
                format!("{name}: the manifest lists {} layers, the config {} diff_ids", descs.len(), diff_ids.len()),
            ));
        }
        let names = history_names(&config_value, descs.len());
        let mut layers = Vec::new();
        for (i, (d, diff_id)) in descs.into_iter().zip(diff_ids).enumerate() {
            let file = format!("blobs/sha256/{}", d.digest.hex());
            let size =
                d.size.ok_or_else(|| invalid(source, format!("{name} layer {}: the descriptor has no size", i + 1)))?;
            layers.push(Layer {
                digest: d.digest,
                diff_id,
                size,
                uncompressed_size: 0,
                media_type: d.media_type,
                path: dir.join(&file),
                file,
                name: names.get(i).cloned().flatten(),
                private: false,
            });
        }
        platforms.push(Platform { name, manifest: Some(doc), config, config_value, layers });
    }
    let mut stored = Stored {
        source: source.into(),
        root: dir.to_path_buf(),
        _tmp: tmp,
        top: Some(top),
        tags,
        platforms,
        artifacts,
    };
    check_layers(&mut stored, vouch)?;
    Ok(stored)
}

/// A manifest that is not a platform image: its blobs checked for size and sha256.
fn artifact(dir: &Path, image: &str, part: &str, manifest: Doc, v: &Value) -> Result<Artifact, Error> {
    let mut blobs = Vec::new();
    for (i, b) in std::iter::once(&v["config"]).chain(v["layers"].as_array().into_iter().flatten()).enumerate() {
        if b.is_null() {
            continue;
        }
        let what = format!("{part}, blob {}", i + 1);
        let d = descriptor(b, image, &what)?;
        let size = d.size.ok_or_else(|| invalid(image, format!("{what}: the descriptor has no size")))?;
        let path = dir.join("blobs/sha256").join(d.digest.hex());
        let file = fs_err::File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => invalid(image, format!("{what}: blob {} is missing", d.digest)),
            _ => Error::Read { path: path.clone(), source: e },
        })?;
        let (got, n) =
            crate::model::digest::hash_reader(file).map_err(|e| Error::Read { path: path.clone(), source: e })?;
        if n != size || got != d.digest {
            return Err(invalid(
                image,
                format!(
                    "{what}: blob {} does not match its descriptor: expected {size} bytes and {}, got {n} bytes and {got}",
                    d.digest, d.digest
                ),
            ));
        }
        blobs.push((d.digest, size, path));
    }
    Ok(Artifact { manifest, blobs })
}

fn diff_ids(config: &Value, image: &str, platform: &str) -> Result<Vec<Digest>, Error> {
    let Some(list) = config["rootfs"]["diff_ids"].as_array() else {
        return Err(invalid(image, format!("{platform}: the config has no `rootfs.diff_ids`")));
    };
    list.iter()
        .enumerate()
        .map(|(i, d)| {
            d.as_str().and_then(parse_digest).ok_or_else(|| {
                invalid(image, format!("{platform}: diff_id {} of the config is not a sha256 digest", i + 1))
            })
        })
        .collect()
}

/// The recipe layer names in an assemble-written config's history (`assemble: NAME layer`).
fn history_names(config: &Value, layers: usize) -> Vec<Option<String>> {
    let Some(history) = config["history"].as_array() else { return vec![None; layers] };
    let with_layers: Vec<&Value> = history.iter().filter(|h| !h["empty_layer"].as_bool().unwrap_or(false)).collect();
    if with_layers.len() != layers {
        return vec![None; layers];
    }
    with_layers
        .iter()
        .map(|h| {
            h["created_by"]
                .as_str()
                .and_then(|c| c.strip_prefix("assemble: "))
                .and_then(|c| c.strip_suffix(" layer"))
                .map(String::from)
        })
        .collect()
}

/// `linux/amd64`, with the variant when the config has one.
pub fn platform_name(config: &Value) -> String {
    let mut s = format!("{}/{}", config["os"].as_str().unwrap_or("?"), config["architecture"].as_str().unwrap_or("?"));
    if let Some(v) = config["variant"].as_str() {
        s.push('/');
        s.push_str(v);
    }
    s
}

/// A docker archive: `manifest.json`, the config named there, one uncompressed tar per layer.
fn read_docker(tmp: tempfile::TempDir, source: &str) -> Result<Stored, Error> {
    let dir = tmp.path().to_path_buf();
    let manifest_bytes = fs_err::read(dir.join("manifest.json"))
        .map_err(|_| invalid(source, "it holds neither `manifest.json` nor `index.json`"))?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| invalid(source, format!("`manifest.json` is not JSON: {e}")))?;
    let list = manifest
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| invalid(source, "`manifest.json` lists no image"))?;
    if list.len() > 1 {
        return Err(invalid(source, format!("`manifest.json` lists {} images; one is supported", list.len())));
    }
    let entry = &list[0];
    let config_name = entry["Config"].as_str().ok_or_else(|| invalid(source, "`manifest.json` names no config"))?;
    let config_path =
        safe_join(&dir, config_name).ok_or_else(|| invalid(source, format!("config name `{config_name}`")))?;
    let config_bytes =
        fs_err::read(&config_path).map_err(|_| invalid(source, format!("config `{config_name}` is missing")))?;
    let config_digest = Digest::of(&config_bytes);
    let named = config_name.trim_end_matches(".json").rsplit('/').next().and_then(Digest::from_hex);
    if let Some(named) = named
        && named != config_digest
    {
        return Err(invalid(
            source,
            format!("config: blob `{config_name}` does not match its name: expected {named}, got {config_digest}"),
        ));
    }
    let config = Doc { bytes: config_bytes, digest: config_digest, media_type: crate::oci::MEDIA_CONFIG.into() };
    let config_value = json_of(&config, source, "config")?;
    let name = platform_name(&config_value);
    let diff_ids = diff_ids(&config_value, source, &name)?;
    let files: Vec<String> = entry["Layers"]
        .as_array()
        .map(|a| a.iter().map(|l| l.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default();
    if files.len() != diff_ids.len() {
        return Err(invalid(
            source,
            format!("{name}: `manifest.json` lists {} layers, the config {} diff_ids", files.len(), diff_ids.len()),
        ));
    }
    let names = history_names(&config_value, files.len());
    let mut layers = Vec::new();
    for (i, (file, diff_id)) in files.into_iter().zip(diff_ids).enumerate() {
        let path =
            safe_join(&dir, &file).ok_or_else(|| invalid(source, format!("{name} layer {}: name `{file}`", i + 1)))?;
        let size = fs_err::metadata(&path)
            .map_err(|_| invalid(source, format!("{name} layer {}: `{file}` is missing", i + 1)))?
            .len();
        layers.push(Layer {
            digest: diff_id,
            diff_id,
            size,
            uncompressed_size: size,
            media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
            path,
            file,
            name: names.get(i).cloned().flatten(),
            private: false,
        });
    }
    let tags = entry["RepoTags"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let mut stored = Stored {
        source: source.into(),
        root: dir,
        _tmp: Some(tmp),
        top: None,
        tags,
        platforms: vec![Platform { name, manifest: None, config, config_value, layers }],
        artifacts: Vec::new(),
    };
    check_layers(&mut stored, None)?;
    Ok(stored)
}

/// `dir/name` for a plain relative name (no `..`, not absolute), else `None`.
fn safe_join(dir: &Path, name: &str) -> Option<PathBuf> {
    let clean = crate::model::path::clean_name(name).ok()??;
    Some(dir.join(clean))
}

/// What reading a layer blob found.
struct LayerRead {
    size: u64,
    digest: Digest,
    /// The decompressed stream's digest and length, or why it could not be decompressed.
    uncompressed: Result<(Digest, u64), String>,
}

/// Reads a layer blob once: its bytes hashed as they are decompressed and hashed again.
fn read_layer(path: &Path, media_type: &str) -> io::Result<LayerRead> {
    let file = fs_err::File::open(path)?;
    let mut counted = crate::model::digest::HashReader::new(io::BufReader::with_capacity(1 << 18, file));
    let uncompressed = {
        let mut decoder: Box<dyn Read> = if media_type.ends_with("gzip") {
            Box::new(flate2::read::MultiGzDecoder::new(&mut counted))
        } else if media_type.ends_with("zstd") {
            Box::new(zstd::stream::read::Decoder::with_buffer(io::BufReader::new(&mut counted))?)
        } else {
            Box::new(&mut counted)
        };
        let mut h = Hasher::default();
        let mut buf = vec![0u8; 1 << 18];
        loop {
            match decoder.read(&mut buf) {
                Ok(0) => break Ok(h.finish()),
                Ok(n) => h.update(&buf[..n]),
                Err(e) => break Err(e.to_string()),
            }
        }
    };
    // What the decompressor left unread (trailing bytes, or the rest after an error) is
    // still part of the blob.
    io::copy(&mut counted, &mut io::sink())?;
    let (digest, size) = counted.hasher.finish();
    Ok(LayerRead { size, digest, uncompressed })
}

/// Checks every layer blob of `image` (each distinct blob once, in parallel): size, sha256,
/// and the diff_id of its decompressed stream. With `vouch`, a blob that passed this check
/// before as the very file it is now (the stat cache's identity: canonical path, device,
/// inode, size, mtime, ctime — a rewrite or a replacement moves the ctime, which no writer of
/// the cache can set back) is not read again, and one that passes is recorded so.
fn check_layers(image: &mut Stored, vouch: Option<&crate::store::Store>) -> Result<(), Error> {
    let mut distinct: BTreeMap<(Digest, Digest), (PathBuf, String, u64, String)> = BTreeMap::new();
    for p in &image.platforms {
        for (i, l) in p.layers.iter().enumerate() {
            distinct
                .entry((l.digest, l.diff_id))
                .or_insert_with(|| (l.path.clone(), l.media_type.clone(), l.size, format!("{} {}", p.name, l.part(i))));
        }
    }
    let source = image.source.clone();
    progress::expect(Phase::Check, distinct.values().map(|(_, _, size, _)| size).sum());
    let checked: Vec<((Digest, Digest), u64)> = distinct
        .par_iter()
        .map(|((digest, diff_id), (path, media_type, size, part))| {
            let meta = match fs_err::symlink_metadata(path) {
                Ok(m) if m.is_file() => m,
                Ok(_) => return Err(invalid(&source, format!("{part}: blob {digest} is not a regular file"))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(invalid(&source, format!("{part}: blob {digest} is missing")));
                }
                Err(e) => return Err(Error::Read { path: path.clone(), source: e }),
            };
            if meta.len() != *size {
                return Err(invalid(
                    &source,
                    format!("{part}: blob {digest} has the wrong size: expected {size} bytes, got {}", meta.len()),
                ));
            }
            // What this check is of: the blob's claimed digest, diff_id, media type and size.
            let fact = Digest::of(format!("layer check {digest} {diff_id} {media_type} {size}").as_bytes());
            let before = vouch.and_then(|store| Some((store, store.identity(path).ok()?)));
            if let Some(n) = before
                .as_ref()
                .and_then(|(store, id)| store.remembered_fact(id, &fact)?.trim().parse::<u64>().ok())
            {
                progress::done(Phase::Check, *size);
                return Ok(((*digest, *diff_id), n));
            }
            let read = read_layer(path, media_type).map_err(|e| Error::Read { path: path.clone(), source: e })?;
            if read.size != *size {
                return Err(invalid(
                    &source,
                    format!("{part}: blob {digest} has the wrong size: expected {size} bytes, got {}", read.size),
                ));
            }
            if read.digest != *digest {
                return Err(invalid(
                    &source,
                    format!("{part}: blob {digest} does not match its digest: expected {digest}, got {}", read.digest),
                ));
            }
            let (got, n) = read.uncompressed.map_err(|e| {
                invalid(&source, format!("{part}: blob {digest} cannot be decompressed as {media_type}: {e}"))
            })?;
            if got != *diff_id {
                return Err(invalid(
                    &source,
                    format!("{part}: blob {digest} decompresses to other content than the config says: expected diff_id {diff_id}, got {got}"),
                ));
            }
            if let Some((store, id)) = &before
                && let Err(e) = store.remember_fact(path, id, &fact, &n.to_string())
            {
                tracing::debug!("cannot remember that {} was checked: {e}", path.display());
            }
            progress::done(Phase::Check, *size);
            Ok(((*digest, *diff_id), n))
        })
        .collect::<Result<_, _>>()?;
    let sizes: BTreeMap<(Digest, Digest), u64> = checked.into_iter().collect();
    for p in &mut image.platforms {
        for l in &mut p.layers {
            l.uncompressed_size = sizes[&(l.digest, l.diff_id)];
            use std::os::unix::fs::PermissionsExt;
            l.private = fs_err::metadata(&l.path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0);
        }
    }
    Ok(())
}

/// Unpacks an image archive (`oci-archive` or `docker-archive`) into a new temporary
/// directory under `tmp`: regular files with plain names only (see the module header).
fn unpack(file: &Path, source: &str, tmp: &Path) -> Result<tempfile::TempDir, Error> {
    let rerr = |e: io::Error| Error::Read { path: file.to_path_buf(), source: e };
    fs_err::create_dir_all(tmp).map_err(|e| Error::Read { path: tmp.to_path_buf(), source: e })?;
    let dir = tempfile::Builder::new()
        .prefix("unpack-")
        .tempdir_in(tmp)
        .map_err(|e| Error::Read { path: tmp.to_path_buf(), source: e })?;
    let f = fs_err::File::open(file).map_err(rerr)?;
    let mut archive = tar::Archive::new(io::BufReader::new(f));
    let mut seen = BTreeSet::new();
    let mut files = 0usize;
    for entry in archive.entries().map_err(|e| bad_archive(source, e))? {
        let mut entry = entry.map_err(|e| bad_archive(source, e))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |why: &str| invalid(source, format!("the archive holds `{}`, which {why}", raw.escape_debug()));
        let name = match crate::model::path::clean_name(&raw) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(_) => return Err(refuse("leaves the archive (absolute, or with `..`)")),
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => continue,
            _ => return Err(refuse("is not a regular file or directory (an image archive holds only those)")),
        }
        if name.contains('\0') || name.split('/').count() > 4 {
            return Err(refuse("is not a name an image archive uses"));
        }
        if !seen.insert(name.clone()) {
            return Err(refuse("is in the archive twice"));
        }
        let path = dir.path().join(&name);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(|e| Error::Read { path: parent.to_path_buf(), source: e })?;
        }
        let mut out = fs_err::File::create_new(&path).map_err(|e| Error::Read { path: path.clone(), source: e })?;
        io::copy(&mut entry, &mut out).map_err(|e| bad_archive(source, e))?;
        // Blobs written for their owner only in the archive stay so (secrets).
        if entry.header().mode().is_ok_and(|m| m & 0o077 == 0) {
            use std::os::unix::fs::PermissionsExt;
            let _ = out.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
        files += 1;
    }
    if files == 0 {
        return Err(invalid(source, "the archive is empty"));
    }
    Ok(dir)
}

fn bad_archive(source: &str, e: io::Error) -> Error {
    invalid(source, format!("the archive cannot be read as tar: {e}"))
}
