//! The top level of a recipe: name, variables, architectures, tags, registry, epoch,
//! compression, limits, metadata and annotations, layers, and the parts read elsewhere.

use super::Reader;
use crate::model::platform::Arch;
use crate::recipe::decode::Result;
use crate::recipe::diag::Diagnostic;
use crate::recipe::schema::*;
use crate::recipe::shape;
use crate::recipe::values::*;
use crate::recipe::vars;
use crate::recipe::yaml::{Node, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl Reader {
    /// One image of the recipe (`unit`: the tags, suffix and variables that tell it apart),
    /// with `given` the command line's `--var` values.
    pub fn recipe(
        &mut self,
        root: &Node,
        path: &Path,
        dir: PathBuf,
        unit: &crate::recipe::units::Unit<'_>,
        given: &BTreeMap<String, String>,
    ) -> Result<Recipe> {
        let f = self.ctx.map(root, &shape::RECIPE)?;
        let name = self.name(f.required("name")?)?;
        if let Some(n) = f.get("variables") {
            self.variables(n, given)?;
        }
        let archs = match f.get("archs") {
            None => vec![Arch::Amd64],
            Some(n) => self.archs(n)?,
        };
        let tags = self.tags(unit, &name)?;
        let registry = f.get("registry").map(|n| self.registry(n, &name)).transpose()?;
        let epoch = f.get("epoch").map(|n| self.epoch(n)).transpose()?;
        let compression = match f.get("compression") {
            None => Compression::GZIP_DEFAULT,
            Some(n) => self.compression(n)?,
        };
        let unpack_limit = match f.get("unpack_limit") {
            None => crate::model::archive::DEFAULT_UNPACK_LIMIT,
            Some(n) => self.unpack_limit(n)?,
        };
        let annotations = self.annotations(&f, &name)?;
        let base = match f.get("base") {
            None => Base::Scratch,
            Some(n) => self.base(n)?,
        };
        let context = match f.get("context") {
            None => None,
            Some(n) => Some((PathBuf::from(self.fixed(n, "`context`")?), self.ctx.loc(n))),
        };
        let layers = match f.get("layers") {
            None => Vec::new(),
            Some(n) => self.layers(n, &base)?,
        };
        let config = match f.get("config") {
            None => ConfigSpec::default(),
            Some(n) => self.config(n)?,
        };
        let tests = match f.get("tests") {
            None => Vec::new(),
            Some(n) => self.ctx.seq(n, "`tests`")?.into_iter().map(|t| self.test(t, &archs)).collect::<Result<_>>()?,
        };
        Ok(Recipe {
            path: path.to_path_buf(),
            dir,
            context,
            name,
            archs,
            explicit_tags: tags.clone(),
            tags,
            variant: unit.variant.clone(),
            suffix: unit.suffix.clone(),
            registry,
            lock_path: PathBuf::new(),
            variables: self.variables.clone(),
            given_variables: given.clone(),
            unset_variables: self.unset.clone(),
            epoch,
            compression,
            unpack_limit,
            annotations,
            base,
            layers,
            config,
            tests,
            package_locs: self.package_locs.borrow().clone(),
            suite_locs: self.suite_locs.borrow().clone(),
            loc: self.ctx.loc(root),
        })
    }

    fn name(&self, node: &Node) -> Result<String> {
        let name = self.ctx.str(node, "`name`")?;
        if !valid_repo_name(&name) {
            return Err(self.ctx.err(
                node,
                format!(
                    "`name` must be a repository name (lowercase letters, digits, `.`, `_`, `-`, `/`), found `{name}`"
                ),
            ));
        }
        Ok(name)
    }

    /// `variables:` into the reader's variables: the unit's tag and variant variables are
    /// already in place and win; then `--var`; then the default here. No default (`~`):
    /// `--var` must give one.
    fn variables(&mut self, node: &Node, given: &BTreeMap<String, String>) -> Result<()> {
        let Value::Map(items) = &node.value else {
            return Err(self.ctx.err(node, format!("`variables` must be a mapping, found {}", node.kind())));
        };
        for (k, v) in items {
            if vars::BUILTIN.contains(&k.name.as_str()) {
                return Err(Diagnostic::new(
                    self.ctx.key_loc(k),
                    format!("`{}` is a built-in variable and cannot be set", k.name),
                ));
            }
            if self.variables.contains_key(&k.name) {
                continue;
            }
            let value = match (given.get(&k.name), &v.value) {
                (Some(g), _) => g.clone(),
                (None, Value::Null) => {
                    self.unset.push((k.name.clone(), self.ctx.key_loc(k)));
                    String::new()
                }
                (None, _) => self.ctx.str(v, &format!("`{}` in `variables`", k.name))?,
            };
            self.variables.insert(k.name.clone(), value);
        }
        Ok(())
    }

    fn archs(&self, node: &Node) -> Result<Vec<Arch>> {
        let mut archs = Vec::new();
        for item in self.ctx.seq(node, "`archs`")? {
            let arch = self.arch(item)?;
            if archs.contains(&arch) {
                return Err(self.ctx.err(item, format!("architecture `{arch}` is listed twice")));
            }
            archs.push(arch);
        }
        if archs.is_empty() {
            return Err(self.ctx.err(node, "`archs` must list at least one architecture"));
        }
        Ok(archs)
    }

    /// This image's tags, with the variant's suffix (`latest` when the recipe names none).
    fn tags(&self, unit: &crate::recipe::units::Unit<'_>, name: &str) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        for item in &unit.tags {
            let tag = format!("{}{}", self.image_level(item, "a tag", name)?, unit.suffix);
            if !valid_tag(&tag) {
                return Err(self.ctx.err(item, format!("`{tag}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)")));
            }
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if tags.is_empty() {
            tags.push(format!("latest{}", unit.suffix));
        }
        Ok(tags)
    }

    fn registry(&self, node: &Node, name: &str) -> Result<String> {
        let r = self.image_level(node, "`registry`", name)?;
        if r.is_empty() || r.contains("://") || r.ends_with('/') {
            return Err(self
                .ctx
                .err(node, format!("`registry` is REGISTRY[/NAMESPACE] such as `ghcr.io/me`, found `{r}`")));
        }
        Ok(r)
    }

    fn epoch(&self, node: &Node) -> Result<u64> {
        let e = self.ctx.uint(node, "`epoch`")?;
        if e > MAX_EPOCH {
            return Err(self.ctx.err(
                node,
                format!("`epoch` {e} is after the year 9999 (at most {MAX_EPOCH}); image times are RFC 3339 dates, which end there"),
            ));
        }
        Ok(e)
    }

    fn unpack_limit(&self, node: &Node) -> Result<u64> {
        let s = self.ctx.str(node, "`unpack_limit`")?;
        parse_size(&s).filter(|b| *b > 0).ok_or_else(|| {
            self.ctx.err(node, format!("`unpack_limit` is a size such as `8 GiB` or `500 MB`, found `{s}`"))
        })
    }

    /// `metadata` (as `org.opencontainers.image.*`) and free `annotations`.
    fn annotations(&self, f: &crate::recipe::decode::Fields<'_>, name: &str) -> Result<BTreeMap<String, String>> {
        let mut annotations = BTreeMap::new();
        if let Some(n) = f.get("metadata") {
            let m = self.ctx.map(n, &shape::METADATA)?;
            for (k, v) in m.entries() {
                let value = self.image_level(v, &format!("`metadata.{}`", k.name), name)?;
                annotations.insert(format!("org.opencontainers.image.{}", k.name), value);
            }
        }
        if let Some(n) = f.get("annotations") {
            for (k, (_, _)) in self.ctx.string_map(n, "`annotations`")? {
                let v = self.map_value(n, &k)?;
                annotations.insert(k, self.image_level(v, "an annotation", name)?);
            }
        }
        Ok(annotations)
    }

    /// `layers:` — the application layers, with their packages from the base's source.
    fn layers(&self, node: &Node, base: &Base) -> Result<Vec<LayerSpec>> {
        let mut layers = Vec::new();
        for (i, item) in self.ctx.seq(node, "`layers`")?.into_iter().enumerate() {
            let l = self.ctx.map(item, &shape::LAYER)?;
            let name = l.str("name")?.unwrap_or_else(|| format!("layer-{}", i + 1));
            if matches!(name.as_str(), "base" | "config") || layers.iter().any(|x: &LayerSpec| x.name == name) {
                return Err(self
                    .ctx
                    .err(item, format!("layer name `{name}` is used twice (`base` and `config` are reserved)")));
            }
            let content = self.content(&l)?;
            if let Some(n) = l.get("packages") {
                self.note_packages(n);
            }
            let packages = match l.get("packages") {
                None => Vec::new(),
                Some(n) => match base.packages() {
                    Some(Packages::Alpine(_)) => self.ctx.strings(n, "`packages`")?,
                    Some(Packages::Debian(_)) => self.package_names(n)?,
                    // From the base recipe's source, known when it is read at build time.
                    None if matches!(base, Base::Image(b) if b.recipe.is_some()) => {
                        self.ctx.strings(n, "`packages`")?
                    }
                    None => {
                        return Err(self.ctx.err(n, "`packages` needs a package source such as `base: {debian: …}` (or `debian:` beside `base.image`)"));
                    }
                },
            };
            layers.push(LayerSpec { name, packages, content, loc: self.ctx.loc(item) });
        }
        Ok(layers)
    }
}
