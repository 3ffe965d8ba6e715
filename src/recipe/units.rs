//! The images one recipe describes. `tags` items are a tag, or `{tag, variables}`; each
//! `variants` item (`{name, suffix, variables}`) repeats every tag with its suffix. Tags
//! whose merged variables are equal name the same image; each distinct set is one unit,
//! built and locked on its own.

use super::decode::{Ctx, Result};
use super::schema::Recipe;
use super::yaml::Node;
use crate::model::reference::valid_tag;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One image of a recipe: the tag nodes that name it and the variables that make it.
#[derive(Debug, Clone)]
pub struct Unit<'a> {
    pub tags: Vec<&'a Node>,
    /// Tag and variant variables, which win over the image's own.
    pub overrides: BTreeMap<String, String>,
    pub variant: Option<String>,
    pub suffix: String,
}

pub fn plan<'a>(ctx: &Ctx, root: &'a Node) -> Result<Vec<Unit<'a>>> {
    let f = ctx.map(root, &super::shape::RECIPE)?;
    let mut tags: Vec<(&'a Node, BTreeMap<String, String>)> = Vec::new();
    if let Some(n) = f.get("tags") {
        for item in ctx.seq(n, "`tags`")? {
            if matches!(item.value, super::yaml::Value::Map(_)) {
                let t = ctx.map(item, &super::shape::TAG)?;
                let vars = t.get("variables").map(|v| ctx.string_map(v, "the tag's `variables`")).transpose()?;
                tags.push((
                    t.required("tag")?,
                    vars.unwrap_or_default().into_iter().map(|(k, (v, _))| (k, v)).collect(),
                ));
            } else {
                tags.push((item, BTreeMap::new()));
            }
        }
    }
    let mut variants: Vec<(Option<String>, String, BTreeMap<String, String>)> =
        vec![(None, String::new(), BTreeMap::new())];
    if let Some(n) = f.get("variants") {
        for item in ctx.seq(n, "`variants`")? {
            let v = ctx.map(item, &super::shape::VARIANT)?;
            let name = ctx.str(v.required("name")?, "the variant's `name`")?;
            let suffix = match v.str("suffix")? {
                Some(s) => s,
                None => format!("-{name}"),
            };
            if !valid_tag(&format!("x{suffix}"))
                || variants.iter().any(|(n, s, _)| n.as_deref() == Some(&name) || *s == suffix)
            {
                return Err(ctx.err(
                    item,
                    format!(
                        "variant `{name}` needs a suffix of tag characters used by no other variant, found `{suffix}`"
                    ),
                ));
            }
            let vars = v.get("variables").map(|x| ctx.string_map(x, "the variant's `variables`")).transpose()?;
            variants.push((
                Some(name),
                suffix,
                vars.unwrap_or_default().into_iter().map(|(k, (v, _))| (k, v)).collect(),
            ));
        }
    }
    let none = BTreeMap::new();
    let mut units: Vec<Unit<'a>> = Vec::new();
    for (variant, suffix, vvars) in &variants {
        let first = units.len();
        let items: Vec<(Option<&'a Node>, &BTreeMap<String, String>)> =
            if tags.is_empty() { vec![(None, &none)] } else { tags.iter().map(|(n, v)| (Some(*n), v)).collect() };
        for (node, tvars) in items {
            let mut overrides = tvars.clone();
            overrides.extend(vvars.iter().map(|(k, v)| (k.clone(), v.clone())));
            match units[first..].iter_mut().find(|u| u.overrides == overrides) {
                Some(u) => u.tags.extend(node),
                None => units.push(Unit {
                    tags: node.into_iter().collect(),
                    overrides,
                    variant: variant.clone(),
                    suffix: suffix.clone(),
                }),
            }
        }
    }
    Ok(units)
}

/// `web.lock` for a recipe's first image; `web.<first tag>.lock` for each other one.
pub fn lock_path(recipe: &Path, index: usize, unit: &Unit<'_>) -> PathBuf {
    // `recipes/web.yml` → `recipes/web.lock`.
    let base = recipe.with_extension("lock");
    if index == 0 {
        return base;
    }
    let label: String = unit
        .tags
        .first()
        .map(|n| match &n.value {
            super::yaml::Value::Scalar { text, .. } => text.clone(),
            _ => String::new(),
        })
        .unwrap_or_else(|| "latest".into())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    let stem = base.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    base.with_file_name(format!("{stem}.{label}{}.lock", unit.suffix))
}

/// `1.2.3` (an optional leading `v` allowed), nothing else: pre-releases get no aliases.
fn semver(tag: &str) -> Option<(u64, u64, u64)> {
    let mut parts = tag.strip_prefix('v').unwrap_or(tag).split('.');
    let mut num = || -> Option<u64> {
        let p = parts.next()?;
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0')))
            .then(|| p.parse().ok())
            .flatten()
    };
    let v = (num()?, num()?, num()?);
    parts.next().is_none().then_some(v)
}

/// Adds `MAJOR` and `MAJOR.MINOR` aliases (with the variant's suffix) to the image of each
/// variant holding the highest version under them, unless a recipe tag already has the name.
pub fn add_aliases(recipes: &mut [Recipe]) {
    let mut by_variant: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
    for (i, r) in recipes.iter().enumerate() {
        by_variant.entry(r.variant.clone()).or_default().push(i);
    }
    for members in by_variant.values() {
        let explicit: Vec<String> = members.iter().flat_map(|&i| recipes[i].explicit_tags.clone()).collect();
        // alias → (version, recipe index)
        let mut best: BTreeMap<String, ((u64, u64, u64), usize)> = BTreeMap::new();
        for &i in members {
            let suffix = recipes[i].suffix.clone();
            for tag in &recipes[i].explicit_tags {
                let Some(v) = tag.strip_suffix(suffix.as_str()).and_then(semver) else { continue };
                for alias in [format!("{}{suffix}", v.0), format!("{}.{}{suffix}", v.0, v.1)] {
                    let e = best.entry(alias).or_insert((v, i));
                    if v > e.0 {
                        *e = (v, i);
                    }
                }
            }
        }
        for (alias, (_, i)) in best {
            if !explicit.contains(&alias) && !recipes[i].tags.contains(&alias) {
                recipes[i].tags.push(alias);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::semver;

    #[test]
    fn only_plain_versions_are_semver() {
        assert_eq!(semver("9.0.100"), Some((9, 0, 100)));
        assert_eq!(semver("v1.2.3"), Some((1, 2, 3)));
        for t in ["latest", "1.2", "1.2.3-rc1", "01.2.3", "1.2.3.4", "1..3"] {
            assert_eq!(semver(t), None, "{t}");
        }
    }
}
