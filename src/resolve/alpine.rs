//! Alpine packages: resolved from the repositories' signed indexes for every architecture
//! and fetched into the store (their sha256 recorded); with `--locked` the result must be
//! exactly the lock's.

use super::error::{Error, Result};
use super::lock::Facts;
use crate::model::platform::Arch;
use crate::recipe::Recipe;
use crate::source::apk;
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
    for p in &mut pins {
        let bytes = apk::fetch_location(&p.url, &recipe.dir, &store.releases_dir())?;
        let (digest, _) = store.put_bytes(&bytes, false)?;
        p.sha256 = digest.hex();
    }
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

pub fn pin_lines(old: &[apk::Pin], new: &[apk::Pin]) -> Vec<String> {
    let key = |p: &apk::Pin| format!("{} {} ({}) {}", p.name, p.arch, p.layer, p.version);
    let (a, b): (std::collections::BTreeSet<String>, std::collections::BTreeSet<String>) =
        (old.iter().map(key).collect(), new.iter().map(key).collect());
    let mut out: Vec<String> = b.difference(&a).map(|k| format!("package {k} is not in the lock")).collect();
    out.extend(a.difference(&b).map(|k| format!("the lock pins {k}, which the recipe no longer resolves to")));
    out
}
