//! `verify --against docker://… --key KEY`: what a registry serves beside an image — its
//! signature and signed attestations (cosign's `.sig` and `.att` tags) and the attestations
//! attached as referrers — checked against a public key and against the attestations the
//! rebuild from the lock gives, byte for byte. Everything read from the registry is bounded:
//! manifests by [`pull::MAX_MANIFEST`], documents by [`MAX_DOC`], at most [`MAX_LAYERS`]
//! signatures per tag.

use crate::model::digest::Digest;
use crate::oci::read::MAX_DOC;
use crate::ops::attest::{Attestations, PROVENANCE_PREDICATE_TYPE};
use crate::ops::diff::Finding;
use crate::registry::{self, Client, Reference, pull};
use crate::sign::{PublicKey, cosign};
use crate::store::Store;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use std::collections::BTreeSet;

/// The most signatures or attestations read from one tag.
pub const MAX_LAYERS: usize = 256;

/// A document the rebuild gives and a registry should serve: where, what, its bytes.
struct Expected {
    platform: String,
    part: &'static str,
    predicate_type: &'static str,
    media_type: &'static str,
    bytes: Vec<u8>,
}

fn expected(a: &Attestations) -> Vec<Expected> {
    a.documents()
        .into_iter()
        .map(|d| Expected {
            platform: d.arch.map(|arch| arch.oci_platform()).unwrap_or_default(),
            part: d.part,
            predicate_type: d.predicate_type,
            media_type: d.media_type,
            bytes: d.doc.bytes.clone(),
        })
        .collect()
}

/// The bytes of a blob the registry names, when its descriptor is within bounds.
async fn small_blob(client: &Client, store: &Store, r: &Reference, d: &Value) -> registry::Result<Option<Vec<u8>>> {
    let Some(digest) = d["digest"].as_str().and_then(|x| x.parse::<Digest>().ok()) else { return Ok(None) };
    let size = d["size"].as_u64().unwrap_or(0);
    if size == 0 || size > MAX_DOC {
        return Ok(None);
    }
    pull::blob(client, store, &r.repository, &digest, size).await?;
    let path = store.blob_path(&digest);
    Ok(Some(fs_err::read(&path).map_err(|source| registry::Error::Io { path, source })?))
}

/// The layers of the manifest tagged `tag` with the bytes of each (`None` past the bounds);
/// `None` when the tag does not exist.
async fn tagged_layers(
    client: &Client,
    store: &Store,
    r: &Reference,
    tag: &str,
) -> registry::Result<Option<Vec<(Value, Option<Vec<u8>>)>>> {
    let Some(v) = pull::manifest_json(client, &r.repository, tag).await? else { return Ok(None) };
    let mut out = Vec::new();
    for l in v["layers"].as_array().into_iter().flatten().take(MAX_LAYERS) {
        out.push((l.clone(), small_blob(client, store, r, l).await?));
    }
    Ok(Some(out))
}

/// Checks the image `index` in the registry `r`: a signature by `key` naming it; signed
/// attestations identical to each the rebuild gives, and none by the key that is not; and
/// every attached SBOM or provenance identical to the rebuild's.
pub fn check(
    store: &Store,
    r: &Reference,
    index: &Digest,
    manifests: &[Digest],
    key: &PublicKey,
    a: &Attestations,
) -> registry::Result<Vec<Finding>> {
    let client = Client::new(&r.registry, &r.repository, &registry::Options::default())?;
    let rt = registry::runtime()?;
    rt.block_on(async {
        let mut findings = signature(&client, store, r, index, key).await?;
        findings.extend(attestations(&client, store, r, index, key, a).await?);
        findings.extend(attached(&client, r, index, manifests, a).await?);
        Ok(findings)
    })
}

async fn signature(
    client: &Client,
    store: &Store,
    r: &Reference,
    index: &Digest,
    key: &PublicKey,
) -> registry::Result<Vec<Finding>> {
    let tag = cosign::tag(index, "sig");
    let Some(layers) = tagged_layers(client, store, r, &tag).await? else {
        return Ok(vec![Finding::new("", "signature", format!("none: the registry has no `{tag}`"))]);
    };
    let good = layers.iter().any(|(l, payload)| {
        let Some(payload) = payload else { return false };
        let sig = l["annotations"][cosign::SIGNATURE_ANNOTATION].as_str().and_then(|s| B64.decode(s).ok());
        let names = serde_json::from_slice::<Value>(payload)
            .ok()
            .is_some_and(|p| p["critical"]["image"]["docker-manifest-digest"].as_str() == Some(&index.to_string()));
        names && sig.is_some_and(|s| key.verifies(payload, &s))
    });
    Ok(if good {
        Vec::new()
    } else {
        vec![Finding::new(
            "",
            "signature",
            format!("none of the {} signature(s) under `{tag}` is the given key's for {index}", layers.len()),
        )]
    })
}

