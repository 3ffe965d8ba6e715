//! The package universe of one architecture: every `Packages` entry of every configured
//! archive, suite and component. The candidate for a name is the version of the highest pin
//! priority, then the highest version (apt's rule; every archive is at 500 unless the
//! recipe says otherwise).

use super::control::Paragraph;
use super::relation::{self, Atom, Group};
use super::version::Version;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: Version,
    /// `Architecture` and `Priority`: a handful of distinct words, each held once.
    pub arch: &'static str,
    pub essential: bool,
    pub priority: &'static str,
    /// `Pre-Depends`, `Depends`, `Recommends`, `Conflicts`, `Breaks` as the index gives them
    /// (checked to parse when read), parsed when resolution first looks at the package: of
    /// the tens of thousands an index lists it looks at a few hundred, and the parsed
    /// relations of all of them were most of a cold build's memory (287 of 398 MB).
    raw: Box<str>,
    /// The architecture the index is for (alternatives for others are dropped).
    index_arch: &'static str,
    parsed: std::sync::OnceLock<Box<Relations>>,
    pub provides: Vec<Atom>,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// Which suite and mirror it came from (shared by every package of an index).
    pub suite: std::sync::Arc<str>,
    pub mirror: std::sync::Arc<str>,
    /// `Multi-Arch: same` (dpkg's status names such packages with their architecture).
    pub multi_arch_same: bool,
    /// apt's pin priority of this version (its archive's, or 990 where the recipe pins the
    /// package to that archive).
    pub pin: i32,
}

/// A package's relationships, parsed.
#[derive(Debug, Clone, Default)]
pub struct Relations {
    pub pre_depends: Vec<Group>,
    pub depends: Vec<Group>,
    pub recommends: Vec<Group>,
    pub conflicts: Vec<Group>,
    pub breaks: Vec<Group>,
}

/// The relationship fields kept raw, in [`Relations`]' order.
const RELATIONS: [&str; 5] = ["Pre-Depends", "Depends", "Recommends", "Conflicts", "Breaks"];

/// One copy of each architecture or priority word for the whole process (there are a
/// handful; each is leaked once, and past 64 distinct words — no archive has them, a
/// hostile status database might — further ones read as `unknown`).
fn intern(word: &str) -> &'static str {
    static WORDS: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut words = WORDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(w) = words.get(word) {
        return w;
    }
    if words.len() >= 64 {
        return "unknown";
    }
    let w: &'static str = Box::leak(word.to_string().into_boxed_str());
    words.insert(w);
    w
}

impl Package {
    /// The package's relationships (parsed once, on first use).
    pub fn relations(&self) -> &Relations {
        self.parsed.get_or_init(|| {
            let raw: Vec<&str> = self.raw.split('\0').collect();
            let field =
                |i: usize| relation::parse(raw.get(i).copied().unwrap_or(""), self.index_arch).unwrap_or_default();
            Box::new(Relations {
                pre_depends: field(0),
                depends: field(1),
                recommends: field(2),
                conflicts: field(3),
                breaks: field(4),
            })
        })
    }

    pub fn from_paragraph(p: &Paragraph, arch: &str, suite: &str, mirror: &str) -> Result<Package, String> {
        Package::from_fields(&|f| p.get(f), arch, &suite.into(), &mirror.into())
    }

