//! Alpine formats and trust, on the real data in `../shared/fixtures/apk/` (read from there,
//! never copied into the repository).

use assemble::source::apk::{self, Error, Keys};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/apk");
    assert!(p.is_dir(), "the shared Alpine fixtures must be beside the repository at {}", p.display());
    p
}

fn alpine_keys() -> Keys {
    let dir = fixtures().join("keys/alpine");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    Keys::load(&paths.iter().map(PathBuf::as_path).collect::<Vec<_>>()).unwrap()
}

fn index(rel: &str, keys: &Keys) -> Result<apk::Index, Error> {
    apk::read_index(&std::fs::read(fixtures().join(rel)).unwrap(), keys, rel)
}

#[test]
fn real_indexes_verify_with_the_right_key_and_every_record_parses() {
    let keys = alpine_keys();
    let v316 = index("alpine-v3.16-main-x86_64/APKINDEX.tar.gz", &keys).unwrap();
    assert_eq!(v316.signed_by, "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub");
    assert_eq!(v316.records.len(), 4929);
    assert_eq!(v316.description, "v3.16.3-13-g4d933a1fa3");
    let v317 = index("alpine-v3.17-main-aarch64/APKINDEX.tar.gz", &keys).unwrap();
    assert_eq!(v317.signed_by, "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub");
    assert_eq!(v317.records.len(), 5004);
    for r in v316.records.iter().chain(&v317.records) {
        assert!(!r.name().is_empty() && r.get('C').is_some_and(|c| c.starts_with("Q1")), "{r:?}");
        assert!(
            apk::version::Version::parse(r.version()).is_some(),
            "unparsable version {} of {}",
            r.version(),
            r.name()
        );
    }
}

#[test]
fn a_wrong_or_missing_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // The right name on the wrong key.
    let name = "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub";
    std::fs::copy(
        fixtures().join("keys/alpine/alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub"),
        tmp.path().join(name),
    )
    .unwrap();
    let wrong = Keys::load(&[tmp.path().join(name).as_path()]).unwrap();
    let rel = "alpine-v3.16-main-x86_64/APKINDEX.tar.gz";
    assert_eq!(
        index(rel, &wrong).err().unwrap().to_string(),
        format!("the signature of `{rel}` does not verify with `{name}`")
    );
    let other =
        Keys::load(&[fixtures().join("keys/alpine/alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub").as_path()])
            .unwrap();
    assert_eq!(
        index(rel, &other).err().unwrap().to_string(),
        format!(
            "`{rel}` is signed by `{name}`, which is not among the given keys (`alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub`)"
        )
    );
}

#[test]
fn sha256_and_multi_key_indexes_verify() {
    let rsa256 = Keys::load(&[fixtures().join("test-repos/rsa256-signed/test-rsa256.rsa.pub").as_path()]).unwrap();
    let i = index("test-repos/rsa256-signed/APKINDEX.tar.gz", &rsa256).unwrap();
    assert!(!i.records.is_empty());
    let dir = fixtures().join("test-repos/multi-key-signed/keys");
    let paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    let multi = Keys::load(&paths.iter().map(PathBuf::as_path).collect::<Vec<_>>()).unwrap();
    assert!(!index("test-repos/multi-key-signed/APKINDEX.tar.gz", &multi).unwrap().records.is_empty());
}

fn record<'a>(idx: &'a apk::Index, name: &str) -> &'a apk::Record {
    idx.records.iter().find(|r| r.name() == name).unwrap()
}

#[test]
fn packages_pass_the_whole_chain_or_are_refused_naming_the_member() {
    let keys = alpine_keys();
    let idx = index("alpine-v3.16-main-x86_64/APKINDEX.tar.gz", &keys).unwrap();
    let strace_rec = record(&idx, "strace");
    assert_eq!(strace_rec.get('C'), Some("Q18y9jy9MgtvQFXTntDQ3if2axAkk="));
    let strace = std::fs::read(fixtures().join("alpine-packages/strace-5.17-r0.x86_64.apk")).unwrap();
    let pkg = apk::read_package(&strace, strace_rec, &keys, "strace.apk").unwrap();
    assert_eq!(pkg.pkginfo["pkgname"], ["strace"]);
    assert_eq!(pkg.pkginfo["pkgver"], ["5.17-r0"]);

    let curl = std::fs::read(fixtures().join("alpine-packages/curl-7.83.1-r1.x86_64.apk")).unwrap();
    let err = apk::read_package(&curl, record(&idx, "curl"), &keys, "curl.apk").err().unwrap();
    assert!(matches!(err, Error::NotInIndex { .. }), "{err}");
    assert!(
        err.to_string().starts_with("`curl.apk` is not vouched for by the index: its control member is Q1"),
        "{err}"
    );
    assert!(err.to_string().ends_with("for curl 7.83.1-r4"), "{err}");

    // A flipped byte in each member is refused, naming the member.
    let parts = apk::members(&strace, "strace").unwrap();
    let mut start = 0;
    for (i, (compressed, _)) in parts.iter().enumerate() {
        let mut bad = strace.clone();
        bad[start + compressed.len() / 2] ^= 0x55;
        let err = apk::read_package(&bad, strace_rec, &keys, "strace.apk").err().unwrap().to_string();
        let member = ["signature", "control", "data"][i];
        assert!(err.contains(&format!("{member} member")), "member {member}: {err}");
        start += compressed.len();
    }
}
