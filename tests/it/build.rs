//! Downloads, archive extraction, the layer cache, the lock, secrets and concurrent builds.

use crate::common::*;
use serde_json::Value;
use std::path::Path;

/// Serves `fixtures/archives` and returns (server, its directory).
fn archive_server(tmp: &Path) -> HttpServer {
    let dir = tmp.join("served");
    copy_dir(&repo().join("fixtures/archives"), &dir);
    HttpServer::serve(&dir)
}

fn unpack(tmp: &Path, layout: &str, tag: &str) -> std::path::PathBuf {
    require("umoci");
    let bundle = tmp.join(format!("bundle-{}", layout.replace('/', "_")));
    let out = sh(tmp, &format!("umoci unpack --image {layout}:{tag} {}", bundle.display()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    bundle.join("rootfs")
}

#[test]
fn downloads_are_verified_and_every_archive_format_extracts() {
    let tmp = tempfile::tempdir().unwrap();
    let server = archive_server(tmp.path());
    let served = tmp.path().join("served");
    let mut files = String::new();
    for (i, name) in ["pkg.tar", "pkg.tar.gz", "pkg.tar.xz", "pkg.tar.zst", "pkg.zip"].iter().enumerate() {
        files.push_str(&format!(
            "      - {{url: \"{}\", sha256: {}, extract: true, strip_components: 1, to: /opt/{i}}}\n",
            server.url(name),
            sha256_file(&served.join(name))
        ));
    }
    files.push_str(&format!(
        "      - {{url: \"{}?raw=1\", sha256: {}, to: /srv/, mode: \"0600\"}}\n",
        server.url("pkg.tar.gz"),
        sha256_file(&served.join("pkg.tar.gz"))
    ));
    std::fs::write(tmp.path().join("r.yml"), format!("name: dl\nlayers:\n  - name: tools\n    files:\n{files}"))
        .unwrap();
    assemble(tmp.path(), &tmp.path().join("c"), &["build", "r.yml", "-o", "oci:layout"], &[]).ok();
    assert_eq!(server.count(), 5, "each distinct file fetched once (two URLs share a digest)");
    let root = unpack(tmp.path(), "layout", "latest");
    for i in 0..5 {
        let hello = std::fs::read_to_string(root.join(format!("opt/{i}/bin/hello"))).unwrap();
        assert_eq!(hello, "#!/bin/sh\necho hello from archive\n");
        let l = listing(&root.join(format!("opt/{i}")));
        assert!(
            l.contains("-0755 0:0 /bin/hello ("),
            "archive {i}: owners are the recipe's, modes the archive's:\n{l}"
        );
        assert!(l.contains("-0644 0:0 /share/doc/README (15 bytes"), "archive {i}:\n{l}");
    }
    assert!(listing(&root.join("opt/0")).contains("l0777 0:0 /bin/hi -> hello"));
    let srv = listing(&root.join("srv"));
    assert_eq!(srv, "-0600 0:0 /pkg.tar.gz (280 bytes, 1 links)");

    // A second build downloads nothing: the cache holds every file by digest.
    assemble(tmp.path(), &tmp.path().join("c"), &["build", "r.yml", "-o", "oci:layout2"], &[]).ok();
    assert_eq!(server.count(), 5);
}

#[test]
fn a_download_that_does_not_match_its_digest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = archive_server(tmp.path());
    let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    let url = server.url("pkg.tar.gz");
    std::fs::write(
        tmp.path().join("r.yml"),
        format!("name: dl\nlayers:\n  - files:\n      - {{url: \"{url}\", sha256: {wrong}, to: /x}}\n"),
    )
    .unwrap();
    let run = assemble(tmp.path(), &tmp.path().join("c"), &["-q", "build", "r.yml"], &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!(
            "error: download of `{url}` does not match its pinned digest (asked for by r.yml:4:9): expected sha256:{wrong}, got sha256:094963f40b4452b8870b41244a93cbaf2954a6584d8eedae4af555abdfc02478\nhint: if the new file is the one you want, update `sha256` in the recipe\n"
        )
    );
    let blobs: Vec<_> = std::fs::read_dir(tmp.path().join("c/blobs/sha256")).unwrap().collect();
    assert!(blobs.is_empty(), "nothing unverified lands in the cache");
    let partial: Vec<_> = std::fs::read_dir(tmp.path().join("c/tmp")).unwrap().collect();
    assert!(partial.is_empty(), "the partial download is removed");
}

#[test]
fn transient_server_errors_are_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let server = archive_server(tmp.path());
    server.fail_first.store(2, std::sync::atomic::Ordering::SeqCst);
    let sha = sha256_file(&tmp.path().join("served/pkg.tar"));
    std::fs::write(
        tmp.path().join("r.yml"),
        format!(
            "name: dl\nlayers:\n  - files:\n      - {{url: \"{}\", sha256: {sha}, to: /x}}\n",
            server.url("pkg.tar")
        ),
    )
    .unwrap();
    let run =
        assemble(tmp.path(), &tmp.path().join("c"), &["build", "r.yml"], &[("ASSEMBLE_RETRY_DELAY_MS", "1")]).ok();
    assert_eq!(server.count(), 3);
    assert!(run.stderr.contains("HTTP 500"), "{}", run.stderr);
}

