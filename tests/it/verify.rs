//! `verify` and `diff`: identical rebuilds pass; a change of one thing — a file's mode, one
//! byte of content, an env var, the compressor level, one mtime, one xattr — is named
//! exactly, in a pinned message.

use crate::common::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::Path;

/// The golden fixture for amd64 only, built once so its lock and cache exist.
fn one(tmp: &Path) -> std::path::PathBuf {
    let f = fixtures(tmp);
    let text = std::fs::read_to_string(f.join("golden/golden.yml")).unwrap();
    let text = text
        .replace("name: golden", "name: one")
        .replace("archs: [amd64, arm64, arm/v7, arm/v6, \"386\", ppc64le, s390x, riscv64]", "archs: [amd64]");
    std::fs::write(f.join("golden/one.yml"), text).unwrap();
    assemble(&f, &tmp.join("cache"), &["build", "golden/one.yml", "-o", "oci:../built"], &[]).ok();
    f
}

fn verify(f: &Path, tmp: &Path) -> Run {
    assemble(f, &tmp.join("cache"), &["-q", "verify", "golden/one.yml"], &[])
}

/// The first value the lock text records under `key` (`index`, `provenance`, `spdx`).
fn recorded(lock: &str, key: &str) -> String {
    let prefix = format!("{key} = \"");
    lock.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap().trim_end_matches('"').to_string()
}

/// Writes `text` as the lock with its recorded index digest replaced by another (as a
/// non-deterministic build would have left it).
fn forge_index(lock: &Path, text: &str) {
    let index = recorded(text, "index");
    std::fs::write(lock, text.replacen(&index, &format!("sha256:{}", "1".repeat(64)), 1)).unwrap();
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn verify_passes_for_the_fixtures_and_the_example_recipe() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    for recipe in ["golden/golden.yml", "golden/golden-zstd.yml"] {
        let run = assemble(&f, &tmp.path().join("cache"), &["verify", recipe], &[]).ok();
        // The verdict is a result: on stdout, with the digest rebuilt.
        assert!(run.stdout.starts_with("verified golden"), "{}", run.stdout);
        assert!(run.stdout.contains(": sha256:"), "{}", run.stdout);
        assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    }
    let hello = repo().join("recipes/hello.yml");
    let run = assemble(tmp.path(), &tmp.path().join("cache"), &["verify", hello.to_str().unwrap()], &[]).ok();
    assert!(run.stdout.starts_with("verified hello: sha256:"), "{}", run.stdout);
}

const LONG: &str = "/opt/a-directory-name-long-enough-that-the-whole-path-no-longer-fits-the-ustar-name-field/of-one-hundred-bytes/readme.txt";

#[test]
fn one_change_is_named_exactly() {
    let content = format!(
        "linux/amd64 config: sha256:a82139e6296e → sha256:e28d8d89e88b\n  only rootfs.diff_ids, which follow the layers\nlinux/amd64 layer 1 (files): sha256:62357cc229e4 → sha256:36074873ce84\n  {LONG}: content differs\n  /usr/share/doc/golden/readme.txt: content differs\n"
    );
    let cases: [(&str, &str, &str, &str, String, &str); 4] = [
        (
            "mode",
            "golden/one.yml",
            "mode: \"4755\"",
            "mode: \"4750\"",
            "linux/amd64 config: sha256:a82139e6296e → sha256:cbe94cd94cab\n  only rootfs.diff_ids, which follow the layers\nlinux/amd64 layer 1 (files): sha256:62357cc229e4 → sha256:c3fef8efe4fd\n  /usr/local/bin/tool: mode 4755 → 4750\n".into(),
            "`one.yml` changed",
        ),
        ("content", "golden/files/readme.txt", "Golden fixture", "golden fixture", content, "`files/readme.txt` changed"),
        (
            "env",
            "golden/one.yml",
            "MODE: production",
            "MODE: staging",
            "linux/amd64 config: sha256:a82139e6296e → sha256:3f10871a97ad\n  Env: [\"ARCH=amd64\",\"MODE=production\",\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"] → [\"ARCH=amd64\",\"MODE=staging\",\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"]\n".into(),
            "`one.yml` changed",
        ),
        (
            "compression",
            "golden/one.yml",
            "epoch: 1700000000",
            "epoch: 1700000000\ncompression: {algorithm: gzip, level: 9}",
            "linux/amd64 layer 1 (files): same files (diff_id sha256:dd71291dedf1), compressed differently: sha256:62357cc229e4 → sha256:31ccc0a19b93 (the compressor or its settings changed)\nlinux/amd64 layer 2 (tree): same files (diff_id sha256:ed08625b8f64), compressed differently: sha256:748d26fc7d84 → sha256:ef28f2b7bf82 (the compressor or its settings changed)\nlinux/amd64 layer 3 (config): same files (diff_id sha256:2089c9fdfb4b), compressed differently: sha256:249716f1b28b → sha256:713d39a44c06 (the compressor or its settings changed)\n".into(),
            "`one.yml` changed",
        ),
    ];
    for (case, file, from, to, expected, changed) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let f = one(tmp.path());
        edit(&f.join(file), from, to);
        let run = verify(&f, tmp.path());
        assert_eq!(run.code, 3, "{case}");
        assert_eq!(
            run.stderr,
            format!(
                "error: `one` changed since its lock was written: {changed}; the differences are that change, not a build that fails to reproduce; build to update the lock\n"
            ),
            "{case}"
        );
        assert_eq!(run.stdout, expected, "{case}");
    }
}

