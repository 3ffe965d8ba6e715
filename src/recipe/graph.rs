//! The recipe graph: `base: {recipe: NAME}` makes one recipe build on another's image.
//! Recipes are ordered in levels — every recipe after the one it builds on, recipes of one
//! level independent of each other — and a cycle is an error that names it.

use super::error::Error;
use super::schema::{Base, Recipe};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn key(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

fn name_of(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The recipe file `r` builds on, if any.
pub fn parent(r: &Recipe) -> Option<&Path> {
    match &r.base {
        Base::Image(b) => b.recipe.as_deref(),
        _ => None,
    }
}

/// Groups `recipes` in build order: level 0 builds on nothing among them, level n on
/// recipes of earlier levels only. Images of one file stay together, in their order.
pub fn levels(recipes: Vec<Recipe>) -> Result<Vec<Vec<Recipe>>, Error> {
    // One node per recipe file.
    let mut files: Vec<PathBuf> = Vec::new();
    for r in &recipes {
        let k = key(&r.path);
        if !files.contains(&k) {
            files.push(k);
        }
    }
    let parent_of: BTreeMap<PathBuf, PathBuf> = recipes
        .iter()
        .filter_map(|r| Some((key(&r.path), key(parent(r)?))))
        .filter(|(_, p)| files.contains(p))
        .collect();
    let mut level_of: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for f in &files {
        let mut chain = vec![f.clone()];
        let mut cur = f.clone();
        while let Some(p) = parent_of.get(&cur) {
            if let Some(i) = chain.iter().position(|c| c == p) {
                let mut cycle: Vec<String> = chain[i..].iter().map(|c| name_of(c)).collect();
                cycle.push(name_of(p));
                return Err(Error::Cycle(cycle));
            }
            chain.push(p.clone());
            cur = p.clone();
        }
        level_of.insert(f.clone(), chain.len() - 1);
    }
    let depth = level_of.values().copied().max().map_or(0, |m| m + 1);
    let mut out: Vec<Vec<Recipe>> = (0..depth).map(|_| Vec::new()).collect();
    for r in recipes {
        let l = level_of[&key(&r.path)];
        out[l].push(r);
    }
    Ok(out)
}
