//! `assemble verify`: rebuild recipes from their locks in a fresh, empty cache — nothing
//! reused from the user's cache but pinned downloads, re-hashed — and compare every layer (diff_id and digest), config,
//! manifest and the index with what the lock records, or with another image (`--against`).
//! Differences are reported through [`crate::diff`], down to the file where the other
//! layer's bytes are available (the user's cache keeps the layers it built before). Once the
//! image matches, the attestations regenerated from the lock must have the digests it
//! records; a changed local input is named from the lock's `[image.sources]`, and a lock of an
//! older image format is told apart where the format explains the difference. With `--key`
//! and a registry image, [`crate::ops::signed`] checks its signatures and attestations.

use crate::model::digest::Digest;
use crate::oci::Image;
use crate::ops::build::{self, Options};
use crate::ops::diff::{self, Finding};
use crate::recipe::Recipe;
pub use crate::resolve::lock::IMAGE_FORMAT;
use crate::resolve::lock::{self, LockedImage};
use crate::sink;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Build(#[from] Box<build::Error>),
    #[error(transparent)]
    Diff(#[from] diff::Error),
    #[error(transparent)]
    Sink(#[from] sink::Error),
    #[error(transparent)]
    Lock(#[from] lock::Error),
    #[error(transparent)]
    Read(#[from] crate::oci::read::Error),
    #[error("cannot make a fresh cache")]
    Io(#[from] std::io::Error),
    #[error("the lock `{0}` records no image; build the recipe once to record it")]
    NothingRecorded(std::path::PathBuf),
    #[error(transparent)]
    Registry(#[from] crate::registry::Error),
}

/// `--key` with `--against docker://…`: the registry's signatures and signed attestations of
/// the image are checked against this key and the rebuild (see [`crate::ops::signed`]).
pub struct Signed<'a> {
    pub reference: &'a crate::registry::Reference,
    pub key: &'a crate::sign::PublicKey,
}

pub struct Outcome {
    pub recipe: String,
    pub built: Digest,
    pub findings: Vec<Finding>,
    /// The rebuild's inputs (local files, templates, variables, the recipe, the pins) are not
    /// those the lock records: the differences come from that change, not from the build.
    pub inputs_changed: bool,
    /// Which of the recipe's local inputs changed, added or went ("`app.py` changed"), when
    /// the lock records them; empty when the change is elsewhere (variables, tags, epoch).
    pub changed_sources: Vec<String>,
    /// The lock's image was written in an older [`lock::IMAGE_FORMAT`] than this assemble writes.
    pub older_format: Option<u32>,
}

/// The local inputs that differ between what the lock recorded and the rebuild.
fn changed_sources(recorded: &LockedImage, rebuilt: &LockedImage) -> Vec<String> {
    let (old, new) = (&recorded.sources, &rebuilt.sources);
    let mut out = Vec::new();
    for (path, digest) in new {
        match old.get(path) {
            None => out.push(format!("`{path}` added")),
            Some(d) if d != digest => out.push(format!("`{path}` changed")),
            Some(_) => {}
        }
    }
    out.extend(old.keys().filter(|p| !new.contains_key(*p)).map(|p| format!("`{p}` no longer read")));
    out
}

/// One `verify` command's fresh cache: every recipe it verifies is rebuilt there from its lock,
/// and a recipe base rebuilt for one recipe is reused by the next (it was rebuilt from its own
/// lock in this same empty cache). From the user's cache it takes only pinned downloads, each
/// re-hashed against its pin: no layer, listing or record.
pub struct Verifier {
    dir: tempfile::TempDir,
    session: crate::ops::Session,
}

impl Verifier {
    /// Pinned downloads (`.deb`s, `.apk`s, files, base image blobs) the user's cache holds are
    /// copied from it, re-hashed, instead of downloaded again; nothing else is taken from it.
    pub fn new(user_store: &Store) -> Result<Verifier, Error> {
        let dir = tempfile::Builder::new().prefix("assemble-verify-").tempdir()?;
        let session = crate::ops::Session::new(Store::open(dir.path())?.with_seed(user_store));
        Ok(Verifier { dir, session })
    }

    /// Rebuilds `recipe` from its lock in the fresh cache and compares.
    pub fn verify(
        &self,
        recipe: &Recipe,
        user_store: &Store,
        opts: &Options,
        against: Option<&crate::oci::read::Stored>,
        signed: Option<&Signed<'_>>,
    ) -> Result<Outcome, Error> {
        let opts = Options { locked: true, compare_outputs: false, write_lock: false, upgrade: false, ..opts.clone() };
        let built = build::build(&self.session, recipe, &opts).map_err(Box::new)?;
        let mut inputs_changed = false;
        let mut changed = Vec::new();
        let mut older_format = None;
        let findings = match against {
            Some(theirs) => {
                let out = tempfile::Builder::new().prefix("built-").tempdir_in(self.dir.path())?;
                let layout = out.path().join("layout");
                sink::layout::write(&built.image, &layout, None)?;
                let ours = crate::oci::read::open(
                    crate::oci::read::Location::Layout { dir: &layout, reference: None, vouch: None },
                    "the rebuilt image",
                    &self.session.store.tmp_dir(),
                )?;
                let mut findings = diff::images(theirs, &ours)?;
                if let (Some(s), Some(index)) = (signed, theirs.digest()) {
                    let manifests: Vec<Digest> =
                        theirs.platforms.iter().filter_map(|p| p.manifest.as_ref().map(|m| m.digest)).collect();
                    findings.extend(crate::ops::signed::check(
                        &self.session.store,
                        s.reference,
                        &index,
                        &manifests,
                        s.key,
                        &built.attestations,
                    )?);
                }
                findings
            }
            None => {
                let recorded = lock::read(&built.lock_path)?
                    .and_then(|l| l.images.into_iter().next())
                    .ok_or_else(|| Error::NothingRecorded(built.lock_path.clone()))?;
                let rebuilt = built.lock.images.first();
                inputs_changed = recorded.inputs.is_some() && rebuilt.and_then(|i| i.inputs) != recorded.inputs;
                older_format = rebuilt.and_then(|r| lock::older_format(&recorded, r, &recipe.annotations));
                if inputs_changed && !recorded.sources.is_empty() {
                    changed = rebuilt.map(|r| changed_sources(&recorded, r)).unwrap_or_default();
                }
                let mut findings = against_lock(&recorded, &built.image, user_store)?;
                // Attestations name the image's digests: while the image differs, so do they,
                // and the image's differences are the ones worth reading.
                if findings.is_empty() {
                    findings = attestations_against_lock(&recorded, &built.attestations);
                }
                findings
            }
        };
        Ok(Outcome {
            recipe: recipe.name.clone(),
            built: built.image.index.digest,
            findings,
            inputs_changed,
            changed_sources: changed,
            older_format,
        })
    }
}

/// Attestations regenerated from the lock whose digests are not those it records (a lock
/// written before attestations were recorded has none to compare).
fn attestations_against_lock(recorded: &LockedImage, a: &crate::ops::attest::Attestations) -> Vec<Finding> {
    let mut out = Vec::new();
    let differs = |old: &Option<Digest>, new: &Digest| old.as_ref().is_some_and(|o| o != new);
    if differs(&recorded.provenance, &a.provenance.digest) {
        let old = recorded.provenance.expect("checked");
        out.push(Finding::new("", "provenance", format!("{} → {}", short(&old), short(&a.provenance.digest))));
    }
    for (arch, spdx, cdx) in &a.sboms {
        let Some(old) = recorded.platforms.iter().find(|p| p.arch == arch.name()) else { continue };
        for (part, was, now) in
            [("sbom (spdx)", &old.spdx, &spdx.digest), ("sbom (cyclonedx)", &old.cyclonedx, &cdx.digest)]
        {
            if differs(was, now) {
                let summary = format!("{} → {}", short(&was.expect("checked")), short(now));
                out.push(Finding::new(arch.oci_platform(), part, summary));
            }
        }
    }
    out
}

/// Differences between what the lock records and the rebuilt image.
fn against_lock(recorded: &LockedImage, image: &Image, user_store: &Store) -> Result<Vec<Finding>, Error> {
    let mut out = Vec::new();
    if recorded.index == image.index.digest {
        return Ok(out);
    }
    let locked_archs: Vec<&str> = recorded.platforms.iter().map(|p| p.arch.as_str()).collect();
    let built_archs: Vec<&str> = image.platforms.iter().map(|p| p.arch.name()).collect();
    if locked_archs != built_archs {
        out.push(Finding::new("", "platforms", format!("{} → {}", locked_archs.join(", "), built_archs.join(", "))));
    }
    for p in &image.platforms {
        let Some(old) = recorded.platforms.iter().find(|l| l.arch == p.arch.name()) else { continue };
        if old.manifest == p.manifest.digest {
            continue;
        }
        let label = p.arch.oci_platform();
        let before = out.len();
        if old.config != p.config.digest {
            let old_config = fs_err::read(user_store.blob_path(&old.config))
                .ok()
                .filter(|b| Digest::of(b) == old.config)
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            let new_config = p.config.value();
            let entries = match &old_config {
                Some(o) => diff::config_lines(
                    (&o["config"], o["created"].as_str()),
                    (&new_config["config"], new_config["created"].as_str()),
                    Vec::new(),
                ),
                None => vec!["(the recorded config is not in this cache to compare its fields)".into()],
            };
            let summary = format!("{} → {}", short(&old.config), short(&p.config.digest));
            out.push(Finding::new(label.clone(), "config", summary).with_entries(entries));
        }
        for (i, (ol, nl)) in old.layers.iter().zip(&p.layers).enumerate() {
            if ol.digest == nl.info.digest {
                continue;
            }
            let (od, odi, nd, ndi) = (
                ol.digest.to_string(),
                ol.diff_id.to_string(),
                nl.info.digest.to_string(),
                nl.info.diff_id.to_string(),
            );
            let mut f = diff::layer_finding(
                &label,
                i,
                (&od, Some(&odi), intact(user_store, &ol.digest)),
                (&nd, Some(&ndi), Some(nl.path.clone())),
            )?;
            f.part = format!("layer {} ({})", i + 1, nl.name);
            out.push(f);
        }
        if old.layers.len() != p.layers.len() {
            out.push(Finding::new(label.clone(), "layers", format!("{} → {}", old.layers.len(), p.layers.len())));
        }
        if out.len() == before {
            let summary = format!("{} → {} (annotations)", short(&old.manifest), short(&p.manifest.digest));
            out.push(Finding::new(label, "manifest", summary));
        }
    }
    if out.is_empty() {
        let summary = format!("{} → {} (annotations or tags)", short(&recorded.index), short(&image.index.digest));
        out.push(Finding::new("", "index", summary));
    }
    Ok(out)
}

/// A blob of the user's cache, when it is still what its name says (the cache may have been
/// damaged or tampered with since; a listing from other bytes would mislead).
fn intact(store: &Store, d: &Digest) -> Option<std::path::PathBuf> {
    let path = store.blob_path(d);
    let file = fs_err::File::open(&path).ok()?;
    (crate::model::digest::hash_reader(file).ok()?.0 == *d).then_some(path)
}

fn short(d: &Digest) -> String {
    diff::short(&d.to_string())
}
