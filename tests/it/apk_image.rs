//! Alpine images end to end: the signed two-architecture test repository in
//! `../shared/fixtures/apk/test-repos/melange-signed` builds images that the independent
//! readers accept, with apk's database listing every file; and a repository of hostile
//! packages, signed in the test with a throwaway key, is refused naming the offending path.

use crate::common::*;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

fn melange() -> PathBuf {
    let p = repo().join("../shared/fixtures/apk/test-repos/melange-signed");
    assert!(p.is_dir(), "the shared Alpine fixtures must be beside the repository");
    p.canonicalize().unwrap()
}

fn recipe(repo: &Path, key: &Path, packages: &str) -> String {
    format!(
        "name: alp\narchs: [amd64, arm64]\nbase:\n  alpine:\n    repositories: [{}]\n    keys: [{}]\n    packages: [{packages}]\nconfig:\n  users: [{{name: app, uid: 1000}}]\n  user: app\n",
        repo.display(),
        key.display()
    )
}

/// `F:`/`R:` paths of one package in an installed database.
fn db_paths(db: &str, package: &str) -> BTreeSet<String> {
    let record = db.split("\n\n").find(|r| r.lines().any(|l| l == format!("P:{package}"))).unwrap_or("");
    let mut out = BTreeSet::new();
    let mut dir = String::new();
    for l in record.lines() {
        if let Some(d) = l.strip_prefix("F:") {
            dir = d.to_string();
            out.insert(d.to_string());
        } else if let Some(f) = l.strip_prefix("R:") {
            out.insert(if dir.is_empty() { f.to_string() } else { format!("{dir}/{f}") });
        }
    }
    out
}

