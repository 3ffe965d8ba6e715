//! Upstream release tracking: a pinned download says where its releases are announced — a
//! GitHub-releases-style API or a page that lists them, both served here — and `outdated`
//! names a newer release (semver order: 1.10.0 after 1.9.0; drafts and pre-releases never),
//! `lock --upgrade` downloads it for every architecture and rewrites the recipe (version,
//! digests, a URL naming the version), and the build that follows pins it.

use crate::common::*;
use serde_json::{Value, json};

fn program(version: &str, arch: &str) -> String {
    format!("#!/bin/sh\necho tool {version} for {arch}\n")
}

#[test]
fn outdated_names_newer_releases_and_lock_upgrade_moves_the_pin() {
    require("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let srv = t.join("srv");
    std::fs::create_dir_all(srv.join("dl")).unwrap();
    std::fs::create_dir_all(srv.join("repos/acme/tool")).unwrap();
    let mut releases = Vec::new();
    for (version, draft, pre) in [
        ("3.0.0", true, false),
        ("2.0.0-rc1", false, true),
        // A pre-release with a plain version: only the `prerelease` flag keeps it out.
        ("1.11.0", false, true),
        ("1.10.0", false, false),
        ("1.9.0", false, false),
        ("1.2.0", false, false),
    ] {
        let mut assets = Vec::new();
        for arch in ["amd64", "arm64"] {
            let name = format!("tool_{version}_{arch}");
            // A draft's files are not published anywhere yet; the plain-versioned pre-release's
            // are, but not on the page the listing recipe reads (a listing has no flag to drop
            // it by; `2.0.0-rc1` stays there, dropped for its letters).
            if !draft {
                let dir = if pre && !version.contains('-') { "pre" } else { "dl" };
                std::fs::create_dir_all(srv.join(dir)).unwrap();
                std::fs::write(srv.join(dir).join(&name), program(version, arch)).unwrap();
            }
            assets.push(json!({"name": name, "browser_download_url": format!("https://example.invalid/{name}")}));
        }
        releases.push(json!({"tag_name": format!("v{version}"), "draft": draft, "prerelease": pre, "assets": assets}));
    }
    std::fs::write(srv.join("repos/acme/tool/releases?per_page=100"), serde_json::to_vec(&releases).unwrap()).unwrap();
    let server = HttpServer::serve(&srv);
    let base = server.url("");
    let base = base.trim_end_matches('/');
    let sha = |v: &str, a: &str| sha256_file(&srv.join("dl").join(format!("tool_{v}_{a}")));
    std::fs::write(
        t.join("gh.yml"),
        format!(
            r#"name: gh
archs: [amd64, arm64]
variables:
  tool_version: "1.9.0"   # the release we ship
layers:
  - name: tool
    files:
      - url: "{base}/dl/tool_{{tool_version}}_{{arch}}"
        sha256: {{amd64: {}, arm64: {}}}
        to: /usr/local/bin/tool
        mode: "0755"
        releases: {{github: acme/tool, api: "{base}", pattern: {{amd64: "tool_{{version}}_amd64", arm64: "tool_{{version}}_arm64"}}, version: tool_version}}
"#,
            sha("1.9.0", "amd64"),
            sha("1.9.0", "arm64")
        ),
    )
    .unwrap();
    // The URLs name the version themselves, in variables; the page lists every file.
    std::fs::write(
        t.join("li.yml"),
        format!(
            r#"name: li
archs: [amd64, arm64]
variables:
  tool_version: 1.9.0
  tool_url_amd64: {base}/dl/tool_1.9.0_amd64
  tool_url_arm64: {base}/dl/tool_1.9.0_arm64
  tool_sha256_amd64: {}
  tool_sha256_arm64: {}
layers:
  - name: tool
    files:
      - url: {{amd64: "{{tool_url_amd64}}", arm64: "{{tool_url_arm64}}"}}
        sha256: {{amd64: "{{tool_sha256_amd64}}", arm64: "{{tool_sha256_arm64}}"}}
        to: /usr/local/bin/tool
        mode: "0755"
        releases:
          listing: "{base}/dl/"
          pattern: {{amd64: "tool_{{version}}_amd64", arm64: "tool_{{version}}_arm64"}}
          version: tool_version
"#,
            sha("1.9.0", "amd64"),
            sha("1.9.0", "arm64")
        ),
    )
    .unwrap();
    let cache = t.join("cache");
    assemble(t, &cache, &["build", "gh.yml", "li.yml"], &[]).ok();

    let outdated = assemble(t, &cache, &["--json", "outdated", "gh.yml", "li.yml"], &[]).ok().json();
    let rows: Vec<(Value, Value, Value, Value)> = outdated
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recipe"].clone(),
                r["download"]["variable"].clone(),
                r["download"]["locked"].clone(),
                r["download"]["available"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (json!("gh"), json!("tool_version"), json!("1.9.0"), json!("1.10.0")),
            (json!("li"), json!("tool_version"), json!("1.9.0"), json!("1.10.0")),
        ],
        "{outdated:#}"
    );

    let upgraded = assemble(t, &cache, &["lock", "--upgrade", "gh.yml", "li.yml"], &[]).ok();
    assert!(upgraded.stdout.contains("gh tool_version: 1.9.0 → 1.10.0"), "{}", upgraded.stdout);
    assert!(upgraded.stdout.contains("li tool_version: 1.9.0 → 1.10.0"), "{}", upgraded.stdout);
    let gh = std::fs::read_to_string(t.join("gh.yml")).unwrap();
    assert!(gh.contains("tool_version: \"1.10.0\"   # the release we ship"), "{gh}");
    for arch in ["amd64", "arm64"] {
        assert!(gh.contains(&sha("1.10.0", arch)) && !gh.contains(&sha("1.9.0", arch)), "{gh}");
    }
    let li = std::fs::read_to_string(t.join("li.yml")).unwrap();
    assert!(li.contains("tool_version: 1.10.0\n") && li.contains("/dl/tool_1.10.0_arm64\n"), "{li}");
    assert!(li.contains(&format!("tool_sha256_arm64: {}", sha("1.10.0", "arm64"))), "{li}");
    for recipe in ["gh", "li"] {
        let lock = std::fs::read_to_string(t.join(format!("{recipe}.lock"))).unwrap();
        assert!(lock.contains(&sha("1.10.0", "amd64")) && !lock.contains(&sha("1.9.0", "amd64")), "{lock}");
        assemble(
            t,
            &cache,
            &["build", "--locked", "--arch", "amd64", &format!("{recipe}.yml"), "-o", &format!("oci:img-{recipe}")],
            &[],
        )
        .ok();
        let u = sh(t, &format!("umoci unpack --image img-{recipe}:latest u-{recipe}"));
        assert_eq!(u.code, 0, "{}", u.stderr);
        let tool = std::fs::read_to_string(t.join(format!("u-{recipe}/rootfs/usr/local/bin/tool"))).unwrap();
        assert_eq!(tool, program("1.10.0", "amd64"));
    }
    let now = assemble(t, &cache, &["--json", "outdated", "gh.yml", "li.yml"], &[]).ok().json();
    assert_eq!(now, json!([]));
}

