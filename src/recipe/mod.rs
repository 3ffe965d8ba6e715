//! Recipes: YAML files that say what goes into an image's base, application and
//! configuration layers. This module reads and validates them and nothing else — no network,
//! no file other than the recipe itself — so every mistake is reported with `file:line:col`
//! before any work starts.

pub mod decode;
pub mod diag;
pub mod error;
pub mod graph;
pub mod reader;
pub mod schema;
pub mod shape;
pub mod units;
pub mod values;
pub mod vars;
pub mod yaml;

pub use diag::{Diagnostic, Loc, Source};
pub use error::Error;
pub use schema::*;
pub use values::{MAX_EPOCH, MAX_ID, MAX_RECIPE_BYTES, parse_duration, valid_tag};

use decode::Ctx;
use reader::Reader;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Finds a recipe by path, or by name in `./recipes/` (`NAME.yml` or `NAME.yaml`).
pub fn find(arg: &str) -> std::result::Result<PathBuf, Error> {
    let direct = Path::new(arg);
    if direct.is_file() {
        return Ok(direct.to_path_buf());
    }
    let candidates = [format!("recipes/{arg}.yml"), format!("recipes/{arg}.yaml")];
    for c in &candidates {
        if Path::new(c).is_file() {
            return Ok(PathBuf::from(c));
        }
    }
    let looked = std::iter::once(arg.to_string()).chain(candidates).map(|c| format!("`{c}`")).collect::<Vec<_>>();
    Err(Error::NotFound { name: arg.to_string(), looked: looked.join(", ") })
}

/// Reads and validates the recipe at `path`: one [`Recipe`] per image it describes (see
/// [`parse_all`]).
pub fn load_all(path: &Path) -> std::result::Result<Vec<Recipe>, Error> {
    load_all_with(path, &BTreeMap::new())
}

/// The same, with values given on the command line (`--var NAME=VALUE`) replacing the
/// defaults of the recipe's `variables` that have those names. Tag and variant variables
/// still win: they are what tells a recipe's images apart.
pub fn load_all_with(path: &Path, given: &BTreeMap<String, String>) -> std::result::Result<Vec<Recipe>, Error> {
    let read_err = |source| Error::Read { path: path.to_path_buf(), source };
    let len = fs_err::metadata(path).map_err(read_err)?.len();
    if len > MAX_RECIPE_BYTES {
        return Err(read_err(std::io::Error::other(format!(
            "it is {len} bytes; a recipe is at most {MAX_RECIPE_BYTES} bytes"
        ))));
    }
    let text = fs_err::read_to_string(path).map_err(read_err)?;
    Ok(parse_all_with(path, text, given)?)
}

/// The names of `--var` values that none of `recipes`, nor any recipe they build on
/// (`base: {recipe}`, read as a build would read it), declares in its `variables`: each is
/// most likely a misspelling, which would otherwise build the default silently.
pub fn unused_variables(recipes: &[Recipe], given: &BTreeMap<String, String>) -> Vec<String> {
    let mut declared: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut todo: Vec<Recipe> = recipes.to_vec();
    while let Some(r) = todo.pop() {
        declared.extend(r.variables.keys().cloned());
        if let Base::Image(b) = &r.base
            && let Some(parent) = &b.recipe
            && seen.insert(parent.clone())
        {
            // A parent that does not read is reported by the build that needs it.
            todo.extend(load_all_with(parent, given).unwrap_or_default());
        }
    }
    given.keys().filter(|k| !declared.contains(*k)).cloned().collect()
}

/// Reads a recipe that describes one image (the first, when it describes several).
pub fn load(path: &Path) -> std::result::Result<Recipe, Error> {
    Ok(load_all(path)?.swap_remove(0))
}

/// Validates recipe text as if read from `path` (the first image it describes).
pub fn parse(path: &Path, text: String) -> std::result::Result<Recipe, Diagnostic> {
    Ok(parse_all(path, text)?.swap_remove(0))
}

/// Validates recipe text as if read from `path`. A recipe describes one image per distinct
/// set of variables: tags that carry their own `variables` and every `variant` (which
/// repeats every tag with its suffix) each make one, variables merging image → tag →
/// variant, later wins. Semver tags also get major and minor aliases naming the highest
/// version of their variant.
pub fn parse_all(path: &Path, text: String) -> std::result::Result<Vec<Recipe>, Diagnostic> {
    parse_all_with(path, text, &BTreeMap::new())
}

/// [`parse_all`] with command-line variables (see [`load_all_with`]).
pub fn parse_all_with(
    path: &Path,
    text: String,
    given: &BTreeMap<String, String>,
) -> std::result::Result<Vec<Recipe>, Diagnostic> {
    let source = Arc::new(Source { path: path.to_path_buf(), text });
    let ctx = Ctx { file: source.clone() };
    let root = yaml::parse(&source.text).map_err(|e| {
        Diagnostic::new(Loc { file: source.clone(), pos: e.pos }, format!("invalid YAML: {}", e.message))
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    let reader = |variables| Reader {
        ctx: ctx.clone(),
        variables,
        unset: Vec::new(),
        recipe_dir: dir.clone(),
        package_locs: Default::default(),
        suite_locs: Default::default(),
    };
    let units = units::plan(&ctx, &root)?;
    let mut recipes = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        let mut r = reader(unit.overrides.clone()).recipe(&root, path, dir.clone(), unit, given)?;
        r.lock_path = units::lock_path(path, i, unit);
        recipes.push(r);
    }
    units::add_aliases(&mut recipes);
    Ok(recipes)
}
