//! `base: {recipe: NAME}`: the parent recipe is built first (from its own lock, for this
//! recipe's architectures) and its image becomes this one's base, its layers reused as they
//! are; its package source is inherited unless the recipe names its own. A parent built
//! earlier in the same session is not built again.

use crate::model::platform::Arch;
use crate::ops::build::error::{Error, Result};
use crate::ops::build::options::{Built, Options};
use crate::ops::session::{Session, built_key};
use crate::recipe::{Base, Diagnostic, Packages, Recipe};
use crate::source::image;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// The parent recipe of a recipe base, read with the same `--var` values; a cycle is named.
pub fn parent_recipe(recipe: &Recipe, opts: &Options) -> Result<Option<Recipe>> {
    let Base::Image(b) = &recipe.base else { return Ok(None) };
    let Some(path) = &b.recipe else { return Ok(None) };
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
    Ok(Some(parent))
}

/// The parent's image as a base image for `archs`, and the package source its children
/// inherit (the parent's, without its own package list); `None` without a recipe base.
/// `build` builds the parent (the build pipeline, given by the caller).
pub fn parent_base(
    session: &Session,
    recipe: &Recipe,
    opts: &Options,
    archs: &[Arch],
    build: &dyn Fn(&Recipe, &Options) -> Result<Built>,
) -> Result<Option<(image::BaseImage, Option<Base>)>> {
    let Some(parent) = parent_recipe(recipe, opts)? else { return Ok(None) };
    let Base::Image(b) = &recipe.base else { return Ok(None) };
    let mut popts = opts.clone();
    popts.archs = Some(archs.to_vec());
    popts.children.push(recipe.path.clone());
    let key = built_key(&parent, &session.store, archs, &popts);
    let built = match session.built(&key) {
        Some(image) => image,
        None => build(&parent, &popts)?.image,
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
    Ok(Some((image, source)))
}

/// The recipe with its parent's package source when it names none; an error when its layers
/// list packages and there is no source at all.
pub fn inherit<'a>(recipe: &'a Recipe, parent: Option<&(image::BaseImage, Option<Base>)>) -> Result<Cow<'a, Recipe>> {
    let Base::Image(b) = &recipe.base else { return Ok(Cow::Borrowed(recipe)) };
    match parent {
        Some((_, None)) if b.packages.is_none() && recipe.layers.iter().any(|l| !l.packages.is_empty()) => {
            Err(Diagnostic::new(b.loc.clone(), "layers list `packages`, and the base recipe has no package source")
                .with_hint("add `debian: {…}` or `alpine: {…}` beside `base.recipe`")
                .into())
        }
        Some((_, Some(source))) if b.packages.is_none() => {
            let mut r = recipe.clone();
            if let Base::Image(b) = &mut r.base {
                b.packages = Some(Box::new(source.clone()));
            }
            Ok(Cow::Owned(r))
        }
        _ => Ok(Cow::Borrowed(recipe)),
    }
}

fn stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}
