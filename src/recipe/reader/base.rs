//! `base:` — scratch, a Debian archive, Alpine repositories, a registry image or another
//! recipe — and `compression:`.

use super::Reader;
use crate::recipe::decode::Result;
use crate::recipe::diag::Diagnostic;
use crate::recipe::schema::*;
use crate::recipe::shape;
use crate::recipe::yaml::{Node, Value};
use std::collections::BTreeMap;

impl Reader {
    pub(super) fn compression(&self, node: &Node) -> Result<Compression> {
        let (algo_node, level_node) = match &node.value {
            Value::Scalar { .. } => (node, None),
            _ => {
                let m = self.ctx.map(node, &shape::COMPRESSION)?;
                (m.required("algorithm")?, m.get("level"))
            }
        };
        let mut c = match self.ctx.str(algo_node, "`compression`")?.as_str() {
            "gzip" => Compression::GZIP_DEFAULT,
            "zstd" => Compression::ZSTD_DEFAULT,
            other => {
                return Err(self
                    .ctx
                    .err(algo_node, format!("unknown compression `{other}`, expected `gzip` or `zstd`")));
            }
        };
        if let Some(n) = level_node {
            let level = self.ctx.uint(n, "`level`")? as i32;
            let max = if c.algorithm == Algorithm::Gzip { 9 } else { 19 };
            if !(1..=max).contains(&level) {
                return Err(self.ctx.err(n, format!("compression level must be 1..={max}, found {level}")));
            }
            c.level = level;
        }
        Ok(c)
    }

    pub(super) fn base(&self, node: &Node) -> Result<Base> {
        match &node.value {
            Value::Scalar { text, .. } if text == "scratch" => Ok(Base::Scratch),
            Value::Scalar { text, .. } => Err(self.ctx.err(node, format!("unknown base `{text}`, expected `scratch` or a mapping with `debian`, `alpine`, `image` or `recipe`"))),
            _ => {
                let m = self.ctx.map(node, &shape::BASE)?;
                if let (Some(_), Some(r)) = (m.get("image"), m.get("recipe")) {
                    return Err(self.ctx.err(r, "a base is an `image` or a `recipe`, not both"));
                }
                let parent = match m.get("recipe") {
                    Some(r) => {
                        let name = self.interp(r, "`base.recipe`")?;
                        let found = ["yml", "yaml"].iter().map(|e| self.recipe_dir.join(format!("{name}.{e}"))).find(|p| p.is_file());
                        let Some(path) = found else {
                            return Err(self.ctx.err(r, format!("no recipe `{name}` beside this one (looked for `{}`)", self.recipe_dir.join(format!("{name}.yml")).display()))
                                .with_hint("`base.recipe` names a recipe file in the same directory, without `.yml`"));
                        };
                        Some((r, format!("recipe:{name}"), path))
                    }
                    None => None,
                };
                if let Some(image) = m.get("image").or(parent.as_ref().map(|(r, _, _)| *r)) {
                    let reference = match &parent {
                        Some((_, reference, _)) => reference.clone(),
                        None => self.interp(image, "`base.image`")?,
                    };
                    if parent.is_none()
                        && let Err(e) = crate::model::reference::Reference::parse(&reference)
                    {
                        return Err(self.ctx.err(image, e));
                    }
                    let source = match (m.get("debian"), m.get("alpine")) {
                        (Some(d), None) => Some(self.debian(d)?),
                        (None, Some(a)) => Some(self.alpine(a)?),
                        (None, None) => None,
                        (Some(_), Some(a)) => return Err(self.ctx.err(a, "an image base takes one package source: `debian` or `alpine`")),
                    };
                    let own = match &source {
                        Some(Base::Debian(s)) => !s.packages.is_empty() || s.essential,
                        Some(Base::Alpine(s)) => !s.packages.is_empty(),
                        _ => false,
                    };
                    if own {
                        let at = m.get("debian").or(m.get("alpine")).unwrap_or(node);
                        return Err(self.ctx.err(at, "with `base.image` or `base.recipe`, `debian`/`alpine` only say where packages come from: list packages in a layer")
                            .with_hint("move `packages` into a layer under `layers:`"));
                    }
                    let recipe = parent.map(|(_, _, path)| path);
                    return Ok(Base::Image(ImageBase { reference, packages: source.map(Box::new), loc: self.ctx.loc(image), recipe }));
                }
                let (key, _) = m.entries().next().ok_or_else(|| self.ctx.err(node, "`base` is empty"))?;
                match key.name.as_str() {
                    "scratch" => Ok(Base::Scratch),
                    "debian" => self.debian(m.required("debian")?),
                    "alpine" => self.alpine(m.required("alpine")?),
                    other => Err(Diagnostic::new(self.ctx.key_loc(key), format!("base `{other}` is not supported by this version of assemble"))
                        .with_hint("use `base: scratch`, `base: {debian: …}`, `base: {alpine: …}` or `base: {image: REF}`")),
                }
            }
        }
    }

