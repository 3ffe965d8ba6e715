//! Files taken out of registry images (`files: [{image: REF, path: …, to: …}]`), against a
//! real registry on 127.0.0.1: the images are laid out here layer by layer (whiteouts, opaque
//! directories, hard links, symlinks, owners and modes as image builders write them) and
//! pushed with skopeo; a proxy in front of the registry counts what `assemble` downloads.

use crate::common::registry::{Auth, Proxy, Registry};
use crate::common::{assemble, noise, require, sh};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// One member of a hand-made layer.
enum M<'a> {
    File(&'a str, &'a [u8], u32, u32),
    Dir(&'a str),
    Link(&'a str, &'a str),
    Hard(&'a str, &'a str),
    /// A member written with no checks on its name (hostile layers).
    Raw(&'a str, &'a [u8]),
    /// A character device (1, 3: what `/dev/null` is).
    Device(&'a str),
}

fn layer(members: &[M<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match m {
            M::File(path, data, mode, uid) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(u64::from(*uid));
                h.set_gid(u64::from(*uid));
                h.set_size(data.len() as u64);
                h.set_path(path).unwrap();
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            M::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_path(path).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            M::Link(path, target) | M::Hard(path, target) => {
                let kind = if matches!(m, M::Link(..)) { tar::EntryType::Symlink } else { tar::EntryType::Link };
                h.set_entry_type(kind);
                h.set_mode(0o777);
                h.set_size(0);
                h.set_path(path).unwrap();
                h.set_link_name(target).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            M::Device(path) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                h.set_path(path).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            M::Raw(name, data) => {
                let raw = crate::common::raw_header(name, data.len() as u64, b'0', "");
                let inner = b.get_mut();
                inner.extend_from_slice(&raw);
                inner.extend_from_slice(data);
                inner.resize(inner.len().div_ceil(512) * 512, 0);
            }
        }
    }
    b.into_inner().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    assemble::model::digest::Digest::of(bytes).to_string()
}

/// Writes a multi-platform image (`layers` bottom first, per architecture; `diff_ids` as
/// the layers' own unless `lie` gives another) as an OCI layout and copies it with skopeo
/// to `dest` (`ADDR/REPO:TAG`). Returns the digests of the gzipped layers, per architecture.
fn push(t: &Path, dest: &str, layers: &BTreeMap<&str, Vec<Vec<u8>>>, lie: bool) -> BTreeMap<String, Vec<String>> {
    let dir = t.join(format!("layout-{}", &sha256(dest.as_bytes())[7..19]));
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, u64) {
        let d = sha256(bytes);
        std::fs::write(blobs.join(&d[7..]), bytes).unwrap();
        (d, bytes.len() as u64)
    };
    let mut manifests = Vec::new();
    let mut out = BTreeMap::new();
    for (arch, tars) in layers {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for tar in tars {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, tar).unwrap();
            let (d, size) = put(&gz.finish().unwrap());
            descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": size}));
            diff_ids.push(if lie { sha256(b"another layer") } else { sha256(tar) });
            out.entry(arch.to_string()).or_insert_with(Vec::new).push(d);
        }
        let config = json!({"architecture": arch, "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs}, "layers": descs});
        let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
        manifests.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "platform": {"architecture": arch, "os": "linux"}}));
    }
    let index =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    let (id, is) = put(&serde_json::to_vec(&index).unwrap());
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": id, "size": is, "annotations": {"org.opencontainers.image.ref.name": "x"}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let copy = sh(t, &format!("skopeo copy --all --dest-tls-verify=false oci:{}:x docker://{dest}", dir.display()));
    assert_eq!(copy.code, 0, "{}", copy.stderr);
    out
}

