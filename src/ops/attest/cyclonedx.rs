//! The SBOM as a CycloneDX 1.6 JSON document.

use crate::oci::Doc;
use crate::ops::attest::inventory::{ATTESTATION_FORMAT, Inventory, PartKind, uuid_from};
use serde_json::{Value, json};

pub fn document(inv: &Inventory<'_>) -> Doc {
    let mut components: Vec<Value> = Vec::new();
    for p in &inv.packages {
        let mut c = json!({
            "type": "library",
            "bom-ref": p.purl,
            "name": p.name,
            "version": p.version,
            "purl": p.purl,
        });
        if let Some(s) = &p.supplier {
            c["supplier"] = json!({"name": s});
        }
        if let Some(l) = &p.license {
            c["licenses"] = json!([{"expression": l}]);
        }
        if let Some(sha) = &p.sha256 {
            c["hashes"] = json!([{"alg": "SHA-256", "content": sha}]);
        }
        let mut refs = Vec::new();
        if let Some(u) = &p.url {
            refs.push(json!({"type": "distribution", "url": u}));
        }
        if let Some(h) = &p.homepage {
            refs.push(json!({"type": "website", "url": h}));
        }
        if !refs.is_empty() {
            c["externalReferences"] = json!(refs);
        }
        let mut props = Vec::new();
        if let Some(s) = &p.source {
            props.push(json!({"name": "assemble:source_package", "value": s}));
        }
        if let Some(l) = &p.layer {
            props.push(json!({"name": "assemble:layer", "value": l}));
        }
        props.push(json!({"name": "assemble:architecture", "value": p.architecture}));
        c["properties"] = json!(props);
        components.push(c);
    }
    for part in &inv.parts {
        let kind = match part.kind {
            PartKind::Download => "file",
            PartKind::BaseImage | PartKind::FilesFrom => "container",
            PartKind::Layer => "data",
        };
        let mut c = json!({
            "type": kind,
            "bom-ref": part.id,
            "name": part.name,
            "hashes": [{"alg": "SHA-256", "content": part.sha256}],
        });
        if let Some(v) = &part.version {
            c["version"] = json!(v);
        }
        if let Some(p) = &part.purl {
            c["purl"] = json!(p);
        }
        if let Some(u) = &part.url {
            c["externalReferences"] = json!([{"type": "distribution", "url": u}]);
        }
        if part.kind == PartKind::Layer {
            c["description"] = json!("a layer of the image; its hash is the diff_id");
        }
        components.push(c);
    }
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid_from(&format!("cyclonedx {}", inv.manifest))),
        "version": 1,
        "metadata": {
            "timestamp": crate::oci::rfc3339(inv.epoch),
            "tools": {"components": [{"type": "application", "name": "assemble", "version": format!("attestation format {ATTESTATION_FORMAT}")}]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": inv.recipe.name,
                "version": inv.manifest.to_string(),
                "hashes": [{"alg": "SHA-256", "content": inv.manifest.hex()}],
                "properties": [{"name": "assemble:platform", "value": inv.platform}],
            },
        },
        "components": components,
    });
    Doc::new(&doc, crate::ops::attest::inventory::CYCLONEDX_MEDIA_TYPE)
}
