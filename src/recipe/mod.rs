//! Recipes: YAML files that say what goes into an image's base, application and
//! configuration layers. This module reads and validates them and nothing else — no network,
//! no file other than the recipe itself — so every mistake is reported with `file:line:col`
//! before any work starts.

pub mod decode;
pub mod diag;
pub mod graph;
pub mod schema;
pub mod units;
pub mod vars;
pub mod yaml;

use crate::model::digest::Digest;
use crate::model::platform::Arch;
use decode::{Ctx, Fields, Result};
pub use diag::{Diagnostic, Loc, Source};
pub use schema::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use yaml::{Node, Value};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read recipe `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no recipe `{name}`: looked for {looked}")]
    NotFound { name: String, looked: String },
    #[error(transparent)]
    Invalid(#[from] Box<Diagnostic>),
    #[error("recipes build on each other in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Error {
        Error::Invalid(Box::new(d))
    }
}

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
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_RECIPE_BYTES {
        return Err(read_err(std::io::Error::other(format!(
            "it is {len} bytes; a recipe is at most {MAX_RECIPE_BYTES} bytes"
        ))));
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    Ok(parse_all_with(path, text, given)?)
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
    let reader = |variables| Reader { ctx: ctx.clone(), variables, unset: Vec::new(), recipe_dir: dir.clone() };
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

pub(crate) const TOP: &[&str] = &[
    "name",
    "context",
    "archs",
    "tags",
    "variants",
    "registry",
    "variables",
    "epoch",
    "compression",
    "unpack_limit",
    "metadata",
    "annotations",
    "base",
    "layers",
    "config",
    "tests",
];
const TEST: &[&str] = &[
    "name", "exists", "kind", "mode", "owner", "group", "contains", "absent", "non_root", "max_size", "run", "exit",
    "output", "archs",
];
const LAYER: &[&str] = &["name", "packages", "files", "tree", "symlinks", "dirs"];
const DEBIAN: &[&str] = &[
    "suite",
    "suites",
    "components",
    "mirror",
    "packages",
    "essential",
    "recommends",
    "keyring",
    "check_valid_until",
    "merged_usr",
    "alternatives",
];
const CONFIG: &[&str] = &[
    "files",
    "tree",
    "symlinks",
    "dirs",
    "templates",
    "secrets",
    "groups",
    "users",
    "user",
    "entrypoint",
    "cmd",
    "env",
    "workdir",
    "ports",
    "volumes",
    "labels",
    "stop_signal",
    "healthcheck",
];
const FILE: &[&str] = &["path", "url", "sha256", "to", "mode", "owner", "extract", "strip_components"];
const METADATA: &[&str] =
    &["title", "description", "version", "source", "revision", "url", "documentation", "licenses", "vendor", "authors"];

struct Reader {
    ctx: Ctx,
    variables: BTreeMap<String, String>,
    /// Variables the recipe declares without a default and `--var` did not give.
    unset: Vec<(String, Loc)>,
    recipe_dir: PathBuf,
}

impl Reader {
    fn recipe(
        &mut self,
        root: &Node,
        path: &Path,
        dir: PathBuf,
        unit: &units::Unit<'_>,
        given: &BTreeMap<String, String>,
    ) -> Result<Recipe> {
        let f = self.ctx.map(root, "the recipe", TOP)?;
        let name_node = f.required("name")?;
        let name = self.ctx.str(name_node, "`name`")?;
        if !valid_repo_name(&name) {
            return Err(self.ctx.err(
                name_node,
                format!(
                    "`name` must be a repository name (lowercase letters, digits, `.`, `_`, `-`, `/`), found `{name}`"
                ),
            ));
        }
        if let Some(n) = f.get("variables") {
            let Value::Map(items) = &n.value else {
                return Err(self.ctx.err(n, format!("`variables` must be a mapping, found {}", n.kind())));
            };
            for (k, v) in items {
                if vars::BUILTIN.contains(&k.name.as_str()) {
                    return Err(Diagnostic::new(
                        self.ctx.key_loc(k),
                        format!("`{}` is a built-in variable and cannot be set", k.name),
                    ));
                }
                // The unit's tag and variant variables are already in place and win; then
                // `--var`; then the default here. No default (`~`): `--var` must give one.
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
        }
        let archs = match f.get("archs") {
            None => vec![Arch::Amd64],
            Some(n) => {
                let mut archs = Vec::new();
                for item in self.ctx.seq(n, "`archs`")? {
                    let arch = self.arch(item)?;
                    if archs.contains(&arch) {
                        return Err(self.ctx.err(item, format!("architecture `{arch}` is listed twice")));
                    }
                    archs.push(arch);
                }
                if archs.is_empty() {
                    return Err(self.ctx.err(n, "`archs` must list at least one architecture"));
                }
                archs
            }
        };
        let mut tags = Vec::new();
        for item in &unit.tags {
            let tag = format!("{}{}", self.image_level(item, "a tag", &name)?, unit.suffix);
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
        let registry = f
            .get("registry")
            .map(|n| -> Result<String> {
                let r = self.image_level(n, "`registry`", &name)?;
                if r.is_empty() || r.contains("://") || r.ends_with('/') {
                    return Err(self
                        .ctx
                        .err(n, format!("`registry` is REGISTRY[/NAMESPACE] such as `ghcr.io/me`, found `{r}`")));
                }
                Ok(r)
            })
            .transpose()?;
        let epoch = match f.get("epoch") {
            None => None,
            Some(n) => {
                let e = self.ctx.uint(n, "`epoch`")?;
                if e > MAX_EPOCH {
                    return Err(self.ctx.err(
                        n,
                        format!("`epoch` {e} is after the year 9999 (at most {MAX_EPOCH}); image times are RFC 3339 dates, which end there"),
                    ));
                }
                Some(e)
            }
        };
        let compression = match f.get("compression") {
            None => Compression::GZIP_DEFAULT,
            Some(n) => self.compression(n)?,
        };
        let unpack_limit = match f.get("unpack_limit") {
            None => crate::model::archive::DEFAULT_UNPACK_LIMIT,
            Some(n) => {
                let s = self.ctx.str(n, "`unpack_limit`")?;
                parse_size(&s).filter(|b| *b > 0).ok_or_else(|| {
                    self.ctx.err(n, format!("`unpack_limit` is a size such as `8 GiB` or `500 MB`, found `{s}`"))
                })?
            }
        };
        let mut annotations = BTreeMap::new();
        if let Some(n) = f.get("metadata") {
            let m = self.ctx.map(n, "`metadata`", METADATA)?;
            for (k, v) in m.entries() {
                let value = self.image_level(v, &format!("`metadata.{}`", k.name), &name)?;
                annotations.insert(format!("org.opencontainers.image.{}", k.name), value);
            }
        }
        if let Some(n) = f.get("annotations") {
            for (k, (_, _)) in self.ctx.string_map(n, "`annotations`")? {
                let v = self.map_value(n, &k)?;
                annotations.insert(k, self.image_level(v, "an annotation", &name)?);
            }
        }
        let base = match f.get("base") {
            None => Base::Scratch,
            Some(n) => self.base(n)?,
        };
        let context = match f.get("context") {
            None => None,
            Some(n) => Some((PathBuf::from(self.fixed(n, "`context`")?), self.ctx.loc(n))),
        };
        let mut layers = Vec::new();
        if let Some(n) = f.get("layers") {
            for (i, item) in self.ctx.seq(n, "`layers`")?.into_iter().enumerate() {
                let l = self.ctx.map(item, "a layer", LAYER)?;
                let name = l.str("name")?.unwrap_or_else(|| format!("layer-{}", i + 1));
                if matches!(name.as_str(), "base" | "config") || layers.iter().any(|x: &LayerSpec| x.name == name) {
                    return Err(self
                        .ctx
                        .err(item, format!("layer name `{name}` is used twice (`base` and `config` are reserved)")));
                }
                let content = self.content(&l)?;
                let packages = match l.get("packages") {
                    None => Vec::new(),
                    Some(n) => match base.packages() {
                        Some(Packages::Alpine(_)) => self.ctx.strings(n, "`packages`")?,
                        Some(Packages::Debian(_)) => self.package_names(n)?,
                        // From the base recipe's source, known when it is read at build time.
                        None if matches!(&base, Base::Image(b) if b.recipe.is_some()) => {
                            self.ctx.strings(n, "`packages`")?
                        }
                        None => {
                            return Err(self.ctx.err(n, "`packages` needs a package source such as `base: {debian: …}` (or `debian:` beside `base.image`)"));
                        }
                    },
                };
                layers.push(LayerSpec { name, packages, content, loc: self.ctx.loc(item) });
            }
        }
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
            loc: self.ctx.loc(root),
        })
    }

    /// One item of `tests:`: exactly one of `exists`, `absent`, `non_root`, `max_size`, `run`.
    fn test(&self, node: &Node, archs: &[Arch]) -> Result<TestSpec> {
        let f = self.ctx.map(node, "a test", TEST)?;
        let kinds: Vec<&str> =
            ["exists", "absent", "non_root", "max_size", "run"].into_iter().filter(|k| f.has(k)).collect();
        if kinds.len() != 1 {
            return Err(self
                .ctx
                .err(node, "a test has exactly one of `exists`, `absent`, `non_root`, `max_size` or `run`"));
        }
        let text = |key: &str| f.get(key).map(|n| self.fixed(n, &format!("`{key}`"))).transpose();
        let path = |key: &str| -> Result<String> {
            let n = f.required(key)?;
            let p = self.fixed(n, &format!("`{key}`"))?;
            if !p.starts_with('/') {
                return Err(self.ctx.err(n, format!("`{key}` is an absolute path in the image, found `{p}`")));
            }
            Ok(p)
        };
        let only = |allowed: &[&str]| -> Result<()> {
            for (k, _) in f.entries() {
                if !allowed.contains(&k.name.as_str()) && !["name", "archs", kinds[0]].contains(&k.name.as_str()) {
                    return Err(Diagnostic::new(
                        self.ctx.key_loc(k),
                        format!("`{}` does not apply to a `{}` test", k.name, kinds[0]),
                    ));
                }
            }
            Ok(())
        };
        let check = match kinds[0] {
            "exists" => {
                only(&["kind", "mode", "owner", "group", "contains"])?;
                let kind = text("kind")?;
                if let (Some(k), Some(n)) = (&kind, f.get("kind"))
                    && !["file", "dir", "symlink"].contains(&k.as_str())
                {
                    return Err(self.ctx.err(n, format!("`kind` is file, dir or symlink, found `{k}`")));
                }
                Check::Exists {
                    path: path("exists")?,
                    kind,
                    mode: f.get("mode").map(|n| self.mode(n)).transpose()?,
                    owner: text("owner")?,
                    group: text("group")?,
                    contains: text("contains")?,
                }
            }
            "absent" => {
                only(&[])?;
                Check::Absent { path: path("absent")? }
            }
            "non_root" => {
                only(&[])?;
                let n = f.required("non_root")?;
                if !self.ctx.bool(n, "`non_root`")? {
                    return Err(self.ctx.err(n, "`non_root: false` checks nothing; leave the test out"));
                }
                Check::NonRoot
            }
            "max_size" => {
                only(&[])?;
                let n = f.required("max_size")?;
                let s = self.ctx.str(n, "`max_size`")?;
                let bytes = parse_size(&s).ok_or_else(|| {
                    self.ctx.err(n, format!("`max_size` is a size such as `80 MB` or `512KiB`, found `{s}`"))
                })?;
                Check::MaxSize { bytes }
            }
            _ => {
                only(&["exit", "output"])?;
                let n = f.required("run")?;
                let argv: Vec<String> =
                    self.ctx.seq(n, "`run`")?.into_iter().map(|a| self.fixed(a, "`run`")).collect::<Result<_>>()?;
                if argv.is_empty() {
                    return Err(self
                        .ctx
                        .err(n, "`run` is a command and its arguments, such as [/usr/bin/caddy, version]"));
                }
                let exit = match f.get("exit") {
                    None => 0,
                    Some(n) => {
                        let e = self.ctx.uint(n, "`exit`")?;
                        if e > 255 {
                            return Err(self.ctx.err(n, format!("`exit` is an exit status, 0 to 255; found {e}")));
                        }
                        e
                    }
                };
                Check::Run { argv, exit: exit as i32, output: text("output")? }
            }
        };
        let mut only_archs = Vec::new();
        if let Some(n) = f.get("archs") {
            for item in self.ctx.seq(n, "`archs`")? {
                let a = self.arch(item)?;
                if !archs.contains(&a) {
                    return Err(self.ctx.err(item, format!("the recipe does not build `{a}`")));
                }
                only_archs.push(a);
            }
        }
        let name = match text("name")? {
            Some(n) => n,
            None => match &check {
                Check::Exists { path, .. } => format!("exists {path}"),
                Check::Absent { path } => format!("absent {path}"),
                Check::NonRoot => "user is not root".into(),
                Check::MaxSize { .. } => format!("size at most {}", f.str("max_size")?.unwrap_or_default()),
                Check::Run { argv, .. } => format!("run {}", argv.join(" ")),
            },
        };
        Ok(TestSpec { name, check, archs: only_archs, loc: self.ctx.loc(node) })
    }

    fn map_value<'a>(&self, map: &'a Node, key: &str) -> Result<&'a Node> {
        match &map.value {
            Value::Map(items) => Ok(&items.iter().find(|(k, _)| k.name == key).expect("key present").1),
            _ => Err(self.ctx.err(map, "expected a mapping")),
        }
    }

    fn arch(&self, node: &Node) -> Result<Arch> {
        let s = self.ctx.str(node, "an architecture")?;
        s.parse().map_err(|e: String| self.ctx.err(node, e))
    }

    /// A string with `{var}` references checked against the recipe's variables.
    fn interp(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.ctx.str(node, what)?;
        let known = |n: &str| self.variables.contains_key(n) || vars::BUILTIN.contains(&n);
        vars::check(&s, &known).map_err(|e| {
            let d = self.ctx.err(node, format!("in {what}: {e}"));
            let names: Vec<&str> =
                self.variables.keys().map(String::as_str).chain(vars::BUILTIN.iter().copied()).collect();
            match e
                .strip_prefix("unknown variable `")
                .and_then(|r| r.strip_suffix('`'))
                .and_then(|n| diag::nearest(n, names.clone()))
            {
                Some(near) => d.with_hint(format!("did you mean `{{{near}}}`?")),
                None => d.with_hint(format!("known variables: {}", names.join(", "))),
            }
        })?;
        Ok(s)
    }

    /// A string interpolated now, with the recipe's variables and `name` (no per-arch ones).
    fn image_level(&self, node: &Node, what: &str, name: &str) -> Result<String> {
        let s = self.interp(node, what)?;
        let mut vars = self.variables.clone();
        vars.insert("name".into(), name.into());
        vars::interpolate(&s, &vars).map_err(|e| {
            self.ctx.err(node, format!("in {what}: {e} (only the recipe's `variables` and `name` can be used here)"))
        })
    }

    /// `s` with the recipe's variables put in and the per-architecture built-ins left as
    /// they are (to check the parts that do not depend on the architecture).
    fn variables_in(&self, s: &str) -> String {
        let mut vars = self.variables.clone();
        for b in vars::BUILTIN {
            vars.insert(b.to_string(), format!("<{b}>"));
        }
        vars::interpolate(s, &vars).unwrap_or_else(|_| s.to_string())
    }

    /// Whether `s` uses a variable that has no value (declared `~`, no `--var`).
    fn leaves_unset(&self, s: &str) -> bool {
        self.unset.iter().any(|(name, _)| s.contains(&format!("{{{name}}}")))
    }

    /// A string interpolated now with the recipe's `variables` only (package names, suites:
    /// what resolution needs before any architecture is chosen).
    fn fixed(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.interp(node, what)?;
        vars::interpolate(&s, &self.variables)
            .map_err(|e| self.ctx.err(node, format!("in {what}: {e} (only the recipe's `variables` can be used here)")))
    }

    fn compression(&self, node: &Node) -> Result<Compression> {
        let (algo_node, level_node) = match &node.value {
            Value::Scalar { .. } => (node, None),
            _ => {
                let m = self.ctx.map(node, "`compression`", &["algorithm", "level"])?;
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

    fn base(&self, node: &Node) -> Result<Base> {
        match &node.value {
            Value::Scalar { text, .. } if text == "scratch" => Ok(Base::Scratch),
            Value::Scalar { text, .. } => Err(self.ctx.err(node, format!("unknown base `{text}`, expected `scratch` or a mapping with `debian`, `alpine`, `image` or `recipe`"))),
            _ => {
                let m = self.ctx.map(node, "`base`", &["scratch", "debian", "alpine", "image", "recipe"])?;
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

    fn package_names(&self, node: &Node) -> Result<Vec<String>> {
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

    fn alpine(&self, node: &Node) -> Result<Base> {
        let f = self.ctx.map(node, "`base.alpine`", &["repositories", "keys", "packages"])?;
        let mut repositories = Vec::new();
        for r in self.ctx.strings(f.required("repositories")?, "`repositories`")? {
            repositories.push(match r.strip_prefix('@').and_then(|r| r.split_once(char::is_whitespace)) {
                Some((tag, loc)) => (Some(tag.to_string()), loc.trim().to_string()),
                None => (None, r),
            });
        }
        let keys =
            self.ctx.strings(f.required("keys")?, "`keys`")?.into_iter().map(|k| self.recipe_dir.join(k)).collect();
        let packages = f.get("packages").map(|n| self.ctx.strings(n, "`packages`")).transpose()?.unwrap_or_default();
        Ok(Base::Alpine(crate::model::spec::AlpineSpec { repositories, keys, packages }))
    }

    fn debian(&self, node: &Node) -> Result<Base> {
        let f = self.ctx.map(node, "`base.debian`", DEBIAN)?;
        let suite = self.fixed(f.required("suite")?, "`suite`")?;
        let mut suites = vec![suite];
        if let Some(n) = f.get("suites") {
            let items = self.ctx.seq(n, "`suites`")?;
            for s in items.into_iter().map(|i| self.fixed(i, "`suites`")).collect::<Result<Vec<_>>>()? {
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
            Some(n) => self.ctx.strings(n, "`keyring`")?.into_iter().map(|k| self.recipe_dir.join(k)).collect(),
        };
        let components = f.get("components").map(|n| self.ctx.strings(n, "`components`")).transpose()?;
        Ok(Base::Debian(crate::model::spec::DebianSpec {
            suites,
            components: components.unwrap_or_else(|| vec!["main".into()]),
            mirror: f.str("mirror")?,
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

    fn content(&self, f: &Fields<'_>) -> Result<Content> {
        let mut c = Content::default();
        if let Some(n) = f.get("files") {
            for item in self.ctx.seq(n, "`files`")? {
                c.files.push(self.file(item)?);
            }
        }
        if let Some(n) = f.get("tree") {
            let items = if let Value::Map(_) = n.value { vec![n] } else { self.ctx.seq(n, "`tree`")? };
            for item in items {
                c.trees.push(self.tree(item)?);
            }
        }
        if let Some(n) = f.get("symlinks") {
            c.symlinks = self.symlinks(n)?;
        }
        if let Some(n) = f.get("dirs") {
            for item in self.ctx.seq(n, "`dirs`")? {
                c.dirs.push(self.dir(item)?);
            }
        }
        Ok(c)
    }

    /// A value that may be a per-arch mapping (`{amd64: …, arm64: …}`).
    fn per_arch<T>(&self, node: &Node, what: &str, one: &dyn Fn(&Node) -> Result<T>) -> Result<PerArch<T>> {
        match &node.value {
            Value::Map(items) => {
                let mut m = BTreeMap::new();
                for (k, v) in items {
                    let arch: Arch = k.name.parse().map_err(|e: String| {
                        Diagnostic::new(self.ctx.key_loc(k), format!("in per-architecture {what}: {e}"))
                    })?;
                    m.insert(arch, one(v)?);
                }
                Ok(PerArch::Each(m))
            }
            _ => Ok(PerArch::All(one(node)?)),
        }
    }

    fn file(&self, node: &Node) -> Result<FileSpec> {
        let f = self.ctx.map(node, "a file", FILE)?;
        let source = match (f.get("path"), f.get("url")) {
            (Some(_), Some(u)) => {
                return Err(self.ctx.err(u, "a file has either `path` or `url`, not both"));
            }
            (None, None) => {
                return Err(self.ctx.err(node, "a file needs `path` (a local file) or `url` (a download)"));
            }
            (Some(p), None) => {
                if let Some(s) = f.get("sha256") {
                    return Err(self
                        .ctx
                        .err(s, "`sha256` belongs to `url` files; a local file is hashed when it is read"));
                }
                FileSource::Local(self.per_arch(p, "`path`", &|n| self.interp(n, "`path`"))?)
            }
            (None, Some(u)) => {
                let url = self.per_arch(u, "`url`", &|n| {
                    let s = self.interp(n, "`url`")?;
                    let head = self.variables_in(&s);
                    let fine = head.starts_with("https://") || head.starts_with("http://");
                    if !fine && !self.leaves_unset(&s) {
                        return Err(self.ctx.err(n, format!("`url` must start with https:// or http://, found `{s}`")));
                    }
                    Ok(s)
                })?;
                let Some(sha) = f.get("sha256") else {
                    return Err(self
                        .ctx
                        .err(u, "a `url` file needs a `sha256` digest")
                        .with_hint("downloads are pinned: add `sha256: <64 hex digits>` (or one per architecture)"));
                };
                let sha256 = self.per_arch(sha, "`sha256`", &|n| {
                    let raw = self.ctx.str(n, "`sha256`")?;
                    if self.leaves_unset(&raw) {
                        // Never used: building needs the variable (see `unset_variables`).
                        return Ok(Digest::of(raw.as_bytes()));
                    }
                    let s = self.fixed(n, "`sha256`")?;
                    s.parse::<Digest>()
                        .map_err(|e| self.ctx.err(n, if s == raw { e } else { format!("`sha256` is `{raw}`: {e}") }))
                })?;
                if let (PerArch::Each(urls), PerArch::Each(shas)) = (&url, &sha256)
                    && let Some(a) = urls.keys().find(|a| !shas.contains_key(a))
                {
                    return Err(self.ctx.err(sha, format!("`sha256` has no digest for `{a}`, which `url` lists")));
                }
                FileSource::Url { url, sha256 }
            }
        };
        let extract = match f.get("extract") {
            None => Extract::No,
            Some(n) => {
                match &n.value {
                    Value::Scalar { text, quoted: false } if text == "true" => Extract::Auto,
                    Value::Scalar { text, quoted: false } if text == "false" => Extract::No,
                    _ => {
                        let s = self.ctx.str(n, "`extract`")?;
                        Extract::As(ArchiveKind::parse(&s).ok_or_else(|| {
                        self.ctx.err(n, format!("unknown archive type `{s}`, expected true, false, tar, tar.gz, tar.xz, tar.zst or zip"))
                    })?)
                    }
                }
            }
        };
        let strip_components = match f.get("strip_components") {
            None => 0,
            Some(n) => {
                if extract == Extract::No {
                    return Err(self.ctx.err(n, "`strip_components` only applies with `extract`"));
                }
                self.ctx.uint(n, "`strip_components`")? as u32
            }
        };
        let to = f.get("to").map(|n| self.abs_path(n, "`to`")).transpose()?;
        if to.is_none() && extract == Extract::No {
            return Err(self.ctx.err(node, "a file needs `to` (where it goes in the image)"));
        }
        Ok(FileSpec {
            source,
            to,
            mode: self.mode_field(&f)?,
            owner: self.owner_field(&f)?,
            extract,
            strip_components,
            loc: self.ctx.loc(node),
        })
    }

    fn tree(&self, node: &Node) -> Result<TreeSpec> {
        if let Value::Scalar { .. } = node.value {
            return Ok(TreeSpec {
                path: self.interp(node, "`tree`")?,
                to: "/".into(),
                owner: None,
                loc: self.ctx.loc(node),
            });
        }
        let f = self.ctx.map(node, "a tree", &["path", "to", "owner"])?;
        Ok(TreeSpec {
            path: self.interp(f.required("path")?, "`path`")?,
            to: f.get("to").map(|n| self.abs_path(n, "`to`")).transpose()?.unwrap_or_else(|| "/".into()),
            owner: self.owner_field(&f)?,
            loc: self.ctx.loc(node),
        })
    }

    fn symlinks(&self, node: &Node) -> Result<Vec<SymlinkSpec>> {
        let mut out = Vec::new();
        if let Value::Map(items) = &node.value {
            for (k, v) in items {
                let path = self.abs_str(&k.name, &self.ctx.key_loc(k))?;
                out.push(SymlinkSpec { path, target: self.interp(v, "a symlink target")?, loc: self.ctx.key_loc(k) });
            }
            return Ok(out);
        }
        for item in self.ctx.seq(node, "`symlinks`")? {
            let f = self.ctx.map(item, "a symlink", &["path", "target"])?;
            out.push(SymlinkSpec {
                path: self.abs_path(f.required("path")?, "`path`")?,
                target: self.interp(f.required("target")?, "`target`")?,
                loc: self.ctx.loc(item),
            });
        }
        Ok(out)
    }

    fn dir(&self, node: &Node) -> Result<DirSpec> {
        if let Value::Scalar { .. } = node.value {
            return Ok(DirSpec {
                path: self.abs_path(node, "a directory")?,
                mode: None,
                owner: None,
                loc: self.ctx.loc(node),
            });
        }
        let f = self.ctx.map(node, "a directory", &["path", "mode", "owner"])?;
        Ok(DirSpec {
            path: self.abs_path(f.required("path")?, "`path`")?,
            mode: self.mode_field(&f)?,
            owner: self.owner_field(&f)?,
            loc: self.ctx.loc(node),
        })
    }

    /// An absolute path inside the image.
    fn abs_path(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.interp(node, what)?;
        self.abs_str(&s, &self.ctx.loc(node))
    }

    fn abs_str(&self, s: &str, loc: &Loc) -> Result<String> {
        if !s.starts_with('/') {
            return Err(Diagnostic::new(loc.clone(), format!("image path `{s}` must be absolute (start with `/`)")));
        }
        if s.split('/').any(|c| c == ".." || c == ".") {
            return Err(Diagnostic::new(loc.clone(), format!("image path `{s}` must not contain `.` or `..`")));
        }
        Ok(s.to_string())
    }

    fn mode_field(&self, f: &Fields<'_>) -> Result<Option<u32>> {
        f.get("mode").map(|n| self.mode(n)).transpose()
    }

    fn mode(&self, node: &Node) -> Result<u32> {
        let s = self.ctx.str(node, "`mode`")?;
        let digits = s.strip_prefix("0o").unwrap_or(&s);
        match u32::from_str_radix(digits, 8) {
            Ok(m) if !digits.is_empty() && m <= 0o7777 => Ok(m),
            _ => Err(self
                .ctx
                .err(
                    node,
                    format!(
                        "bad mode `{s}`: expected octal permissions such as \"0644\", \"0755\", \"4755\" or \"1777\""
                    ),
                )
                .with_hint("quote modes in YAML so they stay octal: mode: \"0755\"")),
        }
    }

    fn owner_field(&self, f: &Fields<'_>) -> Result<Option<Owner>> {
        f.get("owner").map(|n| self.owner(n)).transpose()
    }

    fn owner(&self, node: &Node) -> Result<Owner> {
        let s = self.ctx.str(node, "`owner`")?;
        let bad = || self.ctx.err(node, format!("bad owner `{s}`: expected `user`, `user:group`, `uid` or `uid:gid`"));
        let (user, group) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s.as_str(), None),
        };
        let id = |part: &str| -> Option<IdRef> {
            if part.is_empty() {
                None
            } else if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().ok().filter(|n| *n <= MAX_ID).map(IdRef::Id)
            } else if valid_account_name(part) {
                Some(IdRef::Name(part.to_string()))
            } else {
                None
            }
        };
        let too_big = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        let range =
            |part: &str| self.ctx.err(node, format!("bad owner `{s}`: the id {part} is out of range (0 to {MAX_ID})"));
        let user = match id(user) {
            Some(u) => u,
            None if too_big(user) => return Err(range(user)),
            None => return Err(bad()),
        };
        let group = match group {
            None => None,
            Some(g) => Some(match id(g) {
                Some(g) => g,
                None if too_big(g) => return Err(range(g)),
                None => return Err(bad()),
            }),
        };
        Ok(Owner { user, group, loc: self.ctx.loc(node) })
    }

    fn config(&self, node: &Node) -> Result<ConfigSpec> {
        let f = self.ctx.map(node, "`config`", CONFIG)?;
        let mut c = ConfigSpec { content: self.content(&f)?, ..ConfigSpec::default() };
        if let Some(n) = f.get("templates") {
            for item in self.ctx.seq(n, "`templates`")? {
                let t = self.ctx.map(item, "a template", &["src", "to", "mode", "owner"])?;
                c.templates.push(TemplateSpec {
                    src: self.interp(t.required("src")?, "`src`")?,
                    to: self.abs_path(t.required("to")?, "`to`")?,
                    mode: self.mode_field(&t)?,
                    owner: self.owner_field(&t)?,
                    loc: self.ctx.loc(item),
                });
            }
        }
        if let Some(n) = f.get("secrets") {
            for item in self.ctx.seq(n, "`secrets`")? {
                let s = self.ctx.map(item, "a secret", &["env", "file", "to", "mode", "owner"])?;
                let source = match (s.get("env"), s.get("file")) {
                    (Some(e), None) => SecretSource::Env(self.ctx.str(e, "`env`")?),
                    (None, Some(p)) => SecretSource::File(self.interp(p, "`file`")?),
                    _ => {
                        return Err(self.ctx.err(
                            item,
                            "a secret needs exactly one of `env` (a variable name) or `file` (a local path)",
                        ));
                    }
                };
                c.secrets.push(SecretSpec {
                    source,
                    to: self.abs_path(s.required("to")?, "`to`")?,
                    mode: self.mode_field(&s)?.unwrap_or(0o400),
                    owner: self.owner_field(&s)?,
                    loc: self.ctx.loc(item),
                });
            }
        }
        if let Some(n) = f.get("groups") {
            for item in self.ctx.seq(n, "`groups`")? {
                let g = self.ctx.map(item, "a group", &["name", "gid", "members"])?;
                c.groups.push(GroupSpec {
                    name: self.account_name(g.required("name")?)?,
                    gid: self.id(g.required("gid")?, "`gid`")?,
                    members: match g.get("members") {
                        None => Vec::new(),
                        Some(m) => self
                            .ctx
                            .seq(m, "`members`")?
                            .into_iter()
                            .map(|n| self.account_name(n))
                            .collect::<Result<_>>()?,
                    },
                    loc: self.ctx.loc(item),
                });
            }
        }
        if let Some(n) = f.get("users") {
            for item in self.ctx.seq(n, "`users`")? {
                let u = self.ctx.map(item, "a user", &["name", "uid", "group", "groups", "home", "shell", "gecos"])?;
                let group = match u.get("group") {
                    None => None,
                    Some(g) => {
                        let s = self.ctx.str(g, "`group`")?;
                        Some(match s.parse::<u64>() {
                            Ok(_) => IdRef::Id(self.id(g, "`group`")?),
                            Err(_) => IdRef::Name(self.account_name(g)?),
                        })
                    }
                };
                c.users.push(UserSpec {
                    name: self.account_name(u.required("name")?)?,
                    uid: self.id(u.required("uid")?, "`uid`")?,
                    group,
                    groups: match u.get("groups") {
                        None => Vec::new(),
                        Some(m) => self
                            .ctx
                            .seq(m, "`groups`")?
                            .into_iter()
                            .map(|n| self.account_name(n))
                            .collect::<Result<_>>()?,
                    },
                    home: u.get("home").map(|n| self.account_path(n, "`home`")).transpose()?,
                    shell: u.get("shell").map(|n| self.account_path(n, "`shell`")).transpose()?,
                    gecos: match u.get("gecos") {
                        None => String::new(),
                        Some(n) => self.account_field(n, "`gecos`")?,
                    },
                    loc: self.ctx.loc(item),
                });
            }
        }
        if let Some(n) = f.get("user") {
            c.user = Some((self.ctx.str(n, "`user`")?, self.ctx.loc(n)));
        }
        let argv = |name: &str| -> Result<Option<Vec<String>>> {
            f.get(name)
                .map(|n| {
                    self.ctx
                        .seq(n, &format!("`{name}`"))?
                        .into_iter()
                        .map(|i| self.interp(i, &format!("`{name}`")))
                        .collect()
                })
                .transpose()
        };
        c.entrypoint = argv("entrypoint")?;
        c.cmd = argv("cmd")?;
        if let Some(n) = f.get("env") {
            for k in self.ctx.string_map(n, "`env`")?.into_keys() {
                if k.is_empty() || k.contains('=') {
                    return Err(self.ctx.err(n, format!("bad environment variable name `{k}`")));
                }
                let v = self.map_value(n, &k)?;
                c.env.insert(k, self.interp(v, "an `env` value")?);
            }
        }
        if let Some(n) = f.get("workdir") {
            c.workdir = Some(self.abs_path(n, "`workdir`")?);
        }
        if let Some(n) = f.get("ports") {
            for item in self.ctx.seq(n, "`ports`")? {
                let p = self.ctx.str(item, "a port")?;
                let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                if num.parse::<u16>().map_or(true, |n| n == 0) || !matches!(proto, "tcp" | "udp" | "sctp") {
                    return Err(self.ctx.err(
                        item,
                        format!("bad port `{p}`: expected `PORT` or `PORT/tcp|udp|sctp` with PORT in 1..=65535"),
                    ));
                }
                c.ports.push(format!("{num}/{proto}"));
            }
        }
        if let Some(n) = f.get("volumes") {
            for item in self.ctx.seq(n, "`volumes`")? {
                c.volumes.push(self.abs_path(item, "a volume")?);
            }
        }
        if let Some(n) = f.get("labels") {
            for k in self.ctx.string_map(n, "`labels`")?.into_keys() {
                let v = self.map_value(n, &k)?;
                c.labels.insert(k, self.interp(v, "a label")?);
            }
        }
        if let Some(n) = f.get("stop_signal") {
            let s = self.ctx.str(n, "`stop_signal`")?;
            if !(s.starts_with("SIG")
                && s.len() > 3
                && s[3..].bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+'))
                && s.parse::<u8>().is_err()
            {
                return Err(self
                    .ctx
                    .err(n, format!("bad stop signal `{s}`: expected a name such as `SIGTERM` or a number")));
            }
            c.stop_signal = Some(s);
        }
        if let Some(n) = f.get("healthcheck") {
            c.healthcheck = Some(self.healthcheck(n)?);
        }
        Ok(c)
    }

    fn healthcheck(&self, node: &Node) -> Result<Healthcheck> {
        let f = self.ctx.map(
            node,
            "`healthcheck`",
            &["test", "interval", "timeout", "start_period", "start_interval", "retries"],
        )?;
        let tn = f.required("test")?;
        let test = self.ctx.strings(tn, "`test`")?;
        if !matches!(test.first().map(String::as_str), Some("CMD" | "CMD-SHELL" | "NONE")) {
            return Err(self.ctx.err(tn, "`test` must start with `CMD`, `CMD-SHELL` or `NONE` (as in Docker)"));
        }
        let dur = |name: &str| -> Result<Option<u64>> {
            f.get(name)
                .map(|n| {
                    let s = self.ctx.str(n, &format!("`{name}`"))?;
                    match duration_syntax(&s) {
                        None => Err(self.ctx.err(n, format!("bad duration `{s}`: expected e.g. `30s`, `1m30s`, `500ms`"))),
                        Some(ns) if ns > i64::MAX as u128 => Err(self.ctx.err(
                            n,
                            format!("duration `{s}` is longer than Go's time.Duration holds (about 292 years), which docker and podman read it into"),
                        )),
                        Some(ns) => Ok(ns as u64),
                    }
                })
                .transpose()
        };
        Ok(Healthcheck {
            interval_ns: dur("interval")?,
            timeout_ns: dur("timeout")?,
            start_period_ns: dur("start_period")?,
            start_interval_ns: dur("start_interval")?,
            retries: match f.get("retries") {
                None => None,
                Some(n) => {
                    let r = self.ctx.uint(n, "`retries`")?;
                    if r > i32::MAX as u64 {
                        return Err(self.ctx.err(n, format!("`retries` {r} is out of range (0 to {})", i32::MAX)));
                    }
                    Some(r)
                }
            },
            test,
        })
    }

    /// A field of `/etc/passwd` (`gecos`), with the recipe's variables put in: one line of
    /// `:`-separated fields, so no `:`, newline or other control character.
    fn account_field(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.fixed(node, what)?;
        if let Some(c) = s.chars().find(|c| *c == ':' || c.is_control()) {
            return Err(self.ctx.err(
                node,
                format!(
                    "{what} `{}` holds {}; /etc/passwd and /etc/group are lines of `:`-separated fields",
                    s.escape_debug(),
                    describe_char(c)
                ),
            ));
        }
        Ok(s)
    }

    /// `home` or `shell`: an absolute path that is also a valid account field (no `,`
    /// either: the account writer refuses it in these fields).
    fn account_path(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.account_field(node, what)?;
        if s.contains(',') {
            return Err(self.ctx.err(node, format!("{what} `{s}` holds `,`, which account files do not take in it")));
        }
        self.abs_str(&s, &self.ctx.loc(node))
    }

    fn account_name(&self, node: &Node) -> Result<String> {
        let s = self.fixed(node, "a user or group name")?;
        if valid_account_name(&s) {
            Ok(s)
        } else {
            Err(self.ctx.err(node, format!("bad user or group name `{}`: expected letters, digits, `_`, `-`, `.`, not starting with a digit or `-`", s.escape_debug())))
        }
    }

    /// A uid or gid: 0..=2^31-1, what every libc, tar reader and container runtime takes.
    fn id(&self, node: &Node, what: &str) -> Result<u32> {
        let n = self.ctx.uint(node, what)?;
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_ID)
            .ok_or_else(|| self.ctx.err(node, format!("{what} {n} is out of range (0 to {MAX_ID})")))
    }
}

/// How a message names a character that may not be printable.
fn describe_char(c: char) -> String {
    match c {
        ':' => "`:`".into(),
        '\n' => "a newline".into(),
        '\0' => "a NUL byte".into(),
        c => format!("the control character U+{:04X}", c as u32),
    }
}

/// The largest recipe file read (recipes are a few kB).
pub const MAX_RECIPE_BYTES: u64 = 4 << 20;

/// The largest uid or gid a recipe may name.
pub const MAX_ID: u32 = (1 << 31) - 1;

/// The last second of the year 9999 (`9999-12-31T23:59:59Z`): RFC 3339 has four-digit years.
pub const MAX_EPOCH: u64 = 253_402_300_799;

fn valid_account_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn valid_repo_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
                && part.as_bytes()[0].is_ascii_alphanumeric()
        })
}

pub fn valid_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with(['.', '-'])
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `1h2m3s`, `30s`, `500ms`, `1.5s` → nanoseconds, computed exactly in integers, and only up
/// to what Go's `time.Duration` holds (2^63-1 ns), which docker and podman read it into.
pub fn parse_duration(s: &str) -> Option<u64> {
    duration_syntax(s).filter(|ns| *ns <= i64::MAX as u128).map(|ns| ns as u64)
}

/// The nanoseconds a duration string says, however many (`None`: not a duration).
fn duration_syntax(s: &str) -> Option<u128> {
    let mut total: u128 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (whole, frac) = match rest[..num_end].split_once('.') {
            Some((w, f)) => (w, f),
            None => (&rest[..num_end], ""),
        };
        if (whole.is_empty() && frac.is_empty()) || whole.len() > 30 {
            return None;
        }
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale: u128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_end..];
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
        let mut part = whole.checked_mul(scale)?;
        // The fraction, digit by digit, to the nanosecond.
        let mut unit = scale;
        for d in frac.bytes() {
            if !d.is_ascii_digit() {
                return None;
            }
            unit /= 10;
            part = part.checked_add(u128::from(d - b'0') * unit)?;
        }
        total = total.checked_add(part)?;
    }
    Some(total)
}

/// `80 MB`, `80MB`, `512 KiB`, `1.5 GB`, or a number of bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration(".5ms"), Some(500_000));
        assert_eq!(parse_duration("2562047h47m16.854775807s"), Some(i64::MAX as u64));
        assert_eq!(parse_duration("2562047h47m16.854775808s"), None, "one past time.Duration");
        assert_eq!(parse_duration("99999999999999999999h"), None);
        assert_eq!(parse_duration("1..5s"), None);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(super::parse_size("80 MB"), Some(80_000_000));
        assert_eq!(super::parse_size("512KiB"), Some(524_288));
        assert_eq!(super::parse_size("1.5 GB"), Some(1_500_000_000));
        assert_eq!(super::parse_size("1200"), Some(1200));
        assert_eq!(super::parse_size("12 parsecs"), None);
    }
}
