//! `build`: one recipe into an image in the store, read as the pipeline it is —
//! resolve → plan → fetch → plan for real → pack → image → record.
//!
//! Planning builds every layer's tree once *before* any download (URL files stand in by
//! their pinned digest), so every local mistake — a missing file, an unknown owner, two
//! sources for one path, an unset secret — is reported before the network is touched.
//! After fetching, the trees are built for real, keyed, and packed in parallel ([`pack`]); a
//! layer whose key the cache knows is reused without compressing anything. A damaged cache
//! entry found on the way is removed where it is found and the build runs again.

pub mod error;
pub(crate) mod image;
pub mod options;
pub(crate) mod pack;
pub(crate) mod parent;

pub use error::{Error, Result};
pub use options::{Built, Options, default_threads, epoch_of};

use crate::model::digest::{Digest, Hasher};
use crate::model::platform::Arch;
use crate::ops::attest;
use crate::ops::session::{Session, built_key};
use crate::plan::{self, ArchTrees, LargeFiles, Mode, Planner};
use crate::recipe::{Diagnostic, Recipe};
use crate::resolve::lock::{self, Lock, LockedDownload};
use crate::resolve::{self, Facts, stale};
use crate::source::fetch::{self, Download};
use crate::source::{apk, deb, pick};
use crate::store::Store;

use std::path::{Path, PathBuf};

/// A damaged cache entry is removed where it is found (see [`crate::store`]); the build then
/// starts again, fetching or making it anew, at most this many times.
const HEALS: usize = 3;

/// Builds the recipe's image into the session's store.
pub fn build(session: &Session, recipe: &Recipe, opts: &Options) -> Result<Built> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.threads.max(1)).build().expect("thread pool");
    let mut healed = 0;
    loop {
        match pool.install(|| build_in_pool(session, recipe, opts)) {
            Err(e) if healed < HEALS => {
                let Some(d) = crate::store::damage::damaged_in(&e) else { return Err(e) };
                healed += 1;
                tracing::warn!("{d}: building `{}` again", recipe.name);
            }
            other => return other,
        }
    }
}

