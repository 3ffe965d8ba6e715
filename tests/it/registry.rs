//! `assemble push` against a real registry (Debian's `docker-registry`) on 127.0.0.1:
//! anonymous, htpasswd Basic and token auth; what the registry receives on re-pushes and
//! mounts; faults on the way; and no secret in the logs.

use crate::common::registry::{Auth, Fault, Proxy, Registry, Rule, Signer, TokenServer, docker_config};
use crate::common::{Run, assemble, first_layer_hex, noise, require, sh};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A recipe with a 600 kB incompressible file (so chunked uploads have several chunks),
/// a small application layer and a configuration layer.
fn project(root: &Path, name: &str, note: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("files/big.bin"), noise(600_000, 0x9e37_79b9_7f4a_7c15)).unwrap();
    std::fs::write(dir.join("files/hello.txt"), "hello\n").unwrap();
    std::fs::write(dir.join("files/note.txt"), note).unwrap();
    std::fs::write(
        dir.join(format!("{name}.yml")),
        format!(
            "name: {name}\narchs: [amd64, arm64]\ntags: [\"2.4.1\", latest]\nlayers:\n  - name: data\n    files:\n      - {{path: files/big.bin, to: /srv/big.bin}}\n  - name: app\n    files:\n      - {{path: files/hello.txt, to: /srv/hello.txt}}\nconfig:\n  files:\n    - {{path: files/note.txt, to: /etc/note.txt}}\n  entrypoint: [/bin/true]\n"
        ),
    )
    .unwrap();
    dir
}