/// A recipe base rebuilt since (its own lock records another image) is named by `outdated`
/// for the recipes built on it.
#[test]
fn outdated_names_a_recipe_base_whose_lock_moved() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::write(t.join("note.txt"), "one\n").unwrap();
    std::fs::write(
        t.join("a.yml"),
        "name: a\nlayers:\n  - name: n\n    files:\n      - {path: note.txt, to: /note.txt}\n",
    )
    .unwrap();
    std::fs::write(t.join("b.yml"), "name: b\nbase: {recipe: a}\nconfig:\n  env: {B: \"1\"}\n").unwrap();
    let cache = t.join("cache");
    assemble(t, &cache, &["build", "a.yml", "b.yml"], &[]).ok();
    assert_eq!(assemble(t, &cache, &["--json", "outdated", "b.yml"], &[]).ok().json(), json!([]));
    std::fs::write(t.join("note.txt"), "two\n").unwrap();
    let a = assemble(t, &cache, &["--json", "build", "a.yml"], &[]).ok().json();
    let rows = assemble(t, &cache, &["--json", "outdated", "b.yml"], &[]).ok().json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows:#}");
    assert_eq!(rows[0]["base_image"]["reference"], "recipe:a");
    assert_eq!(rows[0]["base_image"]["available"], a[0]["digest"]);
}

