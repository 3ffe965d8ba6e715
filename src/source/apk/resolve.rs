//! Choosing packages from APK indexes the way `apk add` would, deterministically: each
//! request's best candidate, then, depth first in `D:` order, every dependency the chosen
//! set does not satisfy yet. A name is satisfied by a package of that name or by a
//! `p:` provide (versioned provides satisfy versioned constraints; `so:`, `cmd:`, `pc:` are
//! just names). Among real packages the highest version wins; among providers the highest
//! `provider_priority` (`k:`), then the highest provided version, then the name. `!name`
//! forbids. Packages from a tagged repository (`@edge`) are used only when asked for with
//! that tag (and for their own dependencies). After each request, `install_if` (`i:`)
//! packages whose conditions all hold are added, until nothing changes.

use super::record::Record;
use super::version::Version;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Any,
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    /// `~`: the version starts with the given one.
    Fuzzy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    pub name: String,
    pub op: Op,
    pub version: String,
    pub tag: Option<String>,
    pub conflict: bool,
}

impl Dep {
    pub fn parse(s: &str) -> Option<Dep> {
        let (conflict, s) = match s.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let op_at = s.find(['=', '<', '>', '~']);
        let (name_tag, rest) = match op_at {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        let (name, tag) = match name_tag.split_once('@') {
            Some((n, t)) => (n, Some(t.to_string())),
            None => (name_tag, None),
        };
        let (op, version) = if rest.is_empty() {
            (Op::Any, "")
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix("=~").or_else(|| rest.strip_prefix('~')) {
            (Op::Fuzzy, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (Op::Eq, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            return None;
        };
        if name.is_empty() {
            return None;
        }
        Some(Dep { name: name.into(), op, version: version.into(), tag, conflict })
    }

    pub fn accepts(&self, version: &str) -> bool {
        if self.op == Op::Any {
            return true;
        }
        if self.op == Op::Fuzzy {
            return version.starts_with(&self.version);
        }
        let (Some(have), Some(want)) = (Version::parse(version), Version::parse(&self.version)) else { return false };
        let o = have.cmp(&want);
        match self.op {
            Op::Eq => o.is_eq(),
            Op::Lt => o.is_lt(),
            Op::Le => o.is_le(),
            Op::Gt => o.is_gt(),
            Op::Ge => o.is_ge(),
            Op::Any | Op::Fuzzy => true,
        }
    }
}

impl std::fmt::Display for Dep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            Op::Any => "",
            Op::Eq => "=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Fuzzy => "~",
        };
        write!(
            f,
            "{}{}{}{}{}",
            if self.conflict { "!" } else { "" },
            self.name,
            self.tag.as_ref().map(|t| format!("@{t}")).unwrap_or_default(),
            op,
            self.version
        )
    }
}

/// One package available to the resolver: its record and the tag of its repository.
#[derive(Debug, Clone)]
pub struct Available<'a> {
    pub record: &'a Record,
    pub tag: Option<&'a str>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("unknown package `{name}`{}", if .near.is_empty() { String::new() } else { format!("; did you mean {}?", .near.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")) })]
    Unknown { name: String, near: Vec<String> },
    #[error("cannot satisfy `{dependency}`, needed by {}", .chain.join(" ← "))]
    Unsatisfiable { dependency: String, chain: Vec<String> },
    #[error("`{package}` is forbidden by `{by}` ({rule})")]
    Conflict { package: String, by: String, rule: String },
    #[error("{wanted} is needed, but the base image has {installed}; packages of an image base are not upgraded")]
    BaseHas { wanted: String, installed: String },
}

pub struct Resolver<'a> {
    available: Vec<Available<'a>>,
    by_name: BTreeMap<&'a str, Vec<usize>>,
    providers: BTreeMap<String, Vec<(usize, Option<String>)>>,
    /// Chosen packages, dependencies before the packages that need them (install order).
    pub chosen: Vec<usize>,
    installed: BTreeMap<&'a str, usize>,
    /// How many of `available` (the first ones) are installed below, not installable.
    below: usize,
}

fn provide_parts(p: &str) -> (String, Option<String>) {
    match p.split_once('=') {
        Some((n, v)) => (n.to_string(), Some(v.to_string())),
        None => (p.to_string(), None),
    }
}

impl<'a> Resolver<'a> {
    pub fn new(available: Vec<Available<'a>>) -> Self {
        Self::over(&[], available)
    }