/// A file edited inside a `tree:` names the tree; a lock written before locks recorded their
/// sources still gets the general verdict.
#[test]
fn a_changed_tree_is_named_and_an_old_lock_gets_the_general_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let f = one(tmp.path());
    std::fs::write(f.join("golden/tree/run.sh"), "#!/bin/sh\nexit 1\n").unwrap();
    let run = verify(&f, tmp.path());
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: `one` changed since its lock was written: `tree` changed; the differences are that change, not a build that fails to reproduce; build to update the lock\n"
    );
    let lock = f.join("golden/one.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    let start = text.find("[image.sources]").expect("the lock records its sources");
    let end = start + text[start..].find("\n\n").unwrap() + 2;
    std::fs::write(&lock, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let run = verify(&f, tmp.path());
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "error: `one` changed since its lock was written (a local file, template, variable or the recipe); "
        ),
        "{}",
        run.stderr
    );
}

/// When the inputs are those the lock records but the bytes are not (here: a lock whose
/// recorded index digest was altered, as a non-deterministic build would leave it), `verify`
/// says the build does not reproduce, not that an input changed.
#[test]
fn same_inputs_other_bytes_is_told_apart_from_a_changed_input() {
    let tmp = tempfile::tempdir().unwrap();
    let f = one(tmp.path());
    let lock = f.join("golden/one.lock");
    forge_index(&lock, &std::fs::read_to_string(&lock).unwrap());
    let run = verify(&f, tmp.path());
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stderr, "error: `one` does not reproduce its lock: the same inputs gave other bytes\n");
    assert!(run.stdout.contains(&format!("sha256:{} → ", "1".repeat(12))), "{}", run.stdout);
}

/// Copies the layout at `from` to `to` with layer 1 rewritten by `change` (applied to the
/// header and PAX records of `/usr/local/bin/tool`), fixing every digest above it.
/// PAX records to add before an entry: (key, value).
type Pax = Vec<(String, Vec<u8>)>;

