//! Choosing the packages to install, the way `apt-get install --no-install-recommends`
//! does on top of what is already installed: each requested package's candidate, then,
//! depth first in field order (Pre-Depends, Depends, then Recommends when asked), every
//! dependency group that the chosen set does not satisfy yet gets its first alternative
//! that can be installed — a real package whose candidate satisfies the version
//! constraint and conflicts with nothing chosen, else a provider of it (preferring
//! higher `Priority`, then the name). The order of choices is deterministic.

use super::index::{Package, Universe};
use super::relation::{Atom, Group};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("unknown package `{name}` (searched {suites}){}", near_names(.near))]
    Unknown { name: String, suites: String, near: Vec<String> },
    #[error("cannot satisfy `{dependency}`, needed by {}", .chain.join(" ← "))]
    Unsatisfiable { dependency: String, chain: Vec<String> },
    #[error("`{a}` conflicts with `{b}`, and both are needed")]
    Conflict { a: String, b: String },
}

fn near_names(near: &[String]) -> String {
    if near.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", near.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
    }
}

fn priority_rank(p: &str) -> u8 {
    match p {
        "required" => 0,
        "important" => 1,
        "standard" => 2,
        "optional" => 3,
        _ => 4,
    }
}

pub struct Resolver<'a> {
    universe: &'a Universe,
    /// name → (version, provides) of everything installed below or chosen so far.
    installed: BTreeMap<String, &'a Package>,
    /// Names chosen by this resolution, in the order they were chosen.
    pub chosen: Vec<String>,
    recommends: bool,
    suites: String,
}

