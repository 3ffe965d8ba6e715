//! Several Debian-format archives in one recipe (`base.debian.sources`), each signed by its
//! own key, with apt's pin priorities; a mirror per architecture (Ubuntu's archive and
//! ports); components beside `main`. The archives are built here (dpkg-deb, a throwaway gpg
//! key each, a signed InRelease) and served on 127.0.0.1, laid out as Debian's, a third-party
//! PHP repository's and Ubuntu's are; the recipes in `recipes/` that read such archives are
//! resolved and built against them.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One package: name, version, architecture (`all`, `amd64`, `arm64`), Depends, a file.
#[derive(Clone)]
struct P(&'static str, &'static str, &'static str, &'static str, &'static str);

struct Repo {
    server: HttpServer,
    keyring: PathBuf,
}

impl Repo {
    fn url(&self) -> String {
        self.server.url("").trim_end_matches('/').to_string()
    }
}

fn run_ok(dir: &Path, script: &str) {
    let r = sh(dir, script);
    assert_eq!(r.code, 0, "{script}\n{}{}", r.stdout, r.stderr);
}

/// An archive under `root/name`: `suites` (the first with `components`, each with its
/// packages; further ones, as updates and security suites, empty) for `archs`, signed with a
/// key of its own (`root/name.gpg`).
fn repo(root: &Path, name: &str, suites: &[&str], archs: &[&str], components: &[(&str, Vec<P>)]) -> Repo {
    let gnupg = root.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&gnupg).unwrap();
    run_ok(root, &format!("chmod 700 {}", gnupg.display()));
    let g = format!("GNUPGHOME={}", gnupg.display());
    run_ok(
        root,
        &format!(
            "{g} gpg --batch --quiet --passphrase '' --quick-gen-key '{name} <{name}@example.invalid>' ed25519 sign never 2>/dev/null"
        ),
    );
    let keyring = root.join(format!("{name}.gpg"));
    run_ok(root, &format!("{g} gpg --batch --quiet --export > {}", keyring.display()));
    for (i, suite) in suites.iter().enumerate() {
        let empty: Vec<(&str, Vec<P>)> = components.iter().map(|(c, _)| (*c, Vec::new())).collect();
        suite_of(root, name, suite, archs, if i == 0 { components } else { &empty }, &g);
    }
    Repo { server: HttpServer::serve(&root.join(name)), keyring }
}

/// One signed suite of the archive `name`.
fn suite_of(root: &Path, name: &str, suite: &str, archs: &[&str], components: &[(&str, Vec<P>)], gnupg: &str) {
    require("dpkg-deb");
    require("gpg");
    let dir = root.join(name);
    let pool = dir.join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    let mut listed = Vec::new();
    for (component, packages) in components {
        for arch in archs {
            let mut index = String::new();
            for P(pkg, version, architecture, depends, file) in packages.iter().filter(|p| p.2 == "all" || p.2 == *arch)
            {
                let src = root.join(format!("src-{name}-{pkg}-{version}-{architecture}"));
                let deb = pool.join(format!("{pkg}_{version}_{architecture}.deb"));
                let mut control = format!(
                    "Package: {pkg}\nVersion: {version}\nArchitecture: {architecture}\nMaintainer: t <t@example.invalid>\n"
                );
                if !depends.is_empty() {
                    control.push_str(&format!("Depends: {depends}\n"));
                }
                if !deb.exists() {
                    std::fs::create_dir_all(src.join("DEBIAN")).unwrap();
                    std::fs::write(src.join("DEBIAN/control"), format!("{control}Description: {pkg}\n")).unwrap();
                    let f = src.join(file);
                    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
                    std::fs::write(&f, format!("{pkg} {version} {architecture} from {name}\n")).unwrap();
                    run_ok(
                        root,
                        &format!(
                            "dpkg-deb --root-owner-group -Zxz --build {} {} >/dev/null",
                            src.display(),
                            deb.display()
                        ),
                    );
                }
                index.push_str(&format!(
                    "{control}Filename: pool/{}\nSize: {}\nSHA256: {}\nDescription: {pkg}\n\n",
                    deb.file_name().unwrap().to_str().unwrap(),
                    std::fs::metadata(&deb).unwrap().len(),
                    sha256_file(&deb)
                ));
            }
            let rel = format!("{component}/binary-{arch}/Packages");
            let path = dir.join("dists").join(suite).join(&rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &index).unwrap();
            listed.push(format!(" {} {} {rel}", sha256_file(&path), index.len()));
        }
    }
    let release = format!(
        "Origin: {name}\nSuite: {suite}\nCodename: {suite}\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nArchitectures: {}\nComponents: {}\nSHA256:\n{}\n",
        archs.join(" "),
        components.iter().map(|c| c.0).collect::<Vec<_>>().join(" "),
        listed.join("\n")
    );
    let dists = dir.join("dists").join(suite);
    std::fs::write(dists.join("Release"), release).unwrap();
    run_ok(&dists, &format!("{gnupg} gpg --batch --quiet --yes --digest-algo SHA256 --clearsign -o InRelease Release"));
}

