//! A Debian archive the test suite builds itself: synthetic packages (dpkg-deb), a Release
//! signed with a throwaway key (gpg), served on 127.0.0.1. It covers every resolution rule
//! and every refusal, hermetically.

use crate::common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A data.tar member written byte by byte (dpkg-deb refuses hostile names).
#[derive(Clone)]
enum Raw {
    File(&'static str, &'static str),
    Symlink(&'static str, &'static str),
}

struct Pkg {
    raw: Option<Vec<Raw>>,
    name: &'static str,
    version: &'static str,
    fields: Vec<(&'static str, &'static str)>,
    files: Vec<(&'static str, &'static str)>,
    symlinks: Vec<(&'static str, &'static str)>,
    postinst: Option<&'static str>,
}

fn pkg(name: &'static str, version: &'static str) -> Pkg {
    Pkg { raw: None, name, version, fields: vec![], files: vec![], symlinks: vec![], postinst: None }
}

impl Pkg {
    fn with(mut self, k: &'static str, v: &'static str) -> Pkg {
        self.fields.push((k, v));
        self
    }
    fn file(mut self, p: &'static str, c: &'static str) -> Pkg {
        self.files.push((p, c));
        self
    }
    fn link(mut self, p: &'static str, t: &'static str) -> Pkg {
        self.symlinks.push((p, t));
        self
    }
}

fn universe() -> Vec<Pkg> {
    vec![
        pkg("base-files", "1")
            .with("Essential", "yes")
            .with("Priority", "required")
            .file("usr/lib/os-release", "ID=test\n")
            .link("etc/os-release", "../usr/lib/os-release"),
        pkg("base-passwd", "1")
            .with("Essential", "yes")
            .with("Priority", "required")
            .file(
                "usr/share/base-passwd/passwd.master",
                "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
            )
            .file("usr/share/base-passwd/group.master", "root:x:0:\ndaemon:x:1:\nshadow:x:42:\n"),
        pkg("app", "1.0")
            .with("Pre-Depends", "prelib")
            .with("Depends", "libfoo (>= 2), mta | mail-transport-agent, perl:any")
            .with("Recommends", "docs")
            .file("usr/bin/app", "#!/bin/sh\n"),
        pkg("libfoo", "1.5").file("usr/lib/libfoo.so.1", "old\n"),
        pkg("libfoo", "2.1").file("usr/lib/libfoo.so.2", "new\n"),
        pkg("prelib", "1").file("usr/lib/prelib", "p\n"),
        pkg("perl", "5").with("Multi-Arch", "allowed").file("usr/bin/perl", "perl\n"),
        pkg("exim-lite", "1")
            .with("Provides", "mail-transport-agent")
            .with("Priority", "extra")
            .file("usr/sbin/exim", "e\n"),
        pkg("postfix-lite", "1")
            .with("Provides", "mail-transport-agent")
            .with("Priority", "optional")
            .file("usr/sbin/postfix", "p\n"),
        pkg("docs", "1").file("usr/share/doc/app/README", "docs\n"),
        pkg("picker", "1").with("Depends", "first | second"),
        pkg("first", "1").with("Conflicts", "libfoo"),
        pkg("second", "1"),
        pkg("tool-user", "1").with("Depends", "tool-api (>= 3)"),
        pkg("tool-old", "1").with("Provides", "tool-api (= 2)"),
        pkg("tool-impl", "1").with("Provides", "tool-api (= 3.1)"),
        pkg("mawk-lite", "1").file("usr/bin/mawk-lite", "#!/bin/sh\n"),
        pkg("gawk-lite", "1").file("usr/bin/gawk-lite", "#!/bin/sh\n"),
        pkg("picker2", "1").with("Depends", "third | second"),
        pkg("third", "1").with("Breaks", "libfoo (<< 3)"),
        pkg("clash-a", "1").file("usr/share/clash", "a\n"),
        pkg("clash-b", "1").file("usr/share/clash", "b\n"),
        pkg("clash-c", "1").with("Replaces", "clash-a").file("usr/share/clash", "c\n"),
        pkg("binpkg", "1").file("bin/tool", "tool\n"),
        pkg("needy", "1").with("Depends", "middle"),
        pkg("middle", "1").with("Depends", "libfoo (>= 9)"),
        Pkg {
            raw: Some(vec![Raw::Symlink("./etc/x", "/tmp"), Raw::File("./etc/x/evil", "evil\n")]),
            ..pkg("escape", "1")
        },
        Pkg { raw: Some(vec![Raw::File("./../../etc/evil", "evil\n")]), ..pkg("climber", "1") },
        Pkg { raw: Some(vec![Raw::File("/etc/evil", "evil\n")]), ..pkg("absolute", "1") },
    ]
}