impl<'a> Resolver<'a> {
    /// `below`: packages the lower layers already installed.
    pub fn new(universe: &'a Universe, below: &[&'a Package], recommends: bool, suites: &[String]) -> Self {
        Resolver {
            universe,
            installed: below.iter().map(|p| (p.name.clone(), *p)).collect(),
            chosen: Vec::new(),
            recommends,
            suites: suites.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
        }
    }

    pub fn install(&mut self, name: &str) -> Result<(), Error> {
        if self.installed.contains_key(name) {
            return Ok(());
        }
        let Some(pkg) = self.universe.candidate(name) else {
            // A purely virtual name with providers is fine as a request too.
            let atom = Atom { name: name.into(), arch_qualifier: None, constraint: None };
            if let Some(p) = self.best_provider(&atom) {
                return self.mark(p, &mut vec![name.to_string()]);
            }
            return Err(Error::Unknown { name: name.into(), suites: self.suites.clone(), near: self.near(name) });
        };
        self.mark(pkg, &mut Vec::new())
    }

    fn near(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(usize, &str)> =
            self.universe.names().map(|n| (strsim::levenshtein(name, n), n)).filter(|(d, _)| *d <= 2).collect();
        scored.sort();
        scored.into_iter().take(3).map(|(_, n)| n.to_string()).collect()
    }

    fn satisfied(&self, atom: &Atom) -> bool {
        if let Some(p) = self.installed.get(&atom.name)
            && atom.satisfied_by(&p.version)
        {
            return true;
        }
        self.installed.values().any(|p| {
            p.provides.iter().any(|pr| {
                pr.name == atom.name
                    && match (&atom.constraint, &pr.constraint) {
                        (None, _) => true,
                        (Some(_), None) => false,
                        (Some(_), Some((_, v))) => atom.satisfied_by(v),
                    }
            })
        })
    }

    /// Whether `p` conflicts with (or breaks) anything installed, or anything installed
    /// conflicts with it.
    fn clashes(&self, p: &Package) -> Option<String> {
        let hits = |groups: &[Group], target: &Package| {
            groups.iter().flatten().any(|a| {
                (a.name == target.name && a.satisfied_by(&target.version))
                    || target.provides.iter().any(|pr| pr.name == a.name && a.constraint.is_none() && pr.name != p.name)
            })
        };
        for other in self.installed.values() {
            if other.name == p.name {
                continue;
            }
            let (pr, or) = (p.relations(), other.relations());
            if hits(&pr.conflicts, other) || hits(&pr.breaks, other) {
                return Some(other.name.clone());
            }
            let (oc, ob) = (&or.conflicts, &or.breaks);
            if oc.iter().chain(ob).flatten().any(|a| a.name == p.name && a.satisfied_by(&p.version)) {
                return Some(other.name.clone());
            }
        }
        None
    }

    fn best_provider(&self, atom: &Atom) -> Option<&'a Package> {
        let mut providers = self.universe.providers(atom);
        providers.retain(|p| self.clashes(p).is_none());
        providers.sort_by(|a, b| priority_rank(a.priority).cmp(&priority_rank(b.priority)).then(a.name.cmp(&b.name)));
        providers.first().copied()
    }

    fn mark(&mut self, pkg: &'a Package, chain: &mut Vec<String>) -> Result<(), Error> {
        if self.installed.contains_key(&pkg.name) {
            return Ok(());
        }
        if let Some(other) = self.clashes(pkg) {
            return Err(Error::Conflict { a: pkg.name.clone(), b: other });
        }
        self.installed.insert(pkg.name.clone(), pkg);
        self.chosen.push(pkg.name.clone());
        chain.push(format!("{} {}", pkg.name, pkg.version));
        let rel = pkg.relations();
        let mut groups: Vec<&Group> = rel.pre_depends.iter().chain(&rel.depends).collect();
        if self.recommends {
            groups.extend(&rel.recommends);
        }
        for group in groups {
            if group.iter().any(|a| self.satisfied(a)) {
                continue;
            }
            let mut done = false;
            for atom in group {
                if let Some(c) = self.universe.candidate(&atom.name)
                    && atom.satisfied_by(&c.version)
                    && self.clashes(c).is_none()
                {
                    self.mark(c, chain)?;
                    done = true;
                    break;
                }
                if let Some(p) = self.best_provider(atom) {
                    self.mark(p, chain)?;
                    done = true;
                    break;
                }
            }
            if !done {
                let is_recommend = rel.recommends.iter().any(|g| std::ptr::eq(g, group));
                if is_recommend {
                    continue;
                }
                let dependency = group.iter().map(Atom::to_string).collect::<Vec<_>>().join(" | ");
                let mut chain = chain.clone();
                chain.reverse();
                return Err(Error::Unsatisfiable { dependency, chain });
            }
        }
        chain.pop();
        Ok(())
    }

    pub fn installed(&self) -> Vec<&'a Package> {
        self.installed.values().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::deb::control;

    /// A universe from `Packages` paragraphs (Filename and SHA256 filled in).
    fn universe(text: &str) -> Universe {
        let mut u = Universe::default();
        for fields in control::borrowed(text) {
            let get = |name: &str| {
                fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v).or(match name {
                    "Filename" => Some("pool/x.deb"),
                    "SHA256" => Some("0000000000000000000000000000000000000000000000000000000000000000"),
                    _ => None,
                })
            };
            u.add(Package::from_fields(&get, "amd64", &"test".into(), &"http://mirror".into()).unwrap());
        }
        u
    }

    /// The packages chosen for `requests`, in the order chosen, with their versions.
    fn chosen(u: &Universe, below: &[&str], recommends: bool, requests: &[&str]) -> Result<Vec<String>, Error> {
        let below: Vec<&Package> = below.iter().map(|n| u.candidate(n).unwrap()).collect();
        let mut r = Resolver::new(u, &below, recommends, &["test".to_string()]);
        for name in requests {
            r.install(name)?;
        }
        Ok(r.chosen.iter().map(|n| format!("{n} {}", r.installed[n].version)).collect())
    }

    const UNIVERSE: &str = "\
Package: app
Version: 1.0
Pre-Depends: prelib
Depends: libfoo (>= 2), mta | mail-transport-agent, perl:any
Recommends: docs

Package: libfoo
Version: 1.5

Package: libfoo
Version: 2.1

Package: prelib
Version: 1

Package: perl
Version: 5
Multi-Arch: allowed

Package: exim-lite
Version: 1
Provides: mail-transport-agent
Priority: extra

Package: postfix-lite
Version: 1
Provides: mail-transport-agent
Priority: optional

