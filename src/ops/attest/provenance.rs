//! Build provenance: an in-toto Statement v1 with a SLSA Provenance v1 predicate. Its
//! subjects are the index and each platform manifest; the build definition names the recipe
//! and the lock's pins by digest, the variables given, and every resolved dependency. Run
//! details hold only what does not vary between two builds of the same inputs: the builder's
//! name and the attestation format (no assemble version, invocation id, host or time).

use crate::oci::{Doc, Image};
use crate::ops::attest::inventory::{ATTESTATION_FORMAT, IN_TOTO_MEDIA_TYPE, pins_digest, purl, web};
use crate::recipe::Recipe;
use crate::resolve::lock::Lock;
use serde_json::{Value, json};

pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
pub const BUILD_TYPE: &str = "urn:assemble:build:v1";

fn digest_set(hex: &str) -> Value {
    json!({"sha256": hex})
}

pub fn statement(recipe: &Recipe, lock: &Lock, image: &Image) -> Doc {
    let mut subject = vec![json!({"name": recipe.name, "digest": digest_set(&image.index.digest.hex())})];
    for p in &image.platforms {
        subject.push(json!({
            "name": format!("{}@{}", recipe.name, p.arch.oci_platform()),
            "digest": digest_set(&p.manifest.digest.hex()),
        }));
    }
    let recipe_text = fs_err::read(&recipe.path).unwrap_or_default();
    let file_name = |p: &std::path::Path| p.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let mut deps: Vec<Value> = Vec::new();
    for p in &lock.packages {
        deps.push(json!({
            "uri": purl("deb", "debian", &p.name, &p.version, &p.architecture, &None),
            "digest": digest_set(&p.sha256),
            "downloadLocation": web(Some(&p.url)),
            "annotations": {"platform": p.arch, "layer": p.layer},
        }));
    }
    for p in &lock.apk_packages {
        let mut d = json!({
            "uri": purl("apk", "alpine", &p.name, &p.version, &p.architecture, &None),
            "downloadLocation": web(Some(&p.url)),
            "annotations": {"platform": p.arch, "layer": p.layer, "apk_checksum": p.checksum},
        });
        if !p.sha256.is_empty() {
            d["digest"] = digest_set(&p.sha256);
        }
        deps.push(d);
    }
    for d in &lock.downloads {
        deps.push(json!({
            "uri": web(Some(&d.url)).unwrap_or_else(|| "file".into()),
            "digest": digest_set(&d.sha256.hex()),
            "annotations": {"platform": d.arch},
        }));
    }
    if let Some(b) = &lock.base_image {
        deps.push(
            json!({"uri": b.reference, "digest": digest_set(&b.digest.hex()), "annotations": {"role": "base image"}}),
        );
    }
    for f in &lock.from_images {
        deps.push(
            json!({"uri": f.reference, "digest": digest_set(&f.digest.hex()), "annotations": {"role": "files from"}}),
        );
    }
    let key = |v: &Value| (v["uri"].as_str().unwrap_or("").to_string(), crate::oci::json::canonical(&v["annotations"]));
    deps.sort_by_key(key);
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "recipe": {"name": file_name(&recipe.path), "digest": digest_set(&crate::model::digest::Digest::of(&recipe_text).hex())},
                    "lock": {"name": file_name(&recipe.lock_path), "digest": digest_set(&pins_digest(lock).hex())},
                    "variables": recipe.given_variables,
                    "archs": image.platforms.iter().map(|p| p.arch.name()).collect::<Vec<_>>(),
                    "tags": recipe.tags,
                },
                "internalParameters": {"epoch": lock.epoch},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": "urn:assemble:builder", "version": {"attestation-format": ATTESTATION_FORMAT.to_string()}},
            },
        },
    });
    Doc::new(&statement, IN_TOTO_MEDIA_TYPE)
}
