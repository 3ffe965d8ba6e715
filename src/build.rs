//! The build pipeline for one recipe: plan → fetch → assemble → image.
//!
//! Planning builds every layer's tree once *before* any download (URL files stand in by
//! their pinned digest), so every local mistake — a missing file, an unknown owner, two
//! sources for one path, an unset secret — is reported before the network is touched.
//! After fetching, the trees are built for real, keyed, and packed in parallel; a layer
//! whose key the cache knows is reused without compressing anything. Identical layers of
//! different architectures (typically the configuration layer) are packed once.
//!
//! Local files are read once: a large file the stat cache does not know stands in by its
//! identity while planning and is hashed as it is packed; the keys of its layers and the
//! plan's hash (the lock's `inputs`) are completed with what the packer learned.

use crate::layer::{self, LayerInfo};
use crate::lock::{self, Lock, LockedDownload, LockedImage, LockedLayer, LockedPlatform};
use crate::model::digest::{Digest, Hasher};
use crate::model::path::ImagePath;
use crate::model::platform::Arch;
use crate::oci::{self, Image, Layer, RunConfig};
use crate::recipe::{
    self, Base, Content, Diagnostic, Extract, FileSource, Loc, Owner, Packages, Recipe, SecretSource, vars,
};
use crate::source::archive::{self, Member, MemberKind};
use crate::source::fetch::{self, Download};
use crate::source::{apk, deb, image};
use crate::store::Store;
use crate::template;
use crate::tree::users::{Accounts, User};
use crate::tree::{Content as Bytes, Entry, Kind, Tree, View};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Options {
    /// Build only these architectures (each must be in the recipe). `None`: all of them.
    pub archs: Option<Vec<Arch>>,
    /// Fail instead of changing the lock.
    pub locked: bool,
    /// Worker threads for packing and compression; output never depends on it.
    pub threads: usize,
    /// `SOURCE_DATE_EPOCH`, which overrides the recipe's `epoch`.
    pub source_date_epoch: Option<u64>,
    /// Write the lock file after a build of every architecture (not with `locked`).
    pub write_lock: bool,
    /// With `locked`: also fail when the image differs from the digests the lock records.
    /// `verify` turns this off to report the differences itself.
    pub compare_outputs: bool,
    /// Resolve packages anew even when the lock covers the recipe (`lock --upgrade`).
    pub upgrade: bool,
    /// The recipes being built on this one's image (`base: {recipe}`), to name a cycle.
    pub children: Vec<PathBuf>,
    /// `--context DIR`: the directory local files must be inside, for every recipe
    /// (otherwise the recipe's `context:`, else its own directory).
    pub context: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            archs: None,
            locked: false,
            threads: default_threads(),
            source_date_epoch: None,
            write_lock: true,
            compare_outputs: true,
            upgrade: false,
            children: Vec::new(),
            context: None,
        }
    }
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug)]
pub struct Built {
    pub image: Image,
    pub lock: Lock,
    pub lock_path: PathBuf,
    pub lock_written: bool,
    /// Layers compressed by this build, and layers taken from the cache.
    pub packed: usize,
    pub reused: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Recipe(#[from] Box<Diagnostic>),
    #[error(transparent)]
    Fetch(#[from] fetch::Error),
    #[error(transparent)]
    Archive(#[from] archive::Error),
    #[error("cannot pack layer `{layer}` ({arch})")]
    Pack {
        layer: String,
        arch: Arch,
        #[source]
        source: layer::tar::Error,
    },
    #[error(transparent)]
    Lock(#[from] lock::Error),
    #[error(transparent)]
    Debian(#[from] deb::Error),
    #[error("{0}")]
    Alpine(String),
    #[error(transparent)]
    BaseImage(#[from] image::Error),
    #[error("{0}")]
    Blob(#[source] crate::store::BlobError),
    #[error("cache error")]
    Io(#[from] std::io::Error),
    #[error("`--arch {arch}`: the recipe `{recipe}` builds only {archs}")]
    ArchNotInRecipe { arch: Arch, recipe: String, archs: String },
    #[error("--locked: there is no lock file `{0}`")]
    NoLock(PathBuf),
    #[error("the build context `{0}` is not a directory")]
    Context(PathBuf),
    #[error("recipes build on each other in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error("base recipe `{path}`")]
    BaseRecipe {
        path: PathBuf,
        #[source]
        source: Box<crate::recipe::Error>,
    },
    #[error("--locked: `{path}` does not cover the recipe as it is now:\n{}", changes.iter().map(|c| format!("  - {c}")).collect::<Vec<_>>().join("\n"))]
    Stale { path: PathBuf, changes: Vec<String> },
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NoLock(_) | Error::Stale { .. } => {
                Some("run `assemble lock` (or a build without --locked) and commit the lock file".into())
            }
            Error::Fetch(fetch::Error::Mismatch { .. }) => {
                Some("if the new file is the one you want, update `sha256` in the recipe".into())
            }
            _ => None,
        }
    }
}

impl From<crate::store::BlobError> for Error {
    fn from(e: crate::store::BlobError) -> Error {
        Error::Blob(e)
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Error {
        Error::Recipe(Box::new(d))
    }
}

type Result<T> = std::result::Result<T, Error>;

/// One architecture's named layer trees and runtime config, ready to pack.
type ArchPlan = (Arch, Vec<(String, Tree)>, RunConfig);

pub fn epoch_of(recipe: &Recipe, opts: &Options) -> u64 {
    opts.source_date_epoch.or(recipe.epoch).unwrap_or(0)
}

/// Builds the recipe's image into the store.
/// A damaged cache entry is removed where it is found (see [`crate::store`]); the build then
/// starts again, fetching or making it anew, at most this many times.
const HEALS: usize = 3;

pub fn build(recipe: &Recipe, store: &Store, opts: &Options) -> Result<Built> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.threads.max(1)).build().expect("thread pool");
    let mut healed = 0;
    loop {
        match pool.install(|| build_in_pool(recipe, store, opts)) {
            Err(e) if healed < HEALS => {
                let Some(d) = crate::store::damage::damaged_in(&e) else { return Err(e) };
                healed += 1;
                tracing::warn!("{d}: building `{}` again", recipe.name);
            }
            other => return other,
        }
    }
}

fn build_in_pool(recipe: &Recipe, store: &Store, opts: &Options) -> Result<Built> {
    require_variables(recipe)?;
    let archs = select_archs(recipe, opts)?;
    // A recipe base: its image, built first (from its own lock), stands in as a base image,
    // and its package source is this recipe's unless it names its own.
    let parent = match &recipe.base {
        Base::Image(b) if b.recipe.is_some() => Some(parent_base(recipe, b, store, opts, &archs)?),
        _ => None,
    };
    if let (Some((_, None)), Base::Image(b)) = (&parent, &recipe.base)
        && b.packages.is_none()
        && recipe.layers.iter().any(|l| !l.packages.is_empty())
    {
        return Err(Diagnostic::new(
            b.loc.clone(),
            "layers list `packages`, and the base recipe has no package source",
        )
        .with_hint("add `debian: {…}` or `alpine: {…}` beside `base.recipe`")
        .into());
    }
    let inherited;
    let recipe = match &parent {
        Some((_, Some(source))) => {
            let mut r = recipe.clone();
            if let Base::Image(b) = &mut r.base
                && b.packages.is_none()
            {
                b.packages = Some(Box::new(source.clone()));
            }
            inherited = r;
            &inherited
        }
        _ => recipe,
    };
    let epoch = epoch_of(recipe, opts);
    let lock_path = recipe.lock_path.clone();

    let existing = lock::read(&lock_path)?;
    if opts.locked && existing.is_none() {
        return Err(Error::NoLock(lock_path));
    }

    // Plan: every tree once, with downloads standing in by digest.
    let context = context_of(recipe, opts)?;
    let Plan { mut downloads, hash: mut plan_hash, deferred } =
        plan(recipe, store, &archs, epoch, LargeFiles::Defer, &context)?;

    // An image base: the digest the lock pins for this reference, else what it names now.
    let base_image = match &recipe.base {
        Base::Image(b) => {
            let pinned = existing
                .as_ref()
                .and_then(|l| l.base_image.as_ref())
                .filter(|p| p.reference == b.reference && !opts.upgrade)
                .map(|p| p.digest);
            if opts.locked && pinned.is_none() && parent.is_none() {
                return Err(Error::Stale {
                    path: lock_path,
                    changes: vec![format!("the lock pins no digest for the base image {}", b.reference)],
                });
            }
            let image = match &parent {
                Some((image, _)) => image.clone(),
                None => image::resolve(store, &b.reference, &archs, pinned)?,
            };
            let mut views = BTreeMap::new();
            for (arch, p) in &image.platforms {
                views.insert(*arch, image::view(store, &image.reference, p)?);
            }
            Some((image, views))
        }
        _ => None,
    };
    // An image base's package databases, per architecture (empty without one).
    let base_file = |path: &str| -> BTreeMap<Arch, String> {
        let views = base_image.iter().flat_map(|(_, views)| views);
        views
            .map(|(a, v)| (*a, String::from_utf8_lossy(&v.read(path).ok().flatten().unwrap_or_default()).into_owned()))
            .collect()
    };
    let installed: BTreeMap<Arch, Vec<deb::index::Package>> =
        base_file("/var/lib/dpkg/status").into_iter().map(|(a, status)| (a, deb::installed(&status, a))).collect();

    // Packages: from the lock when it was made for these requests, else resolved anew.
    let (debian, pins) = match recipe.base.packages() {
        Some(Packages::Debian(spec)) => {
            let reuse = if opts.upgrade { None } else { existing.as_ref() };
            let (d, p) = debian_pins(
                recipe,
                spec,
                store,
                &archs,
                &installed,
                LockFacts { existing: reuse, locked: opts.locked, path: &lock_path },
            )?;
            (Some(d), p)
        }
        _ => (None, Vec::new()),
    };
    let apk_pins = match recipe.base.packages() {
        Some(Packages::Alpine(spec)) => {
            let installed = base_file("/lib/apk/db/installed");
            let facts = LockFacts { existing: existing.as_ref(), locked: opts.locked, path: &lock_path };
            alpine_pins(recipe, spec, store, &archs, &installed, facts)?
        }
        _ => Vec::new(),
    };
    for d in deb::downloads(&pins) {
        let arch = pins.iter().find(|p| p.url == d.url).and_then(|p| p.arch.parse().ok()).unwrap_or(Arch::Amd64);
        downloads.push((arch, d));
    }
    let mut wanted = Lock {
        version: lock::VERSION,
        recipe: recipe.name.clone(),
        archs: archs.iter().map(|a| a.name().to_string()).collect(),
        epoch,
        downloads: downloads
            .iter()
            .map(|(arch, d)| LockedDownload { url: d.url.clone(), arch: arch.name().into(), sha256: d.sha256, size: 0 })
            .collect(),
        images: Vec::new(),
        base_image: base_image.as_ref().map(|(b, _)| lock::LockedBaseImage {
            reference: b.reference.clone(),
            digest: b.digest,
            platforms: b
                .platforms
                .iter()
                .map(|(a, p)| lock::LockedBasePlatform { arch: a.name().into(), manifest: p.manifest })
                .collect(),
        }),
        debian,
        packages: pins.clone(),
        apk_packages: apk_pins.clone(),
    };
    wanted.downloads.retain(|d| !pins.iter().any(|p| p.url == d.url));
    wanted.downloads.sort();
    wanted.downloads.dedup();
    if opts.locked {
        let Some(existing) = &existing else {
            return Err(Error::NoLock(lock_path));
        };
        let changes = existing.pin_changes(&wanted);
        if !changes.is_empty() {
            return Err(Error::Stale { path: lock_path, changes });
        }
    }

    let list: Vec<Download> = downloads.into_iter().map(|(_, d)| d).collect();
    fetch::fetch_all(store, &list).map_err(|e| moved_package(e, &pins, wanted.debian.as_ref()))?;
    for d in &mut wanted.downloads {
        d.size = std::fs::metadata(store.blob_path(&d.sha256))?.len();
    }

    // Assemble: real trees per arch, then pack every distinct layer in parallel.
    let mut per_arch: Vec<ArchPlan> = Vec::new();
    for &arch in &archs {
        let arch_pins: Vec<deb::Pin> = pins.iter().filter(|p| p.arch == arch.name()).cloned().collect();
        let arch_apk: Vec<apk::Pin> = apk_pins.iter().filter(|p| p.arch == arch.name()).cloned().collect();
        let mut planner = Planner::new(recipe, arch, store, true, &arch_pins, epoch, &context)?;
        planner.apk_pins = &arch_apk;
        planner.large = LargeFiles::Defer;
        if let Some((image, views)) = &base_image {
            planner.base = Some(&image.platforms[&arch]);
            planner.view = views[&arch].clone();
        }
        let trees = planner.all_trees()?;
        let run = planner.run_config()?;
        per_arch.push((arch, trees, run));
    }
    let mut jobs: BTreeMap<Digest, (String, Arch, &Tree)> = BTreeMap::new();
    let mut keys: Vec<Vec<Digest>> = Vec::new();
    for (arch, trees, _) in &per_arch {
        let mut k = Vec::new();
        for (name, tree) in trees {
            let key = layer_key(tree, epoch, recipe.compression);
            jobs.entry(key).or_insert((name.clone(), *arch, tree));
            k.push(key);
        }
        keys.push(k);
    }
    let files = Arc::new(BuildFiles { store: store.clone(), learned: Default::default() });
    let packed: Vec<(Digest, LayerInfo, bool)> = jobs
        .par_iter()
        .map(|(key, (name, arch, tree))| {
            if let Some(info) = store.layer(key) {
                return Ok((*key, info, false));
            }
            let tmp = store.temp()?;
            let threads = rayon::current_num_threads();
            let (tmp, info) = layer::pack(tree, epoch, recipe.compression, threads, Some(files.clone()), tmp)
                .map_err(|source| Error::Pack { layer: name.clone(), arch: *arch, source })?;
            tmp.as_file().sync_data()?;
            store.commit(tmp, &info.digest, tree.has_secrets())?;
            // A key made with identities standing in for digests is recorded once they are known.
            if !files.stood_in(tree) {
                store.put_layer(key, &info)?;
            }
            tracing::debug!("packed layer `{name}` ({arch}): {} ({} bytes)", info.digest, info.size);
            Ok((*key, info, true))
        })
        .collect::<Result<_>>()?;
    drop(jobs);
    let mut by_key: BTreeMap<Digest, (LayerInfo, bool)> = packed.into_iter().map(|(k, i, p)| (k, (i, p))).collect();
    let packed_count = by_key.values().filter(|(_, p)| *p).count();
    let reused_count = by_key.len() - packed_count;
    // Files hashed as they were packed: their layers' keys, and the plan, are known now.
    let learned = std::mem::take(&mut *files.learned.lock().unwrap_or_else(|e| e.into_inner()));
    if !learned.is_empty() {
        for ((_, trees, _), keys) in per_arch.iter_mut().zip(&mut keys) {
            for ((_, tree), key) in trees.iter_mut().zip(keys.iter_mut()) {
                if learn_digests(tree, &learned) {
                    let info = by_key[key].clone();
                    *key = layer_key(tree, epoch, recipe.compression);
                    // Architectures sharing the layer share the key: recorded once.
                    if !by_key.contains_key(key) {
                        store.put_layer(key, &info.0)?;
                        by_key.insert(*key, info);
                    }
                }
            }
        }
    }
    if deferred {
        plan_hash = plan(recipe, store, &archs, epoch, LargeFiles::Learned(&learned), &context)?.hash;
    }

    let mut platforms = Vec::new();
    for ((arch, trees, run), keys) in per_arch.iter().zip(&keys) {
        // An image base's layers come first, exactly as the registry has them.
        let base_layers = base_image.iter().flat_map(|(image, _)| image.platforms[arch].layers.iter()).map(|info| {
            Layer { path: store.blob_path(&info.digest), info: info.clone(), name: "base".into(), secret: false }
        });
        let layers = base_layers
            .chain(trees.iter().zip(keys).map(|((name, tree), key)| {
                let info = by_key[key].0.clone();
                Layer { path: store.blob_path(&info.digest), info, name: name.clone(), secret: tree.has_secrets() }
            }))
            .collect();
        platforms.push(oci::platform_image(*arch, epoch, run, layers, &annotations(recipe, epoch)));
    }
    platforms.sort_by_key(|p| p.arch);
    let index = oci::index(&platforms, &annotations(recipe, epoch));
    // Configs, manifests and the index are kept too, so `verify` can later show what changed.
    for doc in platforms.iter().flat_map(|p| [&p.config, &p.manifest]).chain([&index]) {
        store.put_bytes(&doc.bytes, false)?;
    }
    let image = Image { name: recipe.name.clone(), tags: recipe.tags.clone(), index, platforms };

    wanted.images = vec![LockedImage {
        inputs: None,
        tags: recipe.tags.clone(),
        index: image.index.digest,
        platforms: image
            .platforms
            .iter()
            .map(|p| LockedPlatform {
                arch: p.arch.name().into(),
                manifest: p.manifest.digest,
                config: p.config.digest,
                layers: p
                    .layers
                    .iter()
                    .map(|l| LockedLayer {
                        name: l.name.clone(),
                        diff_id: l.info.diff_id,
                        digest: l.info.digest,
                        size: l.info.size,
                    })
                    .collect(),
            })
            .collect(),
    }];
    let full = archs.len() == recipe.archs.len();
    wanted.images[0].inputs = Some(inputs(&plan_hash, &wanted));
    // Some architectures only: each built platform must be the one the lock records.
    if opts.locked
        && opts.compare_outputs
        && !full
        && let Some(existing) = &existing
    {
        let recorded = existing.images.first().map(|i| i.platforms.as_slice()).unwrap_or_default();
        for p in &wanted.images[0].platforms {
            let was = recorded.iter().find(|r| r.arch == p.arch);
            if was.map(|r| r.manifest) != Some(p.manifest) {
                let old = was.map_or("nothing".to_string(), |r| r.manifest.to_string());
                return Err(Error::Stale {
                    path: lock_path,
                    changes: vec![format!(
                        "the build gives {} manifest {}, the lock records {old} (run `assemble verify` to see which layer differs)",
                        p.arch, p.manifest
                    )],
                });
            }
        }
    }
    if opts.locked
        && opts.compare_outputs
        && full
        && let Some(existing) = &existing
        && outputs(&existing.images) != outputs(&wanted.images)
    {
        let old = existing.images.first().map_or("nothing".to_string(), |i| i.index.to_string());
        return Err(Error::Stale {
            path: lock_path,
            changes: vec![format!(
                "the build gives index {}, the lock records {old} (run `assemble verify` to see which layer differs)",
                image.index.digest
            )],
        });
    }
    let lock_written = if opts.write_lock && !opts.locked && full { wanted.write(&lock_path)? } else { false };
    BUILT.lock().unwrap_or_else(|e| e.into_inner()).insert(built_key(recipe, store, &archs, opts), image.clone());
    Ok(Built { image, lock: wanted, lock_path, lock_written, packed: packed_count, reused: reused_count })
}

/// What a build produced, without the inputs hash (which older locks lack).
fn outputs(images: &[LockedImage]) -> Vec<LockedImage> {
    images.iter().map(|i| LockedImage { inputs: None, ..i.clone() }).collect()
}

/// Variables the recipe declares without a default must be given before anything is built.
pub fn require_variables(recipe: &Recipe) -> Result<()> {
    let Some((_, loc)) = recipe.unset_variables.first() else { return Ok(()) };
    let names: Vec<&str> = recipe.unset_variables.iter().map(|(n, _)| n.as_str()).collect();
    let what = if names.len() == 1 { "variable" } else { "variables" };
    Err(Diagnostic::new(
        loc.clone(),
        format!("`{}` needs the {what} {} (declared without a default)", recipe.name, names.join(", ")),
    )
    .with_hint(format!("give each with `--var NAME=VALUE`, e.g. `--var {}=…`", names[0]))
    .into())
}

/// What [`plan`] finds: the downloads and a hash of everything the plan says (the recipe
/// text, its variables and every planned layer's key), which [`inputs`] completes with the pins.
struct Plan {
    downloads: Vec<(Arch, Download)>,
    hash: Digest,
    /// Whether a large unhashed host file stood in by its identity (then `hash` is not the
    /// inputs' hash, which needs every file's digest).
    deferred: bool,
}

/// How the planner gets the digests of large host files the stat cache does not know.
#[derive(Clone, Copy)]
enum LargeFiles<'a> {
    /// Hashed on the spot.
    Hash,
    /// Left unhashed, standing in by their identity, to be hashed once as they are packed.
    Defer,
    /// As the packer learned them (identity → digest), else hashed.
    Learned(&'a BTreeMap<Digest, Digest>),
}

/// The plan phase: every architecture's trees with downloads standing in by digest.
fn plan(
    recipe: &Recipe,
    store: &Store,
    archs: &[Arch],
    epoch: u64,
    large: LargeFiles<'_>,
    context: &Path,
) -> Result<Plan> {
    require_variables(recipe)?;
    let mut deferred = false;
    let mut downloads = Vec::new();
    let mut h = Hasher::default();
    h.update(b"assemble-inputs-v1\0");
    h.update(&std::fs::read(&recipe.path)?);
    h.update(format!("\0{:?}\0{:?}\0{epoch}\0", recipe.variables, recipe.tags).as_bytes());
    for &arch in archs {
        let mut planner = Planner::new(recipe, arch, store, false, &[], epoch, context)?;
        planner.large = large;
        for (name, tree) in planner.all_trees()? {
            h.update(format!("{arch}\0{name}\0{}\n", layer_key(&tree, epoch, recipe.compression)).as_bytes());
        }
        deferred |= planner.deferred.get();
        downloads.append(&mut planner.downloads);
    }
    Ok(Plan { downloads, hash: h.finish().0, deferred })
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
pub fn locked_index(recipe: &Recipe, store: &Store, opts: &Options) -> Result<Option<Digest>> {
    let Some(lock) = lock::read(&recipe.lock_path)? else { return Ok(None) };
    let Some(image) = lock.images.first() else { return Ok(None) };
    let archs = select_archs(recipe, opts)?;
    if archs.len() != recipe.archs.len() || image.inputs.is_none() {
        return Ok(None);
    }
    // On a recipe base: only while the parent, too, gives what this lock says it gave.
    if let Base::Image(b) = &recipe.base
        && let Some(path) = &b.recipe
    {
        if opts.children.contains(path) {
            return Ok(None);
        }
        let parent = crate::recipe::load_all_with(path, &recipe.given_variables)
            .map_err(|e| Error::BaseRecipe { path: path.clone(), source: Box::new(e) })?
            .swap_remove(0);
        let mut popts = opts.clone();
        popts.archs = Some(archs.clone());
        popts.children.push(recipe.path.clone());
        let parent_index = locked_index(&parent, store, &popts)?;
        if parent_index.is_none() || parent_index != lock.base_image.as_ref().map(|b| b.digest) {
            return Ok(None);
        }
    }
    let context = context_of(recipe, opts)?;
    let plan_hash = plan(recipe, store, &archs, epoch_of(recipe, opts), LargeFiles::Hash, &context)?.hash;
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

fn annotations(recipe: &Recipe, epoch: u64) -> BTreeMap<String, String> {
    let mut a = recipe.annotations.clone();
    a.insert(oci::CREATED.into(), oci::rfc3339(epoch));
    a
}

/// A hash of everything that determines a layer's bytes.
pub fn layer_key(tree: &Tree, epoch: u64, c: recipe::Compression) -> Digest {
    let mut h = Hasher::default();
    h.update(format!("assemble-layer-v1\0{:?}\0{}\0{epoch}\0", c.algorithm, c.level).as_bytes());
    for (path, e) in tree.iter() {
        let kind = match &e.kind {
            Kind::Dir => "d".to_string(),
            Kind::File { digest, size, .. } => format!("f{digest}:{size}"),
            Kind::Symlink(t) => format!("l{t}"),
            Kind::Hardlink(t) => format!("h{t}"),
        };
        h.update(format!("{path}\0{kind}\0{:o}:{}:{}:{:?}\0", e.mode, e.uid, e.gid, e.mtime).as_bytes());
        for (k, v) in &e.xattrs {
            h.update(k.as_bytes());
            h.update(&[0]);
            h.update(v);
            h.update(&[0]);
        }
        h.update(b"\n");
    }
    h.finish().0
}

/// Builds the trees of one architecture.
struct Planner<'a> {
    recipe: &'a Recipe,
    arch: Arch,
    store: &'a Store,
    vars: BTreeMap<String, String>,
    /// Whether downloads are in the store (else URL files stand in by digest).
    fetched: bool,
    downloads: Vec<(Arch, Download)>,
    /// The base's accounts plus the recipe's, for resolving `owner:` names.
    accounts: Accounts,
    view: View,
    /// This architecture's pinned packages (all layers).
    pins: &'a [deb::Pin],
    apk_pins: &'a [apk::Pin],
    /// Owner names may come from a base not unpacked yet: accept them while planning.
    lenient: bool,
    epoch: u64,
    /// An image base's platform (`view` then starts as the merged view of its layers).
    base: Option<&'a image::Platform>,
    /// Large host files the stat cache does not know: see [`LargeFiles`].
    large: LargeFiles<'a>,
    /// Whether any was left unhashed.
    deferred: std::cell::Cell<bool>,
    /// The build context (canonical): local files must be inside it.
    context: PathBuf,
}

impl<'a> Planner<'a> {
    fn new(
        recipe: &'a Recipe,
        arch: Arch,
        store: &'a Store,
        fetched: bool,
        pins: &'a [deb::Pin],
        epoch: u64,
        context: &Path,
    ) -> Result<Self> {
        let mut vars = recipe.variables.clone();
        vars.insert("name".into(), recipe.name.clone());
        vars.insert("arch".into(), arch.name().into());
        vars.insert("arch_uname".into(), arch.uname().into());
        vars.insert("os".into(), "linux".into());
        vars.insert("variant".into(), arch.variant().unwrap_or("").into());
        // Accounts of a scratch base: none below the recipe's own. A package base's are read
        // from its layer once it is built.
        let mut accounts = Accounts::default();
        accounts.ensure_root();
        let lenient = !fetched && !matches!(recipe.base, Base::Scratch);
        // An image base's accounts come with its view (`all_trees`), the recipe's on top.
        if !lenient && !matches!(recipe.base, Base::Image(_)) {
            add_recipe_accounts(&mut accounts, recipe)?;
        }
        Ok(Planner {
            recipe,
            arch,
            store,
            vars,
            fetched,
            downloads: Vec::new(),
            accounts,
            view: View::default(),
            pins,
            apk_pins: &[],
            lenient,
            epoch,
            base: None,
            large: LargeFiles::Hash,
            deferred: Default::default(),
            context: context.to_path_buf(),
        })
    }

    /// The non-empty layers in order: the base, application layers, then the
    /// configuration layer.
    fn all_trees(&mut self) -> Result<Vec<(String, Tree)>> {
        let mut out = Vec::new();
        if self.base.is_some() {
            let mut accounts = self.view_accounts()?;
            accounts.ensure_root();
            add_recipe_accounts(&mut accounts, self.recipe)?;
            self.accounts = accounts;
        }
        if matches!(self.recipe.base, Base::Debian(_) | Base::Alpine(_)) {
            let mut tree = Tree::default();
            match &self.recipe.base {
                Base::Debian(spec) => self.packages_into("base", spec, &mut tree, true)?,
                Base::Alpine(spec) => self.apks_into("base", spec, &mut tree)?,
                Base::Scratch | Base::Image(_) => {}
            }
            self.finish_tree(&mut tree, &self.recipe.loc)?;
            self.view.apply(&tree);
            if self.fetched {
                let mut accounts = self.view_accounts()?;
                accounts.ensure_root();
                add_recipe_accounts(&mut accounts, self.recipe)?;
                self.accounts = accounts;
            }
            if !tree.is_empty() {
                out.push(("base".to_string(), tree));
            }
        }
        for spec in &self.recipe.layers {
            let mut tree = Tree::default();
            match self.recipe.base.packages() {
                Some(Packages::Debian(deb_spec)) => self.packages_into(&spec.name, deb_spec, &mut tree, false)?,
                Some(Packages::Alpine(apk_spec)) => self.apks_into(&spec.name, apk_spec, &mut tree)?,
                None => {}
            }
            self.content(&spec.content, &mut tree)?;
            self.finish_tree(&mut tree, &spec.loc)?;
            self.view.apply(&tree);
            if !tree.is_empty() {
                out.push((spec.name.clone(), tree));
            }
        }
        let mut tree = self.config_tree()?;
        self.finish_tree(&mut tree, &self.recipe.loc)?;
        self.view.apply(&tree);
        if !tree.is_empty() {
            out.push(("config".to_string(), tree));
        }
        Ok(out)
    }

    fn finish_tree(&self, tree: &mut Tree, loc: &Loc) -> Result<()> {
        tree.add_parents(&self.view);
        for (path, entry) in tree.iter() {
            if entry.implicit
                && let Some(below) = self.view.get(path).filter(|e| !e.is_dir())
            {
                return Err(Diagnostic::new(
                    loc.clone(),
                    format!(
                        "`{path}` is {} in a lower layer ({}), so nothing can be placed below it",
                        describe(below),
                        below.origin
                    ),
                )
                .into());
            }
            // Every ancestor is in the tree now (`add_parents`), so the parent alone tells:
            // looking at every ancestor of every path made deep paths cost cubic time.
            if let Some(parent) = path.parent()
                && let Some(e) = tree.get(&parent)
                && !e.is_dir()
            {
                return Err(Diagnostic::new(
                    loc.clone(),
                    format!("`{path}` would be placed below `{parent}`, which is not a directory ({})", e.origin),
                )
                .into());
            }
            if let Kind::Hardlink(target) = &entry.kind {
                check_hardlink(tree, path, target, entry, loc)?;
            }
        }
        normalize_hardlinks(tree);
        Ok(())
    }

    fn interp(&self, s: &str, loc: &Loc) -> Result<String> {
        vars::interpolate(s, &self.vars).map_err(|e| Diagnostic::new(loc.clone(), e).into())
    }

    /// Lays this layer's pinned packages into `tree`, with the dpkg database and the
    /// script-free fix-ups (see `source::deb::install`).
    fn packages_into(
        &mut self,
        layer: &str,
        spec: &crate::model::spec::DebianSpec,
        tree: &mut Tree,
        first: bool,
    ) -> Result<()> {
        let pins: Vec<&deb::Pin> = self.pins.iter().filter(|p| p.layer == layer).collect();
        if pins.is_empty() || !self.fetched {
            return Ok(());
        }
        let debs: Vec<deb::unpack::Deb> = pins
            .par_iter()
            .map(|p| deb::unpacked(self.store, p, self.recipe.unpack_limit))
            .collect::<std::result::Result<_, _>>()?;
        let pkgs: Vec<deb::install::Pkg<'_>> = pins
            .iter()
            .zip(&debs)
            .map(|(p, d)| deb::install::Pkg {
                name: &p.name,
                arch: &p.architecture,
                multi_arch_same: p.multi_arch_same,
                deb: d,
            })
            .collect();
        deb::install::lay_files(self.store, &pkgs, tree, spec.merged_usr, first).map_err(deb::Error::from)?;
        let below_status = self.view.read("/var/lib/dpkg/status")?.map(|b| String::from_utf8_lossy(&b).into_owned());
        deb::install::dpkg_database(self.store, below_status.as_deref(), &pkgs, tree).map_err(deb::Error::from)?;
        let mut view = self.view.clone();
        view.apply(tree);
        if self.view.read("/etc/passwd")?.is_none() {
            deb::install::base_passwd(&view, tree, self.epoch)?;
        }
        let certs = debs.iter().any(|d| d.entries.iter().any(|e| e.path.starts_with("usr/share/ca-certificates/")));
        if certs || pins.iter().any(|p| p.name == "ca-certificates") {
            deb::install::ca_bundle(&view, tree)?;
        }
        let alts: Vec<deb::install::Alternative> = debs
            .iter()
            .filter_map(|d| d.control.get("postinst"))
            .flat_map(|s| deb::install::alternatives_in(&String::from_utf8_lossy(s)))
            .collect();
        view.apply(tree);
        deb::install::alternatives(&view, &alts, tree, spec.merged_usr, &spec.alternatives);
        Ok(())
    }

    /// Lays this layer's pinned Alpine packages into `tree`, each checked again against its
    /// pin (control checksum, data hash, signature), with apk's database and busybox links.
    fn apks_into(&mut self, layer: &str, spec: &crate::model::spec::AlpineSpec, tree: &mut Tree) -> Result<()> {
        let pins: Vec<&apk::Pin> = self.apk_pins.iter().filter(|p| p.layer == layer).collect();
        if pins.is_empty() || !self.fetched {
            return Ok(());
        }
        let key_paths: Vec<&Path> = spec.keys.iter().map(PathBuf::as_path).collect();
        let keys = apk::Keys::load(&key_paths).map_err(|e| Error::Alpine(e.to_string()))?;
        let mut packages = Vec::new();
        for p in &pins {
            let sha: Digest = p.sha256.parse().map_err(|e: String| Error::Alpine(e))?;
            let bytes = std::fs::read(self.store.verify_blob(&sha)?)?;
            let record = apk::Record {
                fields: vec![
                    ('P', p.name.clone()),
                    ('V', p.version.clone()),
                    ('C', p.checksum.clone()),
                    ('I', p.installed_size.to_string()),
                ],
            };
            let file = format!("{}-{}.apk", p.name, p.version);
            let pkg = apk::read_package(&bytes, &record, &keys, &file).map_err(|e| Error::Alpine(e.to_string()))?;
            let entries =
                apk::install::entries(self.store, &pkg.data, &file).map_err(|e| Error::Alpine(e.to_string()))?;
            packages.push((pkg, entries));
        }
        let pkgs: Vec<apk::install::Pkg<'_>> = pins
            .iter()
            .zip(&packages)
            .map(|(p, (pkg, entries))| apk::install::Pkg {
                name: &p.name,
                version: &p.version,
                checksum: &p.checksum,
                file_size: p.size,
                package: pkg,
                entries: entries.clone(),
            })
            .collect();
        apk::install::lay(self.store, &pkgs, tree).map_err(|e| Error::Alpine(e.to_string()))?;
        let below = self.view.read("/lib/apk/db/installed")?.map(|b| String::from_utf8_lossy(&b).into_owned());
        // The world file names what was asked for: the layers' below (an image base's too) and these.
        let mut world: Vec<String> = spec.packages.clone();
        if let Some(w) = self.view.read("/etc/apk/world")? {
            world.extend(String::from_utf8_lossy(&w).split_whitespace().map(str::to_string));
        }
        for l in &self.recipe.layers {
            world.extend(l.packages.iter().cloned());
            if l.name == layer {
                break;
            }
        }
        let keys_bytes: Vec<(String, Vec<u8>)> = spec
            .keys
            .iter()
            .filter_map(|k| Some((k.file_name()?.to_string_lossy().into_owned(), std::fs::read(k).ok()?)))
            .collect();
        let repos: Vec<String> =
            spec.repositories.iter().map(|(t, l)| t.as_ref().map_or(l.clone(), |t| format!("@{t} {l}"))).collect();
        apk::install::database(below.as_deref(), &pkgs, &world, apk::arch_name(self.arch), &repos, &keys_bytes, tree);
        let mut view = self.view.clone();
        view.apply(tree);
        apk::install::busybox_links(&view, tree)?;
        Ok(())
    }

    fn owner(&self, o: Option<&Owner>) -> Result<(u32, u32)> {
        if self.lenient {
            return Ok(o.and_then(|o| self.accounts.resolve(&o.user, o.group.as_ref()).ok()).unwrap_or((0, 0)));
        }
        match o {
            None => Ok((0, 0)),
            Some(o) => self.accounts.resolve(&o.user, o.group.as_ref()).map_err(|e| {
                Diagnostic::new(o.loc.clone(), format!("bad owner: {e}"))
                    .with_hint("declare it under `config.users` / `config.groups`, or give a number")
                    .into()
            }),
        }
    }

    /// `rel` (relative to the recipe's directory) on this machine: it must exist and lie
    /// inside the build context. With `follow`, every symlink is resolved (the path is read
    /// as what it points to); without, only its parent is, and a final symlink is copied
    /// as a link, never followed.
    fn host_path(&self, rel: &str, loc: &Loc, what: &str, follow: bool) -> Result<PathBuf> {
        let p = self.recipe.dir.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            return Err(Diagnostic::new(
                loc.clone(),
                format!("{what} `{rel}` does not exist (looked for `{}`)", p.display()),
            )
            .with_hint("relative paths are relative to the recipe's directory")
            .into());
        };
        let unreadable =
            |e: std::io::Error| Diagnostic::new(loc.clone(), format!("{what} `{rel}` cannot be resolved: {e}"));
        let resolved = if follow || !meta.file_type().is_symlink() {
            fs_err::canonicalize(&p).map_err(unreadable)?
        } else {
            let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let name = p.file_name().ok_or_else(|| unreadable(std::io::Error::other("it has no file name")))?;
            fs_err::canonicalize(parent).map_err(unreadable)?.join(name)
        };
        if !resolved.starts_with(&self.context) {
            return Err(Diagnostic::new(
                loc.clone(),
                format!(
                    "{what} `{rel}` is outside the build context `{}` (it resolves to `{}`)",
                    self.context.display(),
                    resolved.display()
                ),
            )
            .with_hint("local files come from the recipe's directory; widen the context on purpose with `context:` in the recipe or `--context DIR`")
            .into());
        }
        Ok(resolved)
    }

    fn content(&mut self, c: &Content, tree: &mut Tree) -> Result<()> {
        for f in &c.files {
            self.file(f, tree)?;
        }
        for t in &c.trees {
            let rel = self.interp(&t.path, &t.loc)?;
            let host = self.host_path(&rel, &t.loc, "tree", true)?;
            if !host.is_dir() {
                return Err(Diagnostic::new(t.loc.clone(), format!("tree `{rel}` is not a directory")).into());
            }
            let owner = self.owner(t.owner.as_ref())?;
            let to = image_path(&t.to);
            self.host_dir(&host, to.as_ref(), None, owner, &format!("{} (tree `{rel}`)", t.loc), tree)?;
        }
        for s in &c.symlinks {
            let path = self.dest(&s.path, &s.loc)?;
            let target = self.interp(&s.target, &s.loc)?;
            insert(tree, path, Entry::symlink(target, origin(&s.loc, "symlink")), &s.loc)?;
        }
        for d in &c.dirs {
            let path = self.dest(&d.path, &d.loc)?;
            let (uid, gid) = self.owner(d.owner.as_ref())?;
            insert(tree, path, Entry::dir(d.mode.unwrap_or(0o755), uid, gid, origin(&d.loc, "dirs")), &d.loc)?;
        }
        Ok(())
    }

    fn dest(&self, p: &str, loc: &Loc) -> Result<ImagePath> {
        let s = self.interp(p, loc)?;
        ImagePath::new(&s).ok_or_else(|| {
            use crate::model::path::{NAME_MAX, PATH_MAX};
            let why = if s.len() > PATH_MAX || s.split('/').any(|c| c.len() > NAME_MAX) {
                format!(
                    " (longer than PATH_MAX ({PATH_MAX} bytes) or with a component longer than NAME_MAX ({NAME_MAX}))"
                )
            } else {
                String::new()
            };
            Diagnostic::new(loc.clone(), format!("`{s}` is not a path a file can have in the image{why}")).into()
        })
    }

    fn file(&mut self, f: &recipe::FileSpec, tree: &mut Tree) -> Result<()> {
        let (uid, gid) = self.owner(f.owner.as_ref())?;
        let to = f.to.as_deref().map(|t| self.interp(t, &f.loc)).transpose()?;
        match &f.source {
            FileSource::Local(per) => {
                let Some(rel) = per.get(self.arch) else {
                    return Ok(());
                };
                let rel = self.interp(rel, &f.loc)?;
                // A symlink given as a plain file is copied as a link; anything read through
                // (an archive, a directory) is resolved first.
                let link = f.extract == Extract::No
                    && std::fs::symlink_metadata(self.recipe.dir.join(&rel)).is_ok_and(|m| m.file_type().is_symlink())
                    && !self.recipe.dir.join(&rel).is_dir();
                let host = self.host_path(&rel, &f.loc, "local file", !link)?;
                let what = format!("{} (`{rel}`)", f.loc);
                if f.extract != Extract::No {
                    let kind = match f.extract {
                        Extract::As(k) => k,
                        _ => archive::detect(&rel, &host).ok_or_else(|| archive::Error::Unknown(rel.clone()))?,
                    };
                    let members = archive::unpack(self.store, &host, kind, &rel, self.recipe.unpack_limit)?;
                    return self.members(&members, f, to.as_deref().unwrap_or("/"), (uid, gid), &what, tree);
                }
                let to = to.expect("validated: non-extract files have `to`");
                if host.is_dir() {
                    return self.host_dir(&host, image_path(&to).as_ref(), f.mode, (uid, gid), &what, tree);
                }
                let dest = self.dest(&place(&to, &rel), &f.loc)?;
                self.host_file(&host, dest, f.mode, (uid, gid), &what, tree, &f.loc)
            }
            FileSource::Url { url, sha256 } => {
                let (Some(url), Some(sha)) = (url.get(self.arch), sha256.get(self.arch)) else {
                    return Ok(());
                };
                let url = self.interp(url, &f.loc)?;
                self.downloads
                    .push((self.arch, Download { url: url.clone(), sha256: *sha, origin: f.loc.to_string() }));
                let what = format!("{} (`{}`)", f.loc, crate::model::text::redact(&url));
                let blob = self.store.blob_path(sha);
                if f.extract != Extract::No {
                    if !self.fetched {
                        return Ok(());
                    }
                    let name = url.split(['?', '#']).next().unwrap_or(&url);
                    let kind = match f.extract {
                        Extract::As(k) => k,
                        _ => archive::detect(name, &blob)
                            .ok_or_else(|| archive::Error::Unknown(crate::model::text::redact(&url)))?,
                    };
                    let members = self.unpack_cached(sha, kind, &url)?;
                    return self.members(&members, f, to.as_deref().unwrap_or("/"), (uid, gid), &what, tree);
                }
                let to = to.expect("validated: non-extract files have `to`");
                let file_name = url.split(['?', '#']).next().unwrap_or(&url).rsplit('/').next().unwrap_or("download");
                let dest = self.dest(&place(&to, file_name), &f.loc)?;
                let size = if self.fetched { std::fs::metadata(&blob)?.len() } else { 0 };
                let mut e = Entry::file(Bytes::Stored(blob), size, *sha, f.mode.unwrap_or(0o644), Arc::from(what));
                (e.uid, e.gid) = (uid, gid);
                insert(tree, dest, e, &f.loc)
            }
        }
    }

    /// Archive members from the cache's listing when this archive was unpacked before.
    fn unpack_cached(&self, sha: &Digest, kind: recipe::ArchiveKind, url: &str) -> Result<Vec<Member>> {
        let listing = self.store.root().join("layers").join(format!("{}-{kind:?}.members.json", sha.hex()));
        if let Ok(bytes) = std::fs::read(&listing)
            && let Ok(members) = serde_json::from_slice::<Vec<Member>>(&bytes)
        {
            let complete = members.iter().all(|m| match &m.kind {
                MemberKind::File { digest, .. } => self.store.has_blob(digest),
                _ => true,
            });
            if complete {
                return Ok(members);
            }
        }
        // The download in the cache must still be what its pin names.
        let blob = self.store.verify_blob(sha)?;
        let members =
            archive::unpack(self.store, &blob, kind, &crate::model::text::redact(url), self.recipe.unpack_limit)?;
        let mut tmp = self.store.temp()?;
        std::io::Write::write_all(&mut tmp, &serde_json::to_vec(&members).expect("serialisable"))?;
        tmp.persist(&listing).map_err(|e| e.error)?;
        Ok(members)
    }

    fn members(
        &self,
        members: &[Member],
        f: &recipe::FileSpec,
        to: &str,
        owner: (u32, u32),
        what: &str,
        tree: &mut Tree,
    ) -> Result<()> {
        let strip = f.strip_components as usize;
        let stripped = |p: &str| -> Option<String> {
            let parts: Vec<&str> = p.split('/').collect();
            (parts.len() > strip).then(|| parts[strip..].join("/"))
        };
        let root = image_path(to);
        let at = |rel: &str| -> Option<ImagePath> {
            match &root {
                Some(r) => r.join(rel),
                None => ImagePath::new(rel),
            }
        };
        for m in members {
            let Some(rel) = stripped(&m.path) else {
                continue;
            };
            let Some(path) = at(&rel) else { continue };
            let origin: Arc<str> = Arc::from(format!("{what}: {}", m.path));
            let link = match &m.kind {
                MemberKind::Hardlink(t) => Some(stripped(t).and_then(|t| at(&t)).ok_or_else(|| {
                    Diagnostic::new(
                        f.loc.clone(),
                        format!("{what}: `{}` is a hard link to `{t}`, which `strip_components` leaves out", m.path),
                    )
                })?),
                _ => None,
            };
            let mut e =
                Entry::of_member(m, |d| self.store.blob_path(d), link, origin).expect("a hard link has its target");
            if let (MemberKind::File { .. }, Some(mode)) = (&m.kind, f.mode) {
                e.mode = mode;
            }
            (e.uid, e.gid) = owner;
            insert(tree, path, e, &f.loc)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn host_file(
        &self,
        host: &Path,
        dest: ImagePath,
        mode: Option<u32>,
        owner: (u32, u32),
        what: &str,
        tree: &mut Tree,
        loc: &Loc,
    ) -> Result<()> {
        let meta = std::fs::symlink_metadata(host)?;
        let origin: Arc<str> = Arc::from(what);
        let mut e = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(host)?;
            Entry::symlink(target.to_string_lossy().into_owned(), origin)
        } else if meta.is_file() {
            let (digest, size) = self.host_digest(host, &meta, &dest, tree)?;
            let default = if meta.permissions().mode() & 0o100 != 0 { 0o755 } else { 0o644 };
            Entry::file(Bytes::Host(host.to_path_buf()), size, digest, mode.unwrap_or(default), origin)
        } else {
            return Err(Diagnostic::new(
                loc.clone(),
                format!("`{}` is not a regular file, directory or symlink", host.display()),
            )
            .into());
        };
        (e.uid, e.gid) = owner;
        insert(tree, dest, e, loc)
    }

    /// A host file's content digest and size; or, for a large file the stat cache does not
    /// know, what [`Planner::large`] says. A file is never deferred where the tree has another
    /// entry, so equal files from two sources still agree.
    fn host_digest(
        &self,
        host: &Path,
        meta: &std::fs::Metadata,
        dest: &ImagePath,
        tree: &mut Tree,
    ) -> Result<(Digest, u64)> {
        if meta.len() < DEFER_HASH || matches!(self.large, LargeFiles::Hash) {
            return Ok(self.store.file_digest(host)?);
        }
        let id = self.store.identity(host)?;
        if let Some(d) = self.store.remembered(&id) {
            return Ok((d, id.size));
        }
        match self.large {
            LargeFiles::Learned(learned) => {
                if let Some(d) = learned.get(&id.digest) {
                    return Ok((*d, id.size));
                }
            }
            LargeFiles::Defer => match tree.get(dest) {
                None => {
                    tracing::debug!("{} is hashed as it is packed", host.display());
                    self.deferred.set(true);
                    return Ok((id.digest, id.size));
                }
                // Another source's deferred file at the same path: hashed after all.
                Some(Entry { kind: Kind::File { content: Bytes::Host(other), digest, .. }, .. })
                    if self.store.identity(other)?.digest == *digest =>
                {
                    let other = other.clone();
                    let (d, _) = self.store.file_digest(&other)?;
                    if let Some(Entry { kind: Kind::File { digest, .. }, .. }) = tree.get_mut(dest) {
                        *digest = d;
                    }
                }
                Some(_) => {}
            },
            LargeFiles::Hash => {}
        }
        Ok(self.store.file_digest(host)?)
    }

    /// Copies a host directory: files keep only their executable bit (0755 or 0644, or
    /// `mode` when given), directories are 0755, symlinks are kept as symlinks.
    fn host_dir(
        &self,
        host: &Path,
        to: Option<&ImagePath>,
        mode: Option<u32>,
        owner: (u32, u32),
        what: &str,
        tree: &mut Tree,
    ) -> Result<()> {
        let mut names: Vec<_> =
            std::fs::read_dir(host)?.map(|e| e.map(|e| e.file_name())).collect::<std::io::Result<_>>()?;
        names.sort();
        let loc = &self.recipe.loc;
        for name in names {
            let name_s = name.to_string_lossy().into_owned();
            let child = host.join(&name);
            let Some(dest) = (match to {
                Some(t) => t.join(&name_s),
                None => ImagePath::new(&name_s),
            }) else {
                let at = to.map_or(String::new(), |t| t.to_string());
                return Err(Diagnostic::new(
                    loc.clone(),
                    format!(
                        "{what}: `{name_s}` would be placed at `{at}/{name_s}`, which is longer than PATH_MAX ({} bytes) or has a component longer than NAME_MAX ({})",
                        crate::model::path::PATH_MAX,
                        crate::model::path::NAME_MAX
                    ),
                )
                .into());
            };
            let child_what = format!("{what}: {name_s}");
            let meta = std::fs::symlink_metadata(&child)?;
            if meta.is_dir() {
                let mut e = Entry::dir(0o755, owner.0, owner.1, Arc::from(child_what.as_str()));
                e.implicit = false;
                insert(tree, dest.clone(), e, loc)?;
                self.host_dir(&child, Some(&dest), mode, owner, &child_what, tree)?;
            } else {
                self.host_file(&child, dest, mode, owner, &child_what, tree, loc)?;
            }
        }
        Ok(())
    }

    fn config_tree(&mut self) -> Result<Tree> {
        let c = &self.recipe.config;
        let mut tree = Tree::default();
        self.content(&c.content, &mut tree)?;
        for t in &c.templates {
            let rel = self.interp(&t.src, &t.loc)?;
            let host = self.host_path(&rel, &t.loc, "template", true)?;
            let text = std::fs::read_to_string(&host)?;
            let rendered = template::render(&rel, &text, &self.vars, &self.recipe.tags)
                .map_err(|e| Diagnostic::new(t.loc.clone(), e.to_string()))?;
            let (uid, gid) = self.owner(t.owner.as_ref())?;
            let mut e = Entry::bytes(
                rendered.into_bytes(),
                t.mode.unwrap_or(0o644),
                origin(&t.loc, &format!("template `{rel}`")),
            );
            (e.uid, e.gid) = (uid, gid);
            insert(&mut tree, self.dest(&t.to, &t.loc)?, e, &t.loc)?;
        }
        for s in &c.secrets {
            let bytes = match &s.source {
                SecretSource::Env(var) => std::env::var_os(var)
                    .ok_or_else(|| {
                        Diagnostic::new(
                            s.loc.clone(),
                            format!("secret for `{}` needs the environment variable `{var}`, which is not set", s.to),
                        )
                    })?
                    .into_encoded_bytes(),
                SecretSource::File(p) => {
                    let rel = self.interp(p, &s.loc)?;
                    std::fs::read(self.host_path(&rel, &s.loc, "secret file", true)?)?
                }
            };
            let (uid, gid) = self.owner(s.owner.as_ref())?;
            let mut e = Entry::bytes(bytes, s.mode, origin(&s.loc, "secret"));
            (e.uid, e.gid, e.secret) = (uid, gid, true);
            insert(&mut tree, self.dest(&s.to, &s.loc)?, e, &s.loc)?;
        }
        if !c.users.is_empty() || !c.groups.is_empty() {
            self.account_files(&mut tree)?;
        }
        Ok(tree)
    }

    /// `/etc/passwd`, `group`, `shadow` (and new users' home directories) from what the
    /// layers below have plus the recipe's accounts.
    fn account_files(&mut self, tree: &mut Tree) -> Result<()> {
        let mut accounts = self.view_accounts()?;
        let before: Vec<String> = accounts.users.iter().map(|u| u.name.clone()).collect();
        if !accounts.existed {
            accounts.ensure_root();
        }
        // Planning over a base not read yet: its groups are unknown, the files come later.
        match add_recipe_accounts(&mut accounts, self.recipe) {
            Err(_) if self.lenient => return Ok(()),
            other => other?,
        }
        let loc = &self.recipe.loc;
        let files = [
            ("/etc/passwd", accounts.render_passwd(), 0o644, 0),
            ("/etc/group", accounts.render_group(), 0o644, 0),
            ("/etc/shadow", accounts.render_shadow(), 0o640, accounts.group("shadow").map_or(0, |g| g.gid)),
        ];
        for (path, text, mode, gid) in files {
            let p = ImagePath::new(path).expect("static path");
            let mut e = Entry::bytes(text.into_bytes(), mode, Arc::from("the recipe's users and groups"));
            if let Some(old) = self.view.get(&p) {
                (e.mode, e.uid, e.gid) = (old.mode, old.uid, old.gid);
            } else {
                e.gid = gid;
            }
            insert(tree, p, e, loc)?;
        }
        for u in accounts.users.iter().filter(|u| !before.contains(&u.name)) {
            let Some(home) = ImagePath::new(&u.home) else {
                continue;
            };
            if matches!(u.home.as_str(), "/nonexistent" | "/dev/null")
                || self.view.get(&home).is_some()
                || tree.get(&home).is_some()
            {
                continue;
            }
            insert(tree, home, Entry::dir(0o755, u.uid, u.gid, Arc::from(format!("home of `{}`", u.name))), loc)?;
        }
        self.accounts = accounts;
        Ok(())
    }

    /// The account files of the layers below, as they are now.
    fn view_accounts(&self) -> Result<Accounts> {
        let read = |p: &str| -> Result<Option<String>> {
            Ok(self.view.read(p)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        Ok(Accounts::parse(
            read("/etc/passwd")?.as_deref(),
            read("/etc/group")?.as_deref(),
            read("/etc/shadow")?.as_deref(),
        ))
    }

    fn run_config(&self) -> Result<RunConfig> {
        let c = &self.recipe.config;
        if let Some((user, loc)) = c.user.as_ref().filter(|_| !self.lenient) {
            let name = user.split(':').next().unwrap_or("");
            if !name.bytes().all(|b| b.is_ascii_digit()) && self.accounts.user(name).is_none() {
                return Err(Diagnostic::new(
                    loc.clone(),
                    format!("`user: {user}` names a user the image does not have"),
                )
                .with_hint("declare it under `config.users`, or give a uid")
                .into());
            }
        }
        // An image base's settings carry over unless the recipe sets its own.
        let below = self.base.map(|p| p.config["config"].clone()).unwrap_or_default();
        let strings = |v: &serde_json::Value| -> Option<Vec<String>> {
            v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        };
        let text = |k: &str| below[k].as_str().filter(|s| !s.is_empty()).map(String::from);
        let keys =
            |k: &str| -> Vec<String> { below[k].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default() };
        let mut env: BTreeMap<String, String> = strings(&below["Env"])
            .unwrap_or_default()
            .iter()
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        for (k, v) in &c.env {
            env.insert(k.clone(), self.interp(v, &self.recipe.loc)?);
        }
        env.entry("PATH".into())
            .or_insert_with(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        let healthcheck = c.healthcheck.as_ref().map(|h| {
            let mut v = serde_json::json!({"Test": h.test});
            for (k, val) in [
                ("Interval", h.interval_ns),
                ("Timeout", h.timeout_ns),
                ("StartPeriod", h.start_period_ns),
                ("StartInterval", h.start_interval_ns),
                ("Retries", h.retries),
            ] {
                if let Some(val) = val {
                    v[k] = serde_json::json!(val);
                }
            }
            v
        });
        let union = |base: Vec<String>, own: &[String]| -> Vec<String> {
            let mut all = base;
            all.extend(own.iter().filter(|x| !all.contains(x)).cloned().collect::<Vec<_>>());
            all
        };
        let mut labels: BTreeMap<String, String> = below["Labels"]
            .as_object()
            .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        labels.extend(c.labels.clone());
        // As in docker: a new entrypoint drops the base's command.
        let cmd = match (&c.entrypoint, &c.cmd) {
            (_, Some(cmd)) => Some(cmd.clone()),
            (Some(_), None) => None,
            (None, None) => strings(&below["Cmd"]),
        };
        Ok(RunConfig {
            user: c.user.as_ref().map(|(u, _)| u.clone()).or_else(|| text("User")),
            env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
            entrypoint: c.entrypoint.clone().or_else(|| strings(&below["Entrypoint"])),
            cmd,
            workdir: c.workdir.clone().or_else(|| text("WorkingDir")),
            ports: union(keys("ExposedPorts"), &c.ports),
            volumes: union(keys("Volumes"), &c.volumes),
            labels,
            stop_signal: c.stop_signal.clone().or_else(|| text("StopSignal")),
            healthcheck: healthcheck.or_else(|| Some(below["Healthcheck"].clone()).filter(|h| h.is_object())),
        })
    }
}

fn add_recipe_accounts(accounts: &mut Accounts, recipe: &Recipe) -> Result<()> {
    let c = &recipe.config;
    fn at(loc: &Loc) -> impl Fn(crate::tree::users::Error) -> Error + '_ {
        move |e| Error::from(Diagnostic::new(loc.clone(), e.to_string()))
    }
    for g in &c.groups {
        accounts.add_group(&g.name, g.gid).map_err(at(&g.loc))?;
    }
    for u in &c.users {
        accounts.check_user(&u.name, u.uid).map_err(at(&u.loc))?;
        let gid = match &u.group {
            Some(g) => accounts.gid_of(g).map_err(at(&u.loc))?,
            None => match accounts.group(&u.name) {
                Some(g) => g.gid,
                None => {
                    accounts.add_group(&u.name, u.uid).map_err(at(&u.loc))?;
                    u.uid
                }
            },
        };
        accounts
            .add_user(User {
                name: u.name.clone(),
                uid: u.uid,
                gid,
                gecos: u.gecos.clone(),
                home: u.home.clone().unwrap_or_else(|| format!("/home/{}", u.name)),
                shell: u.shell.clone().unwrap_or_else(|| "/sbin/nologin".into()),
            })
            .map_err(at(&u.loc))?;
        for g in &u.groups {
            accounts.add_member(g, &u.name).map_err(at(&u.loc))?;
        }
    }
    for g in &c.groups {
        for m in &g.members {
            accounts.add_member(&g.name, m).map_err(at(&g.loc))?;
        }
    }
    Ok(())
}

fn describe(e: &Entry) -> &'static str {
    match e.kind {
        Kind::Dir => "a directory",
        Kind::File { .. } => "a file",
        Kind::Symlink(_) => "a symlink",
        Kind::Hardlink(_) => "a hard link",
    }
}

fn origin(loc: &Loc, what: &str) -> Arc<str> {
    Arc::from(format!("{loc} ({what})"))
}

fn insert(tree: &mut Tree, path: ImagePath, e: Entry, loc: &Loc) -> Result<()> {
    tree.insert(path, e).map_err(|c| Diagnostic::new(loc.clone(), c.to_string()).into())
}

/// `None` for `/`.
fn image_path(p: &str) -> Option<ImagePath> {
    ImagePath::new(p)
}

/// `to` ending in `/` means "into this directory, under the source's own name".
fn place(to: &str, source: &str) -> String {
    if to.ends_with('/') {
        let name = source.trim_end_matches('/').rsplit('/').next().unwrap_or(source);
        format!("{to}{name}")
    } else {
        to.to_string()
    }
}

/// Large host files are left unhashed by the plan when the stat cache does not know them
/// (hashed once, as they are packed), from this size up.
const DEFER_HASH: u64 = 16 << 20;
// The packer must look such files up to learn their digests.
const _: () = assert!(DEFER_HASH >= layer::tar::LOOKUP_MIN);

/// What the build knows of host files (the stat cache) and learns while packing.
struct BuildFiles {
    store: Store,
    /// Content digests of files left unhashed by the plan, by identity.
    learned: std::sync::Mutex<BTreeMap<Digest, Digest>>,
}

impl BuildFiles {
    /// Whether an identity stands in for a digest in `tree` (learned once it is packed).
    fn stood_in(&self, tree: &Tree) -> bool {
        let learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        tree.iter().any(|(_, e)| matches!(&e.kind, Kind::File { content: Bytes::Host(_), digest, .. } if learned.contains_key(digest)))
    }
}

impl layer::tar::HostFiles for BuildFiles {
    fn known(&self, path: &Path) -> Option<Digest> {
        self.store.known_digest(path)
    }

    fn identity(&self, path: &Path) -> Option<Digest> {
        self.store.identity(path).ok().map(|id| id.digest)
    }

    fn learned(&self, path: &Path, identity: Digest, digest: Digest) {
        // Remembering is best effort: the digest serves this build either way.
        if let Err(e) = self.store.remember(path, &identity, &digest) {
            tracing::debug!("cannot remember the digest of {}: {e}", path.display());
        }
        self.learned.lock().unwrap_or_else(|e| e.into_inner()).insert(identity, digest);
    }
}

/// Puts learned content digests in place of the identities deferred files stood in by;
/// says whether the tree had any.
fn learn_digests(tree: &mut Tree, learned: &BTreeMap<Digest, Digest>) -> bool {
    let deferred: Vec<(ImagePath, Digest)> = tree
        .iter()
        .filter_map(|(p, e)| match &e.kind {
            Kind::File { content: Bytes::Host(_), digest, .. } => learned.get(digest).map(|d| (p.clone(), *d)),
            _ => None,
        })
        .collect();
    for (p, d) in &deferred {
        if let Some(Entry { kind: Kind::File { digest, .. }, .. }) = tree.get_mut(p) {
            *digest = *d;
        }
    }
    !deferred.is_empty()
}

/// A hard link in a layer must name a regular file of the same layer (not itself, not a
/// directory or symlink, not something only a lower layer has); its parents are directories
/// of the layer by now, so it cannot lead through a symlink.
fn check_hardlink(tree: &Tree, path: &ImagePath, target: &ImagePath, entry: &Entry, loc: &Loc) -> Result<()> {
    let refuse = |why: String| -> Result<()> {
        Err(Diagnostic::new(loc.clone(), format!("`{path}` ({}) is a hard link to `{target}`, {why}", entry.origin))
            .into())
    };
    if target == path {
        return refuse("itself".into());
    }
    let mut seen = 0;
    let mut at = target.clone();
    loop {
        match tree.get(&at).map(|e| &e.kind) {
            Some(Kind::File { .. }) => return Ok(()),
            Some(Kind::Hardlink(next)) if seen < 64 && next != path => {
                seen += 1;
                at = next.clone();
            }
            Some(Kind::Hardlink(_)) => return refuse("which leads round in a circle of hard links".into()),
            Some(other) => {
                let what = match other {
                    Kind::Dir => "a directory",
                    _ => "a symlink",
                };
                return refuse(format!("which is {what}; a hard link names a regular file"));
            }
            None => return refuse("which is not in the same layer (links name a file the layer itself holds)".into()),
        }
    }
}

/// Hard links must point at a path written earlier in the tar; where an archive linked
/// the other way round, the earliest path of the group becomes the file.
fn normalize_hardlinks(tree: &mut Tree) {
    let links: Vec<(ImagePath, ImagePath)> = tree
        .iter()
        .filter_map(|(p, e)| match &e.kind {
            Kind::Hardlink(t) if t > p => Some((p.clone(), t.clone())),
            _ => None,
        })
        .collect();
    for (link, target) in links {
        let Some(file) = tree.get(&target).cloned() else {
            continue;
        };
        if let Some(e) = tree.get_mut(&link) {
            e.kind = file.kind.clone();
            e.mode = file.mode;
        }
        if let Some(e) = tree.get_mut(&target) {
            e.kind = Kind::Hardlink(link.clone());
        }
        let others: Vec<ImagePath> = tree
            .iter()
            .filter(|(p, e)| **p != link && matches!(&e.kind, Kind::Hardlink(t) if *t == target))
            .map(|(p, _)| p.clone())
            .collect();
        for p in others {
            if let Some(e) = tree.get_mut(&p) {
                e.kind = Kind::Hardlink(link.clone());
            }
        }
    }
}

/// The requests the recipe makes of the Debian archive, layer by layer.
fn debian_requests(recipe: &Recipe, spec: &crate::model::spec::DebianSpec) -> lock::LockedDebian {
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
    }
}

/// `base: {recipe: NAME}`: the parent recipe's image, built for `archs` from its own lock,
/// as a base image (its layers reused as they are), and the package source its children
/// inherit (the parent's, without its own package list).
fn parent_base(
    recipe: &Recipe,
    b: &crate::recipe::ImageBase,
    store: &Store,
    opts: &Options,
    archs: &[Arch],
) -> Result<(image::BaseImage, Option<Base>)> {
    let path = b.recipe.as_ref().expect("a recipe base");
    let here = recipe.path.clone();
    if opts.children.contains(path) || *path == here {
        let mut names: Vec<String> = opts.children.iter().chain([&here, path]).map(|p| stem(p)).collect();
        let start = names.iter().position(|n| *n == stem(path)).unwrap_or(0);
        names.drain(..start);
        return Err(Error::Cycle(names));
    }
    let parent = crate::recipe::load_all_with(path, &recipe.given_variables)
        .map_err(|e| Error::BaseRecipe { path: path.clone(), source: Box::new(e) })?
        .swap_remove(0);
    let mut popts = opts.clone();
    popts.archs = Some(archs.to_vec());
    popts.children.push(here);
    let key = built_key(&parent, store, archs, &popts);
    let known = BUILT.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
    let built = match known {
        Some(image) => image,
        None => build_in_pool(&parent, store, &popts)?.image,
    };
    let mut platforms = BTreeMap::new();
    for p in &built.platforms {
        let config = serde_json::from_slice(&p.config.bytes).expect("our own config is JSON");
        let layers = p.layers.iter().map(|l| l.info.clone()).collect();
        platforms.insert(p.arch, image::Platform { manifest: p.manifest.digest, config, layers });
    }
    let image = image::BaseImage { reference: b.reference.clone(), digest: built.index.digest, platforms };
    let source = parent.base.packages().map(|p| match p {
        Packages::Debian(spec) => {
            let mut spec = spec.clone();
            spec.packages.clear();
            spec.essential = false;
            Base::Debian(spec)
        }
        Packages::Alpine(spec) => {
            let mut spec = spec.clone();
            spec.packages.clear();
            Base::Alpine(spec)
        }
    });
    Ok((image, source))
}

/// What decides a build's image: the store, the recipe (file and image), the architectures
/// and the options that change resolution.
type BuiltKey = (PathBuf, PathBuf, PathBuf, Vec<Arch>, bool, bool, Option<u64>);

/// Images built by this process, for recipes built on them: `build --all` builds a base once,
/// not again (warm) for every recipe on it.
static BUILT: std::sync::Mutex<BTreeMap<BuiltKey, Image>> = std::sync::Mutex::new(BTreeMap::new());

fn built_key(recipe: &Recipe, store: &Store, archs: &[Arch], opts: &Options) -> BuiltKey {
    let path = recipe.path.canonicalize().unwrap_or_else(|_| recipe.path.clone());
    let lock = recipe.lock_path.file_name().map(PathBuf::from).unwrap_or_default();
    (store.root().to_path_buf(), path, lock, archs.to_vec(), opts.locked, opts.upgrade, opts.source_date_epoch)
}

fn stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// What the package resolvers need of the lock: the one on disk (if it may be reused),
/// whether `--locked` holds the result to it, and its path for messages.
struct LockFacts<'a> {
    existing: Option<&'a Lock>,
    locked: bool,
    path: &'a Path,
}

/// The packages for every architecture: the lock's when it was made for exactly these
/// requests and architectures, else resolved against the archive (not with `--locked`).
fn debian_pins(
    recipe: &Recipe,
    spec: &crate::model::spec::DebianSpec,
    store: &Store,
    archs: &[Arch],
    installed: &BTreeMap<Arch, Vec<deb::index::Package>>,
    facts: LockFacts<'_>,
) -> Result<(lock::LockedDebian, Vec<deb::Pin>)> {
    let LockFacts { existing, locked, path: lock_path } = facts;
    let mut wanted = debian_requests(recipe, spec);
    if let Some(old) = existing.and_then(|l| l.debian.as_ref().map(|d| (l, d))) {
        let (lock, d) = old;
        let mut changes = d.request_changes(&wanted);
        for a in archs {
            if !lock.packages.iter().any(|p| p.arch == a.name()) {
                changes.push(format!("no packages are locked for `{a}`"));
            }
        }
        if changes.is_empty() {
            wanted.releases = d.releases.clone();
            let pins = lock.packages.iter().filter(|p| archs.iter().any(|a| a.name() == p.arch)).cloned().collect();
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
    let archive = deb::open(store, spec, archs, &recipe.loc.to_string())?;
    let layers: Vec<(String, Vec<String>)> =
        wanted.requests.iter().map(|r| (r.layer.clone(), r.packages.clone())).collect();
    let mut pins = Vec::new();
    for &a in archs {
        let below = installed.get(&a).map(Vec::as_slice).unwrap_or_default();
        pins.extend(deb::resolve(&archive, spec, &layers, a, below)?);
    }
    wanted.releases = archive.releases;
    Ok((wanted, pins))
}

/// The Alpine packages for every architecture, resolved from the repositories and fetched
/// into the store (their sha256 recorded). With `--locked` the result must equal the lock's.
fn alpine_pins(
    recipe: &Recipe,
    spec: &crate::model::spec::AlpineSpec,
    store: &Store,
    archs: &[Arch],
    installed: &BTreeMap<Arch, String>,
    facts: LockFacts<'_>,
) -> Result<Vec<apk::Pin>> {
    let LockFacts { existing, locked, path: lock_path } = facts;
    let mut layers = vec![("base".to_string(), spec.packages.clone())];
    for l in &recipe.layers {
        if !l.packages.is_empty() {
            layers.push((l.name.clone(), l.packages.clone()));
        }
    }
    let mut pins = apk::resolve_all(spec, &layers, archs, installed, &recipe.dir, &store.root().join("releases"))
        .map_err(Error::Alpine)?;
    for p in &mut pins {
        let bytes = apk::fetch_location(&p.url, &recipe.dir, &store.root().join("releases")).map_err(Error::Alpine)?;
        let (digest, _) = store.put_bytes(&bytes, false)?;
        p.sha256 = digest.hex();
    }
    if locked {
        let old: Vec<apk::Pin> = existing
            .map(|l| l.apk_packages.iter().filter(|p| archs.iter().any(|a| a.name() == p.arch)).cloned().collect())
            .unwrap_or_default();
        let changes = pin_lines(&old, &pins);
        if !changes.is_empty() {
            return Err(Error::Stale { path: lock_path.to_path_buf(), changes });
        }
    }
    Ok(pins)
}

fn pin_lines(old: &[apk::Pin], new: &[apk::Pin]) -> Vec<String> {
    let key = |p: &apk::Pin| format!("{} {} ({}) {}", p.name, p.arch, p.layer, p.version);
    let (a, b): (std::collections::BTreeSet<String>, std::collections::BTreeSet<String>) =
        (old.iter().map(key).collect(), new.iter().map(key).collect());
    let mut out: Vec<String> = b.difference(&a).map(|k| format!("package {k} is not in the lock")).collect();
    out.extend(a.difference(&b).map(|k| format!("the lock pins {k}, which the recipe no longer resolves to")));
    out
}

/// A pinned package the mirror no longer has: say which, and how to get it back.
fn moved_package(e: fetch::Error, pins: &[deb::Pin], debian: Option<&lock::LockedDebian>) -> Error {
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