struct Env {
    tmp: tempfile::TempDir,
    cache: PathBuf,
    docker: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let docker = tmp.path().join("docker");
        std::fs::create_dir_all(&docker).unwrap();
        Env { tmp, cache, docker }
    }

    /// `assemble` with credential files pointed into the test's own directory.
    fn run(&self, dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let docker = self.docker.to_str().unwrap().to_string();
        let runtime = self.tmp.path().join("runtime");
        let mut envs: Vec<(&str, &str)> = vec![
            ("DOCKER_CONFIG", &docker),
            ("XDG_RUNTIME_DIR", runtime.to_str().unwrap()),
            ("ASSEMBLE_RETRY_DELAY_MS", "50"),
        ];
        envs.extend_from_slice(extra);
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_assemble"));
        c.current_dir(dir).args(args).env("ASSEMBLE_CACHE_DIR", &self.cache).env("NO_COLOR", "1");
        c.env_remove("REGISTRY_AUTH_FILE").env_remove("ASSEMBLE_CREDS").env_remove("SOURCE_DATE_EPOCH");
        for (k, v) in envs {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

fn skopeo(args: &[&str]) -> String {
    require("skopeo");
    let o = std::process::Command::new("skopeo").args(args).output().unwrap();
    assert!(o.status.success(), "skopeo {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every tag shows the index; a `skopeo copy --all` back to a layout gives the same
/// index and the same blobs as the local build.
fn check_pushed(reference: &str, tags: &[&str], index: &str, local: &Path, creds: Option<&str>) {
    let mut auth = vec!["--tls-verify=false".to_string()];
    if let Some(c) = creds {
        auth.push(format!("--creds={c}"));
    }
    for tag in tags {
        let mut args = vec!["inspect", "--raw"];
        args.extend(auth.iter().map(String::as_str));
        let target = format!("docker://{reference}:{tag}");
        args.push(&target);
        let raw = skopeo(&args);
        assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), index, "{reference}:{tag}");
        let v: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 2, "both platforms are in the index");
    }
    let back = local.parent().unwrap().join(format!("back-{}", tags[0]));
    let mut args: Vec<String> = vec!["copy".into(), "--all".into(), "--preserve-digests".into()];
    args.extend(auth.iter().map(|a| a.replace("--tls-verify", "--src-tls-verify").replace("--creds", "--src-creds")));
    args.push(format!("docker://{reference}:{}", tags[0]));
    args.push(format!("oci:{}:x", back.display()));
    skopeo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // The image's blobs: the layout's, less those of the artifacts about it (SBOMs,
    // provenance), which `skopeo copy` does not follow.
    let blobs = |d: &Path| -> Vec<String> {
        let index: Value = serde_json::from_slice(&std::fs::read(d.join("index.json")).unwrap()).unwrap();
        let mut artifacts = std::collections::BTreeSet::new();
        for m in index["manifests"].as_array().unwrap().iter().filter(|m| m["artifactType"].is_string()) {
            let hex = m["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
            let v: Value = serde_json::from_slice(&std::fs::read(d.join("blobs/sha256").join(&hex)).unwrap()).unwrap();
            artifacts.insert(hex);
            artifacts.insert(v["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string());
            for l in v["layers"].as_array().unwrap() {
                artifacts.insert(l["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string());
            }
        }
        let mut v: Vec<String> = std::fs::read_dir(d.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !artifacts.contains(n))
            .collect();
        v.sort();
        v
    };
    assert_eq!(blobs(&back), blobs(local), "the registry gives back exactly the blobs that were built");
    let index_json: Value = serde_json::from_slice(&std::fs::read(back.join("index.json")).unwrap()).unwrap();
    assert_eq!(index_json["manifests"][0]["digest"], index);
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn anonymous_push_skips_what_the_registry_has_and_mounts_across_repositories() {
    let reg = Registry::start(Auth::None);
    let env = Env::new();
    let dir = project(env.tmp.path(), "web", "one\n");
    let counting = Proxy::start(&reg.addr, Vec::new());
    let to = format!("{}/team", counting.addr);

    let first = env.run(&dir, &["--json", "push", "web.yml", "--to", &to], &[]).ok();
    let report = &first.json()[0];
    let index = report["digest"].as_str().unwrap().to_string();
    let pushed = report["blobs"].as_array().unwrap();
    // The three layers are the same on both archs; the two image configs differ; then the
    // attestations: two SBOMs per platform, the provenance, and the artifacts' empty config.
    assert!(pushed.iter().all(|b| b["action"] == "pushed"), "{pushed:?}");
    assert_eq!(pushed.len(), 3 + 2 + 4 + 1 + 1);
    let uploaded = counting.seen.lock().unwrap().blob_bytes;
    let total: u64 = pushed.iter().map(|b| b["size"].as_u64().unwrap()).sum();
    assert_eq!(uploaded, total, "the registry received every blob once");
    assert_eq!(report["bytes_uploaded"].as_u64().unwrap(), total);
    assert_eq!(report["tags"], serde_json::json!(["2.4.1", "latest", "2", "2.4"]));

    env.run(&dir, &["build", "web.yml"], &[]).ok();
    let local = dir.join("out/web");
    check_pushed(&format!("{}/team/web", reg.addr), &["2.4.1", "latest", "2", "2.4"], &index, &local, None);

    // The same image again, from the layout on disk: every blob is found by HEAD.
    let before = counting.seen.lock().unwrap().blob_bytes;
    let again = env.run(&dir, &["--json", "push", "oci:out/web", "--to", &format!("{to}/web:again")], &[]).ok();
    let blobs = again.json()[0]["blobs"].as_array().unwrap().clone();
    assert!(blobs.iter().all(|b| b["action"] == "skipped"), "{blobs:?}");
    assert_eq!(counting.seen.lock().unwrap().blob_bytes, before, "a second push uploads no blob bytes");

    // A second repository of the same registry: blobs are mounted, not uploaded.
    let other =
        env.run(&dir, &["--json", "push", "oci:out/web", "--to", &format!("{}/other/web:1", counting.addr)], &[]).ok();
    let blobs = other.json()[0]["blobs"].as_array().unwrap().clone();
    assert!(blobs.iter().all(|b| b["action"] == "mounted" && b["from"] == "team/web"), "{blobs:?}");
    assert_eq!(counting.seen.lock().unwrap().blob_bytes, before, "mounting uploads nothing");
    let requests = counting.seen.lock().unwrap().requests.join("\n");
    assert!(requests.contains("mount=sha256:"), "{requests}");

    // The lock names the image and the registry has it: the push tags it without building.
    let cache_run = env.run(&dir, &["--json", "push", "web.yml", "--to", &to], &[]).ok();
    assert_eq!(cache_run.json()[0]["built"], false, "{}", cache_run.stderr);
    assert_eq!(cache_run.json()[0]["digest"], index.as_str());
    assert_eq!(counting.seen.lock().unwrap().blob_bytes, before);
}

#[test]
fn basic_auth_push_uses_credentials_from_flag_and_docker_config_and_never_prints_them() {
    let password = "pa55-w0rd-Basic-secret";
    let reg = Registry::start(Auth::Htpasswd { user: "alice".into(), password: password.into() });
    let env = Env::new();
    let dir = project(env.tmp.path(), "mail", "mail\n");
    let to = format!("{}/ops", reg.addr);

    let refused = env.run(&dir, &["push", "mail.yml", "--to", &to], &[]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("asks for credentials") && refused.stderr.contains("--creds"),
        "{}",
        refused.stderr
    );

    let wrong = env.run(&dir, &["push", "mail.yml", "--to", &to, "--creds", "alice:nope"], &[]);
    assert_ne!(wrong.code, 0);
    assert!(!wrong.stderr.contains("nope"), "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains(&format!("error: credentials for {} were rejected", reg.addr))
            && !wrong.stderr.contains("asks for credentials"),
        "{}",
        wrong.stderr
    );

    let creds = format!("alice:{password}");
    let ok = env.run(&dir, &["-vv", "--json", "push", "mail.yml", "--to", &to], &[("ASSEMBLE_CREDS", &creds)]).ok();
    let index = ok.json()[0]["digest"].as_str().unwrap().to_string();
    let b64 = base64_of(&creds);
    for out in [&ok.stdout, &ok.stderr] {
        assert!(!out.contains(password) && !out.contains(&b64), "a credential leaked:\n{out}");
    }
    assert!(ok.stderr.contains("PUT"), "-vv shows the requests: {}", ok.stderr);

    // From docker's config.json, to a second repository (mounting needs pull on the source).
    docker_config(&env.docker, &reg.addr, serde_json::json!({"auth": b64}));
    let out = env.run(&dir, &["-vv", "--json", "push", "mail.yml", "--to", &format!("{}/backup", reg.addr)], &[]).ok();
    assert!(out.json()[0]["blobs"].as_array().unwrap().iter().all(|b| b["action"] == "mounted"), "{}", out.stdout);
    assert!(!out.stderr.contains(password) && !out.stderr.contains(&b64));
    env.run(&dir, &["build", "mail.yml"], &[]).ok();
    // Through a credential helper (`credsStore`), as Docker Desktop and pass users have it.
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-assembletest");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread server\n[ \"$server\" = \"{}\" ] || exit 1\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"{password}\"}}' \"$server\"\n", reg.addr),
    )
    .unwrap();
    sh(env.tmp.path(), &format!("chmod 755 {}", helper.display()));
    std::fs::write(env.docker.join("config.json"), serde_json::json!({"credsStore": "assembletest"}).to_string())
        .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = env.run(
        &dir,
        &["-vv", "push", "oci:out/mail", "--to", &format!("{}/helper/mail:1", reg.addr)],
        &[("PATH", &path)],
    );
    let out = out.ok();
    assert!(!out.stderr.contains(password));

    env.run(&dir, &["build", "mail.yml"], &[]).ok();
    check_pushed(&format!("{}/ops/mail", reg.addr), &["2.4.1"], &index, &dir.join("out/mail"), Some(&creds));
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn token_auth_push_with_password_and_with_identity_token_never_prints_tokens() {
    let signer = Arc::new(Signer::new());
    let password = "t0ken-flow-password";
    let tokens = TokenServer::start(signer.clone(), "bob", password, "refresh-me-secret");
    let reg = Registry::start(Auth::Token { realm: tokens.realm(), cert: signer.cert() });
    let env = Env::new();
    let dir = project(env.tmp.path(), "dns", "dns\n");

    // Credentials from $REGISTRY_AUTH_FILE (podman's format).
    let auth_file = env.tmp.path().join("auth.json");
    std::fs::write(
        &auth_file,
        serde_json::json!({"auths": {reg.addr.clone(): {"auth": base64_of(&format!("bob:{password}"))}}}).to_string(),
    )
    .unwrap();
    let ok = env
        .run(
            &dir,
            &["-vv", "--json", "push", "dns.yml", "--to", &format!("{}/infra", reg.addr)],
            &[("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap())],
        )
        .ok();
    let index = ok.json()[0]["digest"].as_str().unwrap().to_string();
    let issued = tokens.issued.lock().unwrap().clone();
    assert!(!issued.is_empty(), "the push went through the token server");
    for out in [&ok.stdout, &ok.stderr] {
        assert!(!out.contains(password), "the password leaked:\n{out}");
        for t in &issued {
            let signature = t.rsplit('.').next().unwrap();
            assert!(!out.contains(signature), "a token leaked:\n{out}");
        }
    }
    assert!(ok.stderr.contains("401"), "the challenge was seen: {}", ok.stderr);

    // A docker identity token: exchanged with the OAuth2 refresh_token grant.
    docker_config(&env.docker, &reg.addr, serde_json::json!({"identitytoken": "refresh-me-secret"}));
    let out = env.run(&dir, &["-vv", "--json", "push", "dns.yml", "--to", &format!("{}/second", reg.addr)], &[]).ok();
    assert!(out.json()[0]["blobs"].as_array().unwrap().iter().all(|b| b["action"] == "mounted"), "{}", out.stdout);
    assert!(!out.stderr.contains("refresh-me-secret"));
    let requests = tokens.requests.lock().unwrap().join("\n");
    assert!(requests.contains("POST /token"), "{requests}");
    assert!(
        requests.contains("GET /token?service=test-registry&scope=repository%3Ainfra%2Fdns%3Apull%2Cpush"),
        "{requests}"
    );

    // skopeo reads it back through the same token server.
    env.run(&dir, &["build", "dns.yml"], &[]).ok();
    check_pushed(
        &format!("{}/infra/dns", reg.addr),
        &["latest"],
        &index,
        &dir.join("out/dns"),
        Some(&format!("bob:{password}")),
    );
}

#[test]
fn push_survives_resets_server_errors_and_rate_limits() {
    let reg = Registry::start(Auth::None);
    let env = Env::new();
    let dir = project(env.tmp.path(), "flaky", "flaky\n");
    let rules = vec![
        Rule { method: "POST", path_contains: "/blobs/uploads/", fault: Fault::Status(429, Some(1)), times: 1 },
        Rule { method: "HEAD", path_contains: "/blobs/", fault: Fault::Status(500, None), times: 2 },
        Rule { method: "PATCH", path_contains: "/blobs/uploads/", fault: Fault::ResetMidBody, times: 2 },
        Rule { method: "PUT", path_contains: "/blobs/uploads/", fault: Fault::ResetMidBody, times: 1 },
        Rule { method: "PUT", path_contains: "/manifests/", fault: Fault::Status(503, None), times: 1 },
    ];
    let proxy = Proxy::start(&reg.addr, rules);
    // 100 kB chunks: the 600 kB layer goes up in PATCHes, the rest in one PUT each.
    let out = env
        .run(
            &dir,
            &["--json", "push", "flaky.yml", "--to", &format!("{}/lab", proxy.addr), "--parallel", "2"],
            &[("ASSEMBLE_CHUNK_SIZE", "100000")],
        )
        .ok();
    let faults = proxy.seen.lock().unwrap().faults.clone();
    assert_eq!(faults.len(), 7, "every fault was hit: {faults:#?}");
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);
    let index = out.json()[0]["digest"].as_str().unwrap().to_string();
    env.run(&dir, &["build", "flaky.yml"], &[]).ok();
    // skopeo copy checks every blob against its digest.
    check_pushed(&format!("{}/lab/flaky", reg.addr), &["2.4.1", "latest"], &index, &dir.join("out/flaky"), None);
}

#[test]
fn redirects_to_another_host_do_not_carry_credentials() {
    let password = "redirect-s3cret";
    let guarded = Registry::start(Auth::Htpasswd { user: "carol".into(), password: password.into() });
    let open = Registry::start(Auth::None);
    let env = Env::new();
    let dir = project(env.tmp.path(), "red", "red\n");
    let creds = format!("carol:{password}");
    for reg in [&guarded, &open] {
        let to = format!("{}/team", reg.addr);
        env.run(&dir, &["push", "red.yml", "--to", &to], &[("ASSEMBLE_CREDS", &creds)]).ok();
    }
    // Blob downloads from the guarded registry are sent on to another host (as registries on
    // object storage do); that host gets the request without the registry's credentials.
    let elsewhere = Proxy::start_on("127.0.0.2", &open.addr, vec![]);
    let rules = vec![Rule {
        method: "GET",
        path_contains: "/blobs/sha256:",
        fault: Fault::Redirect(format!("http://{}", elsewhere.addr)),
        times: 100,
    }];
    let front = Proxy::start(&guarded.addr, rules);
    std::fs::write(
        dir.join("on.yml"),
        format!("name: on\narchs: [amd64, arm64]\nbase: {{image: \"{}/team/red:2.4.1\"}}\n", front.addr),
    )
    .unwrap();
    // A base image is pulled with the credentials a `docker login` left.
    docker_config(&env.docker, &front.addr, serde_json::json!({"auth": base64_of(&creds)}));
    let cache = env.tmp.path().join("fresh-cache");
    let out = env.run(&dir, &["-vv", "build", "on.yml"], &[("ASSEMBLE_CACHE_DIR", cache.to_str().unwrap())]).ok();
    assert!(!out.stderr.contains(password) && !out.stderr.contains(&base64_of(&creds)), "{}", out.stderr);
    let (front, elsewhere) = (front.seen.lock().unwrap(), elsewhere.seen.lock().unwrap());
    assert!(front.faults.len() >= 4, "blob downloads were redirected: {:#?}", front.faults);
    assert!(front.authorized.iter().any(|r| r.contains("/blobs/")), "the registry itself got credentials");
    assert_eq!(elsewhere.requests.len(), front.faults.len(), "{:#?}", elsewhere.requests);
    assert_eq!(elsewhere.authorized, Vec::<String>::new(), "credentials went to another host");
}

#[test]
fn images_with_secrets_are_refused_unless_allowed() {
    let reg = Registry::start(Auth::None);
    let env = Env::new();
    let dir = project(env.tmp.path(), "vault", "v\n");
    let recipe = dir.join("vault.yml");
    let text = std::fs::read_to_string(&recipe).unwrap().replace(
        "  entrypoint:",
        "  secrets:\n    - {env: DB_PASSWORD, to: /etc/app/db.pass}\n    - {env: API_KEY, to: /etc/app/api.key}\n  entrypoint:",
    );
    std::fs::write(&recipe, text).unwrap();
    let secrets = [("DB_PASSWORD", "hunter2-db"), ("API_KEY", "key-123")];
    let to = format!("{}/x", reg.addr);
    let refused = env.run(&dir, &["push", "vault.yml", "--to", &to], &secrets);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("/etc/app/db.pass, /etc/app/api.key") && refused.stderr.contains("--allow-secrets"),
        "{}",
        refused.stderr
    );
    env.run(&dir, &["build", "vault.yml"], &secrets).ok();
    let on_disk = env.run(&dir, &["push", "oci:out/vault", "--to", &format!("{to}/vault:1")], &secrets);
    assert_ne!(on_disk.code, 0, "{}", on_disk.stderr);
    assert!(on_disk.stderr.contains("--allow-secrets"), "{}", on_disk.stderr);
    let allowed = env.run(&dir, &["-vv", "push", "vault.yml", "--to", &to, "--allow-secrets"], &secrets).ok();
    assert!(!allowed.stderr.contains("hunter2-db"));
}

#[test]
fn tags_variables_variants_and_aliases_make_the_documented_tag_lists() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("sdk.yml"),
        r#"name: sdk
tags:
  - {tag: "9.0.100", variables: {band: "100"}}
  - {tag: "9.0.200", variables: {band: "200"}}
  - {tag: "9.1.50", variables: {band: "50"}}
  - {tag: "edge", variables: {band: "50"}}
variables: {band: "0", flavour: plain}
variants:
  - {name: slim, suffix: "-slim", variables: {flavour: slim}}
config:
  env: {BAND: "{band}", FLAVOUR: "{flavour}"}
"#,
    )
    .unwrap();
    let out = assemble(tmp.path(), &tmp.path().join("cache"), &["--json", "tags", "sdk.yml"], &[]).ok();
    let plan: Vec<(Value, Value, Value, Value)> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["variant"].clone(), u["tags"].clone(), u["aliases"].clone(), u["variables"].clone()))
        .collect();
    use serde_json::json;
    let expect = |variant: Value, tags: Value, aliases: Value, band: &str, flavour: &str| {
        (variant, tags, aliases, json!({"band": band, "flavour": flavour}))
    };
    assert_eq!(
        plan,
        vec![
            expect(Value::Null, json!(["9.0.100"]), json!([]), "100", "plain"),
            expect(Value::Null, json!(["9.0.200"]), json!(["9.0"]), "200", "plain"),
            expect(Value::Null, json!(["9.1.50", "edge"]), json!(["9", "9.1"]), "50", "plain"),
            expect(json!("slim"), json!(["9.0.100-slim"]), json!([]), "100", "slim"),
            expect(json!("slim"), json!(["9.0.200-slim"]), json!(["9.0-slim"]), "200", "slim"),
            expect(json!("slim"), json!(["9.1.50-slim", "edge-slim"]), json!(["9-slim", "9.1-slim"]), "50", "slim"),
        ]
    );
    // Each image builds with its own variables and has its own lock.
    let built = assemble(tmp.path(), &tmp.path().join("cache"), &["--json", "build", "sdk.yml"], &[]).ok();
    assert_eq!(built.json().as_array().unwrap().len(), 6);
    for lock in ["sdk.lock", "sdk.9.0.200.lock", "sdk.9.1.50.lock", "sdk.9.0.100-slim.lock"] {
        assert!(tmp.path().join(lock).is_file(), "{lock}");
    }
    let listing = sh(tmp.path(), "cat out/sdk/index.json");
    for tag in ["9.0.100", "9", "9.1", "edge-slim", "9-slim"] {
        assert!(listing.stdout.contains(&format!("\"{tag}\"")), "{tag} in {}", listing.stdout);
    }
}

/// `diff` and `verify --against` read an image straight from a registry (`docker://REF`,
/// every blob checked), and `outdated` says when an image base's tag has moved.
#[test]
fn diff_verify_and_outdated_read_images_in_a_registry() {
    let reg = Registry::start(Auth::None);
    let env = Env::new();
    let dir = project(env.tmp.path(), "web", "one\n");
    env.run(&dir, &["push", "web.yml", "--to", &format!("{}/team", reg.addr)], &[]).ok();
    let remote = format!("docker://{}/team/web:2.4.1", reg.addr);
    env.run(&dir, &["build", "web.yml"], &[]).ok();
    env.run(&dir, &["diff", &remote, "oci:out/web"], &[]).ok();
    env.run(&dir, &["verify", "web.yml", "--against", &remote], &[]).ok();

    // A recipe on that image, locked to its digest: nothing is outdated yet.
    std::fs::write(
        dir.join("onweb.yml"),
        format!(
            "name: onweb\narchs: [amd64, arm64]\nbase:\n  image: {}/team/web:2.4.1\nconfig:\n  env: {{MINE: \"1\"}}\n",
            reg.addr
        ),
    )
    .unwrap();
    env.run(&dir, &["build", "onweb.yml"], &[]).ok();
    let quiet = env.run(&dir, &["--json", "outdated", "onweb.yml"], &[]).ok();
    assert_eq!(quiet.json(), serde_json::json!([]));

    // One file of the configuration layer changes and the tag moves to the new image.
    std::fs::write(dir.join("files/note.txt"), "two\n").unwrap();
    let pushed = env.run(&dir, &["--json", "push", "web.yml", "--to", &format!("{}/team", reg.addr)], &[]).ok();
    let moved_to = pushed.json()[0]["digest"].as_str().unwrap().to_string();
    let diff = env.run(&dir, &["diff", &remote, "oci:out/web"], &[]);
    assert_eq!(diff.code, 3, "{}", diff.stderr);
    assert!(diff.stdout.contains("/etc/note.txt"), "{}", diff.stdout);
    assert!(!diff.stdout.contains("/srv/"), "only the configuration layer differs:\n{}", diff.stdout);
    let outdated = env.run(&dir, &["--json", "outdated", "onweb.yml"], &[]).ok().json();
    assert_eq!(outdated[0]["recipe"], "onweb");
    assert_eq!(outdated[0]["base_image"]["available"], moved_to.as_str());
    let text = env.run(&dir, &["outdated", "onweb.yml"], &[]).ok();
    assert!(text.stdout.starts_with(&format!("onweb base {}/team/web:2.4.1: sha256:", reg.addr)), "{}", text.stdout);

    // A digest that is not in the registry is named in the error.
    let missing = format!("docker://{}/team/web@sha256:{}", reg.addr, "0".repeat(64));
    let run = env.run(&dir, &["diff", &missing, "oci:out/web"], &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains(&"0".repeat(64)) && run.stderr.contains("404"), "{}", run.stderr);
}

/// An upload `Location` on another host (scheme, host or port other than the registry's):
/// the upload goes there without the registry's credentials, whatever that costs the push.
#[test]
fn upload_location_on_another_host_gets_no_credentials() {
    let password = "upl0ad-s3cret";
    let reg = Registry::start(Auth::Htpasswd { user: "dave".into(), password: password.into() });
    let elsewhere = Proxy::start_on("127.0.0.2", &reg.addr, vec![]);
    let rules = vec![Rule {
        method: "POST",
        path_contains: "/blobs/uploads/",
        fault: Fault::RewriteLocation(format!("http://{}", elsewhere.addr)),
        times: 100,
    }];
    let front = Proxy::start(&reg.addr, rules);
    let env = Env::new();
    let dir = project(env.tmp.path(), "upl", "u\n");
    let creds = format!("dave:{password}");
    let run =
        env.run(&dir, &["push", "upl.yml", "--to", &format!("{}/team", front.addr)], &[("ASSEMBLE_CREDS", &creds)]);
    assert_ne!(run.code, 0, "the other host refuses an upload without credentials");
    assert!(!run.stderr.contains(password) && !run.stderr.contains(&base64_of(&creds)), "{}", run.stderr);
    let (front, elsewhere) = (front.seen.lock().unwrap(), elsewhere.seen.lock().unwrap());
    assert!(front.authorized.iter().any(|r| r.contains("/blobs/uploads/")), "the registry itself got credentials");
    assert!(!elsewhere.requests.is_empty(), "the upload went to the Location given");
    assert_eq!(elsewhere.authorized, Vec::<String>::new(), "credentials went to another host");
}

/// A project built with a fresh cache, and a registry behind a proxy that counts requests:
/// what the damaged-blob tests start from (`layer`: the first layer's digest, in hex).
struct Damageable {
    reg: Registry,
    counting: Proxy,
    env: Env,
    dir: PathBuf,
    built: Value,
    layer: String,
}

fn damageable(name: &str) -> Damageable {
    let reg = Registry::start(Auth::None);
    let counting = Proxy::start(&reg.addr, vec![]);
    let env = Env::new();
    let dir = project(env.tmp.path(), name, &format!("{name}\n"));
    let built = env.run(&dir, &["--json", "build", &format!("{name}.yml")], &[]).ok().json();
    let layer = first_layer_hex(&built);
    Damageable { reg, counting, env, dir, built, layer }
}

/// A layer damaged in the cache after it was packed (a byte flipped) is never uploaded: the
/// push packs it again and the registry holds exactly the image the lock records.
#[test]
fn damaged_cached_layer_is_never_pushed() {
    let Damageable { reg, counting, env, dir, built, layer } = damageable("dmg");
    let blob = env.cache.join("blobs/sha256").join(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&blob, bytes).unwrap();
    let pushed = env.run(&dir, &["--json", "push", "dmg.yml", "--to", &format!("{}/team", counting.addr)], &[]).ok();
    assert_eq!(pushed.json()[0]["digest"], built[0]["digest"]);
    let seen = counting.seen.lock().unwrap();
    let puts = seen.requests.iter().filter(|r| r.starts_with("PUT") && r.contains(&layer)).count();
    assert_eq!(puts, 1, "the layer went up once: {:#?}", seen.requests);
    drop(seen);
    check_pushed(
        &format!("{}/team/dmg", reg.addr),
        &["2.4.1"],
        built[0]["digest"].as_str().unwrap(),
        &dir.join("out/dmg"),
        None,
    );
}

/// A layout whose layer was damaged on disk is refused before anything is sent (exit 4).
#[test]
fn damaged_image_on_disk_is_never_pushed() {
    let Damageable { reg: _reg, counting, env, dir, layer, .. } = damageable("bad");
    let blob = dir.join("out/bad/blobs/sha256").join(&layer);
    let bytes = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &bytes[..bytes.len() - 1]).unwrap();
    let run = env.run(&dir, &["push", "oci:out/bad", "--to", &format!("{}/team/bad:1", counting.addr)], &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("blob sha256:{layer} has the wrong size")), "{}", run.stderr);
    assert_eq!(counting.seen.lock().unwrap().requests, Vec::<String>::new(), "nothing reached the registry");
}