fn rewrite_layer(from: &Path, to: &Path, change: &dyn Fn(&mut tar::Header, &mut Pax)) {
    copy_dir(from, to);
    let blobs = to.join("blobs/sha256");
    let read_json = |d: &str| -> Value {
        serde_json::from_slice(&std::fs::read(blobs.join(d.trim_start_matches("sha256:"))).unwrap()).unwrap()
    };
    let put = |bytes: &[u8]| -> (String, usize) {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        let hex = sha256_file(f.path());
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let index_json: Value = serde_json::from_slice(&std::fs::read(to.join("index.json")).unwrap()).unwrap();
    let mut index = read_json(index_json["manifests"][0]["digest"].as_str().unwrap());
    let mut manifest = read_json(index["manifests"][0]["digest"].as_str().unwrap());
    let mut config = read_json(manifest["config"]["digest"].as_str().unwrap());
    let layer =
        std::fs::read(blobs.join(manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:")))
            .unwrap();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&layer[..]).read_to_end(&mut raw).unwrap();
    let mut out = tar::Builder::new(Vec::new());
    for e in tar::Archive::new(&raw[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().into_owned();
        let mut header = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let mut pax: Pax = Vec::new();
        if path == Path::new("usr/local/bin/tool") {
            change(&mut header, &mut pax);
        }
        if !pax.is_empty() {
            out.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).unwrap();
        }
        out.append_data(&mut header, &path, &data[..]).unwrap();
    }
    let tar_bytes = out.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_bytes).unwrap();
    let (layer_digest, layer_size) = put(&gz.finish().unwrap());
    let (diff_id, _) = put(&tar_bytes);
    config["rootfs"]["diff_ids"][0] = json!(diff_id);
    let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
    manifest["layers"][0]["digest"] = json!(layer_digest);
    manifest["layers"][0]["size"] = json!(layer_size);
    manifest["config"]["digest"] = json!(config_digest);
    manifest["config"]["size"] = json!(config_size);
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
    index["manifests"][0]["digest"] = json!(manifest_digest);
    index["manifests"][0]["size"] = json!(manifest_size);
    let (index_digest, index_size) = put(&serde_json::to_vec(&index).unwrap());
    let mut top = index_json.clone();
    for m in top["manifests"].as_array_mut().unwrap() {
        m["digest"] = json!(index_digest);
        m["size"] = json!(index_size);
    }
    std::fs::write(to.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn diff_names_one_mtime_and_one_xattr() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    one(t);
    rewrite_layer(&t.join("built"), &t.join("mtime"), &|h, _| h.set_mtime(1_700_000_001));
    rewrite_layer(&t.join("built"), &t.join("xattr"), &|_, pax| {
        pax.push(("SCHILY.xattr.user.note".into(), b"hi".to_vec()))
    });
    for (case, expected) in [("mtime", "mtime 1700000000 → 1700000001"), ("xattr", "xattr user.note (none) → \"hi\"")]
    {
        let run = assemble(t, &t.join("cache"), &["-q", "diff", "oci:built", &format!("oci:{case}")], &[]);
        assert_eq!(run.code, 3, "{case}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines.len(), 4, "{case}:\n{}", run.stdout);
        assert!(lines[0].starts_with("linux/amd64 config: sha256:a82139e6296e → sha256:"), "{case}: {}", lines[0]);
        assert_eq!(lines[1], "  only rootfs.diff_ids, which follow the layers", "{case}");
        assert!(lines[2].starts_with("linux/amd64 layer 1: sha256:62357cc229e4 → sha256:"), "{case}: {}", lines[2]);
        assert_eq!(lines[3], format!("  /usr/local/bin/tool: {expected}"), "{case}");
        assert_eq!(run.stderr, "error: the images differ in 2 place(s)\n");
        let json = assemble(t, &t.join("cache"), &["--json", "diff", "oci:built", &format!("oci:{case}")], &[]);
        let v: Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(v[1]["entries"][0], format!("/usr/local/bin/tool: {expected}"));
    }
    let same = assemble(t, &t.join("cache"), &["diff", "oci:built", "oci:built"], &[]).ok();
    assert!(same.stdout.starts_with("identical: sha256:"), "{}", same.stdout);
    let json = assemble(t, &t.join("cache"), &["--json", "diff", "oci:built", "oci:built"], &[]).ok();
    assert_eq!(json.json(), serde_json::json!([]), "JSON alone on stdout");
}

/// The digest, as `sha256:<hex>`, of the first platform's layer `n` in the layout at `dir`.
fn layer_digest(dir: &Path, n: usize) -> String {
    let read = |d: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap())
            .unwrap()
    };
    let top: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let index = read(top["manifests"][0]["digest"].as_str().unwrap());
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    manifest["layers"][n]["digest"].as_str().unwrap().to_string()
}

/// A layout copy whose first layer blob had one byte flipped, was cut short, deleted, or
/// replaced by another valid gzip whose digest the manifest names but whose content the
/// config's diff_id does not: `verify --against`, `diff` (layout and oci-archive) and
/// `inspect` each refuse it as an invalid image (exit 4), naming the platform, the layer,
/// the blob and what was expected and found; `diff` never says "identical".
#[test]
fn damaged_layer_blob_is_an_invalid_image() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let f = one(t);
    let digest = layer_digest(&t.join("built"), 0);
    let hex = digest.trim_start_matches("sha256:").to_string();
    type Damage<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, Damage, &str); 4] = [
        (
            "flipped",
            &|blob: &Path| {
                let mut b = std::fs::read(blob).unwrap();
                let mid = b.len() / 2;
                b[mid] ^= 0x01;
                std::fs::write(blob, b).unwrap();
            },
            "does not match its digest: expected",
        ),
        (
            "truncated",
            &|blob: &Path| {
                let b = std::fs::read(blob).unwrap();
                std::fs::write(blob, &b[..b.len() / 2]).unwrap();
            },
            "has the wrong size: expected",
        ),
        ("deleted", &|blob: &Path| std::fs::remove_file(blob).unwrap(), "is missing"),
        ("lying-diff-id", &|_: &Path| {}, "decompresses to other content than the config says: expected diff_id"),
    ];
    for (case, damage, says) in cases {
        let copy = t.join(case);
        if case == "lying-diff-id" {
            // Layer 1 is replaced by a valid gzip of other files; the manifest names its
            // digest and size (and the index the new manifest), the config keeps the old diff_id.
            lie_about_layer(&t.join("built"), &copy);
        } else {
            copy_dir(&t.join("built"), &copy);
            damage(&copy.join("blobs/sha256").join(&hex));
        }
        assert_eq!(sh(t, &format!("tar -C {case} -cf {case}.tar .")).code, 0);
        let runs = [
            (
                "verify",
                vec!["verify".to_string(), "golden/one.yml".into(), "--against".into(), format!("oci:../{case}")],
            ),
            ("diff", vec!["diff".to_string(), "oci:../built".into(), format!("oci:../{case}")]),
            ("diff archive", vec!["diff".to_string(), "oci:../built".into(), format!("oci-archive:../{case}.tar")]),
            ("inspect", vec!["inspect".to_string(), format!("oci:../{case}")]),
        ];
        for (what, args) in runs {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = assemble(&f, &t.join("cache"), &args, &[]);
            assert_eq!(run.code, 4, "{case}, {what}: {}{}", run.stdout, run.stderr);
            assert!(
                run.stderr.contains("is not a valid image: linux/amd64 layer 1 (files): blob sha256:"),
                "{case}, {what}: {}",
                run.stderr
            );
            assert!(run.stderr.contains(says), "{case}, {what}: {}", run.stderr);
            if case != "lying-diff-id" {
                assert!(run.stderr.contains(&digest), "{case}, {what}: {}", run.stderr);
            }
            assert!(!run.stdout.contains("identical") && !run.stdout.contains("verified"), "{case}, {what}");
        }
    }
}

