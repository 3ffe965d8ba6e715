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

fn resolve<'a>(idx: &'a apk::Index, request: &str) -> Result<Vec<&'a apk::Record>, apk::resolve::Error> {
    let available = idx.records.iter().map(|r| apk::resolve::Available { record: r, tag: None }).collect();
    let mut r = apk::resolve::Resolver::new(available);
    r.install(request)?;
    Ok(r.chosen_records())
}

fn closure(idx: &apk::Index, request: &str) -> Vec<String> {
    let chosen = resolve(idx, request).unwrap();
    // Every so: (and every other) dependency of every chosen package is provided by a chosen package.
    for r in &chosen {
        for d in r.list('D').into_iter().filter_map(apk::resolve::Dep::parse).filter(|d| !d.conflict) {
            let ok = chosen.iter().any(|c| {
                (c.name() == d.name && d.accepts(c.version()))
                    || c.list('p').iter().any(|p| {
                        let (n, v) = p.split_once('=').map_or((*p, None), |(n, v)| (n, Some(v)));
                        n == d.name && v.map_or(d.op == apk::resolve::Op::Any, |v| d.accepts(v))
                    })
            });
            assert!(ok, "{request}: `{d}` of {} is not provided by the chosen set", r.name());
        }
    }
    let mut names: Vec<String> = chosen.iter().map(|r| format!("{} {}", r.name(), r.version())).collect();
    names.sort();
    names
}

#[test]
fn real_package_sets_resolve_to_golden_closures() {
    let keys = alpine_keys();
    let v316 = index("alpine-v3.16-main-x86_64/APKINDEX.tar.gz", &keys).unwrap();
    let v317 = index("alpine-v3.17-main-aarch64/APKINDEX.tar.gz", &keys).unwrap();
    let golden: [(&str, &apk::Index, &[&str]); 10] = [
        (
            "strace",
            &v316,
            &[
                "fts 1.2.7-r1",
                "libbz2 1.0.8-r1",
                "libelf 0.186-r0",
                "musl 1.2.3-r2",
                "strace 5.17-r0",
                "xz-libs 5.2.5-r1",
                "zlib 1.2.12-r3",
            ],
        ),
        (
            "strace",
            &v317,
            &[
                "libbz2 1.0.8-r4",
                "libelf 0.187-r2",
                "musl 1.2.3-r5",
                "musl-fts 1.2.7-r3",
                "strace 6.0-r0",
                "xz-libs 5.2.9-r0",
                "zlib 1.2.13-r0",
            ],
        ),
        (
            "curl",
            &v316,
            &[
                "brotli-libs 1.0.9-r6",
                "busybox 1.35.0-r17",
                "ca-certificates 20220614-r0",
                "curl 7.83.1-r4",
                "libcrypto1.1 1.1.1s-r0",
                "libcurl 7.83.1-r4",
                "libssl1.1 1.1.1s-r0",
                "musl 1.2.3-r2",
                "nghttp2-libs 1.47.0-r0",
                "ssl_client 1.35.0-r17",
                "zlib 1.2.12-r3",
            ],
        ),
        (
            "curl",
            &v317,
            &[
                "brotli-libs 1.0.9-r9",
                "busybox 1.35.0-r29",
                "busybox-binsh 1.35.0-r29",
                "ca-certificates 20230506-r0",
                "curl 8.1.1-r1",
                "libcrypto3 3.0.8-r4",
                "libcurl 8.1.1-r1",
                "libssl3 3.0.8-r4",
                "musl 1.2.3-r5",
                "nghttp2-libs 1.51.0-r0",
                "ssl_client 1.35.0-r29",
                "zlib 1.2.13-r0",
            ],
        ),
        ("busybox", &v316, &["busybox 1.35.0-r17", "musl 1.2.3-r2"]),
        ("busybox", &v317, &["busybox 1.35.0-r29", "musl 1.2.3-r5"]),
        ("openssl", &v316, &["libcrypto1.1 1.1.1s-r0", "libssl1.1 1.1.1s-r0", "musl 1.2.3-r2", "openssl 1.1.1s-r0"]),
        ("openssl", &v317, &["libcrypto3 3.0.8-r4", "libssl3 3.0.8-r4", "musl 1.2.3-r5", "openssl 3.0.8-r4"]),
        (
            "nginx",
            &v316,
            &[
                "busybox 1.35.0-r17",
                "libcrypto1.1 1.1.1s-r0",
                "libssl1.1 1.1.1s-r0",
                "musl 1.2.3-r2",
                "nginx 1.22.1-r0",
                "pcre 8.45-r2",
                "ssl_client 1.35.0-r17",
                "zlib 1.2.12-r3",
            ],
        ),
        (
            "nginx",
            &v317,
            &[
                "busybox 1.35.0-r29",
                "busybox-binsh 1.35.0-r29",
                "libcrypto3 3.0.8-r4",
                "libssl3 3.0.8-r4",
                "musl 1.2.3-r5",
                "nginx 1.22.1-r0",
                "pcre 8.45-r2",
                "ssl_client 1.35.0-r29",
                "zlib 1.2.13-r0",
            ],
        ),
    ];
    for (request, idx, expected) in golden {
        assert_eq!(closure(idx, request), expected, "{request} on {}", idx.description);
    }
    let err = resolve(&v316, "curlx").err().unwrap().to_string();
    assert_eq!(err, "unknown package `curlx`; did you mean `curl`?");
}

