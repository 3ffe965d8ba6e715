//! Laying verified APKs into a layer tree, and doing natively what apk's scripts and
//! triggers would have: the installed database (`lib/apk/db/installed`, with every file and
//! its `Z:Q1…` SHA-1), `/etc/apk/world`, `arch`, `repositories`, `keys/`, maintainer scripts
//! kept (not run) in `lib/apk/db/scripts.tar`, and busybox applet links. Accounts need
//! nothing special: alpine-baselayout ships `/etc/passwd` and `/etc/group` as files, and the
//! configuration layer merges the recipe's users into them.

use super::{Error, Package};
use crate::model::digest::Digest;
use crate::model::member::{Member, MemberKind as EntryKind};
use crate::model::path::ImagePath;
use crate::model::path::{BadName, clean_name};
use crate::store::Store;
use crate::tree::{Content, Entry, Tree};
use sha1::Digest as _;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

/// One file of a package's data, and the `Q1` + base64 SHA-1 apk records for it (of the
/// content, or of the target for symlinks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkEntry {
    pub member: Member,
    pub checksum: Option<String>,
}

fn q1(bytes: &[u8]) -> String {
    use base64::Engine as _;
    format!("Q1{}", base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(bytes)))
}

/// Reads a package's data member (a tar stream), storing file contents by digest. Names
/// that are absolute or climb with `..` are refused, naming the path.
pub fn entries(store: &Store, data: &[u8], file: &str) -> Result<Vec<ApkEntry>, Error> {
    let fmt = |why: String| Error::Format { file: file.into(), why };
    let mut out = Vec::new();
    let mut guard = crate::source::archive::Guard::new(file);
    let mut ar = tar::Archive::new(data);
    for e in ar.entries().map_err(|e| fmt(format!("data member: {e}")))? {
        let mut e = e.map_err(|e| fmt(format!("data member: {e}")))?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let path = match clean_name(&raw) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(BadName::Absolute) => return Err(fmt(format!("data member holds `{raw}`, an absolute path"))),
            Err(BadName::Climbs) => {
                return Err(fmt(format!("data member holds `{raw}`, which is outside the root (`..`)")));
            }
            Err(BadName::Nul | BadName::TooLong) => {
                return Err(fmt(format!(
                    "data member holds `{}`, a name with a NUL byte or longer than PATH_MAX",
                    raw.escape_debug()
                )));
            }
        };
        let h = e.header();
        let (mode, uid, gid) =
            (h.mode().unwrap_or(0o644) & 0o7777, h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
        let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        let (kind, checksum) = match h.entry_type() {
            tar::EntryType::Directory => (EntryKind::Dir, None),
            tar::EntryType::Symlink => {
                let t = link.unwrap_or_default();
                if t.contains('\0') {
                    return Err(fmt(format!("data member holds `{raw}`, a symlink whose target has a NUL byte")));
                }
                let c = q1(t.as_bytes());
                (EntryKind::Symlink(t), Some(c))
            }
            tar::EntryType::Link => {
                let t = link.unwrap_or_default();
                let t = clean_name(&t)
                    .ok()
                    .flatten()
                    .ok_or_else(|| fmt(format!("data member holds a bad hard link `{raw}`")))?;
                (EntryKind::Hardlink(t), None)
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).map_err(|err| fmt(format!("data member: `{raw}` is truncated: {err}")))?;
                let (digest, size) = store.put_reader(&mut &bytes[..])?;
                (EntryKind::File { digest, size }, Some(q1(&bytes)))
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            _ => return Err(fmt(format!("data member holds `{raw}`, a device or other special file"))),
        };
        use crate::source::archive::Seen;
        let seen = match &kind {
            EntryKind::Dir => Seen::Dir,
            EntryKind::File { .. } => Seen::File,
            EntryKind::Symlink(_) => Seen::Symlink,
            EntryKind::Hardlink(t) => Seen::Hardlink(t),
        };
        guard.add(&path, seen).map_err(|r| fmt(format!("data member holds `{}`, which is {}", r.member, r.why)))?;
        out.push(ApkEntry { member: Member { path, kind, mode, uid, gid, mtime: 0 }, checksum });
    }
    Ok(out)
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Format { file: "the cache".into(), why: e.to_string() }
    }
}