async fn attestations(
    client: &Client,
    store: &Store,
    r: &Reference,
    index: &Digest,
    key: &PublicKey,
    a: &Attestations,
) -> registry::Result<Vec<Finding>> {
    let tag = cosign::tag(index, "att");
    let expected = expected(a);
    let types: BTreeSet<&str> = expected.iter().map(|e| e.predicate_type).collect();
    // Statements signed by the key: (predicate type, statement bytes, predicate bytes).
    let mut signed: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut findings = Vec::new();
    let mut others = 0;
    for (_, envelope) in tagged_layers(client, store, r, &tag).await?.unwrap_or_default() {
        let Some(env) = envelope.and_then(|e| serde_json::from_slice::<Value>(&e).ok()) else { continue };
        let payload_type = env["payloadType"].as_str().unwrap_or("");
        let payload = env["payload"].as_str().and_then(|p| B64.decode(p).ok()).unwrap_or_default();
        let by_key = env["signatures"].as_array().into_iter().flatten().any(|s| {
            s["sig"]
                .as_str()
                .and_then(|x| B64.decode(x).ok())
                .is_some_and(|sig| key.verifies(&cosign::pae(payload_type, &payload), &sig))
        });
        if !by_key {
            others += 1;
            continue;
        }
        let statement = serde_json::from_slice::<Value>(&payload).ok().filter(|_| payload_type == cosign::IN_TOTO);
        let Some(statement) = statement else {
            findings.push(Finding::new(
                "",
                "attestations",
                format!("the key signed under `{tag}` something that is not an in-toto statement ({payload_type})"),
            ));
            continue;
        };
        let predicate_type = statement["predicateType"].as_str().unwrap_or("").to_string();
        if !types.contains(predicate_type.as_str()) {
            continue;
        }
        let names_index = statement["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["digest"]["sha256"].as_str() == Some(index.hex().as_str()));
        let predicate = crate::oci::json::canonical(&statement["predicate"]);
        let known = expected.iter().any(|e| {
            e.predicate_type == predicate_type
                && if e.predicate_type == PROVENANCE_PREDICATE_TYPE { payload == e.bytes } else { predicate == e.bytes }
        });
        if !known || !names_index {
            // Signed by the key but not what the rebuild gives: another image's, or forged.
            findings.push(Finding::new(
                "",
                "attestations",
                format!(
                    "a statement signed by the key under `{tag}` ({predicate_type}, {}) is not one the rebuild gives",
                    Digest::of(&payload)
                ),
            ));
        }
        signed.push((predicate_type, payload, predicate));
    }
    for e in &expected {
        let same = signed.iter().any(|(t, statement, predicate)| {
            t == e.predicate_type
                && if e.predicate_type == PROVENANCE_PREDICATE_TYPE {
                    *statement == e.bytes
                } else {
                    *predicate == e.bytes
                }
        });
        if !same {
            let n = signed.iter().filter(|(t, _, _)| t == e.predicate_type).count();
            let summary = if n == 0 {
                format!("no attestation signed by the given key under `{tag}` ({others} by other keys)")
            } else {
                format!(
                    "the {n} signed attestation(s) under `{tag}` differ from the rebuild's ({})",
                    Digest::of(&e.bytes)
                )
            };
            findings.push(Finding::new(e.platform.clone(), format!("signed {}", e.part), summary));
        }
    }
    Ok(findings)
}

/// The referrers of `subject`: the referrers API's answer where the registry has it, else
/// the referrers tag schema's listing.
async fn referrers(client: &Client, r: &Reference, subject: &Digest) -> registry::Result<Vec<Value>> {
    let req = registry::Request::new(
        reqwest::Method::GET,
        format!("/v2/{}/referrers/{subject}", r.repository),
        &registry::scope(&r.repository, "pull"),
    );
    let resp = client.expect(&req, &[200, 404]).await?;
    let listing = if resp.status().as_u16() == 200 && resp.content_length().is_some_and(|n| n <= pull::MAX_MANIFEST) {
        serde_json::from_slice::<Value>(&resp.bytes().await.unwrap_or_default()).ok()
    } else {
        pull::manifest_json(client, &r.repository, &crate::oci::referrer::fallback_tag(subject)).await?
    };
    Ok(listing.and_then(|l| l["manifests"].as_array().cloned()).unwrap_or_default())
}

async fn attached(
    client: &Client,
    r: &Reference,
    index: &Digest,
    manifests: &[Digest],
    a: &Attestations,
) -> registry::Result<Vec<Finding>> {
    let expected = expected(a);
    let mut findings = Vec::new();
    for subject in std::iter::once(index).chain(manifests) {
        for entry in referrers(client, r, subject).await?.into_iter().take(MAX_LAYERS) {
            let Some(kind) = entry["artifactType"].as_str() else { continue };
            let ours: Vec<&Expected> = expected.iter().filter(|e| e.media_type == kind).collect();
            if ours.is_empty() {
                continue;
            }
            let Some(digest) = entry["digest"].as_str() else { continue };
            let Some(m) = pull::manifest_json(client, &r.repository, digest).await? else { continue };
            let document = m["layers"][0]["digest"].as_str().unwrap_or("");
            if !ours.iter().any(|e| Digest::of(&e.bytes).to_string() == document) {
                findings.push(Finding::new(
                    "",
                    format!("attached {kind}"),
                    format!("the referrer {digest} of {subject} carries {document}, which the rebuild does not give"),
                ));
            }
        }
    }
    Ok(findings)
}
