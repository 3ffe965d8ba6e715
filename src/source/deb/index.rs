//! The package universe of one architecture: every `Packages` entry of every configured
//! archive, suite and component. The candidate for a name is the version of the highest pin
//! priority, then the highest version (apt's rule; every archive is at 500 unless the
//! recipe says otherwise).

use super::control::Paragraph;
use super::relation::{self, Atom, Group};
use super::version::Version;

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
    pub sha256: [u8; 32],
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
        let fields = RELATIONS.map(|f| get(f).unwrap_or(""));
        let mut raw = String::with_capacity(fields.iter().map(|f| f.len() + 1).sum());
        for (i, (field, text)) in RELATIONS.iter().zip(fields).enumerate() {
            relation::check(text, arch).map_err(|e| format!("`{name}` {field}: {e}"))?;
            if i > 0 {
                raw.push('\0');
            }
            raw.push_str(text);
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
            sha256: get("SHA256")
                .and_then(|h| hex::decode(h.trim()).ok()?.try_into().ok())
                .ok_or_else(|| format!("`{name}` has no valid `SHA256`"))?,
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

/// Every package of one architecture, with two sorted indexes into them (a package's
/// position by its name; a (package, provides entry) by the name provided) rather than hash
/// maps of names: the maps held a copy of every name and a vector per name, 18 of a two-arch
/// resolution's 109 MB heap peak.
#[derive(Debug, Default)]
pub struct Universe {
    pub packages: Vec<Package>,
    /// Positions in `packages`, sorted by name (then position).
    by_name: Vec<u32>,
    /// (package, its `provides` entry), sorted by the name provided (then position).
    providers: Vec<(u32, u32)>,
}

impl Universe {
    /// Adds a whole index: the first becomes the universe's storage as it is (a universe is
    /// tens of MB; copying it into another vector doubled the peak).
    pub fn add_all(&mut self, packages: Vec<Package>) {
        if self.packages.is_empty() {
            self.packages = packages;
        } else {
            self.packages.extend(packages);
        }
        self.reindex();
    }

    pub fn add(&mut self, p: Package) {
        self.packages.push(p);
        self.reindex();
    }

    fn reindex(&mut self) {
        let pkgs = &self.packages;
        let at = |i: u32| &pkgs[i as usize];
        let mut by_name: Vec<u32> = (0..pkgs.len() as u32).collect();
        by_name.sort_by(|&a, &b| at(a).name.cmp(&at(b).name).then(a.cmp(&b)));
        let mut providers: Vec<(u32, u32)> =
            (0..pkgs.len() as u32).flat_map(|i| (0..at(i).provides.len() as u32).map(move |j| (i, j))).collect();
        let provided = |&(i, j): &(u32, u32)| &at(i).provides[j as usize].name;
        providers.sort_by(|a, b| provided(a).cmp(provided(b)).then(a.cmp(b)));
        (self.by_name, self.providers) = (by_name, providers);
    }

    /// Every version of `name`, in the order they were added.
    fn named<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a Package> + use<'a, 'n> {
        let from = self.by_name.partition_point(|&i| self.packages[i as usize].name.as_str() < name);
        self.by_name[from..].iter().map(|&i| &self.packages[i as usize]).take_while(move |p| p.name == name)
    }

    /// The candidate version of a real package, as apt chooses it: the highest pin priority,
    /// then the highest version; never one pinned below 0.
    pub fn candidate(&self, name: &str) -> Option<&Package> {
        self.named(name).filter(|p| p.pin >= 0).max_by(|a, b| a.pin.cmp(&b.pin).then_with(|| a.version.cmp(&b.version)))
    }

    /// Candidates of other packages that provide `atom` (respecting versioned provides).
    pub fn providers(&self, atom: &Atom) -> Vec<&Package> {
        let mut out: Vec<&Package> = Vec::new();
        let provided = |&(i, j): &(u32, u32)| self.packages[i as usize].provides[j as usize].name.as_str();
        let from = self.providers.partition_point(|e| provided(e) < atom.name.as_str());
        for e in self.providers[from..].iter().take_while(|e| provided(e) == atom.name) {
            let p = &self.packages[e.0 as usize];
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

    /// Every name, once, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut last: Option<&str> = None;
        self.by_name.iter().map(|&i| self.packages[i as usize].name.as_str()).filter(move |n| {
            let new = last != Some(*n);
            last = Some(n);
            new
        })
    }

    pub fn essential(&self) -> Vec<String> {
        self.names().filter(|n| self.candidate(n).is_some_and(|c| c.essential)).map(str::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    /// An index entry whose relationship field holds a NUL byte is skipped, as any entry
    /// apt could not read: kept raw with NUL between the fields, `Pre-Depends: a\0b` would
    /// otherwise become `Pre-Depends: a` and `Depends: b`.
    #[test]
    fn an_index_entry_with_a_nul_in_a_relationship_field_is_skipped() {
        let entry = |pre: &'static str| {
            move |f: &str| match f {
                "Package" => Some("p"),
                "Version" => Some("1"),
                "Filename" => Some("pool/p.deb"),
                "SHA256" => Some("0000000000000000000000000000000000000000000000000000000000000000"),
                "Pre-Depends" => Some(pre),
                _ => None,
            }
        };
        let read = |pre| super::Package::from_fields(&entry(pre), "amd64", &"s".into(), &"http://m".into());
        let refused = read("a\0b").unwrap_err();
        assert!(refused.contains("Pre-Depends") && refused.contains("NUL"), "{refused}");
        let p = read("a").unwrap();
        assert_eq!(p.relations().pre_depends.len(), 1);
        assert!(p.relations().depends.is_empty());
    }
}
