//! `push`: a recipe's image (built first, unless the registry already holds the image its
//! lock records) or an image on disk, to a registry — with its attestations as referrers,
//! `TAG-ARCH` tags on request, and, with a key, signed as cosign verifies.

use super::build::{self, Options};
use super::session::Session;
use crate::Error;
use crate::oci::blobs::ImageBlobs;
use crate::oci::read::Stored;
use crate::recipe::Recipe;
use crate::registry::push::{self, Report, Settings};
use crate::registry::{self, Reference};
use crate::sign::{Signer, cosign};

/// How one push ended: the report of what was sent, or `None` when the registry already
/// held the lock's image and only the tags were written (nothing built).
pub struct Pushed {
    pub reference: Reference,
    pub digest: crate::model::digest::Digest,
    pub tags: Vec<String>,
    pub report: Option<Report>,
}

/// Where a recipe's image goes: `to` (`REGISTRY[/NAMESPACE]`) or the recipe's `registry`.
pub fn target(r: &Recipe, to: Option<&str>) -> Result<Reference, Error> {
    let base = to.or(r.registry.as_deref()).ok_or_else(|| {
        Error::Usage(format!(
            "`{}` names no registry: give --to REGISTRY[/NAMESPACE] or set `registry:` in the recipe",
            r.name
        ))
    })?;
    let (registry, namespace) = match base.split_once('/') {
        Some((reg, ns)) => (reg, ns.trim_end_matches('/')),
        None => (base, ""),
    };
    if !crate::model::reference::is_registry_host(registry) {
        return Err(Error::Usage(format!(
            "`{base}` does not start with a registry host (such as ghcr.io or 127.0.0.1:5000)"
        )));
    }
    let repo = if namespace.is_empty() { r.name.clone() } else { format!("{namespace}/{}", r.name) };
    Reference::parse(&format!("{registry}/{repo}")).map_err(Error::Usage)
}

/// Pushes a recipe's image. Secrets are refused unless `allow_secrets`. A fleet of runners
/// shares work through the registry: when the lock says what this recipe gives and the
/// registry already has it, only the tags are written.
#[allow(clippy::too_many_arguments)]
pub fn push_recipe(
    session: &Session,
    rt: &tokio::runtime::Runtime,
    r: &Recipe,
    to: Option<&str>,
    allow_secrets: bool,
    opts: &Options,
    reg: &registry::Options,
    settings: &Settings,
    signer: Option<&Signer>,
    on_build: &dyn Fn(&str),
) -> Result<Pushed, Error> {
    if !r.config.secrets.is_empty() && !allow_secrets {
        let paths: Vec<&str> = r.config.secrets.iter().map(|s| s.to.as_str()).collect();
        return Err(Error::Usage(format!(
            "`{}` holds secrets in its configuration layer ({}); a registry would publish them. Push anyway with --allow-secrets, or ship it with `assemble ship`",
            r.name,
            paths.join(", ")
        )));
    }
    let target = target(r, to)?;
    let client = registry::Client::new(&target.registry, &target.repository, reg)?;
    // Signing needs the attestations, which a build makes (from the cache when nothing changed).
    if let Some(index) = build::locked_index(session, r, opts)?.filter(|_| signer.is_none() && !settings.platform_tags)
    {
        let present = rt.block_on(registry::pull::has_manifest(&client, &target.repository, &index))?;
        if present {
            rt.block_on(push::tag_existing(&client, &target.repository, &index, &r.tags))?;
            tracing::info!(
                "{target} already holds {index} (the lock's image): tagged {} without building",
                r.tags.join(", ")
            );
            return Ok(Pushed { reference: target, digest: index, tags: r.tags.clone(), report: None });
        }
    }
    on_build(&format!("building {}", r.name));
    let built = build::build(session, r, opts)?;
    on_build(&format!("pushing {target}"));
    let mut blobs = ImageBlobs::of_image(&built.image, |d| session.store.blob_path(d), &r.tags);
    if settings.platform_tags {
        let platforms = built.image.platforms.iter().map(|p| (p.arch, p.manifest.clone()));
        blobs.platform_tags = crate::oci::blobs::platform_tags(platforms, &r.tags);
    }
    let report = rt.block_on(push::push(&client, &session.store, &target.repository, &blobs, settings))?;
    if let Some(signer) = signer {
        let sets = signatures(signer, &format!("{}/{}", target.registry, target.repository), &built);
        rt.block_on(push::push_signatures(
            &client,
            &session.store,
            &target.repository,
            &built.image.index.digest,
            &sets,
            settings,
        ))?;
    }
    Ok(Pushed { reference: target, digest: built.image.index.digest, tags: r.tags.clone(), report: Some(report) })
}

/// What signing an image adds, as cosign lays it out: the index's signature (`.sig`), and
/// (`.att`) the provenance and each platform's SBOMs as signed in-toto statements about the
/// index (and the platform's manifest).
fn signatures(signer: &Signer, repository: &str, built: &build::Built) -> Vec<(&'static str, Vec<cosign::Layer>)> {
    let index = built.image.index.digest;
    let mut att = Vec::new();
    for d in built.attestations.documents() {
        let statement = match d.arch.and_then(|arch| built.image.platform(arch)) {
            // The provenance is a statement already.
            None => d.doc.bytes.clone(),
            Some(p) => {
                let subjects =
                    [(repository.to_string(), index), (format!("{repository}@{}", p.arch.name()), p.manifest.digest)];
                cosign::statement(&subjects, d.predicate_type, d.doc.value())
            }
        };
        att.push(cosign::attestation(signer, &statement, d.predicate_type));
    }
    vec![("sig", vec![cosign::signature(signer, repository, &index)]), ("att", att)]
}

/// Pushes an image already opened (every blob checked) to `to` (`REGISTRY/REPOSITORY[:TAG]`);
/// without a tag there, under the names the image has. Layers written for their owner only
/// (holding secrets) are refused unless `allow_secrets`.
pub fn push_image(
    session: &Session,
    rt: &tokio::runtime::Runtime,
    image: &Stored,
    to: &str,
    allow_secrets: bool,
    reg: &registry::Options,
    settings: &Settings,
) -> Result<Pushed, Error> {
    let target = Reference::parse(to).map_err(Error::Usage)?;
    let mut plan = ImageBlobs::of_stored(image).map_err(|e| Error::Usage(e.to_string()))?;
    let private: Vec<String> =
        image.platforms.iter().flat_map(|p| &p.layers).filter(|l| l.private).map(|l| l.digest.to_string()).collect();
    if !private.is_empty() && !allow_secrets {
        return Err(Error::Usage(format!(
            "{} has layers written readable by their owner only, as assemble writes layers holding secrets ({}); push anyway with --allow-secrets",
            image.source,
            private.join(", ")
        )));
    }
    plan.tags = match &target.tag {
        Some(t) => vec![t.clone()],
        None if !image.tags.is_empty() => image.tags.clone(),
        None => {
            return Err(Error::Usage(format!(
                "{} names no tag for this image: give one in --to REF:TAG",
                image.source
            )));
        }
    };
    if settings.platform_tags {
        let platforms = image.platforms.iter().filter_map(|p| Some((p.name.parse().ok()?, p.manifest.clone()?)));
        plan.platform_tags = crate::oci::blobs::platform_tags(platforms, &plan.tags);
    }
    let client = registry::Client::new(&target.registry, &target.repository, reg)?;
    let report = rt.block_on(push::push(&client, &session.store, &target.repository, &plan, settings))?;
    Ok(Pushed { digest: report.digest, tags: plan.tags.clone(), reference: target, report: Some(report) })
}