#[test]
fn a_config_only_change_repacks_only_the_configuration_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    let c = tmp.path().join("c");
    let first = assemble(&f, &c, &["--json", "build", "golden/golden.yml"], &[]).ok().json();
    let before: Vec<Value> = first[0]["platforms"].as_array().unwrap().clone();
    std::fs::write(f.join("golden/templates/app.conf.j2"), "changed for {{ arch }}\n").unwrap();
    let second = assemble(&f, &c, &["--json", "build", "golden/golden.yml"], &[]).ok().json();
    assert_eq!(second[0]["packed"], 8, "one configuration layer per platform, nothing else");
    for (a, b) in before.iter().zip(second[0]["platforms"].as_array().unwrap()) {
        let (la, lb) = (a["layers"].as_array().unwrap(), b["layers"].as_array().unwrap());
        assert_eq!(la[..2], lb[..2], "application layers are reused byte for byte");
        assert_ne!(la[2], lb[2]);
    }
    // And an application-layer change repacks that layer (shared by every platform) only.
    std::fs::write(f.join("golden/tree/run.sh"), "#!/bin/sh\nexit 1\n").unwrap();
    let third = assemble(&f, &c, &["--json", "build", "golden/golden.yml"], &[]).ok().json();
    assert_eq!(third[0]["packed"], 1);
}

