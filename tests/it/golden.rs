//! Golden digests: the fixture recipes' image index digests are constants here. They must
//! hold with 1 and many threads, cold and warm caches, from another directory, under
//! another TZ and umask, and after the inputs' mtimes and owners change; so must the digests
//! of its attestations (SBOMs and provenance).

use crate::common::*;

const GOLDEN: &str = "sha256:eaf43ce5a17df38991367070c6eb8f21b66220e133b4d9c94b4b225a922e7cea";
const GOLDEN_ZSTD: &str = "sha256:be189abbde8c67c35e66e1493ff95cfbe37279b97d1a69d27fc6c823467a0cd0";

/// The golden fixture's attestations: the provenance, and linux/amd64's SPDX and CycloneDX SBOMs.
const GOLDEN_ATTESTATIONS: [&str; 3] = [
    "sha256:6daf634fd46023c0c0e7aeb0fdd3fb4a00357b9ebb9ac96a817b6db73ae116ba",
    "sha256:5f4c8c083e25ef22e357ee0c447a0ed8947637f33a634c276b82b6d071f0edcc",
    "sha256:3901e94f54ef51a608f234af293a36e900130dec238ff161da1cc1e865fd4934",
];

fn digest(run: Run) -> (String, u64) {
    let (d, packed, _) = digests(run);
    (d, packed)
}

/// The index digest, the layers packed, and the attestations' digests.
fn digests(run: Run) -> (String, u64, [String; 3]) {
    let v = run.ok().json();
    let s = |x: &serde_json::Value| x.as_str().unwrap().to_string();
    let amd64 = &v[0]["platforms"][0];
    assert_eq!(amd64["platform"], "amd64");
    (
        s(&v[0]["digest"]),
        v[0]["packed"].as_u64().unwrap(),
        [s(&v[0]["provenance"]), s(&amd64["spdx"]), s(&amd64["cyclonedx"])],
    )
}

#[test]
fn golden_digest_holds_across_threads_caches_directories_tz_umask_and_input_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let a = fixtures(&tmp.path().join("a"));
    let cache1 = tmp.path().join("cache1");

    // Cold cache, one thread.
    let (d, packed, attestations) =
        digests(assemble(&a, &cache1, &["--json", "-j", "1", "build", "golden/golden.yml", "-o", "oci:../out1"], &[]));
    assert_eq!(d, GOLDEN);
    assert_eq!(attestations, GOLDEN_ATTESTATIONS);
    assert!(packed > 0);

    // Warm cache, four threads: nothing is compressed again.
    let (d, packed, attestations) =
        digests(assemble(&a, &cache1, &["--json", "-j", "4", "build", "golden/golden.yml", "-o", "oci:../out2"], &[]));
    assert_eq!(d, GOLDEN);
    assert_eq!(attestations, GOLDEN_ATTESTATIONS);
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
    let (d, _, attestations) = digests(run);
    assert_eq!(d, GOLDEN);
    assert_eq!(attestations, GOLDEN_ATTESTATIONS);

    // The epoch is an input: changing it must change the digest (so this test can fail).
    let (d, _, attestations) = digests(assemble(
        &a,
        &cache1,
        &["--json", "build", "golden/golden.yml", "-o", "oci:../out4"],
        &[("SOURCE_DATE_EPOCH", "1")],
    ));
    assert_ne!(d, GOLDEN);
    for (got, golden) in attestations.iter().zip(GOLDEN_ATTESTATIONS) {
        assert_ne!(got, golden, "the attestations name the epoch and the image");
    }

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
