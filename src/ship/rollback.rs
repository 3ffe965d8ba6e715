//! `assemble rollback`: make an earlier shipped version of an image current again on a
//! server, from what its store already holds — nothing is sent but the new `index.json` and
//! the load plan. The store's history (see [`super::history`]) says which versions there are;
//! the index, manifests and configs are read back from the store over the same session, each
//! checked against its digest, and the image is then loaded as a ship loads it.

use super::error::{Error, Result};
use super::history::{self, Version};
use super::send::{Conn, Image, Options, Report, Target, exchange, session};
use crate::model::digest::Digest;
use crate::oci::Doc;
use crate::oci::blobs::{Blob, ImageBlobs};
use crate::registry::pull::MAX_MANIFEST;
use serde_json::Value;

/// The versions of `name` the server's store remembers, newest first.
pub fn versions(target: &Target, name: &str, opts: &Options) -> Result<Vec<Version>> {
    session(target, opts, |c| {
        let (_, list) = history::entries(&c.host, &c.inv.index)?;
        Ok(history::versions(&list, name))
    })
}

/// Makes version `to` of `name` (default: the newest one older than the current) current on
/// `target`: its tags point at it in the store and the engine has it under them.
pub fn rollback(target: &Target, name: &str, to: Option<u64>, opts: &Options) -> Result<(Version, Report)> {
    session(target, opts, |c| {
        let (_, list) = history::entries(&c.host, &c.inv.index)?;
        let all = history::versions(&list, name);
        let chosen = choose(&c.host, name, &all, to)?;
        let dir = tempfile::tempdir().map_err(|source| Error::Io { path: std::env::temp_dir(), source })?;
        let plan = read_image(c, &chosen, dir.path())?;
        let stdin = c.stdin.take().expect("piped");
        let image = Image { name, tags: &chosen.tags, plan: &plan, record: false };
        let send = exchange(&c.host, &c.inv, &image, opts, stdin, &mut |_, _| {})?;
        Ok((chosen, c.finish(send)?))
    })
}

/// The version to make current.
fn choose(host: &str, name: &str, all: &[Version], to: Option<u64>) -> Result<Version> {
    let listed = || all.iter().map(|v| v.version.to_string()).collect::<Vec<_>>().join(", ");
    let remote = |message: String| Error::Remote { host: host.into(), message };
    if all.is_empty() {
        return Err(remote(format!("the store remembers no shipped version of `{name}` (ship it first)")));
    }
    match to {
        Some(n) => all
            .iter()
            .find(|v| v.version == n)
            .cloned()
            .ok_or_else(|| remote(format!("the store has no version {n} of `{name}` (it has {})", listed()))),
        None => {
            let current = all.iter().find(|v| v.current).map_or(u64::MAX, |v| v.version);
            all.iter().find(|v| v.version < current && !v.current).cloned().ok_or_else(|| {
                remote(format!("`{name}` has no version older than the current one, {current} (it has {})", listed()))
            })
        }
    }
}

/// The image of `version` as push and ship take it, read back from the store: its index,
/// manifests and configs (configs written under `dir`); its layers are in the store already
/// and are named by their descriptors.
fn read_image(c: &mut Conn, version: &Version, dir: &std::path::Path) -> Result<ImageBlobs> {
    let host = c.host.clone();
    let protocol = |message: String| Error::Protocol { host: host.clone(), message };
    let digest: Digest =
        version.digest.parse().map_err(|e| protocol(format!("history names `{}`: {e}", version.digest)))?;
    let index_bytes = c.blob(&digest, MAX_MANIFEST)?;
    let top: Value =
        serde_json::from_slice(&index_bytes).map_err(|e| protocol(format!("index {digest} is not JSON: {e}")))?;
    let media = |v: &Value, default: &str| v["mediaType"].as_str().unwrap_or(default).to_string();
    let index = Doc { digest, media_type: media(&top, crate::oci::MEDIA_INDEX), bytes: index_bytes.clone() };
    let mut manifests = Vec::new();
    let mut docs: Vec<(Digest, Vec<u8>)> = Vec::new();
    match top["manifests"].as_array() {
        Some(list) => {
            for m in list {
                let d =
                    descriptor(m).ok_or_else(|| protocol(format!("index {digest} lists an entry without a digest")))?;
                if docs.iter().any(|(seen, _)| *seen == d.0) {
                    continue;
                }
                let bytes = c.blob(&d.0, MAX_MANIFEST)?;
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| protocol(format!("manifest {} is not JSON: {e}", d.0)))?;
                manifests.push(Doc {
                    digest: d.0,
                    media_type: media(&v, crate::oci::MEDIA_MANIFEST),
                    bytes: bytes.clone(),
                });
                docs.push((d.0, bytes));
            }
        }
        None => docs.push((digest, index_bytes)),
    }
    let mut blobs = Vec::new();
    for (d, bytes) in &docs {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| protocol(format!("manifest {d} is not JSON: {e}")))?;
        if let Some((config, size)) = descriptor(&v["config"]) {
            let path = dir.join(config.hex());
            fs_err::write(&path, c.blob(&config, MAX_MANIFEST)?)
                .map_err(|source| Error::Io { path: path.clone(), source })?;
            blobs.push(Blob { digest: config, size, path });
        }
        for l in v["layers"].as_array().into_iter().flatten() {
            let (digest, size) =
                descriptor(l).ok_or_else(|| protocol(format!("manifest {d} lists a layer without a digest")))?;
            if !c.inv.have.contains(&digest.hex()) {
                return Err(protocol(format!(
                    "version {} needs layer {digest}, which the store no longer has",
                    version.version
                )));
            }
            // Never read: the store has it, so nothing is sent.
            blobs.push(Blob { digest, size, path: dir.join("absent") });
        }
    }
    Ok(ImageBlobs {
        blobs,
        manifests,
        index,
        tags: version.tags.clone(),
        referrers: Vec::new(),
        platform_tags: Vec::new(),
    })
}

fn descriptor(v: &Value) -> Option<(Digest, u64)> {
    Some((v["digest"].as_str()?.parse().ok()?, v["size"].as_u64()?))
}