/// The pipeline, in the order it runs.
fn build_in_pool(session: &Session, recipe: &Recipe, opts: &Options) -> Result<Built> {
    let store = &session.store;
    let started = std::time::Instant::now();
    let phase = |name: &str| tracing::debug!("`{}`: {name} done at {:.2?}", recipe.name, started.elapsed());
    plan::require_variables(recipe)?;
    let archs = select_archs(recipe, opts)?;
    // A recipe base is built first (from its own lock); its image is this one's base.
    let parent = parent::parent_base(session, recipe, opts, &archs, &|r, o| build_in_pool(session, r, o))?;
    let recipe = &parent::inherit(recipe, parent.as_ref())?;
    let epoch = epoch_of(recipe, opts);
    let lock_path = recipe.lock_path.clone();
    let existing = lock::read(&lock_path)?;
    if opts.locked && existing.is_none() {
        return Err(resolve::Error::NoLock(lock_path).into());
    }
    let context = context_of(recipe, opts)?;

    // Plan: every tree once, with downloads standing in by digest.
    let planned = plan::plan_all(recipe, store, &archs, epoch, LargeFiles::Defer, &context)?;
    // Resolve: the base image and the packages, from the lock while it covers them.
    let facts = Facts { existing: existing.as_ref(), locked: opts.locked, path: &lock_path };
    // An architecture's packages are fetched and read as soon as it is resolved, while the
    // next one's index is read; what fails there is left to the fetch below, which tries it
    // again and reports it.
    let limit = recipe.unpack_limit;
    let resolved = rayon::scope(|s| {
        let early = |pins: &[deb::Pin]| {
            let (downloads, pins) = (deb::downloads(pins), pins.to_vec());
            s.spawn(move |_| drop(fetch_and_unpack(store, downloads, &pins, limit)));
        };
        let given = resolve::Given {
            parent: parent.as_ref().map(|p| &p.0),
            picks: &planned.picks,
            resolved_arch: Some(&early),
        };
        resolve::resolve(recipe, store, &session.archives, &archs, given, facts, opts.upgrade)
    })?;
    phase("resolve");
    warn_without_os_release(recipe, &resolved);
    let (mut wanted, downloads) = wanted_lock(recipe, &archs, epoch, planned.downloads, &resolved)?;
    if opts.locked {
        stale::check_pins(existing.as_ref(), &wanted, &lock_path)?;
    }

    // Fetch: every download, checked against its pin as it arrives; each package is read
    // into the cache as soon as it is here.
    fetch_and_unpack(store, downloads, &resolved.packages, recipe.unpack_limit)
        .map_err(|e| e.moved_package(&resolved.packages, wanted.debian.as_ref()))?;
    phase("fetch");
    for d in &mut wanted.downloads {
        d.size = fs_err::metadata(store.blob_path(&d.sha256))?.len();
    }
    // Paths taken from images: only the layers each needs, every one checked.
    for p in &planned.picks {
        let manifest = &resolved.images[&p.reference].platforms[&p.platform];
        pick::pick(store, &p.reference, manifest, p.platform, &p.path, recipe.unpack_limit)
            .map_err(resolve::Error::from)?;
    }

    // Plan for real, then pack, one platform at a time: its trees are let go once its
    // layers are packed (with the digests of deferred host files learned) and its package
    // databases read for the SBOMs.
    let mut packing = pack::Packing::new(store, epoch, recipe.compression);
    let (mut platforms, mut contents) = (Vec::new(), Vec::new());
    for &arch in &archs {
        let (arch, mut trees, run) = arch_trees(recipe, store, arch, epoch, &context, &resolved)?;
        platforms.push(packing.platform(arch, &mut trees, run)?);
        let base = resolved.base.as_ref().and_then(|(_, v)| v.get(&arch));
        contents.push((arch, attest::Contents::of(&trees, base)));
    }
    let packed = packing.finish();
    phase("pack");
    // Files hashed as they were packed complete the plan's hash.
    let (plan_hash, sources) = if planned.deferred {
        let p = plan::plan_all(recipe, store, &archs, epoch, LargeFiles::Learned(&packed.learned), &context)?;
        (p.hash, p.sources)
    } else {
        (planned.hash, planned.sources)
    };

    // Image: configs, manifests, the index; then record it in the lock.
    let mut image = image::form(recipe, store, epoch, &platforms, &packed, resolved.base.as_ref())?;
    phase("image");
    wanted.images = vec![image::locked(recipe, &image)];
    wanted.images[0].inputs = Some(inputs(&plan_hash, &wanted));
    wanted.images[0].sources = sources;
    // Attestations: the SBOMs from each platform's package databases and the pins, and the
    // provenance; their digests are recorded beside the image's.
    let attestations = attest::make(recipe, &wanted, &image, &contents, epoch);
    attest::record(&attestations, &mut wanted.images[0]);
    phase("attestations");
    if opts.attach {
        image.referrers = attest::referrers(&attestations, &image, epoch);
        // In the store beside the configs, for push and ship to send.
        store.put_bytes(&crate::oci::referrer::empty_config().bytes, false)?;
        for r in &image.referrers {
            store.put_bytes(&r.document.bytes, false)?;
        }
    }
    let full = archs.len() == recipe.archs.len();
    if opts.locked
        && opts.compare_outputs
        && let Some(existing) = &existing
    {
        let older = existing.images.first().and_then(|i| lock::older_format(i, &wanted.images[0], &recipe.annotations));
        stale::check_outputs(existing, &wanted, full, &image.index.digest, &lock_path, older)?;
    }
    let lock_written = if opts.write_lock && !opts.locked && full { wanted.write(&lock_path)? } else { false };
    phase("lock");
    session.remember(built_key(recipe, store, &archs, opts), &image);
    Ok(Built {
        image,
        attestations,
        lock: wanted,
        lock_path,
        lock_written,
        packed: packed.packed,
        reused: packed.reused,
    })
}

