//! Signatures and attestations as cosign writes and verifies them (`cosign verify --key`,
//! `cosign verify-attestation --key --type …`): beside the image, under the tags
//! `sha256-<hex>.sig` and `sha256-<hex>.att`, an image manifest whose layers are the signed
//! documents, each carrying its signature in the `dev.cosignproject.cosign/signature`
//! annotation. A `.sig` layer is the "simple signing" payload naming the image digest,
//! signed as it is; an `.att` layer is a DSSE envelope around an in-toto statement, signed
//! over DSSE's pre-authentication encoding.

use super::key::Signer;
use crate::model::digest::Digest;
use crate::oci::{Doc, MEDIA_CONFIG, MEDIA_MANIFEST, json};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json as j};

pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The sha256 of what a layer signs (the payload, the statement): ECDSA signatures differ
/// each time, so a signature of the same thing is recognised by this, not by the layer digest.
pub const SIGNED_ANNOTATION: &str = "dev.assemble.signed";

/// A document to put in a signature manifest, with its layer annotations.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: Doc,
    pub annotations: serde_json::Map<String, Value>,
}

impl Layer {
    pub fn descriptor(&self) -> Value {
        let mut d = self.blob.descriptor();
        d["annotations"] = Value::Object(self.annotations.clone());
        d
    }
}

/// `sha256-<hex>.sig` / `.att`: where cosign looks for an image's signatures.
pub fn tag(digest: &Digest, suffix: &str) -> String {
    format!("sha256-{}.{suffix}", digest.hex())
}

/// The signature of the image `digest` (pushed as `repository`, `REGISTRY/REPO`).
pub fn signature(signer: &Signer, repository: &str, digest: &Digest) -> Layer {
    // Compact, in the field order cosign writes.
    let payload = format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":{}}},\"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}",
        Value::String(repository.into())
    );
    let sig = B64.encode(signer.sign(payload.as_bytes()));
    let bytes = payload.into_bytes();
    let blob = Doc { digest: Digest::of(&bytes), bytes, media_type: SIMPLE_SIGNING.into() };
    let mut annotations = serde_json::Map::new();
    annotations.insert(SIGNATURE_ANNOTATION.into(), j!(sig));
    annotations.insert(SIGNED_ANNOTATION.into(), j!(blob.digest.to_string()));
    Layer { blob, annotations }
}

/// DSSE's pre-authentication encoding of a payload.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// An attestation: the in-toto `statement` (with `predicate_type`) in a signed DSSE envelope.
pub fn attestation(signer: &Signer, statement: &[u8], predicate_type: &str) -> Layer {
    let sig = B64.encode(signer.sign(&pae(IN_TOTO, statement)));
    let envelope = j!({
        "payloadType": IN_TOTO,
        "payload": B64.encode(statement),
        "signatures": [{"keyid": "", "sig": sig}],
    });
    let bytes = json::canonical(&envelope);
    let blob = Doc { digest: Digest::of(&bytes), bytes, media_type: DSSE.into() };
    let mut annotations = serde_json::Map::new();
    annotations.insert(SIGNATURE_ANNOTATION.into(), j!(""));
    annotations.insert("predicateType".into(), j!(predicate_type));
    annotations.insert(SIGNED_ANNOTATION.into(), j!(Digest::of(statement).to_string()));
    Layer { blob, annotations }
}

/// An in-toto statement (v1) about `subjects` (name, digest) with a predicate.
pub fn statement(subjects: &[(String, Digest)], predicate_type: &str, predicate: Value) -> Vec<u8> {
    let subject: Vec<Value> =
        subjects.iter().map(|(name, d)| j!({"name": name, "digest": {"sha256": d.hex()}})).collect();
    json::canonical(&j!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subject,
        "predicateType": predicate_type,
        "predicate": predicate,
    }))
}

/// The manifest listing `layers` (descriptors, ours after any kept from before) and the
/// config it names: an image config whose diff_ids are the layers' digests, as cosign's.
pub fn manifest(layers: &[Value]) -> (Doc, Doc) {
    let diff_ids: Vec<Value> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = Doc::new(
        &j!({
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }),
        MEDIA_CONFIG,
    );
    let manifest = Doc::new(
        &j!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config.descriptor(),
            "layers": layers,
        }),
        MEDIA_MANIFEST,
    );
    (config, manifest)
}