/// A layout checked whole by one push is not read again by the next (the stat cache knows each
/// layer blob as the very file it checked); a blob rewritten in place afterwards — same size,
/// its mtime put back — is not vouched for (its ctime moved): it is read, found damaged, and
/// nothing reaches the registry.
#[test]
fn a_layout_blob_rewritten_after_a_checked_push_is_read_again() {
    let Damageable { reg: _reg, counting, env, dir, layer, .. } = damageable("seen");
    // Time moved past the window in which a file is too fresh to be remembered.
    let later = [("ASSEMBLE_CLOCK_OFFSET_SECS", "3")];
    let to = format!("{}/team/seen:1", counting.addr);
    let records = || std::fs::read_dir(env.cache.join("stat")).unwrap().count();
    let before = records();
    env.run(&dir, &["push", "oci:out/seen", "--to", &to], &later).ok();
    assert!(records() >= before + 3, "each checked layer blob is remembered: {before} → {}", records());
    env.run(&dir, &["push", "oci:out/seen", "--to", &to], &later).ok();
    let blob = dir.join("out/seen/blobs/sha256").join(&layer);
    let mtime = std::fs::metadata(&blob).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&blob, &bytes).unwrap();
    std::fs::File::options().write(true).open(&blob).unwrap().set_modified(mtime).unwrap();
    counting.seen.lock().unwrap().requests.clear();
    let run = env.run(&dir, &["push", "oci:out/seen", "--to", &to], &later);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("blob sha256:{layer} does not match its digest")), "{}", run.stderr);
    assert_eq!(counting.seen.lock().unwrap().requests, Vec::<String>::new(), "nothing reached the registry");
}

