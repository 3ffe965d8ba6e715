//! Package relationships (`Depends`, `Pre-Depends`, `Provides`, `Conflicts`, `Breaks`, …):
//! comma-separated groups of `|`-separated alternatives, each `name[:arch] [(op version)]
//! [[arch list]] [<profiles>]`.

use super::version::Version;
use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<<" | "<" => Op::Lt,
            "<=" => Op::Le,
            "=" => Op::Eq,
            ">=" => Op::Ge,
            ">>" | ">" => Op::Gt,
            _ => return None,
        })
    }

    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Eq => ord == Ordering::Equal,
            Op::Ge => ord != Ordering::Less,
            Op::Gt => ord == Ordering::Greater,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    pub name: String,
    /// `:any`, `:native` or an architecture name.
    pub arch_qualifier: Option<String>,
    pub constraint: Option<(Op, Version)>,
}

impl Atom {
    pub fn satisfied_by(&self, version: &Version) -> bool {
        self.constraint.as_ref().is_none_or(|(op, v)| op.holds(version.cmp(v)))
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(q) = &self.arch_qualifier {
            write!(f, ":{q}")?;
        }
        if let Some((op, v)) = &self.constraint {
            write!(f, " ({} {v})", op.as_str())?;
        }
        Ok(())
    }
}

/// One comma-separated group: any alternative satisfies it.
pub type Group = Vec<Atom>;

/// Parses a relationship field for `arch`; alternatives restricted to other architectures
/// (`[!amd64]`, `[arm64]`) or to build profiles are dropped, as apt does for binary packages.
pub fn parse(field: &str, arch: &str) -> Result<Vec<Group>, String> {
    let mut groups = Vec::new();
    for group in field.split(',') {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        let mut alts = Vec::new();
        for alt in group.split('|') {
            if let Some(a) = parse_atom(alt.trim(), arch)? {
                alts.push(a);
            }
        }
        if !alts.is_empty() {
            groups.push(alts);
        }
    }
    Ok(groups)
}

fn parse_atom(s: &str, arch: &str) -> Result<Option<Atom>, String> {
    let bad = || format!("cannot parse relation `{s}`");
    let mut rest = s;
    let name_end = rest.find([' ', '(', '[', '<', '\t']).unwrap_or(rest.len());
    let (name_part, tail) = rest.split_at(name_end);
    rest = tail.trim();
    let (name, arch_qualifier) = match name_part.split_once(':') {
        Some((n, q)) => (n.to_string(), Some(q.to_string())),
        None => (name_part.to_string(), None),
    };
    if name.is_empty() {
        return Err(bad());
    }
    let mut constraint = None;
    if let Some(r) = rest.strip_prefix('(') {
        let end = r.find(')').ok_or_else(bad)?;
        let inner = r[..end].trim();
        let op_end = inner.find(|c: char| !matches!(c, '<' | '>' | '=')).unwrap_or(inner.len());
        let op = Op::parse(inner[..op_end].trim()).ok_or_else(bad)?;
        let v = Version::parse(inner[op_end..].trim()).ok_or_else(bad)?;
        constraint = Some((op, v));
        rest = r[end + 1..].trim();
    }
    if let Some(r) = rest.strip_prefix('[') {
        let end = r.find(']').ok_or_else(bad)?;
        let list: Vec<&str> = r[..end].split_whitespace().collect();
        let negated = list.iter().all(|a| a.starts_with('!'));
        let listed = list.iter().any(|a| a.trim_start_matches('!') == arch);
        if negated == listed {
            return Ok(None);
        }
        rest = r[end + 1..].trim();
    }
    if rest.starts_with('<') {
        // Build profiles only appear in build relations; binary packages never carry them.
        return Ok(None);
    }
    Ok(Some(Atom { name, arch_qualifier, constraint }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_alternatives_constraints_and_qualifiers() {
        let g = parse(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any, foo [!amd64], bar [amd64 arm64]",
            "amd64",
        )
        .unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(g[0][0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(g[1].len(), 2);
        assert_eq!(g[2][0].arch_qualifier.as_deref(), Some("any"));
        assert_eq!(g[3][0].name, "bar");
        assert!(g[0][0].satisfied_by(&Version::parse("2.36-9").unwrap()));
        assert!(!g[0][0].satisfied_by(&Version::parse("2.31-13").unwrap()));
    }
}
