//! The recipe reader: walks the YAML node tree and builds the typed [`Recipe`], refusing
//! anything invalid with a diagnostic that points at the node. Its concerns are in their own
//! files: the top level ([`top`]), the base and its package sources ([`base`]), layer content
//! ([`content`]), the configuration layer ([`config`]) and image tests ([`tests`]); what they
//! share — interpolation, paths, modes, owners, ids — is here.

mod base;
mod config;
mod content;
mod tests;
mod top;

use crate::model::platform::Arch;
use crate::recipe::decode::{Ctx, Fields, Result};
use crate::recipe::diag::{self, Diagnostic, Loc};
use crate::recipe::schema::*;
use crate::recipe::values::*;
use crate::recipe::vars;
use crate::recipe::yaml::{Node, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Reader {
    pub ctx: Ctx,
    pub variables: BTreeMap<String, String>,
    /// Variables the recipe declares without a default and `--var` did not give.
    pub unset: Vec<(String, Loc)>,
    pub recipe_dir: PathBuf,
    /// Where each package name was first given, for errors found when resolving.
    pub package_locs: std::cell::RefCell<BTreeMap<String, Loc>>,
    /// Where each Debian suite is named, for a suite the mirror does not have.
    pub suite_locs: std::cell::RefCell<BTreeMap<String, Loc>>,
}

impl Reader {
    /// Notes where each item of a `packages` list is, for errors found when resolving it.
    pub(super) fn note_packages(&self, node: &Node) {
        self.note(node, &self.package_locs);
    }

    /// Notes where each scalar of `node` (one, or a list) is, in `into`.
    pub(super) fn note(&self, node: &Node, into: &std::cell::RefCell<BTreeMap<String, Loc>>) {
        let items: Vec<&Node> = match &node.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut locs = into.borrow_mut();
        for item in items {
            if let Value::Scalar { text, .. } = &item.value {
                locs.entry(text.clone()).or_insert_with(|| self.ctx.loc(item));
            }
        }
    }

    pub(super) fn map_value<'a>(&self, map: &'a Node, key: &str) -> Result<&'a Node> {
        match &map.value {
            Value::Map(items) => Ok(&items.iter().find(|(k, _)| k.name == key).expect("key present").1),
            _ => Err(self.ctx.err(map, "expected a mapping")),
        }
    }

    pub(super) fn arch(&self, node: &Node) -> Result<Arch> {
        let s = self.ctx.str(node, "an architecture")?;
        s.parse().map_err(|e: String| self.ctx.err(node, e))
    }

    /// A string with `{var}` references checked against the recipe's variables.
    pub(super) fn interp(&self, node: &Node, what: &str) -> Result<String> {
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
    pub(super) fn image_level(&self, node: &Node, what: &str, name: &str) -> Result<String> {
        let s = self.interp(node, what)?;
        let mut vars = self.variables.clone();
        vars.insert("name".into(), name.into());
        vars::interpolate(&s, &vars).map_err(|e| {
            self.ctx.err(node, format!("in {what}: {e} (only the recipe's `variables` and `name` can be used here)"))
        })
    }

    /// `s` with the recipe's variables put in and the per-architecture built-ins left as
    /// they are (to check the parts that do not depend on the architecture).
    pub(super) fn variables_in(&self, s: &str) -> String {
        let mut vars = self.variables.clone();
        for b in vars::BUILTIN {
            vars.insert(b.to_string(), format!("<{b}>"));
        }
        vars::interpolate(s, &vars).unwrap_or_else(|_| s.to_string())
    }

    /// Whether `s` uses a variable that has no value (declared `~`, no `--var`).
    pub(super) fn leaves_unset(&self, s: &str) -> bool {
        self.unset.iter().any(|(name, _)| s.contains(&format!("{{{name}}}")))
    }

    /// A string interpolated now with the recipe's `variables` only (package names, suites:
    /// what resolution needs before any architecture is chosen).
    pub(super) fn fixed(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.interp(node, what)?;
        vars::interpolate(&s, &self.variables)
            .map_err(|e| self.ctx.err(node, format!("in {what}: {e} (only the recipe's `variables` can be used here)")))
    }

    /// An absolute path inside the image.
    pub(super) fn abs_path(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.interp(node, what)?;
        self.abs_str(&s, &self.ctx.loc(node))
    }

    pub(super) fn abs_str(&self, s: &str, loc: &Loc) -> Result<String> {
        if !s.starts_with('/') {
            return Err(Diagnostic::new(loc.clone(), format!("image path `{s}` must be absolute (start with `/`)")));
        }
        if s.split('/').any(|c| c == ".." || c == ".") {
            return Err(Diagnostic::new(loc.clone(), format!("image path `{s}` must not contain `.` or `..`")));
        }
        Ok(s.to_string())
    }

    pub(super) fn mode_field(&self, f: &Fields<'_>) -> Result<Option<u32>> {
        f.get("mode").map(|n| self.mode(n)).transpose()
    }

    pub(super) fn mode(&self, node: &Node) -> Result<u32> {
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

    pub(super) fn owner_field(&self, f: &Fields<'_>) -> Result<Option<Owner>> {
        f.get("owner").map(|n| self.owner(n)).transpose()
    }

    pub(super) fn owner(&self, node: &Node) -> Result<Owner> {
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

    /// A uid or gid: 0..=2^31-1, what every libc, tar reader and container runtime takes.
    pub(super) fn id(&self, node: &Node, what: &str) -> Result<u32> {
        let n = self.ctx.uint(node, what)?;
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_ID)
            .ok_or_else(|| self.ctx.err(node, format!("{what} {n} is out of range (0 to {MAX_ID})")))
    }
}
