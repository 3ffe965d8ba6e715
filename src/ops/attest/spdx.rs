//! The SBOM as an SPDX 2.3 JSON document.

use crate::oci::Doc;
use crate::ops::attest::inventory::{ATTESTATION_FORMAT, Inventory, PartKind, uuid_from};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// SPDX ids take letters, digits, `.` and `-`; anything else becomes `-`, and a clash gets a
/// number (the order is the sorted package list, so ids are stable). The next number of each
/// clean id is kept, so a database of many same-named packages costs linear time.
fn id(used: &mut BTreeMap<String, usize>, raw: &str) -> String {
    let clean: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    let base = format!("SPDXRef-{clean}");
    let mut n = used.get(&base).copied().unwrap_or(0);
    loop {
        let candidate = if n == 0 { base.clone() } else { format!("{base}-{}", n + 1) };
        n += 1;
        if !used.contains_key(&candidate) {
            used.insert(base.clone(), n);
            used.entry(candidate.clone()).or_insert(1);
            return candidate;
        }
    }
}

fn or_none(v: &Option<String>) -> Value {
    json!(v.clone().unwrap_or_else(|| "NOASSERTION".into()))
}

/// A declared license kept only when it reads as an SPDX expression of ids, `AND`, `OR`,
/// `WITH` and parentheses; anything else (free text, `custom`) is NOASSERTION.
fn license(l: &Option<String>) -> Value {
    let Some(l) = l else { return json!("NOASSERTION") };
    let ok = !l.is_empty()
        && l.split(|c: char| c.is_whitespace() || c == '(' || c == ')').filter(|w| !w.is_empty()).all(|w| {
            matches!(w, "AND" | "OR" | "WITH")
                || (w.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
                    && w.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && !matches!(w.to_ascii_lowercase().as_str(), "custom" | "and" | "or" | "with"))
        });
    json!(if ok { l.clone() } else { "NOASSERTION".into() })
}

pub fn document(inv: &Inventory<'_>) -> Doc {
    let mut used = BTreeMap::new();
    used.insert("SPDXRef-DOCUMENT".to_string(), 1);
    let image_id = id(&mut used, "image");
    let name = &inv.recipe.name;
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": name,
        "versionInfo": inv.manifest.to_string(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": inv.manifest.hex()}],
        "comment": format!("the {} image manifest of {name}", inv.platform),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id,
    })];
    for p in &inv.packages {
        let pid = id(&mut used, &format!("{}-{}-{}", p.kind, p.name, p.architecture));
        let mut v = json!({
            "SPDXID": pid,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": or_none(&p.url),
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": license(&p.license),
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl}],
        });
        if let Some(s) = &p.supplier {
            v["supplier"] = json!(format!("Person: {}", s.replace(['(', ')'], "")));
        }
        if let Some(h) = &p.homepage {
            v["homepage"] = json!(h);
        }
        if let Some(s) = &p.source {
            v["sourceInfo"] = json!(format!("built from the {} source package {s}", p.kind));
        }
        if let Some(sha) = &p.sha256 {
            v["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sha}]);
        }
        if let Some(l) = &p.layer {
            v["comment"] = json!(format!("the {} package file; installed in layer {l}", p.kind));
        }
        packages.push(v);
        relationships
            .push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": pid}));
    }
    for part in &inv.parts {
        let pid = id(&mut used, &part.id);
        let mut v = json!({
            "SPDXID": pid,
            "name": part.name,
            "downloadLocation": or_none(&part.url),
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": part.sha256}],
        });
        if let Some(version) = &part.version {
            v["versionInfo"] = json!(version);
        }
        if let Some(purl) = &part.purl {
            v["externalRefs"] =
                json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}]);
        }
        let (purpose, relation, comment) = match part.kind {
            PartKind::Download => ("FILE", "CONTAINS", "a pinned download"),
            PartKind::BaseImage => ("CONTAINER", "DESCENDANT_OF", "the base image (this platform's manifest)"),
            PartKind::FilesFrom => {
                ("CONTAINER", "CONTAINS", "an image files are taken from (the platform manifest they come from)")
            }
            PartKind::Layer => ("ARCHIVE", "CONTAINS", "a layer of the image; its checksum is the diff_id"),
        };
        v["primaryPackagePurpose"] = json!(purpose);
        v["comment"] = json!(comment);
        packages.push(v);
        relationships.push(json!({"spdxElementId": image_id, "relationshipType": relation, "relatedSpdxElement": pid}));
    }
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{name} {}", inv.platform),
        "documentNamespace": format!("urn:uuid:{}", uuid_from(&format!("spdx {}", inv.manifest))),
        "creationInfo": {
            "created": crate::oci::rfc3339(inv.epoch),
            "creators": [format!("Tool: assemble (attestation format {ATTESTATION_FORMAT})")],
        },
        "packages": packages,
        "relationships": relationships,
    });
    Doc::new(&doc, crate::ops::attest::inventory::SPDX_MEDIA_TYPE)
}

#[cfg(test)]
mod tests {
    use crate::ops::attest::spdx::*;

    /// A hostile package database of many packages whose names clean to one id (`a`, `a+`,
    /// `a.`…) gets distinct ids in linear time, not quadratic.
    #[test]
    fn many_clashing_package_names_get_distinct_ids_in_linear_time() {
        let mut used = BTreeMap::new();
        let started = std::time::Instant::now();
        let ids: Vec<String> =
            (0..100_000).map(|i| id(&mut used, if i % 2 == 0 { "deb-a+" } else { "deb-a-" })).collect();
        assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        assert_eq!(ids[0], "SPDXRef-deb-a-");
        assert_eq!(ids[1], "SPDXRef-deb-a--2");
    }
}
