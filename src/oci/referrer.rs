//! OCI 1.1 referrers: an artifact manifest whose `subject` is an image (or one of its
//! platform manifests) and whose one layer is a document about it — an SBOM, a provenance
//! statement. Registries with the referrers API index them by subject; others (and OCI
//! layouts) are given a listing: the referrers tag schema (`sha256-<hex>`, an image index of
//! descriptors) in a registry, untagged `index.json` entries with `artifactType` in a layout.

use super::{Doc, MEDIA_INDEX, MEDIA_MANIFEST, Referrer, json};
use crate::model::digest::Digest;
use serde_json::{Value, json as j};
use std::collections::BTreeMap;

/// The config of an artifact manifest: the empty JSON object.
pub const MEDIA_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// `{}`, the config every artifact manifest names.
pub fn empty_config() -> Doc {
    Doc::new(&j!({}), MEDIA_EMPTY)
}

/// The artifact manifest carrying `document` about `subject`.
pub fn referrer(subject: &Doc, document: &Doc, annotations: BTreeMap<String, String>) -> Referrer {
    let manifest = j!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "artifactType": document.media_type,
        "config": empty_config().descriptor(),
        "layers": [document.descriptor()],
        "subject": subject.descriptor(),
        "annotations": annotations,
    });
    Referrer {
        subject: subject.digest,
        artifact_type: document.media_type.clone(),
        manifest: Doc::new(&manifest, MEDIA_MANIFEST),
        document: document.clone(),
        annotations,
    }
}

impl Referrer {
    /// Its descriptor in a referrers listing: the manifest's, with `artifactType` and the
    /// manifest's annotations, as the distribution spec's referrers response gives it.
    pub fn listing_entry(&self) -> Value {
        let mut d = self.manifest.descriptor();
        d["artifactType"] = j!(self.artifact_type);
        if !self.annotations.is_empty() {
            d["annotations"] = j!(self.annotations);
        }
        d
    }
}

/// The referrers tag schema's tag for `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// An image index listing `entries` (the referrers of one subject), sorted by digest so the
/// same set always gives the same bytes; entries already in `existing` (another tool's) are kept.
pub fn listing(existing: Option<&Value>, entries: &[Value]) -> Vec<u8> {
    let mut all: BTreeMap<String, Value> = BTreeMap::new();
    for e in existing.and_then(|v| v["manifests"].as_array()).into_iter().flatten().chain(entries) {
        if let Some(d) = e["digest"].as_str() {
            all.insert(d.to_string(), e.clone());
        }
    }
    json::canonical(&j!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": all.into_values().collect::<Vec<_>>(),
    }))
}

/// The annotation every referrer assemble writes carries: the image index it came with, so a
/// listing can drop the referrers of an image its names no longer point to, and nothing else.
pub const INDEX_ANNOTATION: &str = "dev.assemble.index";

/// An `index.json` listing (a layout's, a ship store's) with `names` pointing at `index` and
/// its `referrers` listed untagged with their `artifactType`, as oras lists them. Entries for
/// other names stay; so do other tools' artifacts; referrers assemble wrote for an image that
/// one of these names pointed to before go, so the listing does not grow with rebuilds.
pub fn relist(existing: Vec<Value>, names: &[String], index: &Doc, referrers: &[Referrer]) -> Vec<Value> {
    let name_of = |m: &Value| m["annotations"][super::REF_NAME].as_str().map(String::from);
    let replaced: std::collections::BTreeSet<String> = existing
        .iter()
        .filter(|m| name_of(m).is_some_and(|n| names.contains(&n)))
        .filter_map(|m| m["digest"].as_str().map(String::from))
        .filter(|d| *d != index.digest.to_string())
        .collect();
    let mut out: Vec<Value> = existing
        .into_iter()
        .filter(|m| name_of(m).is_none_or(|n| !names.contains(&n)))
        .filter(|m| {
            m["artifactType"].as_str().is_none()
                || m["annotations"][INDEX_ANNOTATION].as_str().is_none_or(|i| !replaced.contains(i))
        })
        .collect();
    for name in names {
        let mut d = index.descriptor();
        d["annotations"] = j!({ super::REF_NAME: name });
        out.push(d);
    }
    for r in referrers {
        let entry = r.listing_entry();
        if !out.iter().any(|m| m["digest"] == entry["digest"]) {
            out.push(entry);
        }
    }
    out
}