/// An `ar` archive with debian-binary, control.tar and data.tar, uncompressed.
fn raw_deb(path: &Path, control: &str, raw: &[Raw]) {
    let control_tar = raw_tar(&[("./control".into(), control.as_bytes().to_vec(), b'0', String::new())]);
    let data: Vec<(String, Vec<u8>, u8, String)> = raw
        .iter()
        .map(|r| match r {
            Raw::File(p, c) => (p.to_string(), c.as_bytes().to_vec(), b'0', String::new()),
            Raw::Symlink(p, t) => (p.to_string(), Vec::new(), b'2', t.to_string()),
        })
        .collect();
    let data_tar = raw_tar(&data);
    let mut ar = b"!<arch>\n".to_vec();
    for (name, bytes) in [("debian-binary", b"2.0\n".to_vec()), ("control.tar", control_tar), ("data.tar", data_tar)] {
        ar.extend_from_slice(
            format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", 0, 0, 0, 100644, bytes.len()).as_bytes(),
        );
        ar.extend_from_slice(&bytes);
        if bytes.len() % 2 == 1 {
            ar.push(b'\n');
        }
    }
    std::fs::write(path, ar).unwrap();
}

struct Archive {
    dir: PathBuf,
    gnupg: PathBuf,
    server: HttpServer,
}

fn run_ok(dir: &Path, script: &str) {
    let r = sh(dir, script);
    assert_eq!(r.code, 0, "{script}\n{}{}", r.stdout, r.stderr);
}

/// Builds the packages, `Packages` and a signed `InRelease` under `root`.
/// Builds one package into `pool` and returns its `Packages` paragraph.
fn package_entry(root: &Path, pool: &Path, p: &Pkg) -> String {
    let src = root.join("src").join(format!("{}_{}", p.name, p.version));
    std::fs::create_dir_all(src.join("DEBIAN")).unwrap();
    let mut control = format!(
        "Package: {}\nVersion: {}\nArchitecture: amd64\nMaintainer: t <t@example.invalid>\n",
        p.name, p.version
    );
    for (k, v) in &p.fields {
        control.push_str(&format!("{k}: {v}\n"));
    }
    control.push_str(&format!("Description: test package {}\n", p.name));
    std::fs::write(src.join("DEBIAN/control"), &control).unwrap();
    if let Some(script) = p.postinst {
        std::fs::write(src.join("DEBIAN/postinst"), script).unwrap();
        run_ok(&src, "chmod 0755 DEBIAN/postinst");
    }
    for (path, content) in &p.files {
        let f = src.join(path);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, content).unwrap();
    }
    for (path, target) in &p.symlinks {
        let f = src.join(path);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &f).unwrap();
    }
    let deb = pool.join(format!("{}_{}_amd64.deb", p.name, p.version));
    match &p.raw {
        None => run_ok(
            root,
            &format!("dpkg-deb --root-owner-group -Zxz --build {} {} >/dev/null", src.display(), deb.display()),
        ),
        Some(raw) => raw_deb(&deb, &control, raw),
    }
    let size = std::fs::metadata(&deb).unwrap().len();
    control.replace(
        "Description:",
        &format!(
            "Filename: pool/{}\nSize: {size}\nSHA256: {}\nDescription:",
            deb.file_name().unwrap().to_str().unwrap(),
            sha256_file(&deb)
        ),
    )
}

fn build_archive(root: &Path, pkgs: &[Pkg]) -> Archive {
    require("dpkg-deb");
    require("gpg");
    let dir = root.join("archive");
    let pool = dir.join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    let mut packages = String::new();
    for p in pkgs {
        packages.push_str(&package_entry(root, &pool, p));
        packages.push('\n');
    }
    let bin = dir.join("dists/test/main/binary-amd64");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("Packages"), &packages).unwrap();
    let gnupg = root.join("gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    run_ok(root, "chmod 700 gnupg");
    run_ok(
        root,
        &format!(
            "GNUPGHOME={} gpg --batch --quiet --passphrase '' --quick-gen-key 'assemble test <t@example.invalid>' ed25519 sign never 2>/dev/null",
            gnupg.display()
        ),
    );
    run_ok(root, &format!("GNUPGHOME={} gpg --batch --quiet --export > keyring.gpg", gnupg.display()));
    let archive = Archive { server: HttpServer::serve(&dir), dir, gnupg };
    archive.sign();
    archive
}

/// The archive of [`universe`] — thirty-odd packages built with dpkg-deb, a throwaway key,
/// a signed suite — is built once per test run and copied for each test that uses it, so a
/// test may change its own copy (re-sign it, expire it, delete a package).
fn universe_archive(root: &Path) -> Archive {
    static TEMPLATE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Templates of earlier runs whose process is gone.
        for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("debian-fixture-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = tmp.join(format!("debian-fixture-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        build_archive(&dir, &universe());
        dir
    });
    run_ok(
        root,
        &format!("cp -a {0}/archive {0}/gnupg {0}/keyring.gpg . && find gnupg -type s -delete", template.display()),
    );
    let dir = root.join("archive");
    Archive { server: HttpServer::serve(&dir), dir, gnupg: root.join("gnupg") }
}

impl Archive {
    /// Publishes one more package and signs the suite again.
    fn add(&self, root: &Path, p: &Pkg) {
        let entry = package_entry(root, &self.dir.join("pool"), p);
        let packages = self.dir.join("dists/test/main/binary-amd64/Packages");
        let mut text = std::fs::read_to_string(&packages).unwrap();
        text.push_str(&entry);
        text.push('\n');
        std::fs::write(&packages, text).unwrap();
        self.sign();
    }