/// Copies the layout at `from` to `to` with layer 1 replaced by a gzip of other content; the
/// manifest and index are fixed to name it, the config's diff_ids are left as they were.
fn lie_about_layer(from: &Path, to: &Path) {
    copy_dir(from, to);
    let blobs = to.join("blobs/sha256");
    let read = |d: &str| -> Value {
        serde_json::from_slice(&std::fs::read(blobs.join(d.trim_start_matches("sha256:"))).unwrap()).unwrap()
    };
    let put = |bytes: &[u8]| -> (String, usize) {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        let hex = sha256_file(f.path());
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut top: Value = serde_json::from_slice(&std::fs::read(to.join("index.json")).unwrap()).unwrap();
    let mut index = read(top["manifests"][0]["digest"].as_str().unwrap());
    let mut manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw_tar(&[("evil".into(), b"not what the config says\n".to_vec(), b'0', String::new())])).unwrap();
    let (layer, size) = put(&gz.finish().unwrap());
    manifest["layers"][0]["digest"] = json!(layer);
    manifest["layers"][0]["size"] = json!(size);
    let (m, msize) = put(&serde_json::to_vec(&manifest).unwrap());
    index["manifests"][0]["digest"] = json!(m);
    index["manifests"][0]["size"] = json!(msize);
    let (i, isize) = put(&serde_json::to_vec(&index).unwrap());
    for e in top["manifests"].as_array_mut().unwrap() {
        e["digest"] = json!(i);
        e["size"] = json!(isize);
    }
    std::fs::write(to.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

/// A lock written by an assemble that wrote images in an older format is told apart from a
/// build that does not reproduce, by `verify` and by `build --locked`.
#[test]
fn an_older_image_format_is_named_not_called_irreproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let f = one(tmp.path());
    let lock = f.join("golden/one.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(text.contains("\nformat = 2\n"), "{text}");
    // A format-1 lock whose digests still hold verifies.
    std::fs::write(&lock, text.replacen("\nformat = 2\n", "\n", 1)).unwrap();
    let run = verify(&f, tmp.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    // One whose digests are those an older assemble wrote is named as such.
    forge_index(&lock, &std::fs::read_to_string(&lock).unwrap());
    let run = verify(&f, tmp.path());
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: `one`'s lock was written in assemble's image format 1 and this assemble writes format 2 (docs/recipe.md, \"Image format\"); the differences are that change, not a build that fails to reproduce; build to update the lock\n"
    );
    let run = assemble(&f, &tmp.path().join("cache"), &["build", "--locked", "golden/one.yml"], &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("the lock's image was written in assemble's image format 1 and this assemble writes format 2"),
        "{}",
        run.stderr
    );
}

/// `verify` regenerates the SBOMs and the provenance from the lock and requires the digests
/// it records: a recorded digest that is not what the same inputs give is named.
#[test]
fn attestations_that_do_not_reproduce_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let f = one(tmp.path());
    let lock = f.join("golden/one.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    let (provenance, spdx) = (recorded(&text, "provenance"), recorded(&text, "spdx"));
    let other = format!("sha256:{}", "2".repeat(64));
    std::fs::write(&lock, text.replacen(&provenance, &other, 1).replacen(&spdx, &other, 1)).unwrap();
    let run = verify(&f, tmp.path());
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "provenance: sha256:222222222222 → {}\nlinux/amd64 sbom (spdx): sha256:222222222222 → {}\n",
            &provenance[..19],
            &spdx[..19]
        )
    );
    assert_eq!(run.stderr, "error: `one` does not reproduce its lock: the same inputs gave other bytes\n");
}

/// A format-1 lock of a recipe the format change does not touch (no `metadata`), or whose
/// layers differ, is not excused by the format: it does not reproduce.
#[test]
fn the_image_format_is_not_blamed_where_it_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let f = one(tmp.path());
    let recipe = f.join("golden/one.yml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    let start = text.find("metadata:\n").unwrap();
    let end = start + text[start..].find("annotations:").unwrap();
    std::fs::write(&recipe, format!("{}{}", &text[..start], &text[end..])).unwrap();
    assemble(&f, &tmp.path().join("cache"), &["build", "golden/one.yml", "-o", "oci:../built2"], &[]).ok();
    let lock = f.join("golden/one.lock");
    forge_index(&lock, &std::fs::read_to_string(&lock).unwrap().replacen("\nformat = 2\n", "\n", 1));
    let run = verify(&f, tmp.path());
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stderr, "error: `one` does not reproduce its lock: the same inputs gave other bytes\n");
    let run = assemble(&f, &tmp.path().join("cache"), &["build", "--locked", "golden/one.yml"], &[]);
    assert_ne!(run.code, 0);
    assert!(!run.stderr.contains("image format"), "{}", run.stderr);
}

/// An empty directory added to a tree, or a file made executable, changes the image: the
/// verdict names the input.
#[test]
fn an_empty_directory_or_an_executable_bit_is_named() {
    for (case, script, named) in [
        ("empty dir", "mkdir golden/tree/empty", "`tree` changed"),
        ("exec bit", "chmod +x golden/files/readme.txt", "`files/readme.txt` changed"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let f = one(tmp.path());
        assert_eq!(sh(&f, script).code, 0);
        let run = verify(&f, tmp.path());
        assert_eq!(run.code, 3, "{case}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("changed since its lock was written: {named};")),
            "{case}: {}",
            run.stderr
        );
    }
}
