//! The [`Planner`] of one architecture's trees and the helpers its concerns share; what it
//! does for each concern is in the sibling files ([`super::files`], [`super::packages`],
//! [`super::config`], [`super::accounts`]).

use super::error::Result;
use crate::model::digest::Digest;
use crate::model::path::ImagePath;
use crate::model::platform::Arch;
use crate::oci::RunConfig;
use crate::recipe::{Base, Diagnostic, Loc, Owner, Packages, Recipe, vars};
use crate::source::fetch::Download;
use crate::source::{apk, deb, image, pick};
use crate::store::Store;
use crate::tree::users::Accounts;
use crate::tree::{Entry, Kind, Tree, View};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One architecture's named layer trees and runtime config, ready to pack.
pub type ArchTrees = (Arch, Vec<(String, Tree)>, RunConfig);

/// What a planner is for (see the module header).
pub enum Mode<'a> {
    /// Before fetching: downloads stand in by digest; large host files as `large` says.
    Plan { large: LargeFiles<'a> },
    /// After fetching: this architecture's pinned packages, and an image base's platform
    /// with the merged view of its layers.
    Build {
        debian: &'a [deb::Pin],
        alpine: &'a [apk::Pin],
        base: Option<(&'a image::Platform, View)>,
        /// The images files are taken from, pinned (what they give is in the store).
        images: &'a BTreeMap<String, pick::Pinned>,
    },
}

/// How the planner gets the digests of large host files the stat cache does not know.
#[derive(Clone, Copy)]
pub enum LargeFiles<'a> {
    /// Hashed on the spot.
    Hash,
    /// Left unhashed, standing in by their identity, to be hashed once as they are packed.
    Defer,
    /// As the packer learned them (identity → digest), else hashed.
    Learned(&'a BTreeMap<Digest, Digest>),
}

/// Builds the trees of one architecture.
pub struct Planner<'a> {
    pub(super) recipe: &'a Recipe,
    pub(super) arch: Arch,
    pub(super) store: &'a Store,
    pub(super) vars: BTreeMap<String, String>,
    /// Whether downloads are in the store (else URL files stand in by digest).
    pub(super) fetched: bool,
    /// The downloads this architecture's trees use (URL files), for the fetch.
    pub downloads: Vec<(Arch, Download)>,
    /// The paths this architecture's trees take from images, for the fetch.
    pub picks: Vec<pick::Wanted>,
    /// The images files are taken from, pinned (after fetching).
    pub(super) images: Option<&'a BTreeMap<String, pick::Pinned>>,
    /// The base's accounts plus the recipe's, for resolving `owner:` names.
    pub(super) accounts: Accounts,
    pub(super) view: View,
    /// This architecture's pinned packages (all layers).
    pub(super) pins: &'a [deb::Pin],
    pub(super) apk_pins: &'a [apk::Pin],
    /// Owner names may come from a base not unpacked yet: accept them while planning.
    pub(super) lenient: bool,
    pub(super) epoch: u64,
    /// An image base's platform (`view` then starts as the merged view of its layers).
    pub(super) base: Option<&'a image::Platform>,
    /// Large host files the stat cache does not know: see [`LargeFiles`].
    pub(super) large: LargeFiles<'a>,
    /// Whether any was left unhashed.
    pub(super) deferred: std::cell::Cell<bool>,
    /// Local inputs read so far, by the path the recipe gives (see `Planner::noting`).
    pub sources: std::cell::RefCell<BTreeMap<String, Digest>>,
    /// Host files read under the input being noted: their path and what of them shapes the image.
    pub(super) seen: std::cell::RefCell<Vec<(PathBuf, String)>>,
    /// The build context (canonical): local files must be inside it.
    pub(super) context: PathBuf,
}

