//! Plan: every layer's file tree for one architecture, from the recipe and what resolving
//! pinned. The [`Planner`] runs twice per build, in one of two [`Mode`]s: before anything is
//! fetched ([`Mode::Plan`]: downloads stand in by their pinned digest, owner names a base
//! has not shown yet are accepted) so that every local mistake is found before the network
//! is touched; and after fetching ([`Mode::Build`]: packages and the base image are laid
//! in). Its concerns are in their own files: local files, downloads and archives
//! ([`files`]), distribution packages ([`packages`]), the configuration layer and runtime
//! config ([`config`]), accounts ([`accounts`]).

pub mod accounts;
pub mod config;
pub mod error;
pub mod files;
pub mod packages;
pub mod picks;
pub mod planner;

pub use error::{Error, Result};
pub use planner::{ArchTrees, LargeFiles, Mode, Planner};

use crate::model::digest::{Digest, Hasher};
use crate::model::platform::Arch;
use crate::recipe::{self, Diagnostic, Recipe};
use crate::source::fetch::Download;
use crate::store::Store;
use crate::tree::{Kind, Tree};
use std::collections::BTreeMap;
use std::path::Path;

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

/// What [`plan_all`] finds: the downloads and a hash of everything the plan says (the recipe
/// text, its variables and every planned layer's key), which [`inputs`] completes with the pins.
pub struct Plan {
    pub downloads: Vec<(Arch, Download)>,
    /// The paths taken from registry images, per architecture.
    pub picks: Vec<crate::source::pick::Wanted>,
    pub hash: Digest,
    /// Whether a large unhashed host file stood in by its identity (then `hash` is not the
    /// inputs' hash, which needs every file's digest).
    pub deferred: bool,
    /// The local inputs by the path the recipe gives them (the recipe itself by its file
    /// name): what the lock records so that `verify` can say which one changed.
    pub sources: BTreeMap<String, Digest>,
}

/// The plan phase: every architecture's trees with downloads standing in by digest.
pub fn plan_all(
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
    let mut picks = Vec::new();
    let mut h = Hasher::default();
    h.update(b"assemble-inputs-v1\0");
    let text = fs_err::read(&recipe.path)?;
    h.update(&text);
    let mut sources = BTreeMap::new();
    let file_name = recipe.path.file_name().map_or("recipe".into(), |n| n.to_string_lossy().into_owned());
    sources.insert(file_name, Digest::of(&text));
    h.update(format!("\0{:?}\0{:?}\0{epoch}\0", recipe.variables, recipe.tags).as_bytes());
    // Alpine's keys are written into the image (`/etc/apk/keys`): inputs like any local file.
    for key in alpine_keys(recipe) {
        if let Ok(bytes) = fs_err::read(key) {
            let rel = key.strip_prefix(&recipe.dir).unwrap_or(key).to_string_lossy().into_owned();
            h.update(format!("key\0{rel}\0").as_bytes());
            h.update(&bytes);
            sources.insert(rel, Digest::of(&bytes));
        }
    }
    for &arch in archs {
        let mut planner = Planner::new(recipe, arch, store, epoch, context, Mode::Plan { large })?;
        for (name, tree) in planner.all_trees()? {
            h.update(format!("{arch}\0{name}\0{}\n", layer_key(&tree, epoch, recipe.compression)).as_bytes());
        }
        deferred |= planner.deferred.get();
        downloads.append(&mut planner.downloads);
        picks.append(&mut planner.picks);
        sources.append(&mut planner.sources.borrow_mut());
    }
    Ok(Plan { downloads, picks, hash: h.finish().0, deferred, sources })
}

/// The Alpine keys a recipe's base names (its own `alpine:` or an image base's).
fn alpine_keys(recipe: &Recipe) -> Vec<&std::path::PathBuf> {
    match &recipe.base {
        recipe::Base::Alpine(spec) => spec.keys.iter().collect(),
        recipe::Base::Image(b) => match b.packages.as_deref() {
            Some(recipe::Base::Alpine(spec)) => spec.keys.iter().collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
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