/// Hostile release feeds: one that never ends is cut off past 32 MiB, one that is not JSON is
/// refused, each naming the feed; a version with letters (`9999.0.0-evil`, not flagged as a
/// pre-release) is never offered, the newest plain release is. The recipe gives one pattern
/// for every architecture, naming it with `{arch}` as its URL does.
#[test]
fn hostile_release_feeds_are_cut_off_refused_or_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let srv = t.join("srv");
    std::fs::create_dir_all(srv.join("dl")).unwrap();
    for version in ["1.9.0", "1.10.0", "9999.0.0-evil"] {
        std::fs::write(srv.join("dl").join(format!("tool_{version}_amd64")), program(version, "amd64")).unwrap();
    }
    let feed = |case: &str, body: &[u8]| {
        let dir = srv.join(case).join("repos/acme/tool");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("releases?per_page=100"), body).unwrap();
    };
    let release = |v: &str| json!({"tag_name": format!("v{v}"), "draft": false, "prerelease": false, "assets": [{"name": format!("tool_{v}_amd64")}]});
    let mut endless = b"[".to_vec();
    endless.resize((32 << 20) + 4096, b' ');
    endless.push(b']');
    feed("endless", &endless);
    feed("html", b"<html><body>rate limited</body></html>");
    feed(
        "letters",
        &serde_json::to_vec(&json!([release("9999.0.0-evil"), release("1.10.0"), release("1.9.0")])).unwrap(),
    );
    // Releases whose assets are named otherwise than the pattern says: said, not taken as
    // "nothing newer".
    let renamed = |v: &str| json!({"tag_name": format!("v{v}"), "draft": false, "prerelease": false, "assets": [{"name": format!("tool-{v}-linux-amd64")}]});
    feed("renamed", &serde_json::to_vec(&json!([renamed("1.10.0"), renamed("1.9.0")])).unwrap());
    let server = HttpServer::serve(&srv);
    let base = server.url("");
    let base = base.trim_end_matches('/');
    let sha = sha256_file(&srv.join("dl/tool_1.9.0_amd64"));
    let cache = t.join("cache");
    let recipe = |case: &str| {
        std::fs::write(
            t.join(format!("{case}.yml")),
            format!(
                r#"name: {case}
archs: [amd64]
variables:
  tool_version: "1.9.0"
layers:
  - name: tool
    files:
      - url: "{base}/dl/tool_{{tool_version}}_{{arch}}"
        sha256: {sha}
        to: /usr/local/bin/tool
        releases: {{github: acme/tool, api: "{base}/{case}", pattern: "tool_{{version}}_{{arch}}", version: tool_version}}
"#
            ),
        )
        .unwrap();
        assemble(t, &cache, &["build", &format!("{case}.yml")], &[]).ok();
        assemble(t, &cache, &["--json", "outdated", &format!("{case}.yml")], &[])
    };
    let cut = recipe("endless");
    assert_ne!(cut.code, 0);
    assert!(
        cut.stderr.contains(&format!("{base}/endless")) && cut.stderr.contains("more than 33554432 bytes"),
        "{}",
        cut.stderr
    );
    let html = recipe("html");
    assert_ne!(html.code, 0);
    assert!(html.stderr.contains("acme/tool") && html.stderr.contains("the answer is not JSON"), "{}", html.stderr);
    let rows = recipe("letters").ok().json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows:#}");
    assert_eq!(rows[0]["download"]["available"], "1.10.0", "{rows:#}");
    let unmatched = recipe("renamed").ok();
    assert_eq!(unmatched.json().as_array().unwrap().len(), 0, "{}", unmatched.stdout);
    assert!(
        unmatched.stderr.contains("renamed.yml:")
            && unmatched.stderr.contains(&format!("no release at {base}/renamed"))
            && unmatched.stderr.contains("\"tool_VERSION_amd64\""),
        "{}",
        unmatched.stderr
    );
}