/// `name → (version, url)` of one architecture's pins in a lock.
fn pins(lock: &Path, arch: &str) -> BTreeMap<String, (String, String)> {
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(lock).unwrap()).unwrap();
    v["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["arch"].as_str() == Some(arch))
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("name"), (s("version"), s("url")))
        })
        .collect()
}

#[test]
fn a_second_archive_with_its_own_key_and_apt_s_pin_priorities() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let debian = repo(
        t,
        "debian",
        &["bookworm"],
        &["amd64"],
        &[(
            "main",
            vec![
                P("tool", "1.0", "amd64", "", "usr/bin/tool"),
                P("php8.2-fpm", "8.2.1", "amd64", "", "usr/sbin/php-fpm8.2"),
                // A higher version than the PHP archive's: only a pin by name takes the other.
                P("php7.4-fpm", "7.4.40-1", "amd64", "", "usr/sbin/php-fpm7.4"),
            ],
        )],
    );
    let php = repo(
        t,
        "php",
        &["bookworm"],
        &["amd64"],
        &[(
            "main",
            vec![
                P("tool", "9.0", "amd64", "", "usr/bin/tool"),
                P("php7.4-fpm", "7.4.33-1", "amd64", "libphp-extra", "usr/sbin/php-fpm7.4"),
                P("libphp-extra", "1", "amd64", "", "usr/lib/libphp-extra.so"),
            ],
        )],
    );
    let recipe = |name: &str, source: &str| {
        std::fs::write(
            t.join(format!("{name}.yml")),
            format!(
                "name: {name}\narchs: [amd64]\nbase:\n  debian:\n    suite: bookworm\n    mirror: {}\n    keyring: [debian.gpg]\n    packages: [tool, php7.4-fpm]\n    sources:\n      - {{mirror: \"{}\", suite: bookworm, keyring: [{source}]}}\n",
                debian.url(),
                php.url()
            )
            .replace("keyring: [php.gpg]}", "keyring: [php.gpg]PINS}"),
        )
        .unwrap();
    };
    let cache = t.join("cache");
    // Equal priorities: the highest version wins, whichever archive has it.
    recipe("equal", "php.gpg");
    let text = std::fs::read_to_string(t.join("equal.yml")).unwrap().replace("PINS", "");
    std::fs::write(t.join("equal.yml"), text).unwrap();
    assemble(t, &cache, &["build", "equal.yml"], &[]).ok();
    let got = pins(&t.join("equal.lock"), "amd64");
    assert_eq!(got["tool"].0, "9.0");
    assert!(got["tool"].1.starts_with(&php.url()), "{got:?}");
    assert_eq!(got["php7.4-fpm"].0, "7.4.40-1", "{got:?}");
    assert!(got["php7.4-fpm"].1.starts_with(&debian.url()), "{got:?}");
    assert!(!got.contains_key("libphp-extra"), "Debian's php7.4-fpm does not depend on it: {got:?}");
    // Priority 100 (as backports): the PHP archive gives only what it alone has, or what the
    // recipe pins to it by name.
    recipe("low", "php.gpg");
    let text =
        std::fs::read_to_string(t.join("low.yml")).unwrap().replace("PINS", ", priority: 100, packages: [\"php7.4*\"]");
    std::fs::write(t.join("low.yml"), &text).unwrap();
    assemble(t, &cache, &["build", "low.yml"], &[]).ok();
    let got = pins(&t.join("low.lock"), "amd64");
    assert_eq!((got["tool"].0.as_str(), got["tool"].1.starts_with(&debian.url())), ("1.0", true), "{got:?}");
    // Pinned by name (990): the PHP archive's php7.4-fpm, though Debian's is newer.
    assert_eq!(got["php7.4-fpm"].0, "7.4.33-1", "{got:?}");
    assert!(got["php7.4-fpm"].1.starts_with(&php.url()), "{got:?}");
    assert!(got["libphp-extra"].1.starts_with(&php.url()), "only the PHP archive has it: {got:?}");
    let lock = std::fs::read_to_string(t.join("low.lock")).unwrap();
    assert!(lock.contains("[[debian.source]]") && lock.contains("priority = 100"), "{lock}");
    assert_eq!(lock.matches("[[debian.release]]").count(), 2, "each archive's release is recorded: {lock}");
    assemble(t, &cache, &["build", "--locked", "low.yml"], &[]).ok();
    // The lock was made from other archives: --locked says so.
    std::fs::write(t.join("low.yml"), text.replace("priority: 100", "priority: 200")).unwrap();
    let stale = assemble(t, &cache, &["build", "--locked", "low.yml"], &[]);
    assert_ne!(stale.code, 0);
    assert!(stale.stderr.contains("further archives (`sources:`)"), "{}", stale.stderr);
    // Each archive is checked with its own key: the PHP archive with Debian's is refused.
    recipe("wrongkey", "debian.gpg");
    let text = std::fs::read_to_string(t.join("wrongkey.yml")).unwrap().replace("PINS", "");
    std::fs::write(t.join("wrongkey.yml"), text).unwrap();
    let refused = assemble(t, &cache, &["build", "wrongkey.yml"], &[]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains(&php.url()) && refused.stderr.contains("InRelease"), "{}", refused.stderr);
}