    pub(super) fn package_names(&self, node: &Node) -> Result<Vec<String>> {
        self.note_packages(node);
        let mut out = Vec::new();
        for item in self.ctx.seq(node, "`packages`")? {
            let name = self.fixed(item, "a package name")?;
            let ok = name.len() >= 2
                && name.as_bytes()[0].is_ascii_alphanumeric()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.'));
            if !ok {
                return Err(self.ctx.err(
                    item,
                    format!("`{name}` is not a Debian package name (lowercase letters, digits, `+`, `-`, `.`)"),
                ));
            }
            out.push(name);
        }
        Ok(out)
    }

    pub(super) fn alpine(&self, node: &Node) -> Result<Base> {
        let f = self.ctx.map(node, &shape::ALPINE)?;
        // The recipe's variables may name the mirror, the branch and where the keys are.
        let fixed = |n: &Node, what: &str| -> Result<Vec<String>> {
            self.ctx
                .strings(n, what)?
                .into_iter()
                .map(|s| {
                    crate::recipe::vars::interpolate(&s, &self.variables).map_err(|e| {
                        self.ctx.err(n, format!("in {what}: {e} (only the recipe's `variables` can be used here)"))
                    })
                })
                .collect()
        };
        let mut repositories = Vec::new();
        for r in fixed(f.required("repositories")?, "`repositories`")? {
            repositories.push(match r.strip_prefix('@').and_then(|r| r.split_once(char::is_whitespace)) {
                Some((tag, loc)) => (Some(tag.to_string()), loc.trim().to_string()),
                None => (None, r),
            });
        }
        let keys = fixed(f.required("keys")?, "`keys`")?.into_iter().map(|k| self.recipe_dir.join(k)).collect();
        let packages = match f.get("packages") {
            Some(n) => {
                self.note_packages(n);
                self.ctx.strings(n, "`packages`")?
            }
            None => Vec::new(),
        };
        Ok(Base::Alpine(crate::model::spec::AlpineSpec { repositories, keys, packages }))
    }

