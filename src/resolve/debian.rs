//! Debian packages: the requests a recipe makes of the archive, pinned per architecture —
//! from the lock while it was made for exactly these requests, else resolved as apt would.

use super::error::{Error, Result};
use super::lock;
use super::lock::Facts;
use super::stale;
use crate::model::platform::Arch;
use crate::recipe::Recipe;
use crate::source::{deb, fetch};
use crate::store::Store;
use std::collections::BTreeMap;

/// The requests the recipe makes of the Debian archive, layer by layer.
pub fn requests(recipe: &Recipe, spec: &crate::model::spec::DebianSpec) -> lock::LockedDebian {
    let mut requests = vec![lock::LockedRequest { layer: "base".into(), packages: spec.packages.clone() }];
    for l in &recipe.layers {
        if !l.packages.is_empty() {
            requests.push(lock::LockedRequest { layer: l.name.clone(), packages: l.packages.clone() });
        }
    }
    lock::LockedDebian {
        suites: spec.suites.clone(),
        components: spec.components.clone(),
        essential: spec.essential,
        recommends: spec.recommends,
        requests,
        releases: Vec::new(),
        sources: spec
            .sources
            .iter()
            .map(|s| lock::LockedSource {
                mirror: s.mirror.clone(),
                suites: s.suites.clone(),
                components: s.components.clone(),
                priority: s.priority,
                packages: s.packages.clone(),
            })
            .collect(),
    }
}

/// The packages for every architecture: the lock's when it was made for exactly these
/// requests and architectures, else resolved against the archive (not with `--locked`).
#[allow(clippy::too_many_arguments)]
pub fn pins(
    recipe: &Recipe,
    spec: &crate::model::spec::DebianSpec,
    store: &Store,
    archives: &deb::Archives,
    archs: &[Arch],
    installed: &BTreeMap<Arch, Vec<deb::index::Package>>,
    facts: Facts<'_>,
    resolved_arch: Option<deb::Told<'_>>,
) -> Result<(lock::LockedDebian, Vec<deb::Pin>)> {
    let Facts { existing, locked, path: lock_path } = facts;
    let mut wanted = requests(recipe, spec);
    if let Some(old) = existing.and_then(|l| l.debian.as_ref().map(|d| (l, d))) {
        let (lock, d) = old;
        let mut changes = stale::request_changes(d, &wanted);
        for a in archs {
            if !lock.packages.iter().any(|p| p.arch == a.name()) {
                changes.push(format!("no packages are locked for `{a}`"));
            }
        }
        if changes.is_empty() {
            wanted.releases = d.releases.clone();
            let pins =
                lock.packages.iter().filter(|p| archs.iter().any(|a| a.name() == p.arch)).map(Into::into).collect();
            return Ok((wanted, pins));
        }
        if locked {
            return Err(Error::Stale { path: lock_path.to_path_buf(), changes });
        }
    } else if locked {
        return Err(Error::Stale {
            path: lock_path.to_path_buf(),
            changes: vec!["the lock pins no Debian packages".to_string()],
        });
    }
    let layers: Vec<(String, Vec<String>)> =
        wanted.requests.iter().map(|r| (r.layer.clone(), r.packages.clone())).collect();
    // One architecture at a time, its universe gone once it is resolved (see
    // `deb::Archives::release_after_use`): memory holds one universe however many
    // architectures there are, and `resolved_arch` puts the other core to work on the
    // packages already resolved while the next index is read.
    let mut pins = Vec::new();
    let names: Vec<String> = layers.iter().flat_map(|(_, names)| names.iter().cloned()).collect();
    let guess = resolved_arch.map(|told| deb::Guess { told, essential: spec.essential, names: &names });
    for &a in archs {
        let archive = archives
            .open(store, spec, &[a], &recipe.loc.to_string(), guess.as_ref())
            .map_err(|e| located(recipe, e))?;
        let below = installed.get(&a).map(Vec::as_slice).unwrap_or_default();
        let arch_pins = deb::resolve(&archive, spec, &layers, a, below).map_err(|e| located(recipe, e))?;
        for r in &archive.releases {
            let r: lock::LockedRelease = r.into();
            if !wanted.releases.contains(&r) {
                wanted.releases.push(r);
            }
        }
        drop(archive);
        if let Some(told) = resolved_arch {
            told(&arch_pins);
        }
        pins.extend(arch_pins);
    }
    Ok((wanted, pins))
}

/// A resolution failure that names a package the recipe asked for, pointed at the line that
/// asks for it (an unknown name, or the request whose dependency cannot be satisfied).
fn located(recipe: &Recipe, e: deb::Error) -> Error {
    use deb::resolve::Error as R;
    if let deb::Error::NoSuite { suite, known, .. } = &e
        && let Some(loc) = recipe.suite_locs.get(suite)
    {
        let near = crate::recipe::diag::nearest(suite, known.iter().map(String::as_str));
        let listed = if known.is_empty() {
            "the mirror does not list its suites".to_string()
        } else {
            format!("the mirror has: {}", known.join(", "))
        };
        let hint = match near {
            Some(n) => format!("did you mean `{n}`? ({listed})"),
            None => listed,
        };
        return Error::Recipe(crate::recipe::Diagnostic::new(loc.clone(), e.to_string()).with_hint(hint));
    }
    let deb::Error::Resolve { arch, error } = &e else { return e.into() };
    let asked = match error {
        R::Unknown { name, .. } => Some(name.as_str()),
        R::Unsatisfiable { chain, .. } => chain.last().and_then(|c| c.split(' ').next()),
        R::Conflict { a, .. } => Some(a.as_str()),
    };
    match asked.and_then(|name| recipe.package_locs.get(name)) {
        Some(loc) => {
            let d = crate::recipe::Diagnostic::new(loc.clone(), format!("{arch}: {error}"));
            match error {
                R::Unknown { near, .. } if near.is_empty() => Error::Recipe(d.with_hint(
                    "no package or virtual package of that name is in the suites and components the recipe reads; a package from another suite or component needs it added",
                )),
                _ => Error::Recipe(d),
            }
        }
        None => e.into(),
    }
}

/// A pinned package the mirror no longer has: say which, and how to get it back.
pub fn moved_package(e: fetch::Error, pins: &[deb::Pin], debian: Option<&lock::LockedDebian>) -> Error {
    if let fetch::Error::Status { url, status: 404, .. } = &e
        && let Some(p) = pins.iter().find(|p| crate::model::text::redact(&p.url) == *url)
    {
        let date = debian.and_then(|d| d.releases.first()).map(|r| r.date.clone()).unwrap_or_default();
        return Error::Debian(deb::Error::Sources(format!(
            "package `{}` {} ({}) is no longer on the mirror (`{url}` answers 404); the archive has moved on since the lock was made ({date}): point `mirror:` at a snapshot of the archive from that date, or run `assemble lock` to move to current versions",
            p.name, p.version, p.arch
        )));
    }
    Error::Fetch(e)
}
