//! `tests:` — checks `assemble test` runs against the built image.

use super::Reader;
use crate::model::platform::Arch;
use crate::recipe::decode::Result;
use crate::recipe::diag::Diagnostic;
use crate::recipe::schema::*;
use crate::recipe::shape;
use crate::recipe::values::*;
use crate::recipe::yaml::Node;

impl Reader {
    /// One item of `tests:`: exactly one of `exists`, `absent`, `non_root`, `max_size`, `run`.
    pub(super) fn test(&self, node: &Node, archs: &[Arch]) -> Result<TestSpec> {
        let f = self.ctx.map(node, &shape::TEST)?;
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
                    self.ctx.argv(n, "`run`")?.into_iter().map(|a| self.fixed(a, "`run`")).collect::<Result<_>>()?;
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
}
