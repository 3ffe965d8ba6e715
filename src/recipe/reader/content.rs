//! Layer content: `files` (local files, downloads, archives), `tree`, `symlinks`, `dirs`.

use super::Reader;
use crate::model::digest::Digest;
use crate::model::platform::Arch;
use crate::recipe::decode::{Fields, Result};
use crate::recipe::diag::{self, Diagnostic};
use crate::recipe::schema::*;
use crate::recipe::shape;
use crate::recipe::yaml::{Node, Value};
use std::collections::BTreeMap;

impl Reader {
    pub(super) fn content(&self, f: &Fields<'_>) -> Result<Content> {
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
    pub(super) fn per_arch<T>(&self, node: &Node, what: &str, one: &dyn Fn(&Node) -> Result<T>) -> Result<PerArch<T>> {
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

    pub(super) fn file(&self, node: &Node) -> Result<FileSpec> {
        let f = self.ctx.map(node, &shape::FILE)?;
        if let Some(image) = f.get("image") {
            return self.image_file(node, &f, image);
        }
        if let Some(p) = f.get("platform") {
            return Err(self
                .ctx
                .err(p, "`platform` belongs to `image` files: the platform of the image a path is taken from"));
        }
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
        let releases = match (f.get("releases"), &source) {
            (None, _) => None,
            (Some(r), FileSource::Url { .. }) => Some(self.releases(r)?),
            (Some(r), _) => {
                return Err(self
                    .ctx
                    .err(r, "`releases` belongs to `url` files: where new versions of a download are announced"));
            }
        };
        Ok(FileSpec {
            releases,
            source,
            to,
            mode: self.mode_field(&f)?,
            owner: self.owner_field(&f)?,
            extract,
            strip_components,
            loc: self.ctx.loc(node),
        })
    }

    /// `{image: REF, path: /in/the/image, to: /in/this/one}`: a file or directory of a
    /// registry image.
    fn image_file(&self, node: &Node, f: &Fields<'_>, image: &Node) -> Result<FileSpec> {
        for key in ["url", "sha256", "extract", "strip_components", "releases"] {
            if let Some(n) = f.get(key) {
                return Err(self
                    .ctx
                    .err(n, format!("`{key}` does not go with `image`: a path is taken from the image as it is")));
            }
        }
        let raw = self.interp(image, "`image`")?;
        // An image named by a variable without a default: the build stops and names it.
        let reference = if self.leaves_unset(&raw) { raw } else { self.fixed(image, "`image`")? };
        if !self.leaves_unset(&reference)
            && let Err(e) = crate::model::reference::Reference::parse(&reference)
        {
            return Err(self.ctx.err(image, e));
        }
        let Some(p) = f.get("path") else {
            return Err(self
                .ctx
                .err(node, "an `image` file needs `path`: the file or directory to take from the image"));
        };
        if let Value::Map(_) = p.value {
            return Err(self.ctx.err(
                p,
                "with `image`, `path` is one absolute path (name another `platform` to take it from that image)",
            ));
        }
        let path = self.abs_path(p, "`path`")?;
        let platform = f.get("platform").map(|n| self.arch(n)).transpose()?;
        let Some(to) = f.get("to").map(|n| self.abs_path(n, "`to`")).transpose()? else {
            return Err(self.ctx.err(node, "a file needs `to` (where it goes in the image)"));
        };
        Ok(FileSpec {
            releases: None,
            source: FileSource::Image(ImageFile { reference, path, platform }),
            to: Some(to),
            mode: self.mode_field(f)?,
            owner: self.owner_field(f)?,
            extract: Extract::No,
            strip_components: 0,
            loc: self.ctx.loc(node),
        })
    }

    /// `releases: {github: OWNER/REPO | listing: URL, pattern, version}`.
    fn releases(&self, node: &Node) -> Result<Releases> {
        let f = self.ctx.map(node, &shape::RELEASES)?;
        let feed = match (f.get("github"), f.get("listing")) {
            (Some(g), None) => {
                let repo = self.fixed(g, "`github`")?;
                let valid =
                    |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
                if !repo.split_once('/').is_some_and(|(o, r)| valid(o) && valid(r)) {
                    return Err(self.ctx.err(g, format!("`github` is `OWNER/REPO`, found `{repo}`")));
                }
                let api = match f.get("api") {
                    Some(a) => self.web_url(a, "`api`")?.trim_end_matches('/').to_string(),
                    None => "https://api.github.com".to_string(),
                };
                ReleaseFeed::Github { repo, api }
            }
            (None, Some(l)) => {
                if let Some(a) = f.get("api") {
                    return Err(self.ctx.err(a, "`api` goes with `github`"));
                }
                ReleaseFeed::Listing(self.web_url(l, "`listing`")?)
            }
            (Some(_), Some(l)) => return Err(self.ctx.err(l, "`releases` has `github` or `listing`, not both")),
            (None, None) => {
                return Err(self.ctx.err(node, "`releases` needs `github: OWNER/REPO` or `listing: URL`"));
            }
        };
        let p = f.required("pattern")?;
        // `{version}` is the pattern's own placeholder, not a recipe variable.
        let pattern = self.per_arch(p, "`pattern`", &|n| {
            let s = self.ctx.str(n, "`pattern`")?;
            if s.split_once("{version}").is_none_or(|(head, _)| head.is_empty()) {
                return Err(self.ctx.err(
                    n,
                    format!("`pattern` must hold `{{version}}` after some text (`tool_{{version}}.tgz`), found `{s}`"),
                ));
            }
            Ok(s)
        })?;
        let v = f.required("version")?;
        let version = self.ctx.str(v, "`version`")?;
        if !self.variables.contains_key(&version) {
            let names: Vec<&str> = self.variables.keys().map(String::as_str).collect();
            let d =
                self.ctx.err(v, format!("`version` names the variable `{version}`, which the recipe does not declare"));
            return Err(match diag::nearest(&version, names) {
                Some(near) => d.with_hint(format!("did you mean `{near}`?")),
                None => d.with_hint("declare it under `variables:` and use it in the download's `url`"),
            });
        }
        Ok(Releases { feed, pattern, version, loc: self.ctx.loc(node) })
    }

    /// An https:// or http:// URL, the recipe's variables put in.
    fn web_url(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.fixed(node, what)?;
        if !(s.starts_with("https://") || s.starts_with("http://")) {
            return Err(self.ctx.err(node, format!("{what} must start with https:// or http://, found `{s}`")));
        }
        Ok(s)
    }

    pub(super) fn tree(&self, node: &Node) -> Result<TreeSpec> {
        if let Value::Scalar { .. } = node.value {
            return Ok(TreeSpec {
                path: self.interp(node, "`tree`")?,
                to: "/".into(),
                owner: None,
                loc: self.ctx.loc(node),
            });
        }
        let f = self.ctx.map(node, &shape::TREE)?;
        Ok(TreeSpec {
            path: self.interp(f.required("path")?, "`path`")?,
            to: f.get("to").map(|n| self.abs_path(n, "`to`")).transpose()?.unwrap_or_else(|| "/".into()),
            owner: self.owner_field(&f)?,
            loc: self.ctx.loc(node),
        })
    }

    pub(super) fn symlinks(&self, node: &Node) -> Result<Vec<SymlinkSpec>> {
        let mut out = Vec::new();
        if let Value::Map(items) = &node.value {
            for (k, v) in items {
                let path = self.abs_str(&k.name, &self.ctx.key_loc(k))?;
                out.push(SymlinkSpec { path, target: self.interp(v, "a symlink target")?, loc: self.ctx.key_loc(k) });
            }
            return Ok(out);
        }
        for item in self.ctx.seq(node, "`symlinks`")? {
            let f = self.ctx.map(item, &shape::SYMLINK)?;
            out.push(SymlinkSpec {
                path: self.abs_path(f.required("path")?, "`path`")?,
                target: self.interp(f.required("target")?, "`target`")?,
                loc: self.ctx.loc(item),
            });
        }
        Ok(out)
    }

    pub(super) fn dir(&self, node: &Node) -> Result<DirSpec> {
        if let Value::Scalar { .. } = node.value {
            return Ok(DirSpec {
                path: self.abs_path(node, "a directory")?,
                mode: None,
                owner: None,
                loc: self.ctx.loc(node),
            });
        }
        let f = self.ctx.map(node, &shape::DIR)?;
        Ok(DirSpec {
            path: self.abs_path(f.required("path")?, "`path`")?,
            mode: self.mode_field(&f)?,
            owner: self.owner_field(&f)?,
            loc: self.ctx.loc(node),
        })
    }
}
