//! Alpine packages: resolved from the repositories' signed indexes for every architecture
//! and fetched into the store (their sha256 recorded); with `--locked` the result must be
//! exactly the lock's.

use super::error::{Error, Result};
use super::lock::Facts;
use crate::model::platform::Arch;
use crate::recipe::Recipe;
use crate::source::{apk, fetch};
use crate::store::Store;
use std::collections::BTreeMap;

/// The Alpine packages for every architecture, resolved from the repositories and fetched
/// into the store (their sha256 recorded). With `--locked` the result must equal the lock's.
pub fn pins(
    recipe: &Recipe,
    spec: &crate::model::spec::AlpineSpec,
    store: &Store,
    archs: &[Arch],
    installed: &BTreeMap<Arch, String>,
    facts: Facts<'_>,
) -> Result<Vec<apk::Pin>> {
    let Facts { existing, locked, path: lock_path } = facts;
    let mut layers = vec![("base".to_string(), spec.packages.clone())];
    for l in &recipe.layers {
        if !l.packages.is_empty() {
            layers.push((l.name.clone(), l.packages.clone()));
        }
    }
    let mut pins = apk::resolve_all(spec, &layers, archs, installed, &recipe.dir, &store.releases_dir())?;
    fetch(&mut pins, existing, store, recipe)?;
    if locked {
        let old: Vec<apk::Pin> = existing
            .map(|l| {
                l.apk_packages.iter().filter(|p| archs.iter().any(|a| a.name() == p.arch)).map(Into::into).collect()
            })
            .unwrap_or_default();
        let changes = pin_lines(&old, &pins);
        if !changes.is_empty() {
            return Err(Error::Stale { path: lock_path.to_path_buf(), changes });
        }
    }
    Ok(pins)
}

/// Brings every pinned package into the store, streamed like a `.deb`, and records its
/// sha256. A package the lock pins (same name, version, control checksum and location) is
/// fetched by the lock's sha256 and not at all when the store has it; a new one is fetched
/// once to learn it. What the index vouches for (the control checksum, the signature, the
/// data hash) is checked when the package is read into a layer.
fn fetch(pins: &mut [apk::Pin], existing: Option<&super::lock::Lock>, store: &Store, recipe: &Recipe) -> Result<()> {
    let locked_sha = |p: &apk::Pin| {
        existing?
            .apk_packages
            .iter()
            .find(|l| {
                (&l.arch, &l.layer, &l.name, &l.version, &l.checksum, &l.url)
                    == (&p.arch, &p.layer, &p.name, &p.version, &p.checksum, &p.url)
            })
            .and_then(|l| l.sha256.parse::<crate::model::digest::Digest>().ok())
    };
    let origin = recipe.loc.to_string();
    let mut pinned = Vec::new();
    let mut unknown = Vec::new();
    for (i, p) in pins.iter_mut().enumerate() {
        let remote = p.url.starts_with("http://") || p.url.starts_with("https://");
        match (remote, locked_sha(p)) {
            (true, Some(sha)) => {
                p.sha256 = sha.hex();
                pinned.push(fetch::Download { url: p.url.clone(), sha256: sha, origin: origin.clone() });
            }
            (true, None) => unknown.push((i, (p.url.clone(), origin.clone()))),
            (false, locked) => {
                // A repository in a local directory: read from there, streamed.
                let path = recipe.dir.join(&p.url);
                let mut file =
                    fs_err::File::open(&path).map_err(|source| apk::Error::Read { path: path.clone(), source })?;
                let (digest, _) = store.put_reader(&mut file)?;
                if let Some(sha) = locked.filter(|sha| *sha != digest) {
                    return Err(fetch::Error::Mismatch {
                        url: path.display().to_string(),
                        origin,
                        expected: sha,
                        actual: digest,
                    }
                    .into());
                }
                p.sha256 = digest.hex();
            }
        }
    }
    fetch::fetch_all(store, &pinned)?;
    let learned = fetch::fetch_unpinned(store, &unknown.iter().map(|(_, w)| w.clone()).collect::<Vec<_>>())?;
    for ((i, _), digest) in unknown.iter().zip(learned) {
        pins[*i].sha256 = digest.hex();
    }
    Ok(())
}

pub fn pin_lines(old: &[apk::Pin], new: &[apk::Pin]) -> Vec<String> {
    let key = |p: &apk::Pin| format!("{} {} ({}) {}", p.name, p.arch, p.layer, p.version);
    let (a, b): (std::collections::BTreeSet<String>, std::collections::BTreeSet<String>) =
        (old.iter().map(key).collect(), new.iter().map(key).collect());
    let mut out: Vec<String> = b.difference(&a).map(|k| format!("package {k} is not in the lock")).collect();
    out.extend(a.difference(&b).map(|k| format!("the lock pins {k}, which the recipe no longer resolves to")));
    out
}