    /// An entry of a `Packages` index, read through `get` (a field by name, any case).
    pub fn from_fields<'t>(
        get: &dyn Fn(&str) -> Option<&'t str>,
        arch: &str,
        suite: &std::sync::Arc<str>,
        mirror: &std::sync::Arc<str>,
    ) -> Result<Package, String> {
        let name = get("Package").ok_or("entry without `Package`")?.to_string();
        let version =
            get("Version").and_then(Version::parse).ok_or_else(|| format!("`{name}` has no valid `Version`"))?;
        let rel = |f: &str| relation::parse(get(f).unwrap_or(""), arch).map_err(|e| format!("`{name}` {f}: {e}"));
        let provides = rel("Provides")?.into_iter().flatten().collect();
        // Checked now (an entry apt could not read is skipped, as apt skips it), kept raw.
        let mut raw = String::new();
        for (i, f) in RELATIONS.iter().enumerate() {
            rel(f)?;
            if i > 0 {
                raw.push('\0');
            }
            raw.push_str(get(f).unwrap_or(""));
        }
        Ok(Package {
            essential: get("Essential").is_some_and(|e| e.eq_ignore_ascii_case("yes")),
            priority: intern(get("Priority").unwrap_or("optional")),
            raw: raw.into(),
            index_arch: intern(arch),
            parsed: std::sync::OnceLock::new(),
            provides,
            arch: intern(get("Architecture").unwrap_or(arch)),
            filename: get("Filename").ok_or_else(|| format!("`{name}` has no `Filename`"))?.to_string(),
            size: get("Size").and_then(|s| s.parse().ok()).unwrap_or(0),
            sha256: get("SHA256").ok_or_else(|| format!("`{name}` has no `SHA256`"))?.to_string(),
            suite: suite.clone(),
            mirror: mirror.clone(),
            multi_arch_same: get("Multi-Arch") == Some("same"),
            pin: crate::model::spec::DEFAULT_PRIORITY,
            version,
            name,
        })
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.mirror, self.filename)
    }
}

#[derive(Debug, Default)]
pub struct Universe {
    pub packages: Vec<Package>,
    by_name: HashMap<String, Vec<usize>>,
    providers: HashMap<String, Vec<usize>>,
}

impl Universe {
    /// Adds a whole index: the first becomes the universe's storage as it is (a universe is
    /// tens of MB; copying it into another vector doubled the peak).
    pub fn add_all(&mut self, packages: Vec<Package>) {
        if self.packages.is_empty() {
            self.packages = packages;
            for i in 0..self.packages.len() {
                self.index(i);
            }
        } else {
            self.packages.reserve_exact(packages.len());
            for p in packages {
                self.add(p);
            }
        }
    }

    fn index(&mut self, i: usize) {
        let p = &self.packages[i];
        self.by_name.entry(p.name.clone()).or_default().push(i);
        for prov in &p.provides {
            self.providers.entry(prov.name.clone()).or_default().push(i);
        }
    }

    pub fn add(&mut self, p: Package) {
        self.packages.push(p);
        self.index(self.packages.len() - 1);
    }

    /// The candidate version of a real package, as apt chooses it: the highest pin priority,
    /// then the highest version; never one pinned below 0.
    pub fn candidate(&self, name: &str) -> Option<&Package> {
        self.by_name
            .get(name)?
            .iter()
            .map(|&i| &self.packages[i])
            .filter(|p| p.pin >= 0)
            .max_by(|a, b| a.pin.cmp(&b.pin).then_with(|| a.version.cmp(&b.version)))
    }

    /// Candidates of other packages that provide `atom` (respecting versioned provides).
    pub fn providers(&self, atom: &Atom) -> Vec<&Package> {
        let mut out: Vec<&Package> = Vec::new();
        for &i in self.providers.get(&atom.name).into_iter().flatten() {
            let p = &self.packages[i];
            // Only the candidate version of the provider counts.
            if self.candidate(&p.name).map(|c| c.version != p.version).unwrap_or(true) {
                continue;
            }
            let ok = p.provides.iter().any(|pr| {
                pr.name == atom.name
                    && match (&atom.constraint, &pr.constraint) {
                        (None, _) => true,
                        (Some(_), None) => false,
                        (Some(_), Some((_, v))) => atom.satisfied_by(v),
                    }
            });
            if ok && !out.iter().any(|o| o.name == p.name) {
                out.push(p);
            }
        }
        out
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub fn essential(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.by_name.keys().filter(|n| self.candidate(n).is_some_and(|c| c.essential)).cloned().collect();
        v.sort();
        v
    }
}
