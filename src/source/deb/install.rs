//! Laying unpacked packages into a layer tree (a path two packages ship with other content
//! goes to the one declaring `Replaces` on the other, whichever is laid first, as dpkg does;
//! neither declaring it is an error; a directory stays a directory), and doing natively what
//! their maintainer scripts would have done:
//! - merged /usr: `/bin`, `/sbin`, `/lib*` are links into `/usr` and package paths below them
//!   are placed under `/usr` (dpkg's file lists keep the packages' own paths, as on a
//!   merged-/usr system installed by debootstrap);
//! - the dpkg database: `status`, `info/<pkg>.list`, `.md5sums`, `.conffiles` and the
//!   maintainer scripts (kept, never run), so `dpkg -l`, `dpkg-query` and scanners see the
//!   real package set;
//! - `/etc/passwd`, `group`, `shadow`, `gshadow` from base-passwd's master files;
//! - the CA bundle `/etc/ssl/certs/ca-certificates.crt`, `/etc/ca-certificates.conf` and the
//!   `/etc/ssl/certs/*.pem` links and OpenSSL's `<subject hash>.<n>` links (see [`super::certs`]),
//!   from the certificates ca-certificates ships;
//! - `update-alternatives` links for every literal `update-alternatives --install` in the
//!   packages' postinst (highest priority wins), with dpkg's alternatives state files.
//!
//! Not emulated: debconf questions, `ldconfig` (glibc finds libraries in the default paths
//! without a cache), diversions and triggers.