/// Every path in a package's data member.
fn apk_paths(file: &Path) -> BTreeSet<String> {
    let bytes = std::fs::read(file).unwrap();
    let members = assemble::source::apk::members(&bytes, "x").unwrap();
    let data = &members.last().unwrap().1;
    let mut ar = tar::Archive::new(&data[..]);
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string().trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn the_signed_test_repository_builds_both_architectures() {
    require("umoci");
    require("oci-image-tool");
    require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let repo_dir = melange();
    std::fs::write(
        t.join("alp.yml"),
        recipe(&repo_dir, &repo_dir.join("melange.rsa.pub"), "replayout, custom-ca-certs-1"),
    )
    .unwrap();
    let cache = t.join("cache");
    // Without the attestations (oci-image-tool 1.0.0~rc3 takes untagged referrer entries in
    // index.json for more descriptors of the name); `--no-attest` leaves them out.
    assemble(t, &cache, &["build", "--no-attest", "alp.yml", "-o", "oci:both"], &[]).ok();
    let index_json = std::fs::read_to_string(t.join("both/index.json")).unwrap();
    assert!(!index_json.contains("artifactType"), "{index_json}");
    let v = sh(t, "oci-image-tool validate --type image --ref name=latest both");
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let raw = sh(t, "skopeo inspect --raw oci:both:latest");
    assert!(
        raw.stdout.contains("\"architecture\":\"arm64\"") && raw.stdout.contains("\"variant\":\"v8\""),
        "{}",
        raw.stdout
    );

    let lock = std::fs::read_to_string(t.join("alp.lock")).unwrap();
    // The key is an input the lock names (it is written into the image).
    for field in [
        "name = \"replayout\"",
        "repository = ",
        "checksum = \"Q1",
        "size = ",
        "url = ",
        "sha256 = ",
        "melange.rsa.pub\" = \"sha256:",
    ] {
        assert!(lock.contains(field), "the lock records {field}:\n{lock}");
    }
    assemble(t, &cache, &["build", "--locked", "alp.yml", "-o", "oci:both2"], &[]).ok();

    for (arch, alpine) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        assemble(t, &cache, &["build", "--arch", arch, "alp.yml", "-o", &format!("oci:{arch}")], &[]).ok();
        let out = sh(t, &format!("umoci unpack --image {arch}:latest b-{arch}"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let root = t.join(format!("b-{arch}/rootfs"));
        assert_eq!(std::fs::read_to_string(root.join("etc/apk/arch")).unwrap(), format!("{alpine}\n"));
        assert_eq!(std::fs::read_to_string(root.join("etc/apk/world")).unwrap(), "custom-ca-certs-1\nreplayout\n");
        assert!(
            std::fs::read_to_string(root.join("etc/os-release")).unwrap().starts_with("ID=replaces\n"),
            "replayout replaces pretend-baselayout's file"
        );
        assert!(root.join("etc/apk/keys/melange.rsa.pub").is_file());
        assert!(std::fs::read_to_string(root.join("etc/passwd")).unwrap().contains("app:x:1000:1000:"));
        let db = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
        for p in ["pretend-baselayout", "replayout", "custom-ca-certs-1"] {
            let file = repo_dir.join(alpine).join(format!("{p}-1.0.0-r0.apk"));
            assert_eq!(db_paths(&db, p), apk_paths(&file), "{arch}: the installed database lists every file of {p}");
        }
        // The SBOMs (valid to spdx-tools and CycloneDX's schema) list what the installed
        // database does, name and version.
        let installed: BTreeSet<(String, String)> = db
            .split("\n\n")
            .filter_map(|rec| {
                let field = |k: &str| rec.lines().find_map(|l| l.strip_prefix(k)).map(String::from);
                Some(("apk".to_string(), format!("{} {}", field("P:")?, field("V:")?)))
            })
            .collect();
        assert_eq!(installed.len(), 3, "{db}");
        assert_eq!(validated_sbom_packages(t, &cache, "alp.yml", arch), installed, "{arch}");
    }
}

/// A repository served over HTTP: each package is fetched once, streamed into the cache, and
/// a build that the lock covers asks the server for the indexes only.
#[test]
fn packages_from_an_http_repository_are_fetched_once() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let repo_dir = melange();
    let server = HttpServer::serve(&repo_dir);
    let url = server.url("").trim_end_matches('/').to_string();
    let text = recipe(Path::new(&url), &repo_dir.join("melange.rsa.pub"), "replayout, custom-ca-certs-1");
    std::fs::write(t.join("alp.yml"), text).unwrap();
    let cache = t.join("cache");
    assemble(t, &cache, &["build", "alp.yml", "-o", "oci:first"], &[]).ok();
    let packages = ["pretend-baselayout", "replayout", "custom-ca-certs-1"];
    for alpine in ["x86_64", "aarch64"] {
        assert_eq!(server.hits(&format!("{alpine}/APKINDEX.tar.gz")), 1);
        for p in packages {
            assert_eq!(server.hits(&format!("{alpine}/{p}-1.0.0-r0.apk")), 1, "{alpine}/{p} fetched once");
        }
    }
    let lock = std::fs::read_to_string(t.join("alp.lock")).unwrap();
    let digest = sha256_file(&repo_dir.join("x86_64/replayout-1.0.0-r0.apk"));
    assert!(lock.contains(&format!("sha256 = \"{digest}\"")), "the lock pins what was fetched:\n{lock}");
    let before = server.count();
    assemble(t, &cache, &["build", "--locked", "alp.yml", "-o", "oci:second"], &[]).ok();
    assert_eq!(server.count() - before, 2, "only the two indexes were asked for again");
}

/// Builds a gzip member.
fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha1(bytes: &[u8]) -> Vec<u8> {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    let out = std::process::Command::new("openssl").args(["dgst", "-sha1", "-binary"]).arg(f.path()).output().unwrap();
    out.stdout
}

/// A hostile repository, signed with a throwaway RSA key: each package's data member is
/// `data` (already a gzip member or raw bytes to gzip).
fn hostile_repo(t: &Path, packages: &[(&str, Vec<u8>, u64)]) -> PathBuf {
    require("openssl");
    let repo_dir = t.join("hostile");
    let arch_dir = repo_dir.join("x86_64");
    std::fs::create_dir_all(&arch_dir).unwrap();
    let mut index = String::new();
    for (name, data_member, installed) in packages {
        let pkginfo = format!("pkgname = {name}\npkgver = 1.0-r0\narch = x86_64\nsize = {installed}\n");
        let control = gz(&raw_tar(&[(".PKGINFO".into(), pkginfo.into_bytes(), b'0', String::new())]));
        let apk = [control.clone(), data_member.clone()].concat();
        std::fs::write(arch_dir.join(format!("{name}-1.0-r0.apk")), &apk).unwrap();
        index.push_str(&format!(
            "C:Q1{}\nP:{name}\nV:1.0-r0\nA:x86_64\nS:{}\nI:{installed}\nT:hostile\n\n",
            b64(&sha1(&control)),
            apk.len()
        ));
    }
    let index_member = gz(&raw_tar(&[("APKINDEX".into(), index.into_bytes(), b'0', String::new())]));
    let keydir = t.join("keys");
    std::fs::create_dir_all(&keydir).unwrap();
    let r = sh(
        t,
        "openssl genrsa -out keys/test.pem 2048 2>/dev/null && openssl rsa -in keys/test.pem -pubout -out keys/test.rsa.pub 2>/dev/null",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::write(t.join("index-member"), &index_member).unwrap();
    let r = sh(t, "openssl dgst -sha1 -sign keys/test.pem -out index-sig index-member");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sig = std::fs::read(t.join("index-sig")).unwrap();
    let sig_member = gz(&raw_tar(&[(".SIGN.RSA.test.rsa.pub".into(), sig, b'0', String::new())]));
    std::fs::write(arch_dir.join("APKINDEX.tar.gz"), [sig_member, index_member].concat()).unwrap();
    repo_dir
}

fn file(name: &str, content: &[u8]) -> (String, Vec<u8>, u8, String) {
    (name.to_string(), content.to_vec(), b'0', String::new())
}

#[test]
fn hostile_packages_are_refused_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let zeros = vec![0u8; 64 << 20];
    let mut truncated = gz(&raw_tar(&[file("etc/ok", b"ok\n")]));
    truncated.truncate(truncated.len() - 12);
    let repo_dir = hostile_repo(
        t,
        &[
            ("climber", gz(&raw_tar(&[file("../../etc/evil", b"x\n")])), 100),
            ("absolute", gz(&raw_tar(&[file("/etc/evil", b"x\n")])), 100),
            ("escape", gz(&raw_tar(&[("etc/x".into(), vec![], b'2', "/tmp".into()), file("etc/x/evil", b"x\n")])), 100),
            ("bomb", gz(&raw_tar(&[file("big", &zeros)])), 100),
            ("truncated", truncated, 100),
        ],
    );
    let key = t.join("keys/test.rsa.pub");
    let cases = [
        (
            "climber",
            "error: `climber-1.0-r0.apk`: data member holds `../../etc/evil`, which is outside the root (`..`)\n",
        ),
        ("absolute", "error: `absolute-1.0-r0.apk`: data member holds `/etc/evil`, an absolute path\n"),
        (
            "escape",
            "error: alp.yml:1:1: `/etc/x/evil` would be placed below `/etc/x`, which is not a directory (package `escape`)\n  |\n1 | name: alp\n  | ^\n",
        ),
        ("bomb", "error: `bomb-1.0-r0.apk`: data member: decompresses to more than 16777416 bytes\n"),
    ];
    for (name, expected) in cases {
        std::fs::write(
            t.join("alp.yml"),
            recipe(&repo_dir, &key, name).replace("archs: [amd64, arm64]", "archs: [amd64]"),
        )
        .unwrap();
        let run =
            assemble(t, &t.join(format!("c-{name}")), &["-q", "build", "alp.yml", "-o", &format!("oci:{name}")], &[]);
        assert_eq!(run.code, 1, "{name} must be refused");
        assert_eq!(run.stderr, expected, "{name}");
        assert!(!t.join(name).exists());
    }
    std::fs::write(
        t.join("alp.yml"),
        recipe(&repo_dir, &key, "truncated").replace("archs: [amd64, arm64]", "archs: [amd64]"),
    )
    .unwrap();
    let run = assemble(t, &t.join("c-truncated"), &["-q", "build", "alp.yml", "-o", "oci:truncated"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("error: `truncated-1.0-r0.apk`: data member: "), "{}", run.stderr);
}

#[test]
fn busybox_applets_are_linked_from_its_paths_list() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = gz(&raw_tar(&[
        ("bin".into(), vec![], b'5', String::new()),
        file("bin/busybox", b"\x7fELF fake busybox\n"),
        file("etc/busybox-paths.d/busybox", b"/bin/sh\n/bin/ls\n/usr/bin/wget\n"),
    ]));
    let repo_dir = hostile_repo(t, &[("busybox", data, 1000)]);
    std::fs::write(
        t.join("alp.yml"),
        recipe(&repo_dir, &t.join("keys/test.rsa.pub"), "busybox").replace("archs: [amd64, arm64]", "archs: [amd64]"),
    )
    .unwrap();
    assemble(t, &t.join("c"), &["build", "alp.yml", "-o", "oci:bb"], &[]).ok();
    let out = sh(t, "umoci unpack --image bb:latest b");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let root = t.join("b/rootfs");
    for applet in ["bin/sh", "bin/ls", "usr/bin/wget"] {
        assert_eq!(std::fs::read_link(root.join(applet)).unwrap().to_str(), Some("/bin/busybox"), "{applet}");
    }
    assert!(!root.join("bin/cat").exists(), "only the applets the package lists");
}

#[test]
fn alpine_packages_install_on_a_registry_image_base() {
    require("umoci");
    let reg = registry::Registry::start(registry::Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let repo_dir = melange();
    let key = repo_dir.join("melange.rsa.pub");
    let base = recipe(&repo_dir, &key, "pretend-baselayout").replace("name: alp", "name: alpbase\ntags: [\"1\"]");
    std::fs::write(t.join("alpbase.yml"), base).unwrap();
    let cache = t.join("cache");
    assemble(t, &cache, &["push", "alpbase.yml", "--to", &format!("{}/team", reg.addr)], &[]).ok();
    let built = assemble(t, &cache, &["--json", "build", "alpbase.yml", "-o", "oci:alpbase"], &[]).ok().json();

    let on = format!(
        "name: onalp\narchs: [amd64, arm64]\nbase:\n  image: {}/team/alpbase:1\n  alpine:\n    repositories: [{}]\n    keys: [{}]\nlayers:\n  - name: extra\n    packages: [replayout]\n",
        reg.addr,
        repo_dir.display(),
        key.display()
    );
    std::fs::write(t.join("onalp.yml"), on).unwrap();
    let v = assemble(t, &t.join("cache2"), &["--json", "build", "onalp.yml", "-o", "oci:onalp"], &[]).ok().json();
    for (i, (arch, alpine)) in [("amd64", "x86_64"), ("arm64", "aarch64")].into_iter().enumerate() {
        let digests = |p: &serde_json::Value| -> Vec<String> {
            p["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect()
        };
        let (base_layers, layers) = (digests(&built[0]["platforms"][i]), digests(&v[0]["platforms"][i]));
        assert_eq!(layers.len(), base_layers.len() + 1, "{arch}: {layers:?}");
        assert_eq!(layers[..base_layers.len()], base_layers[..], "{arch}: the base's layers are reused as they are");

        let one = format!("oci:onalp-{arch}");
        assemble(t, &t.join("cache2"), &["build", "--locked", "--arch", arch, "onalp.yml", "-o", &one], &[]).ok();
        assert_eq!(sh(t, &format!("umoci unpack --image onalp-{arch}:latest u-{arch}")).code, 0);
        let root = t.join(format!("u-{arch}/rootfs"));
        let db = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
        for p in ["pretend-baselayout", "replayout"] {
            let file = repo_dir.join(alpine).join(format!("{p}-1.0.0-r0.apk"));
            assert_eq!(db_paths(&db, p), apk_paths(&file), "{arch}: the database lists every file of {p}");
        }
        assert_eq!(
            db.matches("P:pretend-baselayout\n").count(),
            1,
            "{arch}: the base's package is not installed again"
        );
        assert_eq!(std::fs::read_to_string(root.join("etc/apk/world")).unwrap(), "pretend-baselayout\nreplayout\n");
    }
    let lock = std::fs::read_to_string(t.join("onalp.lock")).unwrap();
    assert!(lock.contains("name = \"replayout\"") && !lock.contains("name = \"pretend-baselayout\""), "{lock}");
}

/// `outdated` reads the repositories' indexes: a locked package older than the index's is
/// listed, for each architecture, and nothing else is.
#[test]
fn outdated_lists_alpine_packages_the_index_has_newer() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let repo_dir = melange();
    std::fs::write(t.join("alp.yml"), recipe(&repo_dir, &repo_dir.join("melange.rsa.pub"), "replayout")).unwrap();
    let cache = t.join("cache");
    assemble(t, &cache, &["build", "alp.yml", "-o", "oci:both"], &[]).ok();
    let none = assemble(t, &cache, &["--json", "outdated", "alp.yml"], &[]).ok();
    assert_eq!(none.json(), serde_json::json!([]));
    // The lock is made to pin an older replayout than the index has.
    let lock = std::fs::read_to_string(t.join("alp.lock")).unwrap();
    let mut current = None;
    let older: Vec<String> = lock
        .split("\n\n")
        .map(|block| {
            if !block.contains("name = \"replayout\"") {
                return block.to_string();
            }
            let line = block.lines().find(|l| l.starts_with("version = ")).unwrap();
            current = Some(line.trim_start_matches("version = ").trim_matches('"').to_string());
            block.replace(line, "version = \"0.0.1-r0\"")
        })
        .collect();
    std::fs::write(t.join("alp.lock"), older.join("\n\n")).unwrap();
    let current = current.expect("the lock pins replayout");
    let listed = assemble(t, &cache, &["--json", "outdated", "alp.yml"], &[]).ok().json();
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    for (row, arch) in rows.iter().zip(["amd64", "arm64"]) {
        assert_eq!(row["recipe"], "alp");
        assert_eq!(row["package"]["name"], "replayout");
        assert_eq!(row["package"]["arch"], arch);
        assert_eq!(row["package"]["locked"], "0.0.1-r0");
        assert_eq!(row["package"]["available"], current.as_str());
    }
}