    fn sign(&self) {
        let packages = self.dir.join("dists/test/main/binary-amd64/Packages");
        let release = format!(
            "Origin: test\nSuite: test\nCodename: test\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n",
            sha256_file(&packages),
            std::fs::metadata(&packages).unwrap().len()
        );
        let dists = self.dir.join("dists/test");
        std::fs::write(dists.join("Release"), release).unwrap();
        run_ok(
            &dists,
            &format!(
                "rm -f InRelease && GNUPGHOME={} gpg --batch --quiet --yes --digest-algo SHA256 --clearsign -o InRelease Release",
                self.gnupg.display()
            ),
        );
    }

    fn mirror(&self) -> String {
        self.server.url("").trim_end_matches('/').to_string()
    }
}

fn recipe(a: &Archive, root: &Path, packages: &str, extra: &str) -> String {
    format!(
        "name: fx\nbase:\n  debian:\n    suite: test\n    mirror: {}\n    keyring: [{}]\n    packages: [{packages}]\n{extra}",
        a.mirror(),
        root.join("keyring.gpg").display()
    )
}

fn locked(root: &Path, name: &str) -> BTreeSet<String> {
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(root.join(format!("{name}.lock"))).unwrap()).unwrap();
    v["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}:{} {}",
                p["layer"].as_str().unwrap(),
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn resolution_rules_and_script_free_installation() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let mut pkgs = universe();
    for p in pkgs.iter_mut().filter(|p| p.name == "mawk-lite") {
        p.postinst = Some(
            "#!/bin/sh\nset -e\nupdate-alternatives --install /usr/bin/awk awk /usr/bin/mawk-lite 5 \\\n  --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz\n",
        );
    }
    for p in pkgs.iter_mut().filter(|p| p.name == "gawk-lite") {
        p.postinst = Some("#!/bin/sh\nupdate-alternatives --install /usr/bin/awk awk /usr/bin/gawk-lite 10\n");
    }
    let a = build_archive(t, &pkgs);
    let cache = t.join("cache");

    // Essential packages, Pre-Depends, versions, alternatives through a virtual package
    // (provider by priority), Multi-Arch :any, Conflicts and Breaks steering an alternative,
    // versioned Provides, merged /usr, no Recommends, an alternatives choice in the recipe.
    std::fs::write(
        t.join("fx.yml"),
        recipe(
            &a,
            t,
            "app, picker, picker2, tool-user, mawk-lite, gawk-lite, binpkg",
            "    essential: true\n    alternatives: {awk: /usr/bin/mawk-lite}\n",
        ),
    )
    .unwrap();
    assemble(t, &cache, &["build", "fx.yml", "-o", "oci:fx"], &[]).ok();
    let expected = set(&[
        "base:base-files 1",
        "base:base-passwd 1",
        "base:app 1.0",
        "base:prelib 1",
        "base:libfoo 2.1",
        "base:postfix-lite 1",
        "base:perl 5",
        "base:picker 1",
        "base:picker2 1",
        "base:gawk-lite 1",
        "base:second 1",
        "base:tool-user 1",
        "base:tool-impl 1",
        "base:mawk-lite 1",
        "base:binpkg 1",
    ]);
    assert_eq!(locked(t, "fx"), expected);

    let out = sh(t, "umoci unpack --image fx:latest bundle");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let root = t.join("bundle/rootfs");
    let q = sh(
        t,
        &format!(
            "dpkg-query --admindir={}/var/lib/dpkg -W -f '${{Package}} ${{Version}} ${{db:Status-Abbrev}}\\n'",
            root.display()
        ),
    );
    assert_eq!(q.stdout.lines().count(), expected.len(), "{}", q.stdout);
    assert!(q.stdout.lines().all(|l| l.ends_with(" ii ")), "{}", q.stdout);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    );
    assert!(listing(&root.join("etc")).contains("-0640 0:42 /shadow"), "{}", listing(&root.join("etc")));
    assert_eq!(std::fs::read_link(root.join("usr/bin/awk")).unwrap().to_str(), Some("/etc/alternatives/awk"));
    assert_eq!(std::fs::read_link(root.join("etc/alternatives/awk")).unwrap().to_str(), Some("/usr/bin/mawk-lite"));
    assert!(
        std::fs::read_to_string(root.join("var/lib/dpkg/alternatives/awk"))
            .unwrap()
            .starts_with("manual\n/usr/bin/awk\n")
    );
    assert_eq!(std::fs::read_link(root.join("bin")).unwrap().to_str(), Some("usr/bin"));
    assert_eq!(std::fs::read_to_string(root.join("usr/bin/tool")).unwrap(), "tool\n");
    assert_eq!(std::fs::read_to_string(root.join("var/lib/dpkg/info/binpkg.list")).unwrap(), "/.\n/bin\n/bin/tool\n");
    assert_eq!(std::fs::read_to_string(root.join("etc/os-release")).unwrap(), "ID=test\n");
    assert!(root.join("var/lib/dpkg/info/mawk-lite.postinst").exists(), "maintainer scripts are kept, not run");
    assert!(!root.join("usr/share/doc/app/README").exists(), "no Recommends unless asked");

    // Recommends when asked; packages in an application layer go into that layer only.
    std::fs::write(t.join("rec.yml"), recipe(&a, t, "app", "    recommends: true\n").replace("name: fx", "name: rec"))
        .unwrap();
    assemble(t, &cache, &["build", "rec.yml", "-o", "oci:rec"], &[]).ok();
    assert!(locked(t, "rec").contains("base:docs 1"));
    let layered =
        recipe(&a, t, "prelib", "layers:\n  - name: extra\n    packages: [app]\n").replace("name: fx", "name: lay");
    std::fs::write(t.join("lay.yml"), layered).unwrap();
    let v = assemble(t, &cache, &["--json", "build", "lay.yml", "-o", "oci:lay"], &[]).ok().json();
    assert_eq!(
        locked(t, "lay"),
        set(&["base:prelib 1", "extra:app 1.0", "extra:libfoo 2.1", "extra:postfix-lite 1", "extra:perl 5"])
    );
    let layers: Vec<String> = v[0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers, ["base", "extra"]);
    let out = sh(t, "umoci unpack --image lay:latest lbundle");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let q =
        sh(t, &format!("dpkg-query --admindir={}/lbundle/rootfs/var/lib/dpkg -W -f '${{Package}}\\n'", t.display()));
    assert_eq!(q.stdout, "app\nlibfoo\nperl\npostfix-lite\nprelib\n");

    // Two packages shipping one path: fine with Replaces, and the replacing one wins.
    std::fs::write(t.join("rep.yml"), recipe(&a, t, "clash-a, clash-c", "").replace("name: fx", "name: rep")).unwrap();
    assemble(t, &cache, &["build", "--arch", "amd64", "rep.yml", "-o", "oci:rep"], &[]).ok();
    let out = sh(t, "umoci unpack --image rep:latest rbundle");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(t.join("rbundle/rootfs/usr/share/clash")).unwrap(), "c\n");
}

