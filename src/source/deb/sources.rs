//! Where the Debian archive is: the recipe's `mirror`, else `ASSEMBLE_DEBIAN_MIRROR`, else the
//! machine's apt configuration (`/etc/apt/sources.list` and `sources.list.d/*.list` in the
//! one-line format, `*.sources` in deb822). For each suite the recipe names, the first apt
//! entry that lists it gives its mirror, so `bookworm-security` can come from its own host.

use super::control;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptEntry {
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
}

/// Reads every `deb` entry of the apt configuration under `root` (normally `/`).
pub fn apt_entries(root: &Path) -> Vec<AptEntry> {
    let mut out = Vec::new();
    let etc = root.join("etc/apt");
    if let Ok(text) = fs_err::read_to_string(etc.join("sources.list")) {
        out.extend(one_line(&text));
    }
    let mut files: Vec<_> = fs_err::read_dir(etc.join("sources.list.d"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let Ok(text) = fs_err::read_to_string(&f) else { continue };
        match f.extension().and_then(|e| e.to_str()) {
            Some("list") => out.extend(one_line(&text)),
            Some("sources") => out.extend(deb822(&text)),
            _ => {}
        }
    }
    out
}

fn one_line(text: &str) -> Vec<AptEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace().peekable();
        if words.next() != Some("deb") {
            continue;
        }
        if words.peek().is_some_and(|w| w.starts_with('[')) {
            // Options such as [arch=amd64 signed-by=…] may span several words.
            for w in words.by_ref() {
                if w.ends_with(']') {
                    break;
                }
            }
        }
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else { continue };
        out.push(AptEntry {
            uri: uri.trim_end_matches('/').into(),
            suites: vec![suite.into()],
            components: words.map(String::from).collect(),
        });
    }
    out
}