/// The Ubuntu recipe resolves against archives laid out as Ubuntu's: amd64 from the archive,
/// arm64 from the ports archive (a mirror per architecture), `main` and `universe`, the
/// updates and security suites beside the release.
#[test]
fn the_ubuntu_recipe_reads_main_and_universe_from_a_mirror_per_architecture() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    copy_dir(&repo_root().join("recipes"), &t.join("recipes"));
    let ubuntu = |arch: &'static str| -> Vec<(&'static str, Vec<P>)> {
        vec![
            (
                "main",
                vec![
                    P("base-files", "13ubuntu10", arch, "", "usr/lib/os-release"),
                    P("nginx", "1.24.0-2ubuntu7", arch, "", "usr/sbin/nginx"),
                    P("php8.3-fpm", "8.3.6-0ubuntu0.24.04.1", arch, "php8.3-common", "usr/sbin/php-fpm8.3"),
                    P("php8.3-common", "8.3.6-0ubuntu0.24.04.1", arch, "", "usr/lib/php/8.3/common"),
                ],
            ),
            ("universe", vec![P("supervisor", "4.2.5-1", "all", "", "usr/bin/supervisord")]),
        ]
    };
    let suites = ["noble", "noble-updates", "noble-security"];
    let archive = repo(t, "archive", &suites, &["amd64"], &ubuntu("amd64"));
    let ports = repo(t, "ports", &suites, &["arm64"], &ubuntu("arm64"));
    // One keyring with both keys, as Ubuntu's holds several.
    let keyring = t.join("ubuntu-test.gpg");
    let both = [std::fs::read(&archive.keyring).unwrap(), std::fs::read(&ports.keyring).unwrap()].concat();
    std::fs::write(&keyring, both).unwrap();
    let vars = [
        format!("--var=ubuntu_archive={}", archive.url()),
        format!("--var=ubuntu_ports={}", ports.url()),
        format!("--var=ubuntu_keyring={}", keyring.display()),
    ];
    let mut args = vec!["build", "nginx-php-fpm-ubuntu"];
    args.extend(vars.iter().map(String::as_str));
    assemble(t, &t.join("cache"), &args, &[]).ok();
    let lock = t.join("recipes/nginx-php-fpm-ubuntu.lock");
    for (arch, mirror) in [("amd64", archive.url()), ("arm64", ports.url())] {
        let got = pins(&lock, arch);
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(names, ["base-files", "nginx", "php8.3-common", "php8.3-fpm", "supervisor"], "{arch}");
        assert!(got.values().all(|(_, url)| url.starts_with(&mirror)), "{arch} from its own mirror: {got:?}");
    }
    let text = std::fs::read_to_string(&lock).unwrap();
    assert_eq!(text.matches("[[debian.release]]").count(), 6, "three suites on each of two mirrors: {text}");
}