fn failure(t: &Path, name: &str, text: String) -> String {
    std::fs::write(t.join(format!("{name}.yml")), text.replace("name: fx", &format!("name: {name}"))).unwrap();
    let run = assemble(
        t,
        &t.join(format!("cache-{name}")),
        &["-q", "build", &format!("{name}.yml"), "-o", &format!("oci:{name}")],
        &[],
    );
    assert_eq!(run.code, 1, "{name} should fail:\n{}", run.stderr);
    assert!(!t.join(name).exists(), "{name}: nothing written");
    run.stderr
}

#[test]
fn unknown_and_unsatisfiable_packages_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = universe_archive(t);
    // A suite the mirror does not have: its line, and the suites the mirror lists.
    std::fs::create_dir_all(a.dir.join("dists/test-updates")).unwrap();
    assert_eq!(
        failure(t, "nosuite", recipe(&a, t, "second", "").replace("suite: test", "suite: tset")),
        format!(
            "error: nosuite.yml:4:12: suite `tset` is not on {} (`dists/tset/InRelease` answers 404)\n  |\n4 |     suite: tset\n  |            ^\nhint: did you mean `test`? (the mirror has: test, test-updates)\n",
            a.mirror()
        )
    );
    // Each names the line that asks for the package.
    assert_eq!(
        failure(t, "unknown", recipe(&a, t, "apq", "")),
        "error: unknown.yml:7:16: amd64: unknown package `apq` (searched `test`); did you mean `app`?\n  |\n7 |     packages: [apq]\n  |                ^\n"
    );
    assert_eq!(
        failure(t, "unsat", recipe(&a, t, "needy", "")),
        "error: unsat.yml:7:16: amd64: cannot satisfy `libfoo (>= 9)`, needed by middle 1 ← needy 1\n  |\n7 |     packages: [needy]\n  |                ^\n"
    );
    assert_eq!(
        failure(t, "nowhere", recipe(&a, t, "second", "layers:\n  - name: app\n    packages: [zzzzzzzz]\n")),
        "error: nowhere.yml:10:16: amd64: unknown package `zzzzzzzz` (searched `test`)\n   |\n10 |     packages: [zzzzzzzz]\n   |                ^\nhint: no package or virtual package of that name is in the suites and components the recipe reads; a package from another suite or component needs it added\n"
    );
    assert_eq!(
        failure(t, "clash", recipe(&a, t, "clash-a, clash-b", "")),
        "error: packages `clash-a` and `clash-b` both ship `/usr/share/clash` with different content, and neither declares `Replaces` on the other\n"
    );
}

#[test]
fn valid_until_is_enforced_unless_the_recipe_opts_out() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = universe_archive(t);
    let release = a.dir.join("dists/test/Release");
    let text = std::fs::read_to_string(&release).unwrap();
    std::fs::write(
        &release,
        text.replace("Architectures:", "Valid-Until: Sat, 01 Jan 2000 00:00:00 UTC\nArchitectures:"),
    )
    .unwrap();
    run_ok(
        &a.dir.join("dists/test"),
        &format!(
            "rm InRelease && GNUPGHOME={} gpg --batch --quiet --yes --clearsign -o InRelease Release",
            a.gnupg.display()
        ),
    );
    assert_eq!(
        failure(t, "expired", recipe(&a, t, "second", "")),
        format!(
            "error: `{}/dists/test/InRelease` expired at Sat, 01 Jan 2000 00:00:00 UTC (Valid-Until); the archive may be stale or replayed\n",
            a.mirror()
        )
    );
    std::fs::write(
        t.join("old.yml"),
        recipe(&a, t, "second", "    check_valid_until: false\n").replace("name: fx", "name: old"),
    )
    .unwrap();
    assemble(t, &t.join("c"), &["build", "old.yml", "-o", "oci:old"], &[]).ok();
}