Package: docs
Version: 1

Package: picker
Version: 1
Depends: first | second

Package: first
Version: 1
Conflicts: libfoo

Package: second
Version: 1

Package: picker2
Version: 1
Depends: third | second

Package: third
Version: 1
Breaks: libfoo (<< 3)

Package: tool-user
Version: 1
Depends: tool-api (>= 3)

Package: tool-old
Version: 1
Provides: tool-api (= 2)

Package: tool-impl
Version: 1
Provides: tool-api (= 3.1)

Package: needy
Version: 1
Depends: middle

Package: middle
Version: 1
Depends: libfoo (>= 9)

Package: lonely
Version: 1
Recommends: nowhere

Package: clash-a
Version: 1
Conflicts: clash-b

Package: clash-b
Version: 1
";

    #[test]
    fn pre_depends_then_depends_in_field_order_with_the_highest_version_as_candidate() {
        let u = universe(UNIVERSE);
        assert_eq!(
            chosen(&u, &[], false, &["app"]).unwrap(),
            ["app 1.0", "prelib 1", "libfoo 2.1", "postfix-lite 1", "perl 5"]
        );
    }

    #[test]
    fn a_virtual_package_goes_to_the_provider_of_highest_priority() {
        let u = universe(UNIVERSE);
        // exim-lite is `extra`, postfix-lite `optional`: apt takes the more important one.
        assert_eq!(chosen(&u, &[], false, &["mail-transport-agent"]).unwrap(), ["postfix-lite 1"]);
    }

    #[test]
    fn recommends_only_when_asked_and_an_unsatisfiable_one_is_skipped() {
        let u = universe(UNIVERSE);
        assert!(!chosen(&u, &[], false, &["app"]).unwrap().contains(&"docs 1".to_string()));
        assert!(chosen(&u, &[], true, &["app"]).unwrap().contains(&"docs 1".to_string()));
        assert_eq!(chosen(&u, &[], true, &["lonely"]).unwrap(), ["lonely 1"]);
    }

    #[test]
    fn an_alternative_that_conflicts_or_breaks_what_is_installed_is_passed_over() {
        let u = universe(UNIVERSE);
        // `first` conflicts with the installed libfoo; `third` breaks libfoo (<< 3).
        assert_eq!(chosen(&u, &["libfoo"], false, &["picker"]).unwrap(), ["picker 1", "second 1"]);
        assert_eq!(chosen(&u, &["libfoo"], false, &["picker2"]).unwrap(), ["picker2 1", "second 1"]);
        // With nothing installed, the first alternative wins.
        assert_eq!(chosen(&u, &[], false, &["picker"]).unwrap(), ["picker 1", "first 1"]);
    }

    #[test]
    fn a_versioned_dependency_is_met_only_by_a_versioned_provide_that_satisfies_it() {
        let u = universe(UNIVERSE);
        assert_eq!(chosen(&u, &[], false, &["tool-user"]).unwrap(), ["tool-user 1", "tool-impl 1"]);
    }

    #[test]
    fn what_the_layers_below_installed_is_not_chosen_again() {
        let u = universe(UNIVERSE);
        assert_eq!(chosen(&u, &["libfoo", "prelib", "perl"], false, &["app"]).unwrap(), ["app 1.0", "postfix-lite 1"]);
        assert_eq!(chosen(&u, &["second"], false, &["second"]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn failures_name_the_package_the_chain_and_the_near_names() {
        let u = universe(UNIVERSE);
        assert_eq!(
            chosen(&u, &[], false, &["apq"]).unwrap_err().to_string(),
            "unknown package `apq` (searched `test`); did you mean `app`?"
        );
        assert_eq!(
            chosen(&u, &[], false, &["needy"]).unwrap_err().to_string(),
            "cannot satisfy `libfoo (>= 9)`, needed by middle 1 ← needy 1"
        );
        assert_eq!(
            chosen(&u, &[], false, &["clash-a", "clash-b"]).unwrap_err(),
            Error::Conflict { a: "clash-b".into(), b: "clash-a".into() }
        );
    }
}
