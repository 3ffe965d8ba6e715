//! Golden digests: the fixture recipes' image index digests are constants here. They must
//! hold with 1 and many threads, cold and warm caches, from another directory, under
//! another TZ and umask, and after the inputs' mtimes and owners change.

use crate::common::*;

const GOLDEN: &str = "sha256:eaf43ce5a17df38991367070c6eb8f21b66220e133b4d9c94b4b225a922e7cea";
const GOLDEN_ZSTD: &str = "sha256:be189abbde8c67c35e66e1493ff95cfbe37279b97d1a69d27fc6c823467a0cd0";

fn digest(run: Run) -> (String, u64) {
    let v = run.ok().json();
    (v[0]["digest"].as_str().unwrap().to_string(), v[0]["packed"].as_u64().unwrap())
}

#[test]
fn golden_digest_holds_across_threads_caches_directories_tz_umask_and_input_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let a = fixtures(&tmp.path().join("a"));
    let cache1 = tmp.path().join("cache1");

    // Cold cache, one thread.
    let (d, packed) =
        digest(assemble(&a, &cache1, &["--json", "-j", "1", "build", "golden/golden.yml", "-o", "oci:../out1"], &[]));
    assert_eq!(d, GOLDEN);
    assert!(packed > 0);

    // Warm cache, four threads: nothing is compressed again.
    let (d, packed) =
        digest(assemble(&a, &cache1, &["--json", "-j", "4", "build", "golden/golden.yml", "-o", "oci:../out2"], &[]));
    assert_eq!(d, GOLDEN);
    assert_eq!(packed, 0, "an unchanged rebuild must reuse every layer");

    // Another copy whose files have other mtimes and owners, built from another working
    // directory, under another TZ and umask, with a cold cache and three threads.
    let b = fixtures(&tmp.path().join("b"));
    let touched = sh(
        &b,
        "find . -exec touch -h -d '2011-03-04 05:06:07' {} + && chown -R -h 1234:5678 . && chmod -R g+w golden/files",
    );
    assert_eq!(touched.code, 0, "{}", touched.stderr);
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let recipe = b.join("golden/golden.yml");
    let run = assemble_with_umask(
        &elsewhere,
        &tmp.path().join("cache2"),
        "077",
        &["--json", "-j", "3", "build", recipe.to_str().unwrap(), "-o", "oci:out3"],
        &[("TZ", "Pacific/Chatham")],
    );
    assert_eq!(digest(run).0, GOLDEN);

    // The epoch is an input: changing it must change the digest (so this test can fail).
    let (d, _) = digest(assemble(
        &a,
        &cache1,
        &["--json", "build", "golden/golden.yml", "-o", "oci:../out4"],
        &[("SOURCE_DATE_EPOCH", "1")],
    ));
    assert_ne!(d, GOLDEN);

    // The output layouts of the first two builds are byte-identical.
    let diff = sh(tmp.path(), "diff -r a/out1 a/out2 && diff -r a/out1 elsewhere/out3");
    assert_eq!(diff.code, 0, "{}{}", diff.stdout, diff.stderr);
}

#[test]
fn zstd_golden_digest_holds_for_one_and_many_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    for (jobs, cache) in [("1", "c1"), ("4", "c2")] {
        let (d, _) = digest(assemble(
            &f,
            &tmp.path().join(cache),
            &["--json", "-j", jobs, "build", "golden/golden-zstd.yml", "-o", "oci:../z"],
            &[],
        ));
        assert_eq!(d, GOLDEN_ZSTD, "with {jobs} thread(s)");
    }
}

#[test]
fn the_committed_lock_covers_the_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    let lock_before = std::fs::read_to_string(f.join("golden/golden.lock")).unwrap();
    assert!(lock_before.contains(GOLDEN), "fixtures/golden/golden.lock must record the golden digest");
    let run = assemble(
        &f,
        &tmp.path().join("c"),
        &["--json", "build", "--locked", "golden/golden.yml", "-o", "oci:../o"],
        &[],
    );
    assert_eq!(digest(run).0, GOLDEN);
    assert_eq!(
        std::fs::read_to_string(f.join("golden/golden.lock")).unwrap(),
        lock_before,
        "--locked never writes the lock"
    );
}