#[test]
fn a_locked_package_gone_from_the_mirror_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = universe_archive(t);
    std::fs::write(t.join("gone.yml"), recipe(&a, t, "second", "").replace("name: fx", "name: gone")).unwrap();
    assemble(t, &t.join("c1"), &["build", "gone.yml", "-o", "oci:gone1"], &[]).ok();
    std::fs::remove_file(a.dir.join("pool/second_1_amd64.deb")).unwrap();
    let run = assemble(t, &t.join("c2"), &["-q", "build", "--locked", "gone.yml", "-o", "oci:gone2"], &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!(
            "error: package `second` 1 (amd64) is no longer on the mirror (`{}/pool/second_1_amd64.deb` answers 404); the archive has moved on since the lock was made (Sat, 11 Jul 2026 10:16:37 UTC): point `mirror:` at a snapshot of the archive from that date, or run `assemble lock` to move to current versions\n",
            a.mirror()
        )
    );
}

#[test]
fn signatures_indexes_and_packages_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = universe_archive(t);
    let inrelease = format!("{}/dists/test/InRelease", a.mirror());

    // A package whose data would land below a symlink.
    assert_eq!(
        failure(t, "escape", recipe(&a, t, "escape", "")),
        "error: escape.yml:1:1: `/etc/x/evil` would be placed below `/etc/x`, which is not a directory (package `escape`)\n  |\n1 | name: escape\n  | ^\n"
    );
    assert_eq!(
        failure(t, "climber", recipe(&a, t, "climber", "")),
        "error: `climber_1_amd64.deb` holds `./../../etc/evil`, which is outside the package root (`..`)\n"
    );
    assert_eq!(
        failure(t, "absolute", recipe(&a, t, "absolute", "")),
        "error: `absolute_1_amd64.deb` holds `/etc/evil`, which is an absolute path\n"
    );

    // A tampered .deb.
    let deb = a.dir.join("pool/second_1_amd64.deb");
    let good = std::fs::read(&deb).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    std::fs::write(&deb, &bad).unwrap();
    let err = failure(t, "tampered-deb", recipe(&a, t, "second", ""));
    assert!(err.starts_with(&format!("error: download of `{}/pool/second_1_amd64.deb` does not match its pinned digest (asked for by package `second` 1 (amd64)): expected sha256:{}", a.mirror(), sha256_of(&good))), "{err}");
    std::fs::write(&deb, &good).unwrap();

    // A Packages file changed after signing.
    let packages = a.dir.join("dists/test/main/binary-amd64/Packages");
    let text = std::fs::read_to_string(&packages).unwrap();
    std::fs::write(&packages, text.replace("test package second", "test package 2nd")).unwrap();
    let err = failure(t, "tampered-index", recipe(&a, t, "second", ""));
    assert!(err.starts_with(&format!("error: `{}/dists/test/main/binary-amd64/Packages` does not match the SHA256 that `{inrelease}` lists for it: expected ", a.mirror())), "{err}");
    std::fs::write(&packages, text).unwrap();

    // An InRelease that does not end (here 33 MiB): refused as it streams, never held whole.
    let inrelease_file = a.dir.join("dists/test/InRelease");
    let signed = std::fs::read(&inrelease_file).unwrap();
    std::fs::File::create(&inrelease_file).unwrap().set_len(33 << 20).unwrap();
    let err = failure(t, "endless-inrelease", recipe(&a, t, "second", ""));
    assert!(err.contains(&format!("`{inrelease}` answered with more than 33554432 bytes")), "{err}");
    std::fs::write(&inrelease_file, signed).unwrap();

    // Another suite's InRelease, signed by the trusted key, served under the asked suite's
    // name (a mirror replaying an older release as the current one).
    run_ok(&a.dir.join("dists"), "cp -r test stable");
    assert_eq!(
        failure(t, "other-suite", recipe(&a, t, "second", "").replace("suite: test", "suite: stable")),
        format!(
            "error: `{}/dists/stable/InRelease` is signed for suite `test` (codename `test`), not `stable`: another release's InRelease, served under this suite's name, is refused\n",
            a.mirror()
        )
    );

    // A Release signed by a key the recipe does not trust.
    let other = t.join("other");
    std::fs::create_dir_all(&other).unwrap();
    run_ok(t, "chmod 700 other");
    run_ok(
        t,
        &format!(
            "GNUPGHOME={} gpg --batch --quiet --passphrase '' --quick-gen-key 'other <o@example.invalid>' ed25519 sign never 2>/dev/null",
            other.display()
        ),
    );
    run_ok(
        &a.dir.join("dists/test"),
        &format!(
            "rm InRelease && GNUPGHOME={} gpg --batch --quiet --yes --clearsign -o InRelease Release",
            other.display()
        ),
    );
    assert_eq!(
        failure(t, "badsig", recipe(&a, t, "second", "")),
        format!(
            "error: the signature of `{inrelease}` does not verify with any key in `{}`\n",
            t.join("keyring.gpg").display()
        )
    );
}