use super::control;
use super::unpack::{Deb, Kind as DebKind};
use crate::model::digest::Digest;
use crate::model::path::ImagePath;
use crate::store::Store;
use crate::tree::{Content, Entry, Kind, Tree, View};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One package to lay down.
pub struct Pkg<'a> {
    pub name: &'a str,
    pub arch: &'a str,
    pub multi_arch_same: bool,
    pub deb: &'a Deb,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "packages `{a}` and `{b}` both ship `{path}` with different content, and neither declares `Replaces` on the other"
    )]
    FileConflict { path: String, a: String, b: String },
    #[error("package `{0}` has no control file")]
    NoControl(String),
    #[error("package `{package}` holds `{path}`, a hard link whose target cannot be placed in the image")]
    BadLink { package: String, path: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

const MERGED: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Where a package path lands: under `/usr` for the merged directories.
pub fn place(path: &str, merged_usr: bool) -> String {
    if merged_usr {
        let top = path.split('/').next().unwrap_or("");
        if MERGED.contains(&top) {
            return format!("usr/{path}");
        }
    }
    path.to_string()
}

fn replaces(deb: &Deb, other: &str) -> bool {
    let text = String::from_utf8_lossy(deb.control.get("control").map(Vec::as_slice).unwrap_or(b""));
    let p = control::parse(&text);
    let field = p.first().and_then(|p| p.get("Replaces")).unwrap_or("");
    field.split(',').any(|r| r.trim().split([' ', '(', ':']).next() == Some(other))
}

fn info_name(p: &Pkg<'_>) -> String {
    if p.multi_arch_same { format!("{}:{}", p.name, p.arch) } else { p.name.to_string() }
}

/// Adds the packages' files to `tree` (which holds this layer), checking conflicts between
/// packages of this layer.
pub fn lay_files(
    store: &Store,
    pkgs: &[Pkg<'_>],
    tree: &mut Tree,
    merged_usr: bool,
    first_layer: bool,
) -> Result<(), Error> {
    if merged_usr && first_layer {
        for d in MERGED {
            let target = format!("usr/{d}");
            // Wherever a package ships the directory itself or its /usr twin: trixie's packages
            // ship only /usr/lib, and the ELF interpreter is still found by /lib/….
            let under = |path: &str| path.strip_prefix(d).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            let ships = |path: &str| under(path) || path.strip_prefix("usr/").is_some_and(under);
            if pkgs.iter().any(|p| p.deb.entries.iter().any(|e| ships(&e.path))) {
                let _ =
                    tree.insert(ImagePath::new(d).expect("static"), Entry::symlink(target, Arc::from("merged /usr")));
            }
        }
    }
    let mut owner: HashMap<String, (usize, Digest)> = HashMap::new();
    for (i, p) in pkgs.iter().enumerate() {
        let origin: Arc<str> = Arc::from(format!("package `{}`", p.name));
        for (n, e) in p.deb.entries.iter().enumerate() {
            if merged_usr && MERGED.contains(&e.path.as_str()) {
                continue; // the directory itself is the /usr link
            }
            let placed = place(&e.path, merged_usr);
            let Some(path) = ImagePath::new(&placed) else { continue };
            if let DebKind::File { digest, .. } = &e.kind {
                if let Some((j, d)) = owner.get(&placed)
                    && d != digest
                {
                    if replaces(pkgs[*j].deb, p.name) {
                        // As dpkg: "replaced by files in installed package" — the earlier
                        // package replaces this one, so its file stays.
                        continue;
                    }
                    if !replaces(p.deb, pkgs[*j].name) {
                        return Err(Error::FileConflict {
                            path: format!("/{}", e.path),
                            a: pkgs[*j].name.into(),
                            b: p.name.into(),
                        });
                    }
                }
                owner.insert(placed, (i, *digest));
            }
            let link = match &e.kind {
                DebKind::Hardlink(t) => ImagePath::new(&place(t, merged_usr)),
                _ => None,
            };
            let content = |d: &Digest| p.deb.content(store, n).unwrap_or_else(|| Content::Stored(store.blob_path(d)));
            let entry = Entry::of_member(e, content, link, origin.clone())
                .ok_or_else(|| Error::BadLink { package: p.name.into(), path: format!("/{}", e.path) })?;
            // A later package replaces an earlier one's file when it declares so (checked
            // above); a directory stays a directory, and dpkg keeps the first package's directory.
            tree.put_unless_dir(path, entry);
        }
    }
    Ok(())
}

fn bytes_entry(text: impl Into<Vec<u8>>, mode: u32, what: &str) -> Entry {
    Entry::bytes(text.into(), mode, Arc::from(what))
}

fn put(tree: &mut Tree, path: &str, e: Entry) {
    // Paths here are built from package names; one that is not a valid path is skipped.
    if let Some(p) = ImagePath::new(path) {
        tree.put(p, e);
    }
}

/// Writes the dpkg database for `all` installed packages (`status`), and the `info/` files
/// of the packages `new` in this layer.
pub fn dpkg_database(store: &Store, below_status: Option<&str>, new: &[Pkg<'_>], tree: &mut Tree) -> Result<(), Error> {
    let mut status: BTreeMap<String, String> = BTreeMap::new();
    for p in control::parse(below_status.unwrap_or("")) {
        if let Some(name) = p.get("Package") {
            let arch = p.get("Architecture").unwrap_or("");
            status.insert(format!("{name}:{arch}"), p.render());
        }
    }
    for p in new {
        let control_text =
            String::from_utf8_lossy(p.deb.control.get("control").ok_or_else(|| Error::NoControl(p.name.into()))?)
                .into_owned();
        let para = control::parse(&control_text).into_iter().next().ok_or_else(|| Error::NoControl(p.name.into()))?;
        let mut fields: Vec<(String, String)> = Vec::new();
        for (k, v) in para.fields {
            let is_package = k.eq_ignore_ascii_case("Package");
            fields.push((k, v));
            if is_package {
                fields.push(("Status".into(), "install ok installed".into()));
            }
        }
        if let Some(conf) = p.deb.control.get("conffiles") {
            let mut lines = String::new();
            for c in String::from_utf8_lossy(conf)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("remove-on-upgrade"))
            {
                let md5 = p
                    .deb
                    .entries
                    .iter()
                    .position(|e| format!("/{}", e.path) == c)
                    .and_then(|i| p.deb.bytes(store, i).ok().flatten())
                    .map(|b| format!("{:x}", md5::compute(&b)))
                    .unwrap_or_else(|| "newconffile".into());
                lines.push_str(&format!("\n{c} {md5}"));
            }
            // Conffiles goes after Description in dpkg's own order; placing it last is accepted.
            fields.push(("Conffiles".into(), lines));
        }
        status.insert(format!("{}:{}", p.name, p.arch), control::Paragraph { fields }.render());
        let info = info_name(p);
        let mut list = String::from("/.\n");
        for e in &p.deb.entries {
            list.push('/');
            list.push_str(&e.path);
            list.push('\n');
        }
        put(tree, &format!("var/lib/dpkg/info/{info}.list"), bytes_entry(list, 0o644, "dpkg database"));
        for (name, bytes) in &p.deb.control {
            if name == "control" {
                continue;
            }
            let mode = if matches!(name.as_str(), "preinst" | "postinst" | "prerm" | "postrm" | "config") {
                0o755
            } else {
                0o644
            };
            put(tree, &format!("var/lib/dpkg/info/{info}.{name}"), bytes_entry(bytes.clone(), mode, "dpkg database"));
        }
    }
    let text: String = status.values().map(|p| format!("{p}\n")).collect();
    put(tree, "var/lib/dpkg/status", bytes_entry(text, 0o644, "dpkg database"));
    for f in ["var/lib/dpkg/available", "var/lib/dpkg/diversions", "var/lib/dpkg/statoverride"] {
        if tree.get(&ImagePath::new(f).expect("static")).is_none() {
            put(tree, f, bytes_entry(Vec::new(), 0o644, "dpkg database"));
        }
    }
    for d in ["var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/lib/dpkg/alternatives", "etc/alternatives"] {
        let p = ImagePath::new(d).expect("static");
        if tree.get(&p).is_none() {
            let _ = tree.insert(p, Entry::dir(0o755, 0, 0, Arc::from("dpkg database")));
        }
    }
    Ok(())
}

/// base-passwd's master files as `/etc/passwd`, `/etc/group`, plus `shadow` and `gshadow`
/// with locked passwords, when the layers below have no `/etc/passwd` yet.
pub fn base_passwd(view: &View, tree: &mut Tree, epoch: u64) -> std::io::Result<()> {
    let (Some(passwd), Some(group)) =
        (view.read("/usr/share/base-passwd/passwd.master")?, view.read("/usr/share/base-passwd/group.master")?)
    else {
        return Ok(());
    };
    let passwd = String::from_utf8_lossy(&passwd).into_owned();
    let group = String::from_utf8_lossy(&group).into_owned();
    let shadow_gid = group
        .lines()
        .find(|l| l.starts_with("shadow:"))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let days = epoch / 86400;
    let shadow: String =
        passwd.lines().filter_map(|l| l.split(':').next()).map(|n| format!("{n}:*:{days}:0:99999:7:::\n")).collect();
    let gshadow: String = group.lines().filter_map(|l| l.split(':').next()).map(|n| format!("{n}:*::\n")).collect();
    put(tree, "etc/passwd", bytes_entry(passwd, 0o644, "base-passwd"));
    put(tree, "etc/group", bytes_entry(group, 0o644, "base-passwd"));
    for (path, text) in [("etc/shadow", shadow), ("etc/gshadow", gshadow)] {
        let mut e = bytes_entry(text, 0o640, "base-passwd");
        e.gid = shadow_gid;
        put(tree, path, e);
    }
    Ok(())
}

/// The CA bundle from every certificate under `/usr/share/ca-certificates`, in the order of
/// their relative paths (as ca-certificates' configuration lists them).
pub fn ca_bundle(view: &View, tree: &mut Tree) -> std::io::Result<()> {
    let certs: Vec<(String, ImagePath)> = view
        .paths_under("usr/share/ca-certificates")
        .filter(|p| p.as_str().ends_with(".crt"))
        .map(|p| (p.as_str().trim_start_matches("usr/share/ca-certificates/").to_string(), p.clone()))
        .collect();
    if certs.is_empty() {
        return Ok(());
    }
    let mut sorted = certs;
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut bundle = Vec::new();
    let mut hashes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut conf = String::from("# Generated by assemble, as ca-certificates' configuration would list them.\n");
    for (rel, path) in &sorted {
        let Some(mut pem) = view.read(&format!("/{path}"))? else { continue };
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        bundle.extend_from_slice(&pem);
        conf.push_str(rel);
        conf.push('\n');
        let base = rel
            .rsplit('/')
            .next()
            .unwrap_or(rel)
            .trim_end_matches(".crt")
            .replace(' ', "_")
            .replace(['(', ')'], "=")
            .replace(',', "_");
        put(
            tree,
            &format!("etc/ssl/certs/{base}.pem"),
            Entry::symlink(format!("/{path}"), Arc::from("ca-certificates")),
        );
        if let Some(h) =
            super::certs::pem_to_der(&String::from_utf8_lossy(&pem)).and_then(|d| super::certs::subject_hash(&d))
        {
            hashes.entry(h).or_default().push(format!("{base}.pem"));
        }
    }
    // The `<subject hash>.<n>` links OpenSSL looks certificates up by, numbered in name order
    // where subjects collide (as `openssl rehash` does).
    for (hash, mut names) in hashes {
        names.sort();
        for (n, name) in names.into_iter().enumerate() {
            put(tree, &format!("etc/ssl/certs/{hash}.{n}"), Entry::symlink(name, Arc::from("ca-certificates")));
        }
    }
    put(tree, "etc/ssl/certs/ca-certificates.crt", bytes_entry(bundle, 0o644, "ca-certificates"));
    put(tree, "etc/ca-certificates.conf", bytes_entry(conf, 0o644, "ca-certificates"));
    Ok(())
}

/// One `update-alternatives --install` found in a postinst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub link: String,
    pub name: String,
    pub path: String,
    pub priority: i64,
    pub slaves: Vec<(String, String, String)>,
}

/// Finds literal `update-alternatives --install LINK NAME PATH PRIORITY [--slave L N P]…`
/// commands (backslash continuations joined); anything with shell variables is skipped.
pub fn alternatives_in(script: &str) -> Vec<Alternative> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(start) = words.iter().position(|w| *w == "--install") else { continue };
        if !words[..start].iter().any(|w| w.ends_with("update-alternatives")) {
            continue;
        }
        let rest = &words[start + 1..];
        if rest.len() < 4 || rest[..4].iter().any(|w| w.contains('$') || w.contains('`')) {
            continue;
        }
        let Ok(priority) = rest[3].parse() else { continue };
        let mut alt = Alternative {
            link: rest[0].into(),
            name: rest[1].into(),
            path: rest[2].into(),
            priority,
            slaves: Vec::new(),
        };
        let mut i = 4;
        while i + 3 < rest.len() && rest[i] == "--slave" {
            let (l, n, p) = (rest[i + 1], rest[i + 2], rest[i + 3]);
            if [l, n, p].iter().any(|w| w.contains('$')) {
                break;
            }
            alt.slaves.push((l.into(), n.into(), p.into()));
            i += 4;
        }
        out.push(alt);
    }
    out
}