#[test]
fn two_builds_sharing_a_cache_at_once_both_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    let c = tmp.path().join("c");
    let spawn = |out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_assemble"))
            .current_dir(&f)
            .args(["--json", "build", "golden/golden.yml", "-o", out])
            .env("ASSEMBLE_CACHE_DIR", &c)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let runs: Vec<_> = ["oci:../o1", "oci:../o2", "oci:../o3"].iter().map(|o| spawn(o)).collect();
    let digests: Vec<String> = runs
        .into_iter()
        .map(|r| {
            let out = r.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            v[0]["digest"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
}

#[test]
fn locked_builds_refuse_a_stale_or_missing_lock_and_say_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let server = archive_server(tmp.path());
    let sha = sha256_file(&tmp.path().join("served/pkg.tar"));
    let sha_gz = sha256_file(&tmp.path().join("served/pkg.tar.gz"));
    let recipe = |sha: &str| {
        format!(
            "name: l\narchs: [amd64, arm64]\nlayers:\n  - files:\n      - {{url: \"{}\", sha256: {sha}, to: /x}}\n",
            server.url("pkg.tar")
        )
    };
    std::fs::write(tmp.path().join("l.yml"), recipe(&sha)).unwrap();
    let c = tmp.path().join("c");
    let run = assemble(tmp.path(), &c, &["build", "--locked", "l.yml"], &[]);
    assert_eq!(
        run.stderr,
        "error: --locked: there is no lock file `l.lock`\nhint: run `assemble lock` (or a build without --locked) and commit the lock file\n"
    );
    assemble(tmp.path(), &c, &["lock", "l.yml"], &[]).ok();
    let lock = std::fs::read_to_string(tmp.path().join("l.lock")).unwrap();
    assert!(lock.contains(&format!("sha256 = \"sha256:{sha}\"")), "{lock}");
    assemble(tmp.path(), &c, &["build", "--locked", "l.yml"], &[]).ok();

    std::fs::write(tmp.path().join("l.yml"), recipe(&sha_gz).replace("[amd64, arm64]", "[amd64, arm64, riscv64]"))
        .unwrap();
    let run = assemble(tmp.path(), &c, &["build", "--locked", "l.yml"], &[]);
    let url = server.url("pkg.tar");
    assert_eq!(
        run.stderr,
        format!(
            "error: --locked: `l.lock` does not cover the recipe as it is now:\n  - architecture `riscv64` is not in the lock\n  - download `{url}` (amd64): the lock pins sha256:{sha}, the recipe now says sha256:{sha_gz}\n  - download `{url}` (arm64): the lock pins sha256:{sha}, the recipe now says sha256:{sha_gz}\n  - download `{url}` (riscv64) is not in the lock\nhint: run `assemble lock` (or a build without --locked) and commit the lock file\n"
        )
    );
    assert_eq!(std::fs::read_to_string(tmp.path().join("l.lock")).unwrap(), lock, "--locked never writes the lock");
}

#[test]
fn secrets_land_only_in_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("s.yml"),
        "name: s\nconfig:\n  users: [{name: app, uid: 100}]\n  secrets:\n    - {env: ASSEMBLE_TEST_SECRET, to: /etc/app/db.pass, owner: app}\n    - {file: db.key, to: /etc/app/db.key}\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("db.key"), "a-short-guessable-key\n").unwrap();
    let secret = "correct-horse-battery-staple";
    let c = tmp.path().join("c");
    let v = assemble(
        tmp.path(),
        &c,
        &["-vv", "--json", "build", "s.yml", "-o", "oci:layout"],
        &[("ASSEMBLE_TEST_SECRET", secret)],
    )
    .ok();
    assert!(!v.stderr.contains(secret) && !v.stdout.contains(secret));
    let layer =
        v.json()[0]["platforms"][0]["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    for p in [c.join("blobs/sha256").join(&layer), tmp.path().join("layout/blobs/sha256").join(&layer)] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    let lock = std::fs::read_to_string(tmp.path().join("s.lock")).unwrap();
    assert!(!lock.contains(secret));
    // The lock names the local inputs it was built from, but never a secret file (its
    // sha256 would let anyone with the lock test guesses of a short secret).
    assert!(lock.contains("[image.sources]"), "{lock}");
    assert!(!lock.contains("db.key") && !lock.contains(&sha256_file(&tmp.path().join("db.key"))), "{lock}");
    let root = unpack(tmp.path(), "layout", "latest");
    assert_eq!(std::fs::read_to_string(root.join("etc/app/db.pass")).unwrap(), secret);
    assert!(listing(&root.join("etc/app")).contains("-0400 100:100 /db.pass"));
}

/// A large local file the cache does not know is read once, hashed as it is packed; the
/// image and the lock (its inputs too) are the same as when it was hashed first, and the
/// next build knows the layer.
#[test]
fn a_large_new_local_file_is_read_once_and_builds_the_same_image() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut x: u64 = 1;
    let bytes: Vec<u8> = (0..(20 << 20))
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 59) as u8
        })
        .collect();
    std::fs::write(dir.join("big.bin"), &bytes).unwrap();
    std::fs::write(dir.join("r.yml"), "name: big\nlayers:\n  - files:\n      - {path: big.bin, to: /big.bin}\n")
        .unwrap();
    // `later`: the time is moved forward past the window in which a file is too fresh to
    // be remembered by its identity (instead of waiting it out).
    let build_at = |cache: &str, out: &str, later: &str| {
        let envs = [("ASSEMBLE_LOG", "debug"), ("ASSEMBLE_CLOCK_OFFSET_SECS", later)];
        let run = assemble(dir, &dir.join(cache), &["--json", "build", "r.yml", "-o", out], &envs);
        let run = run.ok();
        let deferred = run.stderr.contains("big.bin is hashed as it is packed");
        let v = run.json();
        (v[0]["digest"].as_str().unwrap().to_string(), v[0]["packed"].as_u64().unwrap(), deferred)
    };
    let build = |cache: &str, out: &str| build_at(cache, out, "3");
    let lock = || std::fs::read_to_string(dir.join("r.lock")).unwrap();
    // Just written: deferred, and not remembered (its timestamps are too fresh to vouch for it).
    let (cold, packed, deferred) = build_at("c1", "oci:o1", "0");
    assert!(deferred && packed == 1);
    let first_lock = lock();
    // Settled, in a new cache: deferred again, now remembered.
    let (again, packed, deferred) = build("c2", "oci:o2");
    assert!(deferred && packed == 1);
    assert_eq!(again, cold);
    assert_eq!(lock(), first_lock, "the lock's inputs do not depend on when the file was hashed");
    // The cache knows the file and the layer: nothing deferred, nothing packed, same image.
    let (warm, packed, deferred) = build("c2", "oci:o3");
    assert!(!deferred && packed == 0, "deferred {deferred}, packed {packed}");
    assert_eq!(warm, cold);
    assert_eq!(lock(), first_lock);
    // Without the stat cache, hashed while planning: the same again.
    std::fs::remove_dir_all(dir.join("c2/stat")).unwrap();
    let (planned, packed, _) = build("c2", "oci:o4");
    assert_eq!((planned, packed), (cold, 1), "an unknown identity is a new layer key: packed again");
}