fn sha256_of(bytes: &[u8]) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    sha256_file(f.path())
}

#[test]
fn outdated_lists_exactly_the_package_with_a_newer_version_and_upgrade_moves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = universe_archive(t);
    std::fs::write(t.join("up.yml"), recipe(&a, t, "second, prelib", "").replace("name: fx", "name: up")).unwrap();
    let cache = t.join("cache");
    assemble(t, &cache, &["build", "up.yml", "-o", "oci:up"], &[]).ok();
    let none = assemble(t, &cache, &["outdated", "up.yml"], &[]).ok();
    assert_eq!(
        none.stdout,
        "up to date: every locked package is the archive's current version, every image its tag's, every tracked download its newest release\n"
    );

    a.add(t, &pkg("prelib", "2").file("usr/lib/prelib", "p2\n"));
    let run = assemble(t, &cache, &["outdated", "up.yml"], &[]).ok();
    assert_eq!(run.stdout, "up prelib amd64: 1 → 2 (test)\n");
    // A build still uses the lock: the recipe did not change.
    assemble(t, &cache, &["build", "up.yml", "-o", "oci:up2"], &[]).ok();
    assert!(locked(t, "up").contains("base:prelib 1"));

    let upgrade = assemble(t, &cache, &["lock", "--upgrade", "up.yml"], &[]).ok();
    assert!(upgrade.stdout.starts_with("up prelib amd64 (base): 1 → 2\n"), "{}", upgrade.stdout);
    assert_eq!(locked(t, "up"), set(&["base:prelib 2", "base:second 1"]));
    assert_eq!(
        assemble(t, &cache, &["outdated", "up.yml"], &[]).ok().stdout,
        "up to date: every locked package is the archive's current version, every image its tag's, every tracked download its newest release\n"
    );
}

#[test]
fn package_images_are_identical_across_caches_threads_tz_umask_and_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = universe_archive(t);
    std::fs::write(
        t.join("rep.yml"),
        recipe(&a, t, "app, mawk-lite", "    essential: true\n").replace("name: fx", "name: rep"),
    )
    .unwrap();
    let first = assemble(t, &t.join("c1"), &["--json", "-j", "1", "build", "rep.yml", "-o", "oci:r1"], &[]).ok().json();
    let elsewhere = t.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let recipe_path = t.join("rep.yml");
    let second = assemble_with_umask(
        &elsewhere,
        &t.join("c2"),
        "077",
        &["--json", "-j", "2", "build", recipe_path.to_str().unwrap(), "-o", "oci:r2"],
        &[("TZ", "Asia/Kathmandu")],
    )
    .ok()
    .json();
    assert_eq!(first[0]["digest"], second[0]["digest"]);
    assert_eq!(second[0]["packed"], 1, "the second cache really packed the base layer again");
    deb_swapped_in_the_cache_is_fetched_again_not_installed(t, &first[0]["digest"]);
}

