//! Recipes built on recipes (`base: {recipe: NAME}`): graph order, layers reused as they
//! are, the base's config inherited, cycles named, and a lock that notices its base changed.

use crate::common::*;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join("recipes").join(format!("{name}.yml")), text).unwrap();
}

fn layers(v: &serde_json::Value, platform: usize) -> Vec<String> {
    v["platforms"][platform]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().into())
        .collect()
}

fn project(t: &Path) {
    std::fs::create_dir_all(t.join("recipes/files")).unwrap();
    std::fs::write(t.join("recipes/files/a.txt"), "a\n").unwrap();
    std::fs::write(t.join("recipes/files/b.txt"), "b\n").unwrap();
    let file = |name: &str, base: &str, src: &str, extra: &str| {
        format!(
            "name: {name}\narchs: [amd64, arm64]\n{base}layers:\n  - name: {name}\n    files:\n      - {{path: files/{src}, to: /{name}.txt}}\n{extra}"
        )
    };
    write(t, "a", &file("a", "", "a.txt", "config:\n  env: {FROM_A: \"1\"}\n  entrypoint: [/bin/a]\n"));
    write(t, "b", &file("b", "base: {recipe: a}\n", "b.txt", "config:\n  env: {FROM_B: \"2\"}\n"));
    write(t, "c", &file("c", "base: {recipe: b}\n", "a.txt", ""));
    write(t, "d", &file("d", "", "b.txt", ""));
}

#[test]
fn recipes_build_in_graph_order_on_each_others_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    project(t);
    let cache = t.join("cache");
    let graph = assemble(t, &cache, &["--json", "graph"], &[]).ok().json();
    let rows: Vec<(u64, &str, Option<&str>)> = graph
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["level"].as_u64().unwrap(), r["recipe"].as_str().unwrap(), r["base"].as_str()))
        .collect();
    assert_eq!(rows, [(1, "a", None), (1, "d", None), (2, "b", Some("a")), (3, "c", Some("b"))]);
    let text = assemble(t, &cache, &["graph"], &[]).ok().stdout;
    assert_eq!(text, "1. a\n1. d\n2. b  (on a)\n3. c  (on b)\n");

    let built = assemble(t, &cache, &["--json", "build", "--all"], &[]).ok().json();
    let names: Vec<&str> = built.as_array().unwrap().iter().map(|r| r["recipe"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "d", "b", "c"]);
    let (a, b, c) = (&built[0], &built[2], &built[3]);
    for p in 0..2 {
        let (la, lb, lc) = (layers(a, p), layers(b, p), layers(c, p));
        assert_eq!(lb[..la.len()], la[..], "b starts with a's layers");
        assert_eq!(lc[..lb.len()], lb[..], "c starts with b's layers");
        assert_eq!(lc.len(), la.len() + 2);
    }
    let config = sh(t, "skopeo inspect --config oci:out/c:latest");
    assert!(config.stdout.contains("FROM_A=1") && config.stdout.contains("FROM_B=2"), "{}", config.stdout);
    assert!(config.stdout.contains("/bin/a"), "{}", config.stdout);
    let lock = std::fs::read_to_string(t.join("recipes/c.lock")).unwrap();
    assert!(lock.contains("reference = \"recipe:b\"") && lock.contains(b["digest"].as_str().unwrap()), "{lock}");

    // `build c` alone builds what it stands on from their locks: the same digest.
    let again = assemble(t, &t.join("cache2"), &["--json", "build", "c"], &[]).ok().json();
    assert_eq!(again[0]["digest"], c["digest"]);

    // A change in `a` moves `c`; `--locked` says which lock no longer holds.
    std::fs::write(t.join("recipes/files/a.txt"), "a, changed\n").unwrap();
    let stale = assemble(t, &cache, &["build", "--locked", "c"], &[]);
    assert_ne!(stale.code, 0);
    assert!(stale.stderr.contains("`recipes/a.lock` does not cover the recipe"), "{}", stale.stderr);
    assemble(t, &cache, &["build", "a"], &[]).ok();
    let stale = assemble(t, &cache, &["build", "--locked", "c"], &[]);
    assert_ne!(stale.code, 0);
    assert!(stale.stderr.contains("`recipes/b.lock` does not cover"), "{}", stale.stderr);
    assert!(stale.stderr.contains("the base recipe:a (amd64) is now sha256:"), "{}", stale.stderr);
}

#[test]
fn a_cycle_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    project(t);
    write(t, "a", "name: a\narchs: [amd64, arm64]\nbase: {recipe: c}\n");
    let cache = t.join("cache");
    for args in [&["graph"][..], &["build", "--all"][..]] {
        let out = assemble(t, &cache, args, &[]);
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains("recipes build on each other in a cycle: a → c → b → a"), "{}", out.stderr);
    }
    // Named alone, the build finds the cycle while it walks the bases.
    let out = assemble(t, &cache, &["build", "b"], &[]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("in a cycle: b → a → c → b"), "{}", out.stderr);
    let missing = assemble(t, &cache, &["graph", "recipes/d.yml"], &[]).ok();
    assert_eq!(missing.stdout, "1. d\n");
}