/// Two sources may put equal files at one path; with large new files (left unhashed while
/// planning) that still holds, and unequal ones still conflict.
#[test]
fn equal_large_new_files_at_one_path_agree_and_unequal_ones_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let big = vec![7u8; 17 << 20];
    std::fs::write(dir.join("a.bin"), &big).unwrap();
    std::fs::write(dir.join("b.bin"), &big).unwrap();
    let mut other = big.clone();
    other[0] = 8;
    std::fs::write(dir.join("c.bin"), &other).unwrap();
    let recipe = |second: &str| {
        format!(
            "name: twice\nlayers:\n  - files:\n      - {{path: a.bin, to: /x.bin}}\n      - {{path: {second}, to: /x.bin}}\n"
        )
    };
    std::fs::write(dir.join("same.yml"), recipe("b.bin")).unwrap();
    std::fs::write(dir.join("differ.yml"), recipe("c.bin")).unwrap();
    let run = assemble(dir, &dir.join("c"), &["--json", "build", "same.yml"], &[]).ok();
    assert_eq!(run.json()[0]["packed"], 1);
    let run = assemble(dir, &dir.join("c"), &["-q", "build", "differ.yml"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("/x.bin") && run.stderr.contains("c.bin"), "{}", run.stderr);
}

/// Every cached blob of the cache `c` whose name is one of `digests` (hex).
fn flip_first_byte(c: &Path, hex: &str) {
    let p = c.join("blobs/sha256").join(hex);
    let mut b = std::fs::read(&p).unwrap();
    b[0] ^= 0xff;
    std::fs::write(&p, b).unwrap();
}

/// Removes the cache's records and listings, so the next build reads its downloads again.
fn forget_records(c: &Path) {
    for e in std::fs::read_dir(c.join("layers")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
}

/// A pinned download and an archive damaged in the cache (a byte flipped, as a poisoned CI
/// cache would have it): the next build that reads them says "cache entry damaged", removes
/// them, fetches them again and gives the same image; the lock does not change.
#[test]
fn damaged_download_in_the_cache_is_fetched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let server = archive_server(t);
    let served = t.join("served");
    let (raw, archive) = (sha256_file(&served.join("pkg.tar")), sha256_file(&served.join("pkg.tar.xz")));
    std::fs::write(
        t.join("r.yml"),
        format!(
            "name: dl\nlayers:\n  - files:\n      - {{url: \"{}\", sha256: {raw}, to: /x}}\n      - {{url: \"{}\", sha256: {archive}, extract: true, to: /opt}}\n",
            server.url("pkg.tar"),
            server.url("pkg.tar.xz")
        ),
    )
    .unwrap();
    let c = t.join("c");
    let first = assemble(t, &c, &["--json", "build", "r.yml"], &[]).ok().json();
    let lock = std::fs::read_to_string(t.join("r.lock")).unwrap();
    assert_eq!(server.count(), 2);
    for (n, hex) in [raw.as_str(), archive.as_str()].into_iter().enumerate() {
        flip_first_byte(&c, hex);
        forget_records(&c);
        let again = assemble(t, &c, &["--json", "build", "r.yml"], &[]).ok();
        assert!(again.stderr.contains("cache entry damaged"), "{}", again.stderr);
        assert!(again.stderr.contains(hex), "{}", again.stderr);
        assert!(!again.stderr.contains("lzma") && !again.stderr.contains("data error"), "{}", again.stderr);
        assert_eq!(again.json()[0]["digest"], first[0]["digest"]);
        assert_eq!(server.count(), 3 + n, "the damaged file was fetched again");
        assert_eq!(std::fs::read_to_string(t.join("r.lock")).unwrap(), lock);
        assert_eq!(sha256_file(&c.join("blobs/sha256").join(hex)), hex, "the cache holds the right bytes again");
    }
}

/// A packed layer damaged in the cache is never copied out or reused: the build packs it
/// again (the same bytes) instead of trusting the layer record.
#[test]
fn damaged_layer_blob_in_the_cache_is_packed_again() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    let c = tmp.path().join("c");
    let first = assemble(&f, &c, &["--json", "build", "golden/golden.yml", "-o", "oci:../a"], &[]).ok().json();
    let layer =
        first[0]["platforms"][0]["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    flip_first_byte(&c, &layer);
    let second = assemble(&f, &c, &["--json", "build", "golden/golden.yml", "-o", "oci:../b"], &[]).ok().json();
    assert_eq!(second[0]["digest"], first[0]["digest"]);
    assert_eq!(second[0]["packed"], 1, "the damaged layer was packed again, nothing else");
    assert_eq!(sha256_file(&tmp.path().join("b/blobs/sha256").join(&layer)), layer);
    assert_eq!(sha256_file(&c.join("blobs/sha256").join(&layer)), layer);
}