/// A `.deb` swapped in the cache under the pinned name (another package's bytes, as a
/// poisoned CI cache would have it), and a file unpacked from one that was damaged later:
/// the next build says "cache entry damaged", fetches or unpacks it again, and gives the
/// same image; the lock still pins what it pinned.
fn deb_swapped_in_the_cache_is_fetched_again_not_installed(t: &Path, digest: &serde_json::Value) {
    let c = t.join("c1");
    let lock_text = std::fs::read_to_string(t.join("rep.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&lock_text).unwrap();
    let sha = |name: &str| -> String {
        let pins = lock["package"].as_array().unwrap();
        let p = pins.iter().find(|p| p["name"].as_str() == Some(name)).unwrap();
        p["sha256"].as_str().unwrap().to_string()
    };
    let (app, mawk) = (sha("app"), sha("mawk-lite"));
    let blob = |hex: &str| c.join("blobs/sha256").join(hex);
    std::fs::copy(blob(&mawk), blob(&app)).unwrap();
    let forget = || {
        for e in std::fs::read_dir(c.join("layers")).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    };
    forget();
    let again = assemble(t, &c, &["--json", "build", "rep.yml", "-o", "oci:r3"], &[]).ok();
    assert!(again.stderr.contains("cache entry damaged") && again.stderr.contains(&app), "{}", again.stderr);
    assert_eq!(&again.json()[0]["digest"], digest, "the swapped package did not reach the image");
    assert_eq!(std::fs::read_to_string(t.join("rep.lock")).unwrap(), lock_text);
    assert_eq!(sha256_file(&blob(&app)), app);

    // A file unpacked from a package (its bytes in the package's pack of files), damaged
    // after the listing was made.
    let listing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.join("layers").join(format!("{app}.deb.json"))).unwrap()).unwrap();
    let pack = listing["pack"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let forget_layers = || {
        for e in std::fs::read_dir(c.join("layers")).unwrap() {
            let p = e.unwrap().path();
            if !p.to_string_lossy().ends_with(".deb.json") {
                std::fs::remove_file(p).unwrap();
            }
        }
    };
    forget_layers();
    let bytes = std::fs::read(blob(&pack)).unwrap();
    let at = bytes.windows(10).position(|w| w == b"#!/bin/sh\n").expect("app's file is in its pack");
    let mut evil = bytes.clone();
    evil[at + 8] = b'X';
    std::fs::write(blob(&pack), evil).unwrap();
    let healed = assemble(t, &c, &["--json", "build", "rep.yml", "-o", "oci:r4"], &[]).ok();
    assert!(healed.stderr.contains("cache entry damaged") && healed.stderr.contains(&pack), "{}", healed.stderr);
    assert_eq!(&healed.json()[0]["digest"], digest);
    assert_eq!(sha256_file(&blob(&pack)), pack, "the package was read again");

    // The listing itself poisoned: a file's offset past the end of its pack, one no file can
    // have (2^63 and more), and a size of 2^60. Each is damage — never other bytes read into
    // the image, never a buffer of that size: the pack is removed and the package read again.
    let listing_path = c.join("layers").join(format!("{app}.deb.json"));
    let pack_len = std::fs::metadata(blob(&pack)).unwrap().len();
    type Poison = fn(&mut serde_json::Value, usize, u64);
    let poisons: [(&str, Poison); 3] = [
        ("an offset past the pack", |l, i, len| l["offsets"][i] = (len + 100).into()),
        ("an offset of 2^63 + 5", |l, i, _| l["offsets"][i] = ((1u64 << 63) + 5).into()),
        ("a size of 2^60", |l, i, _| l["entries"][i]["kind"]["File"]["size"] = (1u64 << 60).into()),
    ];
    for (what, poison) in poisons {
        let mut listing: serde_json::Value = serde_json::from_slice(&std::fs::read(&listing_path).unwrap()).unwrap();
        let file = listing["entries"].as_array().unwrap().iter().position(|e| e["kind"].get("File").is_some()).unwrap();
        poison(&mut listing, file, pack_len);
        std::fs::write(&listing_path, listing.to_string()).unwrap();
        forget_layers();
        let healed = assemble(t, &c, &["--json", "build", "rep.yml", "-o", "oci:r5"], &[]).ok();
        assert!(healed.stderr.contains("cache entry damaged"), "{what}: {}", healed.stderr);
        assert_eq!(&healed.json()[0]["digest"], digest, "{what}");
        assert_eq!(sha256_file(&blob(&pack)), pack, "{what}: the package was read again");
    }
}

/// A registry image as a base: its layers are reused byte for byte, the lock pins its
/// digest (a moved tag changes nothing), packages from the archive go on top of its dpkg
/// database, and its settings carry over.
#[test]
fn packages_install_on_a_registry_image_base() {
    let reg = registry::Registry::start(registry::Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = universe_archive(t);
    let cache = t.join("cache");
    let base =
        recipe(&a, t, "base-passwd, libfoo", "tags: [\"1\"]\nconfig:\n  env: {FROM_BASE: \"yes\"}\n  cmd: [/bin/sh]\n")
            .replace("name: fx", "name: fxbase");
    std::fs::write(t.join("fxbase.yml"), &base).unwrap();
    let pushed =
        assemble(t, &cache, &["--json", "push", "fxbase.yml", "--to", &format!("{}/team", reg.addr)], &[]).ok().json();
    let base_index = pushed[0]["digest"].as_str().unwrap().to_string();
    let base_layers =
        assemble(t, &cache, &["--json", "build", "fxbase.yml", "-o", "oci:fxbase"], &[]).ok().json()[0]["platforms"][0]
            ["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect::<Vec<_>>();

    let on = format!(
        "name: onimage\nbase:\n  image: {}/team/fxbase:1\n  debian:\n    suite: test\n    mirror: {}\n    keyring: [{}]\nlayers:\n  - name: extra\n    packages: [app]\nconfig:\n  env: {{MINE: \"2\"}}\n",
        reg.addr,
        a.mirror(),
        t.join("keyring.gpg").display()
    );
    std::fs::write(t.join("onimage.yml"), &on).unwrap();
    // A separate cache: the base's layers come from the registry, not from the first build.
    let cache2 = t.join("cache2");
    let v = assemble(t, &cache2, &["--json", "build", "onimage.yml", "-o", "oci:onimage"], &[]).ok().json();
    let layers = v[0]["platforms"][0]["layers"].as_array().unwrap().clone();
    let digests: Vec<&str> = layers.iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(
        digests[..base_layers.len()],
        base_layers.iter().map(String::as_str).collect::<Vec<_>>()[..],
        "the base's layers are reused as they are"
    );
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["base", "extra"]);
    // libfoo (>= 2) is already in the base: only the rest of app's closure is installed.
    let lock = std::fs::read_to_string(t.join("onimage.lock")).unwrap();
    assert!(lock.contains(&format!("digest = \"{base_index}\"")), "{lock}");
    assert_eq!(locked(t, "onimage"), set(&["extra:app 1.0", "extra:postfix-lite 1", "extra:perl 5", "extra:prelib 1"]));
    let out = sh(t, "umoci unpack --image onimage:latest ob");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let q = sh(
        t,
        &format!("dpkg-query --admindir={}/ob/rootfs/var/lib/dpkg -W -f '${{Package}} ${{Version}}\\n'", t.display()),
    );
    assert_eq!(q.stdout, "app 1.0\nbase-passwd 1\nlibfoo 2.1\nperl 5\npostfix-lite 1\nprelib 1\n");
    assert!(t.join("ob/rootfs/usr/lib/libfoo.so.2").is_file() && t.join("ob/rootfs/usr/bin/app").is_file());
    let config = sh(t, "cat ob/config.json").stdout;
    assert!(config.contains("FROM_BASE=yes") && config.contains("MINE=2") && config.contains("/bin/sh"), "{config}");

    // The tag moves to another image: the lock's digest still decides.
    let moved = base.replace("FROM_BASE: \"yes\"", "FROM_BASE: \"moved\"");
    std::fs::write(t.join("fxbase.yml"), moved).unwrap();
    let again =
        assemble(t, &cache, &["--json", "push", "fxbase.yml", "--to", &format!("{}/team", reg.addr)], &[]).ok().json();
    assert_ne!(again[0]["digest"].as_str().unwrap(), base_index);
    let locked_build =
        assemble(t, &cache2, &["--json", "build", "--locked", "onimage.yml", "-o", "oci:onimage2"], &[]).ok().json();
    assert_eq!(locked_build[0]["digest"], v[0]["digest"], "--locked ignores where the tag has moved");

    // Pushing the result to the same registry mounts the base's layers.
    let p = assemble(t, &cache2, &["--json", "push", "onimage.yml", "--to", &format!("{}/apps", reg.addr)], &[])
        .ok()
        .json();
    let blobs = p[0]["blobs"].as_array().unwrap();
    for d in &base_layers {
        let b = blobs.iter().find(|b| b["digest"] == d.as_str()).unwrap();
        assert_eq!(b["action"], "mounted", "{b}");
    }
}

#[test]
fn packages_install_on_a_recipe_base_from_its_source() {
    require("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = universe_archive(t);
    let cache = t.join("cache");
    let base = recipe(&a, t, "base-passwd, libfoo", "").replace("name: fx", "name: fxbase");
    std::fs::write(t.join("fxbase.yml"), base).unwrap();
    std::fs::write(
        t.join("onrecipe.yml"),
        "name: onrecipe\nbase: {recipe: fxbase}\nlayers:\n  - name: extra\n    packages: [app]\n",
    )
    .unwrap();
    let run = assemble(t, &cache, &["--json", "build", "onrecipe.yml", "-o", "oci:onrecipe"], &[]).ok();
    // The base recipe installs no base-files: the build says what scanners will miss (once,
    // for the Debian-based recipe, not for the one on it).
    assert_eq!(
        run.stderr.matches("warning: fxbase: the image has no /etc/os-release (base-files is not installed), so vulnerability scanners cannot tell its distribution; add `base-files` to its packages\n").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("onrecipe: the image has no /etc/os-release"), "{}", run.stderr);
    let v = run.json();
    let names: Vec<&str> =
        v[0]["platforms"][0]["layers"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["base", "extra"]);
    // The base recipe's source (suite, mirror, keyring) is inherited; libfoo is not installed again.
    assert_eq!(
        locked(t, "onrecipe"),
        set(&["extra:app 1.0", "extra:postfix-lite 1", "extra:perl 5", "extra:prelib 1"])
    );
    assert!(t.join("fxbase.lock").is_file(), "the base recipe was built from (and wrote) its own lock");
    assert_eq!(sh(t, "umoci unpack --image onrecipe:latest u").code, 0);
    let q = sh(
        t,
        &format!("dpkg-query --admindir={}/u/rootfs/var/lib/dpkg -W -f '${{Package}} ${{Version}}\\n'", t.display()),
    );
    assert_eq!(q.stdout, "app 1.0\nbase-passwd 1\nlibfoo 2.1\nperl 5\npostfix-lite 1\nprelib 1\n");

    // One command reads an archive once for all its recipes (the index is read and held once)…
    let before = a.server.hits("dists/test/InRelease");
    assemble(t, &cache, &["lock", "--upgrade", "fxbase.yml", "onrecipe.yml"], &[]).ok();
    assert_eq!(a.server.hits("dists/test/InRelease") - before, 1, "the archive was opened once");
    // …and `verify` rebuilds a recipe base once, in its one fresh cache, for every recipe on
    // it (from an empty user cache, each `.deb` is downloaded once)…
    let before = a.server.hits("pool/libfoo_2.1_amd64.deb");
    assemble(t, &t.join("empty"), &["verify", "fxbase.yml", "onrecipe.yml"], &[]).ok();
    assert_eq!(a.server.hits("pool/libfoo_2.1_amd64.deb") - before, 1, "the base was rebuilt once");
    // …and takes the pinned `.deb`s the user's cache holds (re-hashed) instead of downloading
    // them again; one damaged there is downloaded.
    let app = cache.join("blobs/sha256").join(sha256_file(&a.dir.join("pool/app_1.0_amd64.deb")));
    assert!(app.is_file(), "the user's cache holds app's .deb");
    std::fs::write(&app, b"!<arch>\nnot app any more").unwrap();
    let before = a.server.count();
    let app_before = a.server.hits("pool/app_1.0_amd64.deb");
    assemble(t, &cache, &["verify", "fxbase.yml", "onrecipe.yml"], &[]).ok();
    assert_eq!(a.server.hits("pool/app_1.0_amd64.deb") - app_before, 1, "the damaged copy was not taken");
    assert_eq!(a.server.count() - before, 1, "every other .deb came from the user's cache");
}