/// A registry that nothing answers for fails at once, with the cause first; retries are for
/// what can succeed later (a reset, a 5xx, a 429 — `push_survives_resets_…`).
#[test]
fn an_unreachable_registry_fails_at_once_naming_the_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = project(tmp.path(), "web", "one");
    let port = crate::common::registry::free_port();
    let run =
        assemble(&dir, &tmp.path().join("cache"), &["push", "web.yml", "--to", &format!("127.0.0.1:{port}/team")], &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.lines().filter(|l| !l.starts_with("built ")).collect::<Vec<_>>(),
        [
            format!("error: cannot reach 127.0.0.1:{port}: Connection refused (os error 111)").as_str(),
            "hint: check the registry's name and port, and that it is running; nothing was retried, since nothing answered",
        ],
        "{}",
        run.stderr
    );
}

/// `oras` against the test registry (plain HTTP), its JSON output parsed.
fn oras_json(args: &[&str]) -> Value {
    let o = std::process::Command::new(crate::common::trixie_tool("oras")).args(args).output().unwrap();
    assert!(o.status.success(), "oras {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("oras {args:?} printed no JSON ({e})"))
}

/// A push attaches each platform's SBOMs and the image's provenance as OCI 1.1 referrers;
/// the registry (2.8) has no referrers API, so they are listed under the referrers tag
/// schema, where `oras discover` finds them; the documents are byte for byte what `assemble
/// sbom`/`provenance` print; pushing again adds nothing; `--no-attest` pushes none.
#[test]
fn push_attaches_sboms_and_provenance_that_oras_discovers() {
    let reg = Registry::start(Auth::None);
    let env = Env::new();
    let dir = project(env.tmp.path(), "att", "attested\n");
    let to = format!("{}/team", reg.addr);
    let report = env.run(&dir, &["--json", "push", "att.yml", "--to", &to], &[]).ok().json();
    let index = report[0]["digest"].as_str().unwrap().to_string();
    let repo = format!("{}/team/att", reg.addr);
    let discover = |digest: &str| -> Vec<(String, String)> {
        let v = oras_json(&["discover", "--plain-http", "--format", "json", &format!("{repo}@{digest}")]);
        let mut out: Vec<(String, String)> = v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["artifactType"].as_str().unwrap().to_string(), m["digest"].as_str().unwrap().to_string()))
            .collect();
        out.sort();
        out
    };
    // On the index: the provenance, and each platform's two SBOMs (named by platform).
    let on_index: Vec<(String, String)> =
        discover(&index).into_iter().filter(|(t, _)| t == "application/vnd.in-toto+json").collect();
    assert_eq!(on_index.len(), 1);
    let listed = oras_json(&["discover", "--plain-http", "--format", "json", &format!("{repo}@{index}")]);
    let mut sboms: Vec<String> = listed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] != "application/vnd.in-toto+json")
        .map(|m| {
            format!(
                "{} {}",
                m["annotations"]["dev.assemble.platform"].as_str().unwrap(),
                m["artifactType"].as_str().unwrap()
            )
        })
        .collect();
    sboms.sort();
    assert_eq!(
        sboms,
        [
            "linux/amd64 application/spdx+json",
            "linux/amd64 application/vnd.cyclonedx+json",
            "linux/arm64/v8 application/spdx+json",
            "linux/arm64/v8 application/vnd.cyclonedx+json"
        ]
    );
    let fetch_document = |manifest: &str| -> Vec<u8> {
        let m = oras_json(&["manifest", "fetch", "--plain-http", &format!("{repo}@{manifest}")]);
        assert!(m["subject"]["mediaType"].as_str().is_some(), "{m}");
        let layer = m["layers"][0]["digest"].as_str().unwrap();
        let o = std::process::Command::new(crate::common::trixie_tool("oras"))
            .args(["blob", "fetch", "--plain-http", "--output", "-", &format!("{repo}@{layer}")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let provenance = env.run(&dir, &["provenance", "att.yml"], &[]).ok().stdout;
    assert_eq!(String::from_utf8(fetch_document(&on_index[0].1)).unwrap(), provenance);

    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{repo}@{index}")]);
    let platforms: Value = serde_json::from_str(&raw).unwrap();
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let manifest = platforms["manifests"][i]["digest"].as_str().unwrap();
        let found = discover(manifest);
        let types: Vec<&str> = found.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["application/spdx+json", "application/vnd.cyclonedx+json"], "{arch}");
        for ((_, digest), format) in found.iter().zip(["spdx", "cyclonedx"]) {
            let printed = env.run(&dir, &["sbom", "att.yml", "--arch", arch, "--format", format], &[]).ok().stdout;
            assert_eq!(String::from_utf8(fetch_document(digest)).unwrap(), printed, "{arch} {format}");
        }
    }

    // Again, built and sent in full (`--platform-tags` skips the shortcut of re-tagging what
    // the registry holds): the listings are the same (merged, not duplicated).
    let listing = |digest: &str| {
        skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{repo}:sha256-{}", &digest[7..])])
    };
    let before = listing(&index);
    let again = env.run(&dir, &["--json", "push", "att.yml", "--to", &to, "--platform-tags"], &[]).ok().json();
    assert_eq!(again[0]["built"], true, "a full push, not the re-tagging shortcut: {again}");
    assert_eq!(listing(&index), before);

    // Without attestations: no listing tag in another repository.
    env.run(&dir, &["push", "--no-attest", "att.yml", "--to", &format!("{}/bare", reg.addr)], &[]).ok();
    let tags = skopeo(&["list-tags", "--tls-verify=false", &format!("docker://{}/bare/att", reg.addr)]);
    assert!(!tags.contains("sha256-"), "{tags}");
}