/// The lock a build with these pins would write (without its image), and the downloads to
/// fetch: the recipe's own and every package's.
fn wanted_lock(
    recipe: &Recipe,
    archs: &[Arch],
    epoch: u64,
    mut downloads: Vec<(Arch, Download)>,
    resolved: &resolve::Resolved,
) -> Result<(Lock, Vec<Download>)> {
    for d in deb::downloads(&resolved.packages) {
        let pin = resolved.packages.iter().find(|p| p.url == d.url).expect("a download of a pin");
        let arch: Arch = pin.arch.parse().map_err(|e: String| lock::Error::Parse {
            path: recipe.lock_path.clone(),
            message: format!("package `{}`: {e}", pin.name),
        })?;
        downloads.push((arch, d));
    }
    let mut wanted = Lock {
        version: lock::VERSION,
        recipe: recipe.name.clone(),
        archs: archs.iter().map(|a| a.name().to_string()).collect(),
        epoch,
        downloads: downloads
            .iter()
            .filter(|(_, d)| !resolved.packages.iter().any(|p| p.url == d.url))
            .map(|(arch, d)| LockedDownload { url: d.url.clone(), arch: arch.name().into(), sha256: d.sha256, size: 0 })
            .collect(),
        images: Vec::new(),
        base_image: resolved.base.as_ref().map(|(b, _)| {
            lock::LockedBaseImage::of(&b.reference, b.digest, b.platforms.iter().map(|(a, p)| (*a, p.manifest)))
        }),
        from_images: resolved
            .images
            .values()
            .map(|p| lock::LockedBaseImage::of(&p.reference, p.digest, p.platforms.iter().map(|(a, m)| (*a, *m))))
            .collect(),
        debian: resolved.debian.clone(),
        packages: resolved.packages.iter().map(Into::into).collect(),
        apk_packages: resolved.apk.iter().map(Into::into).collect(),
    };
    wanted.downloads.sort();
    wanted.downloads.dedup();
    Ok((wanted, downloads.into_iter().map(|(_, d)| d).collect()))
}

/// Fetches every download, reading each package into the cache (its files as one pack, its
/// listing) as soon as it has arrived, on the pool's threads and the largest first — not one
/// architecture after another once everything is here, which left a core idle behind each
/// architecture's largest package. The planner then finds every package read. Of several
/// packages that cannot be read, the first in pin order is reported.
fn fetch_and_unpack(
    store: &Store,
    mut downloads: Vec<Download>,
    pins: &[deb::Pin],
    limit: u64,
) -> std::result::Result<(), Fetched> {
    let by_sha: std::collections::HashMap<Digest, (usize, &deb::Pin)> =
        pins.iter().enumerate().rev().filter_map(|(i, p)| Some((p.sha256.parse().ok()?, (i, p)))).collect();
    downloads.sort_by_key(|d| std::cmp::Reverse(by_sha.get(&d.sha256).map_or(u64::MAX, |(_, p)| p.size)));
    let failed: std::sync::Mutex<Option<(usize, deb::Error)>> = std::sync::Mutex::new(None);
    rayon::scope(|s| {
        let arrived = |sha: Digest| {
            let Some(&(i, pin)) = by_sha.get(&sha) else { return };
            let failed = &failed;
            s.spawn(move |_| {
                if let Err(e) = deb::unpacked(store, pin, limit) {
                    let mut first = failed.lock().expect("unpack errors");
                    if first.as_ref().is_none_or(|(j, _)| i < *j) {
                        *first = Some((i, e));
                    }
                }
            });
        };
        fetch::fetch_each(store, &downloads, &arrived)
    })
    .map_err(Fetched::Fetch)?;
    match failed.into_inner().expect("unpack errors") {
        Some((_, e)) => Err(Fetched::Unpack(e)),
        None => Ok(()),
    }
}

/// Why [`fetch_and_unpack`] failed.
enum Fetched {
    Fetch(fetch::Error),
    Unpack(deb::Error),
}

impl Fetched {
    fn moved_package(self, pins: &[deb::Pin], debian: Option<&lock::LockedDebian>) -> Error {
        match self {
            Fetched::Fetch(e) => resolve::debian::moved_package(e, pins, debian).into(),
            Fetched::Unpack(e) => plan::Error::from(e).into(),
        }
    }
}

/// The real trees of one architecture, with its pinned packages and its base.
fn arch_trees(
    recipe: &Recipe,
    store: &Store,
    arch: Arch,
    epoch: u64,
    context: &Path,
    resolved: &resolve::Resolved,
) -> Result<ArchTrees> {
    let debian: Vec<deb::Pin> = resolved.packages.iter().filter(|p| p.arch == arch.name()).cloned().collect();
    let alpine: Vec<apk::Pin> = resolved.apk.iter().filter(|p| p.arch == arch.name()).cloned().collect();
    let base = resolved.base.as_ref().map(|(image, views)| (&image.platforms[&arch], views[&arch].clone()));
    let mode = Mode::Build { debian: &debian, alpine: &alpine, base, images: &resolved.images };
    let mut planner = Planner::new(recipe, arch, store, epoch, context, mode)?;
    let trees = planner.all_trees()?;
    let run = planner.run_config()?;
    Ok((arch, trees, run))
}

