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
        let inv = inventory(recipe, lock, image, p, &c, epoch);
        sboms.push((p.arch, spdx::document(&inv), cyclonedx::document(&inv)));
    }
    Attestations { sboms, provenance: provenance::statement(recipe, lock, image) }
}

/// Records the attestations' digests in the lock's image.
pub fn record(a: &Attestations, image: &mut crate::resolve::lock::LockedImage) {
    image.provenance = Some(a.provenance.digest);
    for p in &mut image.platforms {
        if let Some((arch, spdx, cdx)) = a.sboms.iter().find(|(arch, _, _)| arch.name() == p.arch) {
            let _ = arch;
            p.spdx = Some(spdx.digest);
            p.cyclonedx = Some(cdx.digest);
        }
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
    for p in &image.platforms {
        if let Some((spdx, cdx)) = a.sbom(p.arch) {
            // About the platform's manifest (what a scanner of that platform asks for), and
            // about the index with the platform named (what `oras discover IMAGE` lists).
            let mut on_index = created();
            on_index.insert(PLATFORM_ANNOTATION.into(), crate::ops::diff::platform_label(p.arch));
            for doc in [spdx, cdx] {
                out.push(referrer(&p.manifest, doc, created()));
                out.push(referrer(&image.index, doc, on_index.clone()));
            }
        }
    }
    let mut annotations = created();
    annotations.insert("in-toto.io/predicate-type".into(), provenance::PREDICATE_TYPE.into());
    out.push(referrer(&image.index, &a.provenance, annotations));
    out
}