    /// A suite's name, as it goes into `dists/SUITE/InRelease`: letters, digits, `.`, `-`,
    /// `_`, `+`, `~` and `/` (`buster/updates`), and no `..` — a newline or a `?` from a
    /// variable would otherwise reach the URL (where a URL parser drops the one and cuts at
    /// the other), and `..` would climb to another directory of the mirror.
    fn suite(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.fixed(node, what)?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_+~/".contains(c);
        if s.is_empty() || !s.chars().all(allowed) || s.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(self.ctx.err(
                node,
                format!(
                    "{what} must be a suite name such as bookworm or bookworm-updates (letters, digits, `.-_+~/`, no `..`), found `{}`",
                    s.escape_debug()
                ),
            ));
        }
        Ok(s)
    }

    /// A `mirror`: one URL, or one per architecture (the first is the default of the others).
    fn mirrors(&self, node: &Node) -> Result<(String, BTreeMap<crate::model::platform::Arch, String>)> {
        let url = |n: &Node| -> Result<String> {
            let s = self.fixed(n, "`mirror`")?;
            if !(s.starts_with("https://") || s.starts_with("http://") || s.starts_with('/') || s.starts_with("file:"))
            {
                return Err(self.ctx.err(n, format!(
                    "`mirror` must be an https:// or http:// URL, or a local directory (`/…` or `file:…`), found `{s}`"
                )));
            }
            Ok(s.trim_end_matches('/').to_string())
        };
        match self.per_arch(node, "`mirror`", &url)? {
            crate::recipe::schema::PerArch::All(one) => Ok((one, BTreeMap::new())),
            crate::recipe::schema::PerArch::Each(each) => {
                let first = each
                    .values()
                    .next()
                    .cloned()
                    .ok_or_else(|| self.ctx.err(node, "`mirror` names no architecture"))?;
                Ok((first, each))
            }
        }
    }

    /// Keyring files (the recipe's variables allowed), relative to the recipe.
    fn keyring(&self, n: &Node) -> Result<Vec<std::path::PathBuf>> {
        self.ctx
            .strings(n, "`keyring`")?
            .into_iter()
            .map(|k| {
                crate::recipe::vars::interpolate(&k, &self.variables).map(|k| self.recipe_dir.join(k)).map_err(|e| {
                    self.ctx.err(n, format!("in `keyring`: {e} (only the recipe's `variables` can be used here)"))
                })
            })
            .collect()
    }

    /// One of `base.debian.sources`.
    fn debian_source(&self, node: &Node) -> Result<crate::model::spec::DebianSource> {
        let f = self.ctx.map(node, &shape::DEBIAN_SOURCE)?;
        let (mirror, arch_mirrors) = self.mirrors(f.required("mirror")?)?;
        let mut suites = vec![self.suite(f.required("suite")?, "`suite`")?];
        if let Some(n) = f.get("suites") {
            for s in self
                .ctx
                .seq(n, "`suites`")?
                .into_iter()
                .map(|i| self.suite(i, "`suites`"))
                .collect::<Result<Vec<_>>>()?
            {
                if !suites.contains(&s) {
                    suites.push(s);
                }
            }
        }
        let keyring = self.keyring(f.required("keyring")?)?;
        let priority = match f.get("priority") {
            None => crate::model::spec::DEFAULT_PRIORITY,
            Some(n) => {
                let s = self.fixed(n, "`priority`")?;
                match s.parse::<i32>() {
                    Ok(p) if (-1000..=1000).contains(&p) => p,
                    _ => {
                        return Err(self.ctx.err(
                            n,
                            format!(
                                "`priority` is a whole number from -1000 to 1000 (apt's pin priority), found `{s}`"
                            ),
                        ));
                    }
                }
            }
        };
        let packages = match f.get("packages") {
            None => Vec::new(),
            Some(n) => self
                .ctx
                .strings(n, "`packages`")?
                .iter()
                .map(|p| {
                    crate::recipe::vars::interpolate(p, &self.variables)
                        .map_err(|e| self.ctx.err(n, format!("in `packages`: {e}")))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(crate::model::spec::DebianSource {
            mirror,
            arch_mirrors,
            suites,
            components: f
                .get("components")
                .map(|n| self.ctx.strings(n, "`components`"))
                .transpose()?
                .unwrap_or_else(|| vec!["main".into()]),
            keyring,
            priority,
            packages,
        })
    }

    pub(super) fn debian(&self, node: &Node) -> Result<Base> {
        let f = self.ctx.map(node, &shape::DEBIAN)?;
        let suite = self.suite(f.required("suite")?, "`suite`")?;
        self.note(f.required("suite")?, &self.suite_locs);
        let mut suites = vec![suite];
        if let Some(n) = f.get("suites") {
            self.note(n, &self.suite_locs);
            let items = self.ctx.seq(n, "`suites`")?;
            for s in items.into_iter().map(|i| self.suite(i, "`suites`")).collect::<Result<Vec<_>>>()? {
                if !suites.contains(&s) {
                    suites.push(s);
                }
            }
        }
        let flag = |name: &str, default: bool| -> Result<bool> {
            f.get(name).map(|n| self.ctx.bool(n, &format!("`{name}`"))).transpose().map(|v| v.unwrap_or(default))
        };
        let keyring = match f.get("keyring") {
            None => Vec::new(),
            Some(n) => self.keyring(n)?,
        };
        let components = f.get("components").map(|n| self.ctx.strings(n, "`components`")).transpose()?;
        let (mirror, arch_mirrors) = match f.get("mirror") {
            Some(n) => {
                let (one, each) = self.mirrors(n)?;
                (Some(one), each)
            }
            None => (None, BTreeMap::new()),
        };
        let mut sources = Vec::new();
        if let Some(n) = f.get("sources") {
            for item in self.ctx.seq(n, "`sources`")? {
                sources.push(self.debian_source(item)?);
            }
        }
        Ok(Base::Debian(crate::model::spec::DebianSpec {
            arch_mirrors,
            sources,
            suites,
            components: components.unwrap_or_else(|| vec!["main".into()]),
            mirror,
            packages: f.get("packages").map(|n| self.package_names(n)).transpose()?.unwrap_or_default(),
            essential: flag("essential", false)?,
            recommends: flag("recommends", false)?,
            keyring,
            check_valid_until: flag("check_valid_until", true)?,
            merged_usr: flag("merged_usr", true)?,
            alternatives: match f.get("alternatives") {
                None => BTreeMap::new(),
                Some(n) => self.ctx.string_map(n, "`alternatives`")?.into_iter().map(|(k, (v, _))| (k, v)).collect(),
            },
        }))
    }
}