/// The build context: `--context`, else the recipe's `context:` (relative to its directory),
/// else the recipe's directory; canonical, so symlinks cannot lead out of it unseen.
fn context_of(recipe: &Recipe, opts: &Options) -> Result<PathBuf> {
    let (dir, loc) = match (&opts.context, &recipe.context) {
        (Some(c), _) => (c.clone(), None),
        (None, Some((c, loc))) => (recipe.dir.join(c), Some(loc)),
        (None, None) => (recipe.dir.clone(), None),
    };
    match (fs_err::canonicalize(&dir), loc) {
        (Ok(c), _) if c.is_dir() => Ok(c),
        (_, Some(loc)) => Err(Diagnostic::new(
            loc.clone(),
            format!("`context` `{}` is not a directory (looked for `{}`)", dir.display(), dir.display()),
        )
        .with_hint("`context` is a directory, relative to the recipe's, that holds every local file it uses")
        .into()),
        (_, None) => Err(Error::Context(dir)),
    }
}

/// A Debian image without `base-files` has no `/etc/os-release`, by which scanners (Trivy,
/// Grype) tell the distribution and so its security fixes: say so, with the fix. It is not
/// added behind the recipe's back (the package set stays what apt would install).
fn warn_without_os_release(recipe: &Recipe, resolved: &resolve::Resolved) {
    if matches!(recipe.base, crate::recipe::Base::Debian(_))
        && !resolved.packages.is_empty()
        && !resolved.packages.iter().any(|p| p.name == "base-files")
        && !names_os_release(recipe)
    {
        tracing::warn!(
            "{}: the image has no /etc/os-release (base-files is not installed), so vulnerability scanners cannot tell its distribution; add `base-files` to its packages",
            recipe.name
        );
    }
}

/// Whether the recipe writes an os-release itself (a file or symlink to either path).
fn names_os_release(recipe: &Recipe) -> bool {
    let paths = ["/etc/os-release", "/usr/lib/os-release"];
    recipe.layers.iter().map(|l| &l.content).chain([&recipe.config.content]).any(|c| {
        c.files.iter().any(|f| f.to.as_deref().is_some_and(|t| paths.contains(&t)))
            || c.symlinks.iter().any(|l| paths.contains(&l.path.as_str()))
    })
}

/// What a lock records as the image's inputs: the plan's hash and the lock's pins.
fn inputs(plan_hash: &Digest, lock: &Lock) -> Digest {
    let pins = Lock { images: Vec::new(), ..lock.clone() };
    let mut h = Hasher::default();
    h.update(plan_hash.to_string().as_bytes());
    h.update(pins.render().as_bytes());
    h.finish().0
}

/// The index digest the lock records for this recipe, when the lock was written for the
/// recipe exactly as it is now (same text, variables, local files and pins): pushing it
/// again needs no build if the registry has it.
pub fn locked_index(session: &Session, recipe: &Recipe, opts: &Options) -> Result<Option<Digest>> {
    let Some(lock) = lock::read(&recipe.lock_path)? else { return Ok(None) };
    let Some(image) = lock.images.first() else { return Ok(None) };
    let archs = select_archs(recipe, opts)?;
    if archs.len() != recipe.archs.len() || image.inputs.is_none() || image.format != lock::IMAGE_FORMAT {
        return Ok(None);
    }
    // On a recipe base: only while the parent, too, gives what this lock says it gave.
    if let Some(parent) = parent::parent_recipe(recipe, opts)? {
        let mut popts = opts.clone();
        popts.archs = Some(archs.clone());
        popts.children.push(recipe.path.clone());
        let parent_index = locked_index(session, &parent, &popts)?;
        if parent_index.is_none() || parent_index != lock.base_image.as_ref().map(|b| b.digest) {
            return Ok(None);
        }
    }
    let context = context_of(recipe, opts)?;
    let epoch = epoch_of(recipe, opts);
    let plan_hash = plan::plan_all(recipe, &session.store, &archs, epoch, LargeFiles::Hash, &context)?.hash;
    Ok((image.inputs == Some(inputs(&plan_hash, &lock))).then_some(image.index))
}

fn select_archs(recipe: &Recipe, opts: &Options) -> Result<Vec<Arch>> {
    let Some(wanted) = &opts.archs else {
        return Ok(recipe.archs.clone());
    };
    for a in wanted {
        if !recipe.archs.contains(a) {
            let archs = recipe.archs.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ");
            return Err(Error::ArchNotInRecipe { arch: *a, recipe: recipe.name.clone(), archs });
        }
    }
    Ok(recipe.archs.iter().copied().filter(|a| wanted.contains(a)).collect())
}