    /// A resolver over `below` (an image base's installed database): those packages satisfy
    /// dependencies as they are and are never chosen, replaced or upgraded.
    pub fn over(below: &'a [Record], available: Vec<Available<'a>>) -> Self {
        let available: Vec<Available<'a>> =
            below.iter().map(|record| Available { record, tag: None }).chain(available).collect();
        let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut providers: BTreeMap<String, Vec<(usize, Option<String>)>> = BTreeMap::new();
        for (i, a) in available.iter().enumerate() {
            by_name.entry(a.record.name()).or_default().push(i);
            for p in a.record.list('p') {
                let (n, v) = provide_parts(p);
                providers.entry(n).or_default().push((i, v));
            }
        }
        let installed = below.iter().enumerate().map(|(i, r)| (r.name(), i)).collect();
        Resolver { available, by_name, providers, chosen: Vec::new(), installed, below: below.len() }
    }

    fn record(&self, i: usize) -> &'a Record {
        self.available[i].record
    }

    fn label(&self, i: usize) -> String {
        format!("{} {}", self.record(i).name(), self.record(i).version())
    }

    fn allowed(&self, i: usize, tags: &[&str]) -> bool {
        if i < self.below {
            return false;
        }
        match self.available[i].tag {
            None => true,
            Some(t) => tags.contains(&t),
        }
    }

    /// Whether an installed package satisfies `dep`.
    fn satisfied(&self, dep: &Dep) -> bool {
        if let Some(&i) = self.installed.get(dep.name.as_str())
            && dep.accepts(self.record(i).version())
        {
            return true;
        }
        self.providers.get(&dep.name).into_iter().flatten().any(|(i, v)| {
            self.installed.get(self.record(*i).name()) == Some(i)
                && match v {
                    Some(v) => dep.accepts(v),
                    None => dep.op == Op::Any,
                }
        })
    }

    /// The best candidate for `dep` among packages allowed by `tags`.
    fn candidate(&self, dep: &Dep, tags: &[&str]) -> Option<usize> {
        let real = self
            .by_name
            .get(dep.name.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| self.allowed(i, tags) && dep.accepts(self.record(i).version()));
        if let Some(best) = real.max_by(|&a, &b| {
            let (va, vb) = (Version::parse(self.record(a).version()), Version::parse(self.record(b).version()));
            va.cmp(&vb).then(b.cmp(&a))
        }) {
            return Some(best);
        }
        let list = self.providers.get(&dep.name)?;
        let unversioned_ok = list.len() == 1;
        list.iter()
            .filter(|(i, v)| {
                self.allowed(*i, tags)
                    && match v {
                        Some(v) => dep.accepts(v),
                        None => dep.op == Op::Any && (unversioned_ok || self.record(*i).get('k').is_some()),
                    }
            })
            .max_by(|(a, va), (b, vb)| {
                let prio = |i: &usize| self.record(*i).get('k').and_then(|k| k.parse::<i64>().ok()).unwrap_or(0);
                prio(a)
                    .cmp(&prio(b))
                    .then_with(|| va.as_deref().and_then(Version::parse).cmp(&vb.as_deref().and_then(Version::parse)))
                    .then_with(|| self.record(*b).name().cmp(self.record(*a).name()))
            })
            .map(|(i, _)| *i)
    }

    fn forbidden(&self, i: usize) -> Option<Error> {
        let r = self.record(i);
        for (&name, &j) in &self.installed {
            for d in self.record(j).list('D').into_iter().filter_map(Dep::parse).filter(|d| d.conflict) {
                let hits = d.name == r.name() && d.accepts(r.version())
                    || r.list('p').iter().any(|p| provide_parts(p).0 == d.name);
                if hits {
                    return Some(Error::Conflict { package: self.label(i), by: name.to_string(), rule: d.to_string() });
                }
            }
        }
        None
    }

    /// Installs a request (`name`, `name=1.2`, `name@tag`, `so:libfoo.so.1`, …).
    pub fn install(&mut self, request: &str) -> Result<(), Error> {
        let dep = Dep::parse(request).ok_or_else(|| Error::Unknown { name: request.into(), near: vec![] })?;
        if self.satisfied(&dep) {
            return Ok(());
        }
        let tags: Vec<&str> = dep.tag.as_deref().into_iter().collect();
        let Some(i) = self.candidate(&dep, &tags) else {
            let mut near: Vec<(usize, &str)> =
                self.by_name.keys().map(|n| (strsim::levenshtein(&dep.name, n), *n)).filter(|(d, _)| *d <= 2).collect();
            near.sort();
            return Err(Error::Unknown {
                name: dep.to_string(),
                near: near.into_iter().take(3).map(|(_, n)| n.to_string()).collect(),
            });
        };
        self.mark(i, &tags, &mut Vec::new())?;
        self.install_if()
    }

    fn mark(&mut self, i: usize, tags: &[&str], chain: &mut Vec<String>) -> Result<(), Error> {
        let r = self.record(i);
        if let Some(&j) = self.installed.get(r.name()) {
            if j < self.below {
                return Err(Error::BaseHas { wanted: self.label(i), installed: self.label(j) });
            }
            return Ok(());
        }
        if let Some(e) = self.forbidden(i) {
            return Err(e);
        }
        self.installed.insert(r.name(), i);
        chain.push(self.label(i));
        let mut own: Vec<&str> = tags.to_vec();
        if let Some(t) = self.available[i].tag {
            own.push(t);
        }
        for d in r.list('D').into_iter().filter_map(Dep::parse) {
            if d.conflict {
                if let Some(&j) = self.installed.get(d.name.as_str()).filter(|&&j| d.accepts(self.record(j).version()))
                {
                    return Err(Error::Conflict { package: self.label(j), by: r.name().into(), rule: d.to_string() });
                }
                continue;
            }
            if self.satisfied(&d) {
                continue;
            }
            let Some(c) = self.candidate(&d, &own) else {
                let mut chain = chain.clone();
                chain.reverse();
                return Err(Error::Unsatisfiable { dependency: d.to_string(), chain });
            };
            self.mark(c, &own, chain)?;
        }
        chain.pop();
        self.chosen.push(i);
        Ok(())
    }

    fn install_if(&mut self) -> Result<(), Error> {
        loop {
            let mut added = false;
            let names: Vec<&'a str> = self.by_name.keys().copied().collect();
            for name in names {
                if self.installed.contains_key(name) {
                    continue;
                }
                let Some(i) = self.candidate(
                    &Dep { name: name.into(), op: Op::Any, version: String::new(), tag: None, conflict: false },
                    &[],
                ) else {
                    continue;
                };
                let conds = self.record(i).list('i');
                if !conds.is_empty() && conds.iter().filter_map(|c| Dep::parse(c)).all(|d| self.satisfied(&d)) {
                    self.mark(i, &[], &mut Vec::new())?;
                    added = true;
                }
            }
            if !added {
                return Ok(());
            }
        }
    }

    /// The chosen records, dependencies first.
    pub fn chosen_records(&self) -> Vec<&'a Record> {
        self.chosen.iter().map(|&i| self.record(i)).collect()
    }
}

