//! Layer content: `files` (local files, downloads, archives), `tree`, `symlinks`, `dirs`.

use super::Reader;
use crate::model::digest::Digest;
use crate::model::platform::Arch;
use crate::recipe::decode::{Fields, Result};
use crate::recipe::diag::Diagnostic;
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