/// What a killed run left in the cache's `tmp/` is removed by the next run, but never a
/// file another live run still holds (it keeps a lock on it).
#[test]
fn partial_files_left_by_a_killed_run_are_removed_but_not_a_live_ones() {
    require("flock");
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    let c = tmp.path().join("c");
    assemble(&f, &c, &["build", "golden/golden.yml"], &[]).ok();
    let t = c.join("tmp");
    std::fs::write(t.join(".partial-killed"), "half a blob").unwrap();
    std::fs::create_dir_all(t.join("unpack-killed/blobs")).unwrap();
    std::fs::write(t.join(".partial-live"), "being written").unwrap();
    std::fs::write(t.join(".partial-fresh"), "just created").unwrap();
    let old = "touch -h -d '2 hours ago'";
    assert_eq!(sh(&t, &format!("{old} .partial-killed .partial-live unpack-killed unpack-killed/blobs")).code, 0);
    // Another run holds `.partial-live` (as `Store::temp` does) for the whole build.
    let mut holder =
        std::process::Command::new("flock").arg(t.join(".partial-live")).args(["sleep", "30"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assemble(&f, &c, &["build", "golden/golden.yml"], &[]).ok();
    let left: std::collections::BTreeSet<String> =
        std::fs::read_dir(&t).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let expected: std::collections::BTreeSet<String> =
        [".partial-fresh", ".partial-live"].iter().map(|s| s.to_string()).collect();
    assert_eq!(left, expected, "the killed run's leftovers are gone; a live or fresh file stays");
}

/// Builds `archive` (bytes, file name) as a local file extracted to /opt, with `extra` recipe
/// lines, and returns the run.
fn extract(t: &Path, name: &str, bytes: &[u8], extra: &str) -> Run {
    let dir = t.join(format!("p-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
    std::fs::write(
        dir.join("r.yml"),
        format!("name: x\n{extra}layers:\n  - files:\n      - {{path: {name}, extract: true, to: /opt}}\n"),
    )
    .unwrap();
    assemble(&dir, &t.join("c"), &["build", "r.yml"], &[])
}

fn entry(name: &str, data: &[u8], typeflag: u8, link: &str) -> (String, Vec<u8>, u8, String) {
    (name.to_string(), data.to_vec(), typeflag, link.to_string())
}

/// Hard links in an archive must name an earlier regular file of the same archive: a link
/// to nothing, to itself, to a directory, or through one of the archive's symlinks is
/// refused, naming the member (an image `podman load` would reject is never written).
#[test]
fn hardlink_to_missing_self_directory_or_through_symlink_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cases = [
        (
            "missing",
            vec![entry("h", b"", b'1', "nowhere")],
            "`h`, which is a hard link to `nowhere`, which is not a regular file earlier in the archive",
        ),
        ("self", vec![entry("h", b"", b'1', "h")], "`h`, which is a hard link to itself"),
        (
            "dir",
            vec![entry("d/", b"", b'5', ""), entry("h", b"", b'1', "d")],
            "`h`, which is a hard link to `d`, which is not a regular file earlier in the archive",
        ),
        (
            "through-symlink",
            vec![
                entry("real/", b"", b'5', ""),
                entry("real/f", b"x\n", b'0', ""),
                entry("s", b"", b'2', "real"),
                entry("h", b"", b'1', "s/f"),
            ],
            "`h`, which is a hard link to `s/f`, which goes through the symlink `s`",
        ),
        (
            "later",
            vec![entry("h", b"", b'1', "f"), entry("f", b"x\n", b'0', "")],
            "`h`, which is a hard link to `f`, which is not a regular file earlier in the archive",
        ),
    ];
    for (case, members, says) in cases {
        let run = extract(t, &format!("{case}.tar"), &raw_tar(&members), "");
        assert_eq!(run.code, 1, "{case}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("`{case}.tar` holds {says}")), "{case}: {}", run.stderr);
    }
    // A hard link to an earlier file is fine, and kept as a link.
    let good = raw_tar(&[entry("f", b"x\n", b'0', ""), entry("g", b"", b'1', "f")]);
    extract(t, "good.tar", &good, "").ok();
}

/// A decompression bomb stops at the recipe's `unpack_limit` (default 4 GiB) with a message
/// that says how to raise it, having written nothing of it under a final name; a zip entry
/// that holds more than its header says, a name given twice in a zip, and an empty archive
/// are refused.
#[test]
fn decompression_bombs_zip_lies_duplicates_and_empty_archives_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // 64 MiB of zeros in a tar.gz of a few tens of kB, against a 16 MiB limit.
    let zeros = vec![0u8; 64 << 20];
    let tar = raw_tar(&[entry("zeros", &zeros, b'0', "")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let run = extract(t, "bomb.tar.gz", &bomb, "unpack_limit: 16 MiB\n");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("`bomb.tar.gz` expands to more than 16777216 bytes; if it really is that large, raise `unpack_limit` in the recipe"),
        "{}",
        run.stderr
    );
    let big: Vec<_> = std::fs::read_dir(t.join("c/blobs/sha256"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().metadata().unwrap().len() > 1 << 20)
        .collect();
    assert!(big.is_empty(), "nothing of the bomb was kept in the cache");
    assert_eq!(std::fs::read_dir(t.join("c/tmp")).unwrap().count(), 0, "nor left in tmp/");
    // Raised, it builds.
    extract(t, "bomb2.tar.gz", &bomb, "unpack_limit: 100 MiB\n").ok();

    require("python3");
    let py = |script: &str| assert_eq!(sh(t, &format!("python3 -c '{script}'")).code, 0, "{script}");
    // A zip whose headers say 10 bytes for an entry that inflates to 2 MB.
    py("import zipfile,struct
z=zipfile.ZipFile(\"liar.zip\",\"w\",zipfile.ZIP_DEFLATED); z.writestr(\"f\", b\"a\"*2000000); z.close()
b=bytearray(open(\"liar.zip\",\"rb\").read())
i=b.find(b\"PK\\x03\\x04\"); struct.pack_into(\"<I\", b, i+22, 10)
j=b.find(b\"PK\\x01\\x02\"); struct.pack_into(\"<I\", b, j+24, 10)
open(\"liar.zip\",\"wb\").write(b)");
    let run = extract(t, "liar.zip", &std::fs::read(t.join("liar.zip")).unwrap(), "");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("`liar.zip` holds `f`, which is 11 bytes or more where its header says 10")
            || run
                .stderr
                .contains("`liar.zip` holds `f`, which is content that does not match the CRC-32 its header gives"),
        "{}",
        run.stderr
    );
    py("import zipfile,warnings
warnings.simplefilter(\"ignore\")
z=zipfile.ZipFile(\"dup.zip\",\"w\"); z.writestr(\"f\", b\"one\"); z.writestr(\"f\", b\"two\"); z.close()");
    let run = extract(t, "dup.zip", &std::fs::read(t.join("dup.zip")).unwrap(), "");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("`dup.zip` holds `f`, which is in the archive twice"), "{}", run.stderr);
    let run = extract(t, "empty.tar", &[0u8; 1024], "");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("archive `empty.tar` is empty"), "{}", run.stderr);
}

/// Entry paths: a 2,000-level path (within PATH_MAX) builds, in linear time; one longer
/// than PATH_MAX, a component longer than NAME_MAX, or a NUL byte in a name is refused
/// naming the member; `dirs:` with a path longer than PATH_MAX too.
#[test]
fn deep_long_and_nul_entry_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let deep = vec!["a"; 2000].join("/");
    let ok = pax_tar(&[(format!("{deep}/f").into_bytes(), b"deep\n".to_vec(), b'0', vec![])]);
    extract(t, "deep.tar", &ok, "").ok();
    let too_deep = vec!["a"; 3000].join("/");
    let long_name = "n".repeat(300);
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("too-deep", too_deep.into_bytes(), "a path longer than 4095 bytes or with a component longer than 255"),
        ("long-name", long_name.into_bytes(), "a path longer than 4095 bytes or with a component longer than 255"),
        ("nul", b"a\0b".to_vec(), "a name with a NUL byte in it"),
    ];
    for (case, name, says) in cases {
        let bytes = pax_tar(&[(name, b"x\n".to_vec(), b'0', vec![])]);
        let run = extract(t, &format!("{case}.tar"), &bytes, "");
        assert_eq!(run.code, 1, "{case}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("`{case}.tar` holds `")) && run.stderr.contains(says),
            "{case}: {}",
            run.stderr
        );
    }
    std::fs::write(t.join("d.yml"), format!("name: x\nlayers:\n  - dirs: [\"/{}\"]\n", vec!["d"; 2100].join("/")))
        .unwrap();
    let run = assemble(t, &t.join("c"), &["build", "d.yml"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("error: d.yml:3:12: `/d/d/d"), "{}", run.stderr);
    assert!(run.stderr.contains("longer than PATH_MAX (4095 bytes)"), "{}", run.stderr);
}

/// A cache whose `tmp/` is a symlink (a restored cache may hold one) is refused before its
/// clean-up could remove files elsewhere.
#[test]
fn symlinked_cache_directory_is_refused_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let f = fixtures(t);
    std::fs::create_dir_all(t.join("victim/sub")).unwrap();
    std::fs::write(t.join("victim/a.txt"), "mine\n").unwrap();
    std::fs::write(t.join("victim/sub/b.txt"), "mine too\n").unwrap();
    assert_eq!(sh(t, "touch -d '2 hours ago' victim/a.txt victim/sub victim/sub/b.txt").code, 0);
    std::fs::create_dir_all(t.join("c")).unwrap();
    std::os::unix::fs::symlink("../victim", t.join("c/tmp")).unwrap();
    let run = assemble(&f, &t.join("c"), &["build", "golden/golden.yml"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("is a symlink or not a directory"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(t.join("victim/a.txt")).unwrap(), "mine\n");
    assert_eq!(std::fs::read_to_string(t.join("victim/sub/b.txt")).unwrap(), "mine too\n");
}

/// A layer record rewritten in the cache to name another well-formed blob: a `--locked`
/// build of one architecture (or of a docker archive, which holds one) compares what it built
/// with the lock's platform and fails, as a build of every architecture does.
#[test]
fn locked_build_of_some_architectures_checks_their_platforms() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::write(t.join("motd"), "good\n").unwrap();
    std::fs::write(t.join("evil"), "EVIL\n").unwrap();
    let recipe = |file: &str| {
        format!("name: app\narchs: [amd64, arm64]\nconfig:\n  files:\n    - {{path: {file}, to: /etc/motd}}\n")
    };
    std::fs::write(t.join("app.yml"), recipe("motd")).unwrap();
    std::fs::write(t.join("bad.yml"), recipe("evil")).unwrap();
    let c = t.join("c");
    let good = assemble(t, &c, &["--json", "build", "app.yml"], &[]).ok().json();
    let evil = assemble(t, &c, &["--json", "build", "bad.yml", "-o", "oci:bad"], &[]).ok().json();
    let layer = |v: &Value| v[0]["platforms"][0]["layers"][0]["digest"].as_str().unwrap().to_string();
    let (good_layer, evil_layer) = (layer(&good), layer(&evil));
    // Every record of the good layer now names the evil one.
    let mut poisoned = 0;
    let evil_record = std::fs::read_dir(c.join("layers"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|r| r.contains(&evil_layer))
        .unwrap();
    for e in std::fs::read_dir(c.join("layers")).unwrap() {
        let p = e.unwrap().path();
        if std::fs::read_to_string(&p).unwrap().contains(&good_layer) {
            std::fs::write(&p, &evil_record).unwrap();
            poisoned += 1;
        }
    }
    assert!(poisoned > 0);
    for args in [
        vec!["build", "--locked", "app.yml"],
        vec!["build", "--locked", "--arch", "amd64", "app.yml"],
        vec!["build", "--locked", "app.yml", "-o", "docker-archive:d.tar"],
    ] {
        let run = assemble(t, &c, &args, &[]);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("does not cover the recipe as it is now"), "{args:?}: {}", run.stderr);
    }
}

/// A zip with a name given twice, hidden behind a forged end-of-central-directory record in
/// its comment; and a zip symlink entry whose header claims a gigabyte target: both refused
/// (the target is never read past PATH_MAX).
#[test]
fn forged_zip_end_record_and_huge_zip_symlink_are_refused() {
    require("python3");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let py = |script: &str| assert_eq!(sh(t, &format!("python3 -c '{script}'")).code, 0, "{script}");
    py("import zipfile,warnings
warnings.simplefilter(\"ignore\")
z=zipfile.ZipFile(\"forged.zip\",\"w\"); z.writestr(\"etc/motd\", b\"first\"); z.writestr(\"etc/motd\", b\"second copy\")
z.comment=b\"PK\\x05\\x06\"+b\"\\x00\"*16+b\"\\xff\\xff\"; z.close()");
    let run = extract(t, "forged.zip", &std::fs::read(t.join("forged.zip")).unwrap(), "");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("`forged.zip` holds `etc/motd`, which is in the archive twice"), "{}", run.stderr);
    py("import zipfile
z=zipfile.ZipFile(\"link.zip\",\"w\",zipfile.ZIP_DEFLATED)
i=zipfile.ZipInfo(\"l\"); i.external_attr=(0o120777<<16); i.compress_type=zipfile.ZIP_DEFLATED
z.writestr(i, b\"a\"*(64<<20)); z.close()");
    let run = extract(t, "link.zip", &std::fs::read(t.join("link.zip")).unwrap(), "");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("`link.zip` holds `l`, which is a symlink with a NUL byte or an overlong target"),
        "{}",
        run.stderr
    );
}

/// A local tree that would reach past PATH_MAX in the image is an error naming it, not a
/// crash.
#[test]
fn deep_local_tree_is_refused_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let deep = t.join("tree").join("d".repeat(250));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("f"), "x").unwrap();
    let to = format!("/{}", vec!["t".repeat(240); 16].join("/"));
    std::fs::write(t.join("r.yml"), format!("name: x\nlayers:\n  - tree: {{path: tree, to: {to}}}\n")).unwrap();
    let run = assemble(t, &t.join("c"), &["build", "r.yml"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("which is longer than PATH_MAX (4095 bytes)"), "{}", run.stderr);
}

/// A blob of the output layout damaged since the last build is written again, not left
/// because its size is right.
#[test]
fn damaged_blob_in_the_output_layout_is_written_again() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    let c = tmp.path().join("c");
    let built = assemble(&f, &c, &["--json", "build", "golden/golden.yml", "-o", "oci:../o"], &[]).ok().json();
    let layer = first_layer_hex(&built);
    flip_first_byte(&tmp.path().join("o"), &layer);
    assemble(&f, &c, &["build", "golden/golden.yml", "-o", "oci:../o"], &[]).ok();
    assert_eq!(sha256_file(&tmp.path().join("o/blobs/sha256").join(&layer)), layer);
}

/// A layer blob the stat cache vouches for (hashed once as the very file it is, its identity
/// recorded), then rewritten in place with its size and mtime put back, in the cache and in
/// the output: the rewrite moved its ctime, so neither record names it any more — the cache's
/// copy is packed again and the output's written again.
#[test]
fn a_rewritten_blob_with_its_mtime_put_back_is_not_vouched_for_by_the_stat_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    let c = tmp.path().join("c");
    let o = tmp.path().join("o");
    // Files count as settled at once (the stat cache records only files left alone a while).
    let env = [("ASSEMBLE_CLOCK_OFFSET_SECS", "60")];
    let args = ["--json", "build", "golden/golden.yml", "-o", "oci:../o"];
    let records = || std::fs::read_dir(c.join("stat")).map_or(0, |d| d.count());
    let first = assemble(&f, &c, &args, &env).ok().json();
    let layer = first_layer_hex(&first);
    let before = records();
    let second = assemble(&f, &c, &args, &env).ok().json();
    assert_eq!(second[0]["packed"], 0, "the second build reuses every layer");
    let added = records() - before;
    assert!(added >= 2, "the reused layer and its copy in the output are recorded by identity ({added} new records)");
    for dir in [&c, &o] {
        let p = dir.join("blobs/sha256").join(&layer);
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        flip_first_byte(dir, &layer);
        std::fs::File::options().write(true).open(&p).unwrap().set_modified(mtime).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), mtime);
    }
    let third = assemble(&f, &c, &args, &env).ok().json();
    assert_eq!(third[0]["digest"], first[0]["digest"]);
    assert_eq!(third[0]["packed"], 1, "the rewritten layer was packed again");
    assert_eq!(sha256_file(&c.join("blobs/sha256").join(&layer)), layer);
    assert_eq!(sha256_file(&o.join("blobs/sha256").join(&layer)), layer);
}

/// An existing layout whose index.json names "blobs" by paths (`sha256:/dev/zero`, a
/// traversal) on artifact entries: writing into it never opens what an entry names, keeps
/// other tools' entries, and finishes.
#[test]
fn hostile_layout_index_entries_are_kept_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("blobs/sha256")).unwrap();
    let hostile = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:/dev/zero", "size": 1, "artifactType": "application/x-other"},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:../../../../etc/shadow", "size": 1, "artifactType": "application/x-other"},
    ]});
    std::fs::write(out.join("index.json"), hostile.to_string()).unwrap();
    let started = std::time::Instant::now();
    assemble(&f, &tmp.path().join("c"), &["build", "--arch", "amd64", "golden/golden.yml", "-o", "oci:../out"], &[])
        .ok();
    assert!(started.elapsed().as_secs() < 60);
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let digests: Vec<&str> =
        index["manifests"].as_array().unwrap().iter().filter_map(|m| m["digest"].as_str()).collect();
    assert!(digests.contains(&"sha256:/dev/zero") && digests.contains(&"sha256:../../../../etc/shadow"), "{index}");
    assert_eq!(
        digests.iter().filter(|d| !d.contains('/')).count(),
        4 + 2 * 2 + 1,
        "four tags, the SBOMs, the provenance: {index}"
    );
}