/// A gatus-like image: a large shared bottom layer, a middle layer that hides and replaces
/// some of it, and a top layer per architecture with the program (0755, owned by 1000) and a
/// symlink to it.
fn service_image(t: &Path, dest: &str, version: &str) -> BTreeMap<String, Vec<String>> {
    let big = noise(300_000, 7);
    let bottom = layer(&[
        M::Dir("opt/tool"),
        M::File("opt/tool/old.txt", b"old\n", 0o644, 0),
        M::File("opt/tool/keep.txt", b"keep\n", 0o600, 0),
        M::File("srv/stale.txt", b"stale\n", 0o644, 0),
        M::File("etc/gone.conf", b"gone\n", 0o644, 0),
        M::File("lib/big.so", &big, 0o644, 0),
    ]);
    let middle = layer(&[
        M::File("opt/tool/.wh.old.txt", b"", 0o644, 0),
        M::File("opt/tool/new.txt", b"new\n", 0o644, 0),
        M::Hard("opt/tool/hard", "opt/tool/new.txt"),
        M::File("etc/.wh.gone.conf", b"", 0o644, 0),
        M::Dir("srv"),
        M::File("srv/.wh..wh..opq", b"", 0o644, 0),
        M::File("srv/fresh.txt", b"fresh\n", 0o644, 0),
    ]);
    let mut layers = BTreeMap::new();
    for arch in ["amd64", "arm64"] {
        let program = format!("#!/bin/sh\necho gatus {version} for {arch}\n");
        let top = layer(&[
            M::File("app/gatus", program.as_bytes(), 0o755, 1000),
            M::Link("usr/local/bin/gatus", "/app/gatus"),
        ]);
        layers.insert(arch, vec![bottom.clone(), middle.clone(), top]);
    }
    push(t, dest, &layers, false)
}

fn blob_gets(proxy: &Proxy) -> Vec<String> {
    let seen = proxy.seen.lock().unwrap();
    seen.requests.iter().filter(|r| r.starts_with("GET") && r.contains("/blobs/")).cloned().collect()
}

fn unpack(t: &Path, cache: &Path, recipe: &str, tag: &str) -> std::path::PathBuf {
    let out = format!("oci:img-{recipe}");
    let file = format!("{recipe}.yml");
    assemble(t, cache, &["build", "--arch", "amd64", &file, "-o", &out], &[]).ok();
    let u = sh(t, &format!("rm -rf u-{recipe} && umoci unpack --image img-{recipe}:{tag} u-{recipe}"));
    assert_eq!(u.code, 0, "{}", u.stderr);
    t.join(format!("u-{recipe}/rootfs"))
}

