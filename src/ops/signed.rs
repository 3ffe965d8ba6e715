//! `verify --against docker://… --key KEY`: what a registry serves beside an image — its
//! signature and signed attestations (cosign's `.sig` and `.att` tags) and the attestations
//! attached as referrers — checked against a public key and against the attestations the
//! rebuild from the lock gives, byte for byte.

use crate::model::digest::Digest;
use crate::ops::attest::{Attestations, PROVENANCE_PREDICATE_TYPE};
use crate::ops::diff::Finding;
use crate::ops::push::{CYCLONEDX_PREDICATE_TYPE, SPDX_PREDICATE_TYPE};
use crate::registry::{self, Client, Reference, pull};
use crate::sign::{PublicKey, cosign};
use crate::store::Store;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

/// A document the rebuild gives and a registry should serve: where, what, its bytes.
struct Expected {
    platform: String,
    part: String,
    predicate_type: &'static str,
    bytes: Vec<u8>,
}

fn expected(a: &Attestations) -> Vec<Expected> {
    let mut out = vec![Expected {
        platform: String::new(),
        part: "provenance".into(),
        predicate_type: PROVENANCE_PREDICATE_TYPE,
        bytes: a.provenance.bytes.clone(),
    }];
    for (arch, spdx, cdx) in &a.sboms {
        let platform = crate::ops::diff::platform_label(*arch);
        out.push(Expected {
            platform: platform.clone(),
            part: "sbom (spdx)".into(),
            predicate_type: SPDX_PREDICATE_TYPE,
            bytes: spdx.bytes.clone(),
        });
        out.push(Expected {
            platform,
            part: "sbom (cyclonedx)".into(),
            predicate_type: CYCLONEDX_PREDICATE_TYPE,
            bytes: cdx.bytes.clone(),
        });
    }
    out
}

/// The layers of the manifest tagged `tag`, and each one's bytes (fetched, checked against
/// its digest); `None` when the tag does not exist.
async fn tagged_layers(
    client: &Client,
    store: &Store,
    r: &Reference,
    tag: &str,
) -> registry::Result<Option<Vec<(Value, Vec<u8>)>>> {
    let m = match pull::manifest(client, r, tag).await {
        Ok(m) => m,
        Err(registry::Error::Status { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&m.bytes).unwrap_or_default();
    let mut out = Vec::new();
    for l in v["layers"].as_array().into_iter().flatten() {
        let Some(digest) = l["digest"].as_str().and_then(|d| d.parse::<Digest>().ok()) else { continue };
        pull::blob(client, store, &r.repository, &digest, l["size"].as_u64().unwrap_or(0)).await?;
        let bytes = fs_err::read(store.blob_path(&digest))
            .map_err(|source| registry::Error::Io { path: store.blob_path(&digest), source })?;
        out.push((l.clone(), bytes));
    }
    Ok(Some(out))
}

/// Checks the image `index` in the registry `r`: a signature by `key` naming it, a signed
/// attestation identical to each the rebuild gives, and attached documents identical too.
pub fn check(
    store: &Store,
    r: &Reference,
    index: &Digest,
    key: &PublicKey,
    a: &Attestations,
) -> registry::Result<Vec<Finding>> {
    let client = Client::new(&r.registry, &r.repository, &registry::Options::default())?;
    let rt = registry::runtime()?;
    rt.block_on(async {
        let mut findings = Vec::new();
        let sig_tag = cosign::tag(index, "sig");
        match tagged_layers(&client, store, r, &sig_tag).await? {
            None => findings.push(Finding::new("", "signature", format!("none: the registry has no `{sig_tag}`"))),
            Some(layers) => {
                let good = layers.iter().any(|(l, payload)| {
                    let sig = l["annotations"][cosign::SIGNATURE_ANNOTATION].as_str().and_then(|s| B64.decode(s).ok());
                    let names = serde_json::from_slice::<Value>(payload).ok().is_some_and(|p| {
                        p["critical"]["image"]["docker-manifest-digest"].as_str() == Some(&index.to_string())
                    });
                    names && sig.is_some_and(|s| key.verifies(payload, &s))
                });
                if !good {
                    findings.push(Finding::new(
                        "",
                        "signature",
                        format!(
                            "none of the {} signature(s) under `{sig_tag}` is the given key's for {index}",
                            layers.len()
                        ),
                    ));
                }
            }
        }
        // Statements signed by the key, by predicate type: their bytes and predicate bytes.
        let att_tag = cosign::tag(index, "att");
        let mut signed: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
        let mut unsigned = 0;
        for (_, envelope) in tagged_layers(&client, store, r, &att_tag).await?.unwrap_or_default() {
            let Ok(env) = serde_json::from_slice::<Value>(&envelope) else { continue };
            let payload = env["payload"].as_str().and_then(|p| B64.decode(p).ok()).unwrap_or_default();
            let by_key = env["signatures"].as_array().into_iter().flatten().any(|s| {
                s["sig"].as_str().and_then(|x| B64.decode(x).ok()).is_some_and(|sig| {
                    key.verifies(&cosign::pae(env["payloadType"].as_str().unwrap_or(""), &payload), &sig)
                })
            });
            if !by_key {
                unsigned += 1;
                continue;
            }
            let Ok(statement) = serde_json::from_slice::<Value>(&payload) else { continue };
            let predicate = crate::oci::json::canonical(&statement["predicate"]);
            signed.push((statement["predicateType"].as_str().unwrap_or("").to_string(), payload, predicate));
        }
        for e in expected(a) {
            let candidates: Vec<&(String, Vec<u8>, Vec<u8>)> =
                signed.iter().filter(|(t, _, _)| t == e.predicate_type).collect();
            // The provenance is signed as it is; an SBOM is the predicate of a statement.
            let same = candidates.iter().any(|(_, statement, predicate)| {
                if e.predicate_type == PROVENANCE_PREDICATE_TYPE {
                    *statement == e.bytes
                } else {
                    *predicate == e.bytes
                }
            });
            if !same {
                let summary = if candidates.is_empty() {
                    format!("no attestation signed by the given key under `{att_tag}` ({unsigned} by other keys)")
                } else {
                    format!(
                        "the {} signed attestation(s) under `{att_tag}` differ from the rebuild's ({})",
                        candidates.len(),
                        Digest::of(&e.bytes)
                    )
                };
                findings.push(Finding::new(e.platform.clone(), format!("signed {}", e.part), summary));
            }
        }
        Ok(findings)
    })
}
