//! Attestations of a built image: per platform an SBOM in SPDX 2.3 and in CycloneDX 1.6, and
//! for the image a SLSA Provenance v1 in-toto statement. They are made from what the build
//! knows exactly — the lock's pins and the image's own package databases — and from nothing
//! that varies: no clock (times are the epoch), no random ids (namespaces and serial numbers
//! come from digests), every list sorted. So the same recipe and lock give byte-identical
//! documents, and `verify` can require it.

mod cyclonedx;
mod inventory;
mod provenance;
mod spdx;

use crate::model::platform::Arch;
use crate::oci::Image;
use crate::recipe::Recipe;
use crate::resolve::lock::Lock;
pub use inventory::*;
pub use provenance::PREDICATE_TYPE as PROVENANCE_PREDICATE_TYPE;

/// Makes the attestations of `image`, built from `recipe` with `lock`, whose platforms hold
/// `contents`.
pub fn make(recipe: &Recipe, lock: &Lock, image: &Image, contents: &[(Arch, Contents)], epoch: u64) -> Attestations {
    let mut sboms = Vec::new();
    for p in &image.platforms {
        let c = contents.iter().find(|(a, _)| *a == p.arch).map(|(_, c)| c.clone()).unwrap_or_default();
        let inv = inventory(recipe, lock, p, &c, epoch);
        sboms.push((p.arch, spdx::document(&inv), cyclonedx::document(&inv)));
    }
    Attestations { sboms, provenance: provenance::statement(recipe, lock, image) }
}

/// Records the attestations' digests in the lock's image.
pub fn record(a: &Attestations, image: &mut crate::resolve::lock::LockedImage) {
    image.provenance = Some(a.provenance.digest);
    for p in &mut image.platforms {
        if let Some((_, spdx, cdx)) = a.sboms.iter().find(|(arch, _, _)| arch.name() == p.arch) {
            p.spdx = Some(spdx.digest);
            p.cyclonedx = Some(cdx.digest);
        }
    }
}

/// The predicate types cosign's `--type spdxjson` and `--type cyclonedx` name (the
/// provenance's is [`PROVENANCE_PREDICATE_TYPE`]).
pub const SPDX_PREDICATE_TYPE: &str = "https://spdx.dev/Document";
pub const CYCLONEDX_PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";

/// One attestation document and what names it: the platform it is about (none: the image),
/// how findings call it, its media type and the in-toto predicate type it is signed as.
pub struct Document<'a> {
    pub arch: Option<Arch>,
    pub part: &'static str,
    pub media_type: &'static str,
    pub predicate_type: &'static str,
    pub doc: &'a crate::oci::Doc,
}

impl Attestations {
    /// Every document: the provenance, then each platform's SPDX and CycloneDX SBOMs.
    pub fn documents(&self) -> Vec<Document<'_>> {
        let mut out = vec![Document {
            arch: None,
            part: "provenance",
            media_type: IN_TOTO_MEDIA_TYPE,
            predicate_type: PROVENANCE_PREDICATE_TYPE,
            doc: &self.provenance,
        }];
        for (arch, spdx, cdx) in &self.sboms {
            out.push(Document {
                arch: Some(*arch),
                part: "sbom (spdx)",
                media_type: SPDX_MEDIA_TYPE,
                predicate_type: SPDX_PREDICATE_TYPE,
                doc: spdx,
            });
            out.push(Document {
                arch: Some(*arch),
                part: "sbom (cyclonedx)",
                media_type: CYCLONEDX_MEDIA_TYPE,
                predicate_type: CYCLONEDX_PREDICATE_TYPE,
                doc: cdx,
            });
        }
        out
    }
}

/// The annotation naming the platform an SBOM attached to the index is about.
pub const PLATFORM_ANNOTATION: &str = "dev.assemble.platform";

/// The attestations as artifacts about the image: each SBOM about its platform's manifest
/// and about the index, the provenance about the index.
pub fn referrers(a: &Attestations, image: &Image, epoch: u64) -> Vec<crate::oci::Referrer> {
    use crate::oci::referrer::referrer;
    let created = || {
        std::collections::BTreeMap::from([
            (crate::oci::CREATED.to_string(), crate::oci::rfc3339(epoch)),
            (crate::oci::referrer::INDEX_ANNOTATION.to_string(), image.index.digest.to_string()),
        ])
    };
    let mut out = Vec::new();
    let documents = a.documents();
    // The SBOMs: about the platform's manifest (what a scanner of that platform asks for),
    // and about the index with the platform named (what `oras discover IMAGE` lists).
    for d in &documents {
        let Some(p) = d.arch.and_then(|arch| image.platform(arch)) else { continue };
        let mut on_index = created();
        on_index.insert(PLATFORM_ANNOTATION.into(), p.arch.oci_platform());
        out.push(referrer(&p.manifest, d.doc, created()));
        out.push(referrer(&image.index, d.doc, on_index));
    }
    // The provenance, about the index.
    for d in documents.iter().filter(|d| d.arch.is_none()) {
        let mut annotations = created();
        annotations.insert("in-toto.io/predicate-type".into(), d.predicate_type.into());
        out.push(referrer(&image.index, d.doc, annotations));
    }
    out
}