#[test]
fn files_come_from_a_registry_image_with_only_the_layers_they_need() {
    require("skopeo");
    require("umoci");
    let reg = Registry::start(Auth::None);
    let proxy = Proxy::start(&reg.addr, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let layers = service_image(t, &format!("{}/twin/gatus:v5", reg.addr), "5.1");
    let reference = format!("{}/twin/gatus:v5", proxy.addr);

    // One file through a symlink: only each platform's top layer is downloaded.
    std::fs::write(
        t.join("only.yml"),
        format!(
            "name: only\narchs: [amd64, arm64]\nlayers:\n  - name: app\n    files:\n      - {{image: \"{reference}\", path: /usr/local/bin/gatus, to: /usr/local/bin/gatus}}\n"
        ),
    )
    .unwrap();
    let cache = t.join("cache");
    let built = assemble(t, &cache, &["-v", "build", "only.yml"], &[]).ok();
    let gets = blob_gets(&proxy);
    for (arch, digests) in &layers {
        assert!(gets.iter().any(|g| g.contains(&digests[2])), "{arch}'s top layer was downloaded: {gets:#?}");
        for lower in &digests[..2] {
            assert!(!gets.iter().any(|g| g.contains(lower)), "{arch}: {lower} is not needed: {gets:#?}");
        }
    }
    assert!(built.stderr.contains("1 of 3 layers read"), "{}", built.stderr);
    let root = unpack(t, &cache, "only", "latest");
    let gatus = root.join("usr/local/bin/gatus");
    assert_eq!(std::fs::read_to_string(&gatus).unwrap(), "#!/bin/sh\necho gatus 5.1 for amd64\n");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(&gatus).unwrap();
    assert!(meta.is_file(), "the symlink was followed to the program");
    assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o755, 1000), "mode and owner kept");
    // The SBOM names the image the file came from, by its platform manifest.
    let sbom = assemble(t, &cache, &["sbom", "only.yml", "--arch", "amd64"], &[]).ok();
    assert!(
        sbom.stdout.contains(&format!("\"{reference}\"")) && sbom.stdout.contains("pkg:oci/gatus@"),
        "{}",
        sbom.stdout
    );
    // A rebuild takes it from the cache: nothing more is asked of the registry.
    let before = proxy.seen.lock().unwrap().requests.len();
    std::fs::write(
        t.join("only.yml"),
        std::fs::read_to_string(t.join("only.yml")).unwrap() + "config:\n  env: {A: b}\n",
    )
    .unwrap();
    assemble(t, &cache, &["build", "only.yml"], &[]).ok();
    let after: Vec<String> = proxy.seen.lock().unwrap().requests[before..].to_vec();
    assert!(after.iter().all(|r| !r.contains("/blobs/")), "{after:#?}");

    // Directories merge their layers: whiteouts, opaque directories and hard links honoured;
    // another platform named; the recipe's own mode and owner over the image's.
    std::fs::write(
        t.join("dirs.yml"),
        format!(
            r#"name: dirs
archs: [amd64, arm64]
layers:
  - name: app
    files:
      - {{image: "{reference}", path: /opt/tool, to: /opt/tool}}
      - {{image: "{reference}", path: /srv, to: /srv/}}
      - {{image: "{reference}", path: /app/gatus, to: /usr/bin/gatus-amd64, platform: amd64}}
      - {{image: "{reference}", path: /app/gatus, to: /usr/bin/gatus-mine, mode: "0700", owner: "7:8"}}
"#
        ),
    )
    .unwrap();
    let lockless = assemble(t, &cache, &["--json", "build", "dirs.yml"], &[]).ok();
    assert_eq!(lockless.json()[0]["platforms"].as_array().unwrap().len(), 2);
    let root = unpack(t, &cache, "dirs", "latest");
    let names = sh(&root, "find opt srv usr -type f | sort").stdout;
    assert_eq!(
        names,
        "opt/tool/hard\nopt/tool/keep.txt\nopt/tool/new.txt\nsrv/fresh.txt\nusr/bin/gatus-amd64\nusr/bin/gatus-mine\n"
    );
    assert_eq!(std::fs::read_to_string(root.join("opt/tool/hard")).unwrap(), "new\n");
    assert_eq!(std::fs::metadata(root.join("opt/tool/keep.txt")).unwrap().mode() & 0o7777, 0o600);
    let mine = std::fs::metadata(root.join("usr/bin/gatus-mine")).unwrap();
    assert_eq!((mine.mode() & 0o7777, mine.uid(), mine.gid()), (0o700, 7, 8));
    // The arm64 image has amd64's program where the recipe names that platform.
    assemble(t, &cache, &["build", "--arch", "arm64", "dirs.yml", "-o", "oci:arm"], &[]).ok();
    let u = sh(t, "umoci unpack --image arm:latest u-arm");
    assert_eq!(u.code, 0, "{}", u.stderr);
    let arm = t.join("u-arm/rootfs/usr/bin");
    assert!(std::fs::read_to_string(arm.join("gatus-amd64")).unwrap().contains("for amd64"));
    assert!(std::fs::read_to_string(arm.join("gatus-mine")).unwrap().contains("for arm64"));

    // The lock pins the image by digest per platform; the tag moving changes nothing under
    // --locked, `outdated` names it, and --upgrade takes the new one.
    let lock = std::fs::read_to_string(t.join("dirs.lock")).unwrap();
    assert!(lock.contains("[[from_image]]") && lock.contains(&format!("reference = \"{reference}\"")), "{lock}");
    let index_before =
        assemble(t, &cache, &["--json", "build", "--locked", "dirs.yml"], &[]).ok().json()[0]["digest"].clone();
    service_image(t, &format!("{}/twin/gatus:v5", reg.addr), "5.2");
    let locked = assemble(t, &cache, &["--json", "build", "--locked", "dirs.yml"], &[]).ok();
    assert_eq!(locked.json()[0]["digest"], index_before, "the lock's digest, not the tag's");
    assemble(t, &cache, &["verify", "dirs.yml"], &[]).ok();
    let outdated = assemble(t, &cache, &["--json", "outdated", "dirs.yml"], &[]).ok().json();
    let moved: Vec<&Value> = outdated.as_array().unwrap().iter().filter(|r| r["from_image"].is_object()).collect();
    assert_eq!(moved.len(), 1, "{outdated:#}");
    assert_eq!(moved[0]["from_image"]["reference"], reference.as_str());
    let upgraded = assemble(t, &cache, &["lock", "--upgrade", "dirs.yml"], &[]).ok();
    assert!(upgraded.stdout.contains(&format!("dirs image {reference}: ")), "{}", upgraded.stdout);
    let root = unpack(t, &cache, "dirs", "latest");
    assert!(std::fs::read_to_string(root.join("usr/bin/gatus-mine")).unwrap().contains("gatus 5.2"));
    let outdated = assemble(t, &cache, &["--json", "outdated", "dirs.yml"], &[]).ok().json();
    assert_eq!(outdated, json!([]));
}