#[test]
fn architectures_must_agree_on_versions() {
    let keys = alpine_keys();
    let v316 = index("alpine-v3.16-main-x86_64/APKINDEX.tar.gz", &keys).unwrap();
    let v317 = index("alpine-v3.17-main-aarch64/APKINDEX.tar.gz", &keys).unwrap();
    let a = resolve(&v316, "busybox").unwrap();
    let b = resolve(&v317, "busybox").unwrap();
    assert_eq!(apk::resolve::same_everywhere(&[("x86_64".into(), a.clone()), ("x86_64".into(), a.clone())]), Ok(()));
    assert_eq!(
        apk::resolve::same_everywhere(&[("x86_64".into(), a), ("aarch64".into(), b)]).unwrap_err(),
        "`busybox` is 1.35.0-r17 on x86_64 but 1.35.0-r29 on aarch64; `musl` is 1.2.3-r2 on x86_64 but 1.2.3-r5 on aarch64"
    );
}

#[test]
fn an_installed_database_below_satisfies_dependencies_and_is_never_upgraded() {
    let v317 = index("alpine-v3.17-main-aarch64/APKINDEX.tar.gz", &alpine_keys()).unwrap();
    let db = std::fs::read_to_string(fixtures().join("installed-db/after-test-install")).unwrap();
    let below = apk::parse_index(&db);
    let over = |request: &str| {
        let available = v317.records.iter().map(|r| apk::resolve::Available { record: r, tag: None }).collect();
        let mut r = apk::resolve::Resolver::over(&below, available);
        r.install(request).map(|()| {
            let mut names: Vec<String> =
                r.chosen_records().iter().map(|r| format!("{} {}", r.name(), r.version())).collect();
            names.sort();
            names
        })
    };
    // musl and zlib come from the database (their so: provides), not from the index.
    let alone = closure(&v317, "strace");
    assert!(alone.iter().any(|n| n.starts_with("musl ")), "{alone:?}");
    let chosen = over("strace").unwrap();
    assert!(chosen.contains(&"strace 6.0-r0".to_string()), "{chosen:?}");
    assert!(!chosen.iter().any(|n| n.starts_with("musl ") || n.starts_with("zlib ")), "{chosen:?}");
    assert_eq!(over("busybox").unwrap(), Vec::<String>::new(), "an installed package is not chosen again");
    let err = over("musl>=1.2.3-r5").unwrap_err();
    assert_eq!(
        err.to_string(),
        "musl 1.2.3-r5 is needed, but the base image has musl 1.2.3-r0; packages of an image base are not upgraded"
    );
}

/// The Alpine recipes in `recipes/` resolve against Alpine's real `main` indexes (v3.16 x86_64,
/// v3.17 aarch64, signatures checked): every package they ask of `main` is there with a closed
/// dependency set. PHP comes from `community`, which the fixtures do not hold: those requests
/// are exactly the ones `main` lacks.
#[test]
fn the_alpine_recipes_resolve_against_the_real_main_indexes() {
    let keys = alpine_keys();
    let v316 = index("alpine-v3.16-main-x86_64/APKINDEX.tar.gz", &keys).unwrap();
    let v317 = index("alpine-v3.17-main-aarch64/APKINDEX.tar.gz", &keys).unwrap();
    let recipes = crate::common::repo().join("recipes");
    let mut community = Vec::new();
    for name in ["three-layer-alpine", "nginx-php-fpm-alpine"] {
        for recipe in assemble::recipe::load_all(&recipes.join(format!("{name}.yml"))).unwrap() {
            let assemble::recipe::Base::Alpine(spec) = &recipe.base else { panic!("{name} is on Alpine") };
            assert!(spec.repositories.iter().any(|(_, r)| r.ends_with("/main")), "{name}: {:?}", spec.repositories);
            for key in &spec.keys {
                let file = key.file_name().unwrap();
                assert!(
                    fixtures().join("keys/alpine").join(file).is_file(),
                    "{name}: {file:?} is one of Alpine's keys"
                );
            }
            for package in &spec.packages {
                let package = &assemble::recipe::vars::interpolate(package, &recipe.variables).unwrap();
                for idx in [&v316, &v317] {
                    match resolve(idx, package) {
                        Ok(_) => {
                            let got = closure(idx, package);
                            assert!(got.iter().any(|n| n.starts_with(&format!("{package} "))), "{package}: {got:?}");
                        }
                        Err(_) => community.push(package.clone()),
                    }
                }
            }
        }
    }
    community.sort();
    community.dedup();
    assert_eq!(community, ["php83", "php83-fpm", "php84", "php84-fpm"], "only PHP is outside `main`");
}