/// PHP versions Debian does not carry come from a second archive at priority 100, pinned by
/// name: each variant of the recipe takes its PHP from there and everything else from Debian.
#[test]
fn the_php_variants_take_php_from_the_second_archive_and_the_rest_from_debian() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    copy_dir(&repo_root().join("recipes"), &t.join("recipes"));
    let mut debian = Vec::new();
    let mut sury = Vec::new();
    for arch in ["amd64", "arm64"] {
        debian.push(P("base-files", "12.4", arch, "", "usr/lib/os-release"));
        debian.push(P("nginx-light", "1.22.1-9", arch, "", "usr/sbin/nginx"));
        debian.push(P("php8.2-fpm", "8.2.28-1", arch, "", "usr/sbin/php-fpm8.2"));
        for php in ["php7.4-fpm", "php8.0-fpm", "php8.1-fpm", "php8.3-fpm"] {
            sury.push(P(php, "2:9.9.9-1+0~sury", arch, "", "usr/sbin/php-fpm"));
        }
        // A newer nginx-light too: at priority 100 it is not taken.
        sury.push(P("nginx-light", "1.99.0-1+0~sury", arch, "", "usr/sbin/nginx"));
    }
    debian.push(P("supervisor", "4.2.5-1", "all", "", "usr/bin/supervisord"));
    let deb = repo(t, "debian", &["bookworm"], &["amd64", "arm64"], &[("main", debian)]);
    let php = repo(t, "sury", &["bookworm"], &["amd64", "arm64"], &[("main", sury)]);
    let vars = [
        format!("--var=debian_keyring={}", deb.keyring.display()),
        format!("--var=sury_mirror={}", php.url()),
        format!("--var=sury_keyring={}", php.keyring.display()),
    ];
    let mut args = vec!["build", "nginx-php-fpm-sury"];
    args.extend(vars.iter().map(String::as_str));
    assemble(t, &t.join("cache"), &args, &[("ASSEMBLE_DEBIAN_MIRROR", &deb.url())]).ok();
    for (lock, version) in [("nginx-php-fpm-sury.lock", "7.4"), ("nginx-php-fpm-sury.1.0.0-php8.3.lock", "8.3")] {
        for arch in ["amd64", "arm64"] {
            let got = pins(&t.join("recipes").join(lock), arch);
            assert!(got[&format!("php{version}-fpm")].1.starts_with(&php.url()), "{lock} {arch}: {got:?}");
            assert_eq!(got["nginx-light"].0, "1.22.1-9", "{lock} {arch}: Debian's, not the newer one at priority 100");
            assert!(got["supervisor"].1.starts_with(&deb.url()));
            assert!(!got.contains_key("php8.2-fpm"));
        }
    }
}

fn repo_root() -> PathBuf {
    crate::common::repo()
}

/// Every architecture reads one release of a suite: the `InRelease` of a mirror serving both
/// is fetched and checked once per command, and the lock records that one release.
#[test]
fn each_suite_s_release_is_read_once_for_every_architecture() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let archive = repo(
        t,
        "debian",
        &["bookworm"],
        &["amd64", "arm64"],
        &[("main", vec![P("tool", "1.0", "amd64", "", "usr/bin/tool"), P("tool", "1.0", "arm64", "", "usr/bin/tool")])],
    );
    std::fs::write(
        t.join("two.yml"),
        format!(
            "name: two\narchs: [amd64, arm64]\nbase:\n  debian:\n    suite: bookworm\n    mirror: {}\n    keyring: [debian.gpg]\n    packages: [tool]\n",
            archive.url()
        ),
    )
    .unwrap();
    assemble(t, &t.join("cache"), &["build", "two.yml"], &[]).ok();
    assert_eq!(archive.server.hits("dists/bookworm/InRelease"), 1, "one fetch for both architectures");
    let got = (pins(&t.join("two.lock"), "amd64"), pins(&t.join("two.lock"), "arm64"));
    assert_eq!((got.0["tool"].0.as_str(), got.1["tool"].0.as_str()), ("1.0", "1.0"), "{got:?}");
    let lock = std::fs::read_to_string(t.join("two.lock")).unwrap();
    assert_eq!(lock.matches("[[debian.release]]").count(), 1, "{lock}");
}