/// Creates the links for the chosen alternatives (highest priority per name) whose target
/// exists in the view. `chosen` maps an alternative's name to the path the recipe wants instead of the highest
/// priority.
pub fn alternatives(
    view: &View,
    alts: &[Alternative],
    tree: &mut Tree,
    merged_usr: bool,
    chosen: &BTreeMap<String, String>,
) {
    let exists =
        |p: &str| ImagePath::new(&place(p.trim_start_matches('/'), merged_usr)).is_some_and(|p| view.get(&p).is_some());
    let mut best: BTreeMap<&str, &Alternative> = BTreeMap::new();
    for a in alts {
        if !exists(&a.path) {
            continue;
        }
        if best.get(a.name.as_str()).is_none_or(|b| a.priority > b.priority) {
            best.insert(&a.name, a);
        }
    }
    for (name, path) in chosen {
        match alts.iter().find(|a| a.name == *name && a.path == *path && exists(&a.path)) {
            Some(a) => {
                best.insert(name, a);
            }
            None if best.contains_key(name.as_str()) => {
                tracing::warn!("alternative `{name}`: no package offers `{path}`; keeping the highest priority")
            }
            None => {}
        }
    }
    for (name, a) in best {
        let mode = if chosen.contains_key(name) { "manual" } else { "auto" };
        let mut state = format!("{mode}\n{}\n", a.link);
        let mut link = |link: &str, name: &str, path: &str| {
            put(
                tree,
                &format!("etc/alternatives/{name}"),
                Entry::symlink(path.to_string(), Arc::from("update-alternatives")),
            );
            if let Some(p) = ImagePath::new(&place(link.trim_start_matches('/'), merged_usr))
                && view.get(&p).is_none_or(|e| !matches!(e.kind, Kind::File { .. }))
            {
                put(
                    tree,
                    p.as_str(),
                    Entry::symlink(format!("/etc/alternatives/{name}"), Arc::from("update-alternatives")),
                );
            }
        };
        link(&a.link, name, &a.path);
        for (l, n, p) in &a.slaves {
            state.push_str(&format!("{n}\n{l}\n"));
            if exists(p) {
                link(l, n, p);
            }
        }
        state.push_str(&format!("\n{}\n{}\n", a.path, a.priority));
        for (_, _, p) in &a.slaves {
            state.push_str(&format!("{p}\n"));
        }
        state.push('\n');
        put(tree, &format!("var/lib/dpkg/alternatives/{name}"), bytes_entry(state, 0o644, "update-alternatives"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_alternatives_with_slaves_and_continuations() {
        let script = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n    --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz\n  update-alternatives --install /usr/bin/x x $DIR/x 10\nfi\n";
        let a = alternatives_in(script);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].link, "/usr/bin/awk");
        assert_eq!(a[0].priority, 5);
        assert_eq!(
            a[0].slaves,
            vec![(
                "/usr/share/man/man1/awk.1.gz".to_string(),
                "awk.1.gz".to_string(),
                "/usr/share/man/man1/mawk.1.gz".to_string()
            )]
        );
    }

    /// Two packages shipping one path with other content: the one that declares `Replaces`
    /// keeps it, whichever is laid first (dpkg leaves a file "replaced by files in installed
    /// package" alone); without `Replaces` either way, both are named.
    #[test]
    fn the_package_that_replaces_keeps_the_file_whichever_comes_first() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("cache")).unwrap();
        let deb = |name: &str, replaces: &str, byte: u8| {
            let mut d = Deb::default();
            let field = if replaces.is_empty() { String::new() } else { format!("Replaces: {replaces}\n") };
            d.control.insert("control".into(), format!("Package: {name}\n{field}").into_bytes());
            let kind = DebKind::File { digest: Digest::of(&[byte]), size: 1 };
            d.entries.push(crate::source::deb::unpack::Member {
                path: "usr/share/f".into(),
                kind,
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
            });
            d
        };
        let pkg = |name: &'static str, deb| Pkg { name, arch: "amd64", multi_arch_same: false, deb };
        let kept = |first: Pkg<'_>, second: Pkg<'_>| -> Result<Digest, Error> {
            let mut tree = Tree::default();
            lay_files(&store, &[first, second], &mut tree, false, false)?;
            match &tree.get(&ImagePath::new("usr/share/f").unwrap()).unwrap().kind {
                Kind::File { digest, .. } => Ok(*digest),
                other => panic!("{other:?}"),
            }
        };
        let (a, b_replacing, plain) = (deb("a", "", 1), deb("b", "a (<< 2)", 2), deb("c", "", 3));
        assert_eq!(kept(pkg("a", &a), pkg("b", &b_replacing)).unwrap(), Digest::of(&[2]));
        assert_eq!(kept(pkg("b", &b_replacing), pkg("a", &a)).unwrap(), Digest::of(&[2]));
        let refused = kept(pkg("a", &a), pkg("c", &plain)).unwrap_err().to_string();
        assert!(refused.contains("`a` and `c` both ship `/usr/share/f`"), "{refused}");
    }

    #[test]
    fn merged_usr_placement() {
        assert_eq!(place("bin/bash", true), "usr/bin/bash");
        assert_eq!(place("lib64/ld-linux-x86-64.so.2", true), "usr/lib64/ld-linux-x86-64.so.2");
        assert_eq!(place("etc/bash.bashrc", true), "etc/bash.bashrc");
        assert_eq!(place("bin/bash", false), "bin/bash");
        assert_eq!(place("binutils/x", true), "binutils/x");
    }
}