fn deb822(text: &str) -> Vec<AptEntry> {
    let mut out = Vec::new();
    for p in control::parse(text) {
        let types = p.get("Types").unwrap_or("");
        if !types.split_whitespace().any(|t| t == "deb")
            || p.get("Enabled").is_some_and(|e| e.eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let words = |f: &str| -> Vec<String> { p.get(f).unwrap_or("").split_whitespace().map(String::from).collect() };
        for uri in words("URIs") {
            out.push(AptEntry {
                uri: uri.trim_end_matches('/').into(),
                suites: words("Suites"),
                components: words("Components"),
            });
        }
    }
    out
}

/// The mirror for each suite: `explicit` (recipe or environment) for all of them, else the
/// first apt entry listing the suite, else the entry of the suite's "base" (`bookworm` for
/// `bookworm-updates`), else an entry of the same archive (one serves every release: a
/// `-security` suite from the security archive's entry, others from the main archive's).
pub fn mirrors(
    suites: &[String],
    explicit: Option<&str>,
    entries: &[AptEntry],
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for s in suites {
        let uri = match explicit {
            Some(m) => m.trim_end_matches('/').to_string(),
            None => {
                let base = s.split('-').next().unwrap_or(s);
                entries
                    .iter()
                    .find(|e| e.suites.iter().any(|x| x == s))
                    .or_else(|| entries.iter().find(|e| e.suites.iter().any(|x| x == base)))
                    .or_else(|| {
                        let security = |x: &str| x.ends_with("-security");
                        entries.iter().find(|e| e.suites.iter().any(|x| security(x) == security(s)))
                    })
                    .map(|e| e.uri.clone())
                    .ok_or_else(|| {
                        format!("no mirror for suite `{s}`: set `mirror:` in the recipe or ASSEMBLE_DEBIAN_MIRROR, or add the suite to apt's sources")
                    })?
            }
        };
        out.insert(s.clone(), uri);
    }
    Ok(out)
}

/// One archive a recipe reads, as opening it needs it: per suite and architecture, the
/// mirror; the keyring its releases must be signed by; apt's pin priority of its packages.
#[derive(Debug, Clone)]
pub struct Source {
    /// `(suite, arch) → mirror`.
    pub mirrors: BTreeMap<(String, crate::model::platform::Arch), String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub keyring: Vec<std::path::PathBuf>,
    pub priority: i32,
    /// Package names (`*` wildcards) pinned to this archive.
    pub pinned: Vec<String>,
}

impl Source {
    /// apt's pin priority of `package` from this archive.
    pub fn pin(&self, package: &str) -> i32 {
        if self.pinned.iter().any(|p| glob(p, package)) { crate::model::spec::PINNED_PRIORITY } else { self.priority }
    }
}

/// `*` matches any run of characters; everything else itself. Linear in the name for any
/// number of `*` (each run between them is matched at its first place, which is enough).
pub fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The archives of a Debian base for `archs`: the main one (its mirror from the recipe,
/// `explicit` or apt's configuration, per suite) and each of `spec.sources`.
pub fn archives(
    spec: &crate::model::spec::DebianSpec,
    archs: &[crate::model::platform::Arch],
    explicit: Option<&str>,
    entries: &[AptEntry],
    default_keyring: &std::path::Path,
) -> Result<Vec<Source>, String> {
    let per_suite = mirrors(&spec.suites, explicit, entries)?;
    let mut main = Source {
        mirrors: BTreeMap::new(),
        suites: spec.suites.clone(),
        components: spec.components.clone(),
        keyring: if spec.keyring.is_empty() { vec![default_keyring.to_path_buf()] } else { spec.keyring.clone() },
        priority: crate::model::spec::DEFAULT_PRIORITY,
        pinned: Vec::new(),
    };
    for suite in &spec.suites {
        for &arch in archs {
            let m = spec.arch_mirrors.get(&arch).cloned().unwrap_or_else(|| per_suite[suite].clone());
            main.mirrors.insert((suite.clone(), arch), m);
        }
    }
    let mut out = vec![main];
    for extra in &spec.sources {
        let mut s = Source {
            mirrors: BTreeMap::new(),
            suites: extra.suites.clone(),
            components: extra.components.clone(),
            keyring: extra.keyring.clone(),
            priority: extra.priority,
            pinned: extra.packages.clone(),
        };
        for suite in &extra.suites {
            for &arch in archs {
                let m = extra.arch_mirrors.get(&arch).unwrap_or(&extra.mirror);
                s.mirrors.insert((suite.clone(), arch), m.trim_end_matches('/').to_string());
            }
        }
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs_match_as_apt_s_package_patterns_do() {
        for (p, n, ok) in [
            ("php7.4*", "php7.4-fpm", true),
            ("php7.4*", "php8.2-fpm", false),
            ("*-fpm", "php7.4-fpm", true),
            ("nginx", "nginx", true),
            ("nginx", "nginx-light", false),
            ("a*b*c", "axxbyyc", true),
        ] {
            assert_eq!(super::glob(p, n), ok, "{p} {n}");
        }
    }

    use super::*;

    #[test]
    fn both_formats() {
        let a = one_line(
            "# c\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian/ bookworm main contrib\ndeb-src http://x/ y z\n",
        );
        assert_eq!(
            a,
            vec![AptEntry {
                uri: "http://m.example/debian".into(),
                suites: vec!["bookworm".into()],
                components: vec!["main".into(), "contrib".into()]
            }]
        );
        let b = deb822(
            "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://s.example/debian-security\nSuites: bookworm-security\nComponents: main\n",
        );
        let m =
            mirrors(&["bookworm".into(), "bookworm-security".into(), "bookworm-backports".into()], None, &b).unwrap();
        assert_eq!(m["bookworm-security"], "http://s.example/debian-security");
        assert_eq!(m["bookworm-backports"], "http://m.example/debian");
        // Another release comes from the same archives.
        let m = mirrors(&["trixie".into(), "trixie-security".into()], None, &b).unwrap();
        assert_eq!(m["trixie"], "http://m.example/debian");
        assert_eq!(m["trixie-security"], "http://s.example/debian-security");
        assert!(mirrors(&["trixie".into()], None, &[]).is_err());
    }
}