/// `cosign` against the test registry, with the given password; its exit status and output.
fn cosign(dir: &Path, args: &[&str], password: &str) -> Run {
    let o = std::process::Command::new(crate::common::trixie_tool("cosign"))
        .current_dir(dir)
        .args(args)
        .env("COSIGN_PASSWORD", password)
        .env("HOME", dir)
        .env("TUF_ROOT", dir.join("tuf"))
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `push --sign-key` with a password-protected key cosign made: `cosign verify` accepts the
/// index's signature and `cosign verify-attestation` the SPDX, CycloneDX and SLSA v1
/// attestations, whose statements are those `assemble` prints; another key is refused; a
/// wrong password is an error naming the key, never printing the password.
#[test]
fn signed_push_is_what_cosign_verifies() {
    let reg = Registry::start(Auth::None);
    let env = Env::new();
    let dir = project(env.tmp.path(), "signed", "signed\n");
    let keys = env.tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let password = "correct-horse-signing";
    let made = cosign(&keys, &["generate-key-pair"], password);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let other = env.tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    assert_eq!(cosign(&other, &["generate-key-pair"], "x").code, 0);

    let key = keys.join("cosign.key");
    let wrong = env.run(
        &dir,
        &["push", "signed.yml", "--to", &format!("{}/team", reg.addr), "--sign-key", key.to_str().unwrap()],
        &[("ASSEMBLE_SIGN_PASSWORD", "not-it")],
    );
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains(&format!("the signing key `{}` cannot be decrypted: wrong password", key.display())),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("not-it"), "{}", wrong.stderr);

    let pushed = env
        .run(
            &dir,
            &["--json", "push", "signed.yml", "--to", &format!("{}/team", reg.addr)],
            &[("ASSEMBLE_SIGN_KEY", key.to_str().unwrap()), ("COSIGN_PASSWORD", password)],
        )
        .ok();
    let index = pushed.json()[0]["digest"].as_str().unwrap().to_string();
    let image = format!("{}/team/signed@{index}", reg.addr);
    let public = keys.join("cosign.pub");
    let common = ["--insecure-ignore-tlog=true", "--allow-insecure-registry", "--allow-http-registry"];
    let mut args = vec!["verify", "--key", public.to_str().unwrap()];
    args.extend(common);
    args.push(&image);
    let v = cosign(&keys, &args, "");
    assert_eq!(v.code, 0, "cosign verify: {}", v.stderr);
    assert!(v.stdout.contains(&index), "{}", v.stdout);

    // Signing the same image again adds nothing to the tags (ECDSA signatures differ each
    // time; what they sign does not).
    let att_layers = || {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/team/signed:sha256-{}.att", reg.addr, &index[7..]),
        ]);
        serde_json::from_str::<Value>(&raw).unwrap()["layers"].as_array().unwrap().len()
    };
    let before = att_layers();
    assert_eq!(before, 1 + 2 * 2, "the provenance and two SBOMs per platform");
    env.run(
        &dir,
        &["push", "signed.yml", "--to", &format!("{}/team", reg.addr)],
        &[("ASSEMBLE_SIGN_KEY", key.to_str().unwrap()), ("COSIGN_PASSWORD", password)],
    )
    .ok();
    assert_eq!(att_layers(), before);

    for (kind, predicate) in [
        ("spdxjson", "https://spdx.dev/Document"),
        ("cyclonedx", "https://cyclonedx.org/bom"),
        ("slsaprovenance1", "https://slsa.dev/provenance/v1"),
    ] {
        let mut args = vec!["verify-attestation", "--key", public.to_str().unwrap(), "--type", kind];
        args.extend(common);
        args.push(&image);
        let v = cosign(&keys, &args, "");
        assert_eq!(v.code, 0, "cosign verify-attestation --type {kind}: {}", v.stderr);
        // One JSON envelope per line; the statement's predicate type is the one asked for.
        let statements: Vec<Value> = v
            .stdout
            .lines()
            .map(|l| {
                let env: Value = serde_json::from_str(l).unwrap();
                use base64::Engine as _;
                let payload =
                    base64::engine::general_purpose::STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
                serde_json::from_slice(&payload).unwrap()
            })
            .collect();
        assert!(statements.iter().any(|s| s["predicateType"] == predicate), "{kind}: {}", v.stdout);
    }
    let provenance: Value =
        serde_json::from_str(&env.run(&dir, &["provenance", "signed.yml"], &[]).ok().stdout).unwrap();
    assert!(
        provenance["subject"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| format!("sha256:{}", s["digest"]["sha256"].as_str().unwrap()) == index)
    );

    // Another key's public half does not verify it.
    let mut args = vec!["verify", "--key", "cosign.pub"];
    args.extend(common);
    args.push(&image);
    let refused = cosign(&other, &args, "");
    assert_ne!(refused.code, 0, "{}", refused.stdout);

    // `assemble verify --key`: the signature and every signed attestation are the key's and
    // identical to the rebuild's.
    let against = format!("docker://{image}");
    let ok = env.run(&dir, &["verify", "signed.yml", "--against", &against, "--key", public.to_str().unwrap()], &[]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.starts_with("verified signed: sha256:"), "{}", ok.stdout);
    // With another key: each is named.
    let other_pub = other.join("cosign.pub");
    let bad =
        env.run(&dir, &["verify", "signed.yml", "--against", &against, "--key", other_pub.to_str().unwrap()], &[]);
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    let hex = &index[7..];
    assert!(
        bad.stdout.contains(&format!(
            "signature: none of the 1 signature(s) under `sha256-{hex}.sig` is the given key's for {index}"
        )),
        "{}",
        bad.stdout
    );
    for part in ["provenance", "linux/amd64 signed sbom (spdx)", "linux/arm64/v8 signed sbom (cyclonedx)"] {
        assert!(bad.stdout.contains(part), "{part}: {}", bad.stdout);
    }
    assert!(bad.stdout.contains("no attestation signed by the given key under"), "{}", bad.stdout);
    // A forged SBOM, signed by the right key, in place of the real ones: named, with the
    // digest the rebuild gives.
    std::fs::write(keys.join("forged.spdx.json"), r#"{"spdxVersion":"SPDX-2.3","packages":[]}"#).unwrap();
    let mut args = vec![
        "attest",
        "--key",
        "cosign.key",
        "--type",
        "spdxjson",
        "--predicate",
        "forged.spdx.json",
        "--replace",
        "--tlog-upload=false",
        "--yes",
    ];
    args.extend(["--allow-insecure-registry", "--allow-http-registry"]);
    args.push(&image);
    let forged = cosign(&keys, &args, password);
    assert_eq!(forged.code, 0, "{}", forged.stderr);
    let bad = env.run(&dir, &["verify", "signed.yml", "--against", &against, "--key", public.to_str().unwrap()], &[]);
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    let lines: Vec<&str> = bad.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", bad.stdout);
    assert!(
        lines[0].starts_with(&format!(
            "attestations: a statement signed by the key under `sha256-{hex}.att` (https://spdx.dev/Document, sha256:"
        )),
        "{}",
        lines[0]
    );
    for (line, arch) in lines[1..].iter().zip(["linux/amd64", "linux/arm64/v8"]) {
        assert!(
            line.starts_with(&format!("{arch} signed sbom (spdx): the 1 signed attestation(s) under `sha256-{hex}.att` differ from the rebuild's (sha256:")),
            "{line}"
        );
    }

    // A forged SBOM attached as a referrer of the index (unsigned, as scanners read them).
    std::fs::write(keys.join("attached.spdx.json"), r#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    let attach = std::process::Command::new(crate::common::trixie_tool("oras"))
        .current_dir(&keys)
        .args([
            "attach",
            "--plain-http",
            "--artifact-type",
            "application/spdx+json",
            &image,
            "attached.spdx.json:application/spdx+json",
        ])
        .output()
        .unwrap();
    assert!(attach.status.success(), "{}", String::from_utf8_lossy(&attach.stderr));
    let bad = env.run(&dir, &["verify", "signed.yml", "--against", &against, "--key", public.to_str().unwrap()], &[]);
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(
        bad.stdout.lines().any(|l| l.starts_with("attached application/spdx+json: the referrer sha256:")
            && l.ends_with("which the rebuild does not give")),
        "{}",
        bad.stdout
    );

    // Keys as openssl writes them, SEC1 and PKCS#8, verified with openssl's public half.
    let made = sh(
        &keys,
        "openssl ecparam -name prime256v1 -genkey -noout -out sec1.pem && openssl pkcs8 -topk8 -nocrypt -in sec1.pem -out pkcs8.pem && openssl ec -in sec1.pem -pubout -out openssl.pub",
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    for (n, file) in ["sec1.pem", "pkcs8.pem"].iter().enumerate() {
        let repo = format!("{}/plain{n}", reg.addr);
        let key = keys.join(file);
        let pushed = env
            .run(&dir, &["--json", "push", "signed.yml", "--to", &repo, "--sign-key", key.to_str().unwrap()], &[])
            .ok();
        let image = format!("{repo}/signed@{}", pushed.json()[0]["digest"].as_str().unwrap());
        let mut args = vec!["verify", "--key", "openssl.pub"];
        args.extend(common);
        args.push(&image);
        let v = cosign(&keys, &args, "");
        assert_eq!(v.code, 0, "{file}: {}", v.stderr);
    }
}

/// A registry answering `verify --key`'s questions with a manifest that never ends is refused
/// once it passes the bound (4 MiB), not read until memory runs out.
#[test]
fn endless_registry_answers_are_cut_off() {
    let reg = Registry::start(Auth::None);
    let env = Env::new();
    let dir = project(env.tmp.path(), "endless", "endless\n");
    let report =
        env.run(&dir, &["--json", "push", "endless.yml", "--to", &format!("{}/team", reg.addr)], &[]).ok().json();
    let index = report[0]["digest"].as_str().unwrap().to_string();
    let endless =
        Proxy::start(&reg.addr, vec![Rule { method: "GET", path_contains: ".sig", fault: Fault::Endless, times: 1 }]);
    let made = sh(env.tmp.path(), "openssl ecparam -name prime256v1 -genkey -noout | openssl ec -pubout -out any.pub");
    assert_eq!(made.code, 0, "{}", made.stderr);
    let started = std::time::Instant::now();
    let run = env.run(
        &dir,
        &[
            "verify",
            "endless.yml",
            "--against",
            &format!("docker://{}/team/endless@{index}", endless.addr),
            "--key",
            env.tmp.path().join("any.pub").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("is larger than 4194304 bytes"), "{}", run.stderr);
    assert!(started.elapsed().as_secs() < 60);
}

/// `push --platform-tags` also tags each platform's manifest `TAG-ARCH`, for consumers that
/// take no image index; without it there are no such tags.
#[test]
fn platform_tags_name_each_platforms_manifest() {
    let reg = Registry::start(Auth::None);
    let env = Env::new();
    let dir = project(env.tmp.path(), "pt", "platform tags\n");
    let report = env
        .run(&dir, &["--json", "push", "pt.yml", "--to", &format!("{}/team", reg.addr), "--platform-tags"], &[])
        .ok()
        .json();
    let index = report[0]["digest"].as_str().unwrap();
    let repo = format!("{}/team/pt", reg.addr);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{repo}@{index}")]);
    let platforms: Value = serde_json::from_str(&raw).unwrap();
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        for tag in ["2.4.1", "latest"] {
            let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{repo}:{tag}-{arch}")]);
            assert_eq!(
                format!("sha256:{}", sha256_hex(raw.as_bytes())),
                platforms["manifests"][i]["digest"].as_str().unwrap(),
                "{tag}-{arch}"
            );
        }
    }
    env.run(&dir, &["push", "pt.yml", "--to", &format!("{}/bare", reg.addr)], &[]).ok();
    let tags = skopeo(&["list-tags", "--tls-verify=false", &format!("docker://{}/bare/pt", reg.addr)]);
    assert!(!tags.contains("-amd64"), "{tags}");
    // An image on disk too.
    env.run(&dir, &["build", "pt.yml"], &[]).ok();
    env.run(&dir, &["push", "oci:out/pt:2.4.1", "--to", &format!("{}/disk/pt:9", reg.addr), "--platform-tags"], &[])
        .ok();
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/disk/pt:9-arm64", reg.addr)]);
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), platforms["manifests"][1]["digest"].as_str().unwrap());
}