/// One package ready to lay down.
pub struct Pkg<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// The index's `C:` checksum.
    pub checksum: &'a str,
    /// The `.apk` file's size (`S:`).
    pub file_size: u64,
    pub package: &'a Package,
    pub entries: Vec<ApkEntry>,
}

fn info<'a>(p: &'a Package, key: &str) -> Vec<&'a str> {
    p.pkginfo.get(key).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default()
}

/// Adds the packages' files to `tree`; the same path from two packages is an error unless the
/// content is the same or the later one `replaces` the earlier.
pub fn lay(store: &Store, pkgs: &[Pkg<'_>], tree: &mut Tree) -> Result<(), Error> {
    let mut owner: BTreeMap<String, (usize, Digest)> = BTreeMap::new();
    for (i, p) in pkgs.iter().enumerate() {
        let origin: Arc<str> = Arc::from(format!("package `{}`", p.name));
        for e in &p.entries {
            let Some(path) = ImagePath::new(&e.member.path) else { continue };
            if let EntryKind::File { digest, .. } = &e.member.kind {
                if let Some((j, d)) = owner.get(&e.member.path)
                    && d != digest
                {
                    let replaces = |a: &Pkg<'_>, b: &Pkg<'_>| {
                        info(a.package, "replaces").iter().any(|r| r.split(['=', '<', '>', '~']).next() == Some(b.name))
                    };
                    if replaces(&pkgs[*j], p) {
                        continue; // the earlier package replaces this one: its file stays
                    }
                    if !replaces(p, &pkgs[*j]) {
                        return Err(Error::Format {
                            file: format!("package `{}`", p.name),
                            why: format!(
                                "`/{}` is also in `{}` with other content, and neither replaces the other",
                                e.member.path, pkgs[*j].name
                            ),
                        });
                    }
                }
                owner.insert(e.member.path.clone(), (i, *digest));
            }
            let link = match &e.member.kind {
                EntryKind::Hardlink(t) => ImagePath::new(t),
                _ => None,
            };
            let entry = Entry::of_member(&e.member, |d| Content::Stored(store.blob_path(d)), link, origin.clone())
                .ok_or_else(|| Error::Format {
                    file: format!("package `{}`", p.name),
                    why: format!("`/{}` is a hard link whose target cannot be placed in the image", e.member.path),
                })?;
            // A later package replaces an earlier one's file; a directory stays a directory,
            // and the first package's directory is kept.
            tree.put_unless_dir(path, entry);
        }
    }
    Ok(())
}

fn put(tree: &mut Tree, path: &str, bytes: Vec<u8>, mode: u32) {
    // Paths here are built from package names; one that is not a valid path is skipped.
    if let Some(p) = ImagePath::new(path) {
        tree.put(p, Entry::bytes(bytes, mode, Arc::from("apk database")));
    }
}

/// `lib/apk/db/installed` (the layers' below plus these), `scripts.tar`, and `/etc/apk/*`.
pub fn database(
    below: Option<&str>,
    pkgs: &[Pkg<'_>],
    world: &[String],
    arch: &str,
    repositories: &[String],
    keys: &[(String, Vec<u8>)],
    tree: &mut Tree,
) {
    let mut db = below.map(str::to_string).unwrap_or_default();
    for p in pkgs {
        let pi = |k: &str| info(p.package, k).join(" ");
        let mut rec = format!(
            "C:{}\nP:{}\nV:{}\nA:{}\nS:{}\nI:{}\nT:{}\nU:{}\nL:{}\no:{}\nm:{}\nt:{}\nc:{}\n",
            p.checksum,
            p.name,
            p.version,
            pi("arch"),
            p.file_size,
            pi("size"),
            pi("pkgdesc"),
            pi("url"),
            pi("license"),
            pi("origin"),
            pi("maintainer"),
            pi("builddate"),
            pi("commit")
        );
        for (letter, key) in
            [('D', "depend"), ('p', "provides"), ('i', "install_if"), ('k', "provider_priority"), ('r', "replaces")]
        {
            let v = pi(key);
            if !v.is_empty() {
                rec.push_str(&format!("{letter}:{v}\n"));
            }
        }
        // Files grouped under their directory, in the package's order.
        let mut dir: Option<String> = None;
        for e in &p.entries {
            match &e.member.kind {
                EntryKind::Dir => {
                    rec.push_str(&format!("F:{}\n", e.member.path));
                    if (e.member.uid, e.member.gid, e.member.mode) != (0, 0, 0o755) {
                        rec.push_str(&format!("M:{}:{}:{:o}\n", e.member.uid, e.member.gid, e.member.mode));
                    }
                    dir = Some(e.member.path.clone());
                }
                _ => {
                    let (parent, name) = e.member.path.rsplit_once('/').unwrap_or(("", &e.member.path));
                    if dir.as_deref() != Some(parent) && !parent.is_empty() {
                        rec.push_str(&format!("F:{parent}\n"));
                        dir = Some(parent.to_string());
                    }
                    rec.push_str(&format!("R:{name}\n"));
                    if (e.member.uid, e.member.gid, e.member.mode) != (0, 0, 0o644)
                        && !matches!(e.member.kind, EntryKind::Symlink(_))
                    {
                        rec.push_str(&format!("a:{}:{}:{:o}\n", e.member.uid, e.member.gid, e.member.mode));
                    }
                    if let Some(c) = &e.checksum {
                        rec.push_str(&format!("Z:{c}\n"));
                    }
                }
            }
        }
        db.push_str(&rec);
        db.push('\n');
    }
    put(tree, "lib/apk/db/installed", db.into_bytes(), 0o644);
    let mut world: Vec<String> = world.to_vec();
    world.sort();
    world.dedup();
    put(tree, "etc/apk/world", format!("{}\n", world.join("\n")).into_bytes(), 0o644);
    put(tree, "etc/apk/arch", format!("{arch}\n").into_bytes(), 0o644);
    put(
        tree,
        "etc/apk/repositories",
        repositories.iter().map(|r| format!("{r}\n")).collect::<String>().into_bytes(),
        0o644,
    );
    for (name, bytes) in keys {
        put(tree, &format!("etc/apk/keys/{name}"), bytes.clone(), 0o644);
    }
    // Maintainer scripts are kept, as apk keeps them, and never run.
    let mut scripts = Tree::default();
    for p in pkgs {
        for (name, bytes) in p.package.scripts.iter() {
            let member = format!("{}-{}.{}.{}", p.name, p.version, p.checksum, name.trim_start_matches('.'));
            let _ = scripts.insert(
                ImagePath::new(&member).expect("valid"),
                Entry::bytes(bytes.clone(), 0o755, Arc::from("scripts")),
            );
        }
    }
    if !scripts.is_empty() {
        let mut w = crate::layer::tar::TarWriter::new(Vec::new());
        for (p, e) in scripts.iter() {
            w.entry(p, e, 0).expect("in-memory tar");
        }
        put(tree, "lib/apk/db/scripts.tar", w.finish().expect("in-memory tar"), 0o644);
    }
}

/// Applets linked when a busybox package is installed without `/etc/busybox-paths.d`.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "/bin/ash",
    "/bin/cat",
    "/bin/chgrp",
    "/bin/chmod",
    "/bin/chown",
    "/bin/cp",
    "/bin/date",
    "/bin/dd",
    "/bin/df",
    "/bin/echo",
    "/bin/egrep",
    "/bin/false",
    "/bin/fgrep",
    "/bin/grep",
    "/bin/gunzip",
    "/bin/gzip",
    "/bin/hostname",
    "/bin/kill",
    "/bin/ln",
    "/bin/ls",
    "/bin/mkdir",
    "/bin/mknod",
    "/bin/mktemp",
    "/bin/more",
    "/bin/mount",
    "/bin/mv",
    "/bin/netstat",
    "/bin/ping",
    "/bin/ps",
    "/bin/pwd",
    "/bin/rm",
    "/bin/rmdir",
    "/bin/sed",
    "/bin/sh",
    "/bin/sleep",
    "/bin/stat",
    "/bin/stty",
    "/bin/su",
    "/bin/sync",
    "/bin/tar",
    "/bin/touch",
    "/bin/true",
    "/bin/umount",
    "/bin/uname",
    "/bin/vi",
    "/bin/zcat",
    "/sbin/ifconfig",
    "/sbin/ip",
    "/sbin/route",
    "/sbin/sysctl",
    "/usr/bin/[",
    "/usr/bin/[[",
    "/usr/bin/awk",
    "/usr/bin/basename",
    "/usr/bin/cut",
    "/usr/bin/dirname",
    "/usr/bin/du",
    "/usr/bin/env",
    "/usr/bin/expr",
    "/usr/bin/find",
    "/usr/bin/free",
    "/usr/bin/head",
    "/usr/bin/id",
    "/usr/bin/less",
    "/usr/bin/nc",
    "/usr/bin/nslookup",
    "/usr/bin/printf",
    "/usr/bin/readlink",
    "/usr/bin/realpath",
    "/usr/bin/sort",
    "/usr/bin/tail",
    "/usr/bin/tee",
    "/usr/bin/test",
    "/usr/bin/tr",
    "/usr/bin/uniq",
    "/usr/bin/wc",
    "/usr/bin/wget",
    "/usr/bin/which",
    "/usr/bin/whoami",
    "/usr/bin/xargs",
    "/usr/bin/yes",
];

/// Busybox applet links (`busybox --install -s`): the paths listed under
/// `/etc/busybox-paths.d/` when the package ships them, else [`BUSYBOX_APPLETS`]. Paths that
/// exist already are left alone.
pub fn busybox_links(view: &crate::tree::View, tree: &mut Tree) -> std::io::Result<()> {
    let binary = ["bin/busybox", "usr/bin/busybox"]
        .into_iter()
        .find(|p| view.get(&ImagePath::new(p).expect("static")).is_some());
    let Some(binary) = binary else { return Ok(()) };
    let mut paths: Vec<String> = Vec::new();
    for p in view.paths_under("etc/busybox-paths.d") {
        if let Some(text) = view.read(&format!("/{p}"))? {
            paths.extend(
                String::from_utf8_lossy(&text).lines().map(str::trim).filter(|l| l.starts_with('/')).map(String::from),
            );
        }
    }
    if paths.is_empty() {
        paths = BUSYBOX_APPLETS.iter().map(|s| s.to_string()).collect();
    }
    for p in paths {
        let Some(ip) = ImagePath::new(&p) else { continue };
        if view.get(&ip).is_some() || tree.get(&ip).is_some() {
            continue;
        }
        let _ = tree.insert(ip, Entry::symlink(format!("/{binary}"), Arc::from("busybox applets")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(path: &str, kind: EntryKind) -> ApkEntry {
        ApkEntry { member: Member { path: path.into(), kind, mode: 0o755, uid: 0, gid: 0, mtime: 0 }, checksum: None }
    }

    fn file(path: &str, byte: u8) -> ApkEntry {
        member(path, EntryKind::File { digest: Digest::of(&[byte]), size: 1 })
    }

    fn pkg<'a>(name: &'a str, package: &'a Package, entries: Vec<ApkEntry>) -> Pkg<'a> {
        Pkg { name, version: "1", checksum: "", file_size: 0, package, entries }
    }

    /// Two packages at one path: a directory stays a directory (a later file there is
    /// dropped) and does not replace an earlier file; a later file replaces an earlier
    /// package's only when the content is equal or it `replaces` it; otherwise both are named.
    #[test]
    fn packages_at_one_path_keep_directories_and_need_replaces() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("cache")).unwrap();
        let plain = Package { pkginfo: BTreeMap::new(), scripts: BTreeMap::new(), data: Vec::new() };
        let replacing = Package {
            pkginfo: BTreeMap::from([("replaces".into(), vec!["a".into()])]),
            scripts: BTreeMap::new(),
            data: Vec::new(),
        };
        let a = || pkg("a", &plain, vec![member("d", EntryKind::Dir), file("f", 1), file("g", 1)]);
        let lay_with = |b: Pkg<'_>| {
            let mut tree = Tree::default();
            lay(&store, &[a(), b], &mut tree).map(|()| tree)
        };
        let at = |tree: &Tree, p: &str| tree.get(&ImagePath::new(p).unwrap()).unwrap().clone();
        // A file over a directory, a directory over a file, an equal file: kept as `a` laid them.
        let tree = lay_with(pkg("b", &plain, vec![file("d", 2), member("f", EntryKind::Dir), file("g", 1)])).unwrap();
        assert!(at(&tree, "d").is_dir());
        assert!(!at(&tree, "f").is_dir());
        // Other content: refused unless the later package replaces the earlier.
        let refused = lay_with(pkg("b", &plain, vec![file("g", 2)])).unwrap_err().to_string();
        assert!(refused.contains("`/g` is also in `a`"), "{refused}");
        let tree = lay_with(pkg("c", &replacing, vec![file("g", 2)])).unwrap();
        assert!(matches!(at(&tree, "g").kind, crate::tree::Kind::File { digest, .. } if digest == Digest::of(&[2])));
    }
}