/// Checks that every architecture got the same names and versions; the error lists what
/// each lacks or has differently.
pub fn same_everywhere(per_arch: &[(String, Vec<&Record>)]) -> Result<(), String> {
    let sets: Vec<(String, BTreeMap<&str, &str>)> =
        per_arch.iter().map(|(a, rs)| (a.clone(), rs.iter().map(|r| (r.name(), r.version())).collect())).collect();
    let Some((first_arch, first)) = sets.first() else { return Ok(()) };
    let mut problems = Vec::new();
    for (arch, set) in &sets[1..] {
        for (n, v) in first {
            match set.get(n) {
                None => problems.push(format!("{arch} lacks `{n}` ({first_arch} has {v})")),
                Some(w) if w != v => problems.push(format!("`{n}` is {v} on {first_arch} but {w} on {arch}")),
                _ => {}
            }
        }
        for (n, v) in set {
            if !first.contains_key(n) {
                problems.push(format!("{first_arch} lacks `{n}` ({arch} has {v})"));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_syntax() {
        let d = Dep::parse("so:libc.musl-x86_64.so.1").unwrap();
        assert_eq!((d.name.as_str(), d.op.clone()), ("so:libc.musl-x86_64.so.1", Op::Any));
        let d = Dep::parse("postgresql13=13.8-r0").unwrap();
        assert!(d.accepts("13.8-r0") && !d.accepts("13.8-r1"));
        let d = Dep::parse("!foo>=2").unwrap();
        assert!(d.conflict && d.accepts("2.1") && !d.accepts("1.9"));
        let d = Dep::parse("bar@edge~1.2").unwrap();
        assert_eq!(d.tag.as_deref(), Some("edge"));
        assert!(d.accepts("1.2.5-r0") && !d.accepts("1.3"));
        assert_eq!(Dep::parse("x<3").unwrap().to_string(), "x<3");
    }
}