impl<'a> Planner<'a> {
    /// A planner of one architecture's trees, for what `mode` says.
    pub fn new(
        recipe: &'a Recipe,
        arch: Arch,
        store: &'a Store,
        epoch: u64,
        context: &Path,
        mode: Mode<'a>,
    ) -> Result<Self> {
        let vars = recipe.variables_for(arch);
        let mut images = None;
        let (fetched, large, pins, apk_pins, base, view): (bool, LargeFiles<'a>, &[deb::Pin], &[apk::Pin], _, View) =
            match mode {
                Mode::Plan { large } => (false, large, &[], &[], None, View::default()),
                Mode::Build { debian, alpine, base, images: pinned } => {
                    images = Some(pinned);
                    let (platform, view) = base.map_or((None, View::default()), |(p, v)| (Some(p), v));
                    (true, LargeFiles::Defer, debian, alpine, platform, view)
                }
            };
        // Accounts of a scratch base: none below the recipe's own. A package base's are read
        // from its layer once it is built.
        let mut accounts = Accounts::default();
        accounts.ensure_root();
        let lenient = !fetched && !matches!(recipe.base, Base::Scratch);
        // An image base's accounts come with its view (`all_trees`), the recipe's on top.
        if !lenient && !matches!(recipe.base, Base::Image(_)) {
            Self::add_recipe_accounts(&mut accounts, recipe)?;
        }
        Ok(Planner {
            recipe,
            arch,
            store,
            vars,
            fetched,
            downloads: Vec::new(),
            picks: Vec::new(),
            images,
            accounts,
            view,
            pins,
            apk_pins,
            lenient,
            epoch,
            base,
            large,
            deferred: Default::default(),
            sources: Default::default(),
            seen: Default::default(),
            context: context.to_path_buf(),
        })
    }

    /// The non-empty layers in order: the base, application layers, then the
    /// configuration layer.
    pub fn all_trees(&mut self) -> Result<Vec<(String, Tree)>> {
        let mut out = Vec::new();
        if self.base.is_some() {
            let mut accounts = self.view_accounts()?;
            accounts.ensure_root();
            Self::add_recipe_accounts(&mut accounts, self.recipe)?;
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
                Self::add_recipe_accounts(&mut accounts, self.recipe)?;
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

    pub(super) fn finish_tree(&self, tree: &mut Tree, loc: &Loc) -> Result<()> {
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

    pub(super) fn interp(&self, s: &str, loc: &Loc) -> Result<String> {
        vars::interpolate(s, &self.vars).map_err(|e| Diagnostic::new(loc.clone(), e).into())
    }

    pub(super) fn owner(&self, o: Option<&Owner>) -> Result<(u32, u32)> {
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

    pub(super) fn dest(&self, p: &str, loc: &Loc) -> Result<ImagePath> {
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
}

pub(super) fn describe(e: &Entry) -> &'static str {
    match e.kind {
        Kind::Dir => "a directory",
        Kind::File { .. } => "a file",
        Kind::Symlink(_) => "a symlink",
        Kind::Hardlink(_) => "a hard link",
    }
}

pub(super) fn origin(loc: &Loc, what: &str) -> Arc<str> {
    Arc::from(format!("{loc} ({what})"))
}

pub(super) fn insert(tree: &mut Tree, path: ImagePath, e: Entry, loc: &Loc) -> Result<()> {
    tree.insert(path, e).map_err(|c| Diagnostic::new(loc.clone(), c.to_string()).into())
}

/// `None` for `/`.
pub(super) fn image_path(p: &str) -> Option<ImagePath> {
    ImagePath::new(p)
}

/// `to` ending in `/` means "into this directory, under the source's own name".
pub(super) fn place(to: &str, source: &str) -> String {
    if to.ends_with('/') {
        let name = source.trim_end_matches('/').rsplit('/').next().unwrap_or(source);
        format!("{to}{name}")
    } else {
        to.to_string()
    }
}

/// A hard link in a layer must name a regular file of the same layer (not itself, not a
/// directory or symlink, not something only a lower layer has); its parents are directories
/// of the layer by now, so it cannot lead through a symlink.
pub(super) fn check_hardlink(
    tree: &Tree,
    path: &ImagePath,
    target: &ImagePath,
    entry: &Entry,
    loc: &Loc,
) -> Result<()> {
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
pub(super) fn normalize_hardlinks(tree: &mut Tree) {
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
