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
    let mut groups: Vec<Group> = Vec::new();
    let mut last = None;
    each_atom(field, arch, |group, a| {
        let atom = Atom {
            name: a.name.to_string(),
            arch_qualifier: a.qualifier.map(str::to_string),
            constraint: a.constraint.map(|(op, v)| (op, Version::parse(v).expect("checked by each_atom"))),
        };
        if last != Some(group) {
            groups.push(Vec::new());
            last = Some(group);
        }
        groups.last_mut().expect("a group was started").push(atom);
    })?;
    Ok(groups)
}

/// Whether a relationship field parses for `arch`, as [`parse`] would read it, without
/// building it (an index checks every entry's fields and keeps them as text).
pub fn check(field: &str, arch: &str) -> Result<(), String> {
    each_atom(field, arch, |_, _| ())
}

/// An alternative as written: slices of the field.
struct AtomText<'s> {
    name: &'s str,
    qualifier: Option<&'s str>,
    /// The operator, and a version checked to parse.
    constraint: Option<(Op, &'s str)>,
}

/// Hands each alternative kept for `arch` to `each`, with the number of its group.
fn each_atom<'s>(field: &'s str, arch: &str, mut each: impl FnMut(usize, AtomText<'s>)) -> Result<(), String> {
    // No name or version holds one, and an index's fields are kept with NUL between them.
    if field.contains('\0') {
        return Err(format!("`{}` holds a NUL byte", field.escape_debug()));
    }
    for (n, group) in field.split(',').enumerate() {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        for alt in group.split('|') {
            if let Some(a) = parse_atom(alt.trim(), arch)? {
                each(n, a);
            }
        }
    }
    Ok(())
}

fn parse_atom<'s>(s: &'s str, arch: &str) -> Result<Option<AtomText<'s>>, String> {
    let bad = || format!("cannot parse relation `{s}`");
    let mut rest = s;
    let name_end = rest.find([' ', '(', '[', '<', '\t']).unwrap_or(rest.len());
    let (name_part, tail) = rest.split_at(name_end);
    rest = tail.trim();
    let (name, qualifier) = match name_part.split_once(':') {
        Some((n, q)) => (n, Some(q)),
        None => (name_part, None),
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
        let v = inner[op_end..].trim();
        if !Version::valid(v) {
            return Err(bad());
        }
        constraint = Some((op, v));
        rest = r[end + 1..].trim();
    }
    if let Some(r) = rest.strip_prefix('[') {
        let end = r.find(']').ok_or_else(bad)?;
        let list = || r[..end].split_whitespace();
        let negated = list().all(|a| a.starts_with('!'));
        let listed = list().any(|a| a.trim_start_matches('!') == arch);
        if negated == listed {
            return Ok(None);
        }
        rest = r[end + 1..].trim();
    }
    if rest.starts_with('<') {
        // Build profiles only appear in build relations; binary packages never carry them.
        return Ok(None);
    }
    Ok(Some(AtomText { name, qualifier, constraint }))
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

    /// `check` (an index's entries, kept as text) refuses exactly what `parse` refuses.
    #[test]
    fn check_refuses_what_parse_refuses() {
        let good = ["libc6 (>= 2.34), a | b:any", "x [amd64], y [!amd64]", "", " , ", "v (<< 1:2.0-1~bpo12+1)"];
        let bad = ["bad (>= )", "(>= 1)", "z (!! 1)", "w (>= 1", "u [amd64", "t (>= 1 2)", "a\0b"];
        for field in good {
            assert!(check(field, "amd64").is_ok() && parse(field, "amd64").is_ok(), "{field}");
        }
        for field in bad {
            assert!(check(field, "amd64").is_err() && parse(field, "amd64").is_err(), "{field}");
        }
    }
}