/// Hostile images: every refusal names the image and what is wrong with it.
#[test]
fn hostile_image_layers_are_refused_when_files_are_taken_from_them() {
    require("skopeo");
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let one = |name: &str, layers: Vec<Vec<u8>>, lie: bool| {
        let mut per = BTreeMap::new();
        per.insert("amd64", layers);
        push(t, &format!("{}/bad/{name}:1", reg.addr), &per, lie);
        format!("{}/bad/{name}:1", reg.addr)
    };
    let cases = [
        (
            "a_layer_whose_content_is_not_its_diff_id",
            one("diffid", vec![layer(&[M::File("bin/tool", b"x", 0o755, 0)])], true),
            "/bin/tool",
            "decompresses to",
        ),
        (
            "a_member_name_that_climbs_out_of_the_layer",
            one(
                "climb",
                vec![layer(&[
                    M::Raw("bin/../../etc/passwd", b"root::0:0::/:/bin/sh\n"),
                    M::File("bin/tool", b"x", 0o755, 0),
                ])],
                false,
            ),
            "/bin/tool",
            "outside the archive",
        ),
        (
            "a_symlink_loop_in_the_image",
            one("loop", vec![layer(&[M::Link("bin/a", "/bin/b"), M::Link("bin/b", "/bin/a")])], false),
            "/bin/a",
            "symlinks were followed",
        ),
        (
            "a_device_where_a_file_is_expected",
            one("device", vec![layer(&[M::Device("bin/tool")])], false),
            "/bin/tool",
            "`/bin/tool` is a device, FIFO or socket, which an image file cannot be",
        ),
        (
            "a_path_the_image_does_not_have",
            one("missing", vec![layer(&[M::File("bin/tool", b"x", 0o755, 0)])], false),
            "/bin/other",
            "`/bin/other` is not in the image",
        ),
        (
            "a_path_hidden_by_a_whiteout",
            one(
                "hidden",
                vec![layer(&[M::File("bin/tool", b"x", 0o755, 0)]), layer(&[M::File("bin/.wh.tool", b"", 0o644, 0)])],
                false,
            ),
            "/bin/tool",
            "`/bin/tool` is not in the image",
        ),
    ];
    for (pattern, reference, path, expected) in cases {
        let dir = t.join(pattern);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("r.yml"),
            format!("name: r\narchs: [amd64]\nlayers:\n  - name: app\n    files:\n      - {{image: \"{reference}\", path: {path}, to: /x}}\n"),
        )
        .unwrap();
        let out = assemble(&dir, &t.join("cache"), &["build", "r.yml"], &[]);
        assert_ne!(out.code, 0, "{pattern}");
        assert!(out.stderr.contains(expected) && out.stderr.contains(&reference), "{pattern}: {}", out.stderr);
        assert!(!dir.join("out/r").exists(), "{pattern}: nothing written");
    }
}
