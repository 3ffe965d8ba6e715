//! `assemble ship` against a real sshd on 127.0.0.1 (throwaway keys) with podman as the
//! server's engine: only missing blobs travel (counted on the wire by a relay), a killed ship
//! leaves nothing under a final name, and unknown host keys, bad stores and a server without
//! `sha256sum` are refused with clear messages.

use crate::common::ssh::{Relay, Server, Sshd};
use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

const SECRET: &str = "ship-secret-value-7731";

/// A two-arch recipe: a data layer of `big` incompressible bytes, an app layer, and a
/// configuration layer with a file and a secret.
fn project(root: &Path, name: &str, big: usize) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("files/big.bin"), noise(big, 0x2545_f491_4f6c_dd1d)).unwrap();
    std::fs::write(dir.join("files/hello.txt"), "hello\n").unwrap();
    std::fs::write(dir.join("files/site.conf"), "listen 8080\n").unwrap();
    std::fs::write(
        dir.join(format!("{name}.yml")),
        format!(
            "name: {name}\narchs: [amd64, arm64]\ntags: [\"2.0.1\", latest]\nlayers:\n  - name: data\n    files:\n      - {{path: files/big.bin, to: /srv/big.bin}}\n  - name: app\n    files:\n      - {{path: files/hello.txt, to: /srv/hello.txt}}\nconfig:\n  files:\n    - {{path: files/site.conf, to: /etc/site.conf}}\n  secrets:\n    - {{env: SHIP_TOKEN, to: /etc/token}}\n  entrypoint: [/bin/true]\n"
        ),
    )
    .unwrap();
    dir
}

struct Ship<'a> {
    sshd: &'a Sshd,
    config: PathBuf,
    cache: PathBuf,
}

impl Ship<'_> {
    fn run(&self, dir: &Path, args: &[&str]) -> Run {
        let command = self.sshd.ssh_command(&self.config);
        assemble(dir, &self.cache, args, &[("ASSEMBLE_SSH_COMMAND", &command), ("SHIP_TOKEN", SECRET)])
    }
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Every blob in a store is named by its own sha256.
fn blobs_verify(store: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(store.join("blobs/sha256")).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(sha256_hex(&p), p.file_name().unwrap().to_str().unwrap(), "a blob under a wrong name");
        n += 1;
    }
    n
}

/// The digests and total size of what a configuration-only change must send: the index,
/// the manifests, the configs and the last (configuration) layer of each platform.
fn config_change_payload(layout: &Path) -> (u64, u64) {
    let read = |d: &str| std::fs::read(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let json = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap();
    let top: Value = json(&std::fs::read(layout.join("index.json")).unwrap());
    let index_digest = top["manifests"][0]["digest"].as_str().unwrap().to_string();
    let mut parts: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut layers: BTreeSet<(String, u64)> = BTreeSet::new();
    let index = read(&index_digest);
    parts.insert((index_digest.clone(), index.len() as u64));
    for m in json(&index)["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        let manifest = json(&read(d));
        parts.insert((d.into(), m["size"].as_u64().unwrap()));
        let config = &manifest["config"];
        parts.insert((config["digest"].as_str().unwrap().into(), config["size"].as_u64().unwrap()));
        let last = manifest["layers"].as_array().unwrap().last().unwrap().clone();
        parts.insert((last["digest"].as_str().unwrap().into(), last["size"].as_u64().unwrap()));
        layers.insert((last["digest"].as_str().unwrap().to_string(), last["size"].as_u64().unwrap()));
    }
    // The attestations name the manifests and the index: each changes with them.
    for a in top["manifests"].as_array().unwrap().iter().filter(|m| m["artifactType"].is_string()) {
        let d = a["digest"].as_str().unwrap();
        parts.insert((d.into(), a["size"].as_u64().unwrap()));
        let document = &json(&read(d))["layers"][0];
        parts.insert((document["digest"].as_str().unwrap().into(), document["size"].as_u64().unwrap()));
    }
    (parts.iter().map(|(_, s)| s).sum(), layers.iter().map(|(_, s)| s).sum())
}

/// `podman images` on the server: `repository:tag digest` lines.
fn podman_images(sshd: &Sshd) -> BTreeSet<String> {
    let out = sshd.on_server("podman images --format '{{.Repository}}:{{.Tag}} {{.Digest}}'");
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.lines().map(String::from).collect()
}

/// oci-image-tool validates each name of the store in a one-entry copy of its index.json
/// (it calls a descriptor that several names share "not unique").
fn validate_store(store: &Path, scratch: &Path) {
    require("oci-image-tool");
    let index: Value = serde_json::from_slice(&std::fs::read(store.join("index.json")).unwrap()).unwrap();
    for (i, m) in index["manifests"].as_array().unwrap().iter().enumerate() {
        // Attestations (untagged, with an artifactType) are about an image, not one.
        let Some(name) = m["annotations"]["org.opencontainers.image.ref.name"].as_str() else { continue };
        let copy = scratch.join(format!("validate-{i}"));
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::write(copy.join("index.json"), serde_json::json!({"schemaVersion": 2, "manifests": [m]}).to_string())
            .unwrap();
        std::fs::copy(store.join("oci-layout"), copy.join("oci-layout")).unwrap();
        let link = sh(&copy, &format!("cp -r {} blobs", store.join("blobs").display()));
        assert_eq!(link.code, 0);
        let v = sh(&copy, &format!("oci-image-tool validate --type image --ref 'name={name}' ."));
        assert_eq!(v.code, 0, "{name}: {}{}", v.stdout, v.stderr);
    }
}

#[test]
fn ships_two_archs_loads_the_servers_and_then_sends_only_what_changed() {
    require("podman");
    let sshd = Sshd::start(Server { without: None });
    let relay = Relay::start(sshd.port, None);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ship = Ship { sshd: &sshd, config: sshd.client_config(Some(relay.port)), cache: t.join("cache") };
    let dir = project(t, "shipme", 300_000);
    let store = t.join("server-store");
    let store_arg = store.to_str().unwrap();

    let first = ship.run(&dir, &["--json", "ship", "relay", "shipme.yml", "--store", store_arg]).ok();
    let r = &first.json()[0];
    let built = assemble(&dir, &ship.cache, &["--json", "build", "shipme.yml"], &[("SHIP_TOKEN", SECRET)]).ok();
    let index = built.json()[0]["digest"].as_str().unwrap().to_string();
    assert_eq!(r["digest"], index.as_str());
    assert!(r["blobs_sent"].as_u64().unwrap() >= 8, "{r}");
    assert_eq!(r["blobs_present"], 0);
    assert_eq!(r["loaded"]["engine"], "podman");
    assert_eq!(r["loaded"]["platform"], "linux/amd64");
    assert!(!first.stdout.contains(SECRET) && !first.stderr.contains(SECRET));

    // podman on the server knows the image under each tag, by the index digest.
    let images = podman_images(&sshd);
    for tag in ["2.0.1", "latest", "2", "2.0"] {
        assert!(images.contains(&format!("localhost/shipme:{tag} {index}")), "{tag}: {images:#?}");
    }
    let arch = sshd.on_server("podman image inspect --format '{{.Architecture}}' shipme:latest");
    assert_eq!(arch.stdout.trim(), "amd64");

    // The store is an OCI layout holding both platforms; nothing in it is readable by others.
    validate_store(&store, t);
    blobs_verify(&store);
    let open = sh(t, &format!("find {} -perm /077", store.display()));
    assert_eq!(open.stdout, "", "files others could read");
    let skopeo = sh(t, &format!("skopeo inspect --raw oci:{}:shipme:2.0.1", store.display()));
    assert!(skopeo.stdout.contains("\"arm64\"") && skopeo.stdout.contains("\"amd64\""), "{}", skopeo.stdout);
    // The attestations went along: oras finds the provenance about the index in the store.
    let oras = std::process::Command::new(crate::common::trixie_tool("oras"))
        .args(["discover", "--oci-layout", "--format", "json", &format!("{}@{index}", store.display())])
        .output()
        .unwrap();
    let found: Value = serde_json::from_slice(&oras.stdout).unwrap_or_default();
    let mut types: Vec<&str> =
        found["manifests"].as_array().into_iter().flatten().filter_map(|m| m["artifactType"].as_str()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "application/spdx+json",
            "application/spdx+json",
            "application/vnd.cyclonedx+json",
            "application/vnd.cyclonedx+json",
            "application/vnd.in-toto+json"
        ],
        "{}",
        String::from_utf8_lossy(&oras.stderr)
    );

    // Unchanged: no blob goes; what the wire carries is the protocol's own overhead.
    let before = relay.sent.load(Ordering::SeqCst);
    let again = ship.run(&dir, &["--json", "ship", "relay", "shipme.yml", "--store", store_arg]).ok();
    let overhead = relay.sent.load(Ordering::SeqCst) - before;
    assert_eq!(again.json()[0]["blobs_sent"], 0, "{}", again.stdout);
    assert_eq!(again.json()[0]["bytes_sent"], 0);
    assert_eq!(r["loaded"]["already"], false);
    // podman had it: ship says so rather than "loaded".
    assert_eq!(again.json()[0]["loaded"]["already"], true, "{}", again.stdout);
    let said = ship.run(&dir, &["ship", "relay", "shipme.yml", "--store", store_arg]).ok();
    assert!(said.stderr.contains("; podman had linux/amd64 already"), "{}", said.stderr);
    assert!(!said.stderr.contains("loaded linux/amd64"), "{}", said.stderr);

    // One file of the configuration layer changes: that layer, the configs, the manifests
    // and the index go, and the wire carries little more.
    std::fs::write(dir.join("files/site.conf"), "listen 9090\n").unwrap();
    let before = relay.sent.load(Ordering::SeqCst);
    let changed = ship.run(&dir, &["--json", "ship", "relay", "shipme.yml", "--store", store_arg]).ok();
    let wire = relay.sent.load(Ordering::SeqCst) - before;
    assemble(&dir, &ship.cache, &["build", "shipme.yml"], &[("SHIP_TOKEN", SECRET)]).ok();
    // All that changed, and of it the (compressed, so incompressible) layer bytes.
    let (payload, layer_bytes) = config_change_payload(&dir.join("out/shipme"));
    let c = &changed.json()[0];
    assert_eq!(
        c["blobs_sent"],
        6 + 5 + 9,
        "one shared config layer, two configs, two manifests, the index; and the attestations, which name them: four SBOMs and the provenance, with their artifact manifests (each SBOM about its platform and about the index): {c}"
    );
    eprintln!("config-only change: wire {wire} B, payload {payload} B, unchanged ship {overhead} B");
    assert!(
        wire as f64 <= 1.05 * payload as f64 + overhead as f64,
        "wire {wire}, payload {payload}, overhead {overhead}"
    );
    // The JSON documents shrink in the gzip stream; the layer cannot.
    assert!(wire > layer_bytes, "wire {wire} < the changed layer's {layer_bytes} bytes");
    let images = podman_images(&sshd);
    let new_index = c["digest"].as_str().unwrap();
    assert!(images.contains(&format!("localhost/shipme:latest {new_index}")), "{images:#?}");

    // An image on disk ships too, named after its directory; arm64 loads on request.
    let disk = ship
        .run(
            &dir,
            &[
                "--json",
                "ship",
                "server",
                "oci:out/shipme",
                "--store",
                store_arg,
                "--name",
                "disk",
                "--load-arch",
                "arm64",
            ],
        )
        .ok();
    assert_eq!(disk.json()[0]["blobs_sent"], 0, "{}", disk.stdout);
    assert_eq!(disk.json()[0]["loaded"]["platform"], "linux/arm64");
    let arch = sshd.on_server("podman image inspect --format '{{.Architecture}}' disk:2.0.1");
    assert_eq!(arch.stdout.trim(), "arm64", "{}", arch.stderr);
}

#[test]
fn a_killed_ship_leaves_no_partial_blob_and_the_next_one_completes() {
    let sshd = Sshd::start(Server { without: None });
    // 2 MB/s: the 12 MB layer takes seconds, long enough to kill the ship in the middle.
    let relay = Relay::start(sshd.port, Some(2_000_000));
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ship = Ship { sshd: &sshd, config: sshd.client_config(Some(relay.port)), cache: t.join("cache") };
    let dir = project(t, "slow", 12_000_000);
    let store = t.join("server-store");
    let store_arg = store.to_str().unwrap();
    // Built first, so the ship that is killed is sending, not building.
    assemble(&dir, &ship.cache, &["build", "slow.yml"], &[("SHIP_TOKEN", SECRET)]).ok();

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_assemble"))
        .current_dir(&dir)
        .args(["ship", "relay", "slow.yml", "--store", store_arg, "--load", "none"])
        .env("ASSEMBLE_CACHE_DIR", &ship.cache)
        .env("ASSEMBLE_SSH_COMMAND", sshd.ssh_command(&ship.config))
        .env("SHIP_TOKEN", SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while relay.sent.load(Ordering::SeqCst) < 3_000_000 {
        assert!(std::time::Instant::now() < deadline, "the ship never got going");
        assert!(child.try_wait().unwrap().is_none(), "the ship ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The server's side notices the broken stream and removes what it received.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let incoming = || sh(t, &format!("ls -a {} | grep -c '^.incoming' || true", store.display())).stdout;
    while incoming().trim() != "0" {
        assert!(std::time::Instant::now() < deadline, "the partial upload was not cleaned up");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(blobs_verify(&store), 0, "nothing of the killed ship is under a final name");

    let done = ship.run(&dir, &["--json", "ship", "server", "slow.yml", "--store", store_arg, "--load", "none"]).ok();
    assert!(done.json()[0]["blobs_sent"].as_u64().unwrap() >= 8, "{}", done.stdout);
    assert!(done.json()[0]["loaded"].is_null());
    assert!(blobs_verify(&store) >= 8);
    validate_store(&store, t);
}

/// podman keeps a health check only from a Docker-format image: ship loads such a platform
/// into podman in that format, so what the recipe says survives; shipping it again loads
/// nothing and says so.
#[test]
fn the_health_check_survives_a_ship_into_podman() {
    require("podman");
    let sshd = Sshd::start(Server { without: None });
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ship = Ship { sshd: &sshd, config: sshd.client_config(None), cache: t.join("cache") };
    let dir = project(t, "healthy", 1000);
    let recipe = dir.join("healthy.yml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(
        &recipe,
        text.replace(
            "  entrypoint: [/bin/true]\n",
            "  entrypoint: [/bin/true]\n  healthcheck: {test: [CMD, /bin/true], interval: 45s, retries: 4}\n",
        ),
    )
    .unwrap();
    let store = t.join("store");
    let first = ship.run(&dir, &["--json", "ship", "server", "healthy.yml", "--store", store.to_str().unwrap()]).ok();
    assert_eq!(first.json()[0]["loaded"]["already"], false, "{}", first.stdout);
    let health = sshd.on_server("podman image inspect --format '{{json .Config.Healthcheck}}' healthy:2.0.1");
    let _cleanup = Cleanup(&sshd, "podman rmi -f healthy:2.0.1 healthy:latest healthy:2 healthy:2.0");
    assert_eq!(health.code, 0, "{}", health.stderr);
    let h: Value = serde_json::from_str(health.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", health.stdout));
    assert_eq!(h["Test"], serde_json::json!(["CMD", "/bin/true"]), "{h}");
    assert_eq!(h["Interval"], 45_000_000_000u64, "{h}");
    assert_eq!(h["Retries"], 4, "{h}");
    let again = ship.run(&dir, &["--json", "ship", "server", "healthy.yml", "--store", store.to_str().unwrap()]).ok();
    assert_eq!(again.json()[0]["loaded"]["already"], true, "{}", again.stdout);
}

/// Runs a command on the server when dropped (tidying podman's store after a test).
struct Cleanup<'a>(&'a Sshd, &'a str);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.on_server(self.1);
    }
}

/// An image without the server's platform is refused before any blob is sent.
#[test]
fn an_image_the_server_cannot_run_is_refused_before_sending() {
    let sshd = Sshd::start(Server { without: None });
    let relay = Relay::start(sshd.port, None);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ship = Ship { sshd: &sshd, config: sshd.client_config(Some(relay.port)), cache: t.join("cache") };
    let dir = project(t, "armonly", 300_000);
    let store = t.join("server-store");
    let run = ship.run(&dir, &["ship", "relay", "armonly.yml", "--arch", "arm64", "--store", store.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "runs amd64, and the image has no platform for it (it has: linux/arm64); give --load-arch or --load none"
        ),
        "{}",
        run.stderr
    );
    assert!(relay.sent.load(Ordering::SeqCst) < 100_000, "no layer went: {} bytes", relay.sent.load(Ordering::SeqCst));
    let blobs = std::fs::read_dir(store.join("blobs/sha256")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(blobs, 0, "nothing was stored");
}

#[test]
fn unknown_host_keys_bad_stores_and_missing_tools_are_refused_clearly() {
    let sshd = Sshd::start(Server { without: None });
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ship = Ship { sshd: &sshd, config: sshd.client_config(None), cache: t.join("cache") };
    let dir = project(t, "refuse", 1000);
    assemble(&dir, &ship.cache, &["build", "refuse.yml"], &[("SHIP_TOKEN", SECRET)]).ok();
    let store = t.join("store");
    let store_arg = store.to_str().unwrap();

    let stranger = ship.run(&dir, &["ship", "stranger", "refuse.yml", "--store", store_arg]);
    assert_ne!(stranger.code, 0);
    assert!(stranger.stderr.contains("host key is unknown or has changed"), "{}", stranger.stderr);
    // The hint gives commands that work as written: the same ssh (ASSEMBLE_SSH_COMMAND).
    let command = sshd.ssh_command(&ship.config);
    assert!(
        stranger.stderr.contains(&format!("hint: connect once with `{command} stranger`, check the fingerprint"))
            && stranger.stderr.contains("`ssh-keyscan stranger`"),
        "{}",
        stranger.stderr
    );
    assert_eq!(std::fs::read_to_string(sshd.dir.path().join("empty_known_hosts")).unwrap(), "", "no key was added");
    assert!(!store.exists(), "nothing was written on the server");

    // An image on disk whose layer was damaged is refused before anything is sent.
    // (Without attestations, so that the biggest blob is a layer.)
    assemble(
        &dir,
        &ship.cache,
        &["build", "--no-attest", "refuse.yml", "-o", "oci:../damaged"],
        &[("SHIP_TOKEN", SECRET)],
    )
    .ok();
    let blobs = t.join("damaged/blobs/sha256");
    let biggest = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&biggest, bytes).unwrap();
    let out = ship.run(&dir, &["ship", "server", "oci:../damaged", "--store", store_arg]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("is not a valid image") && out.stderr.contains("does not match its digest"),
        "{}",
        out.stderr
    );
    assert!(!store.exists(), "nothing was sent to the server");

    let file = t.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = ship.run(&dir, &["ship", "server", "refuse.yml", "--store", file.to_str().unwrap()]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains(&format!("the store `{}` exists and is not a directory", file.display())),
        "{}",
        out.stderr
    );

    let other = t.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let out = ship.run(&dir, &["ship", "server", "refuse.yml", "--store", other.to_str().unwrap()]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("is not empty and is not an OCI image layout"), "{}", out.stderr);
    assert_eq!(sh(t, "ls other").stdout, "notes.txt\n", "the directory was left alone");

    let out = ship.run(&dir, &["ship", "server", "refuse.yml", "--store", store_arg, "--load", "docker"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("--load docker: `docker` is not installed or not running"), "{}", out.stderr);

    // Without gzip the stream is plain tar, and the ship still completes.
    let plain = Sshd::start(Server { without: Some("gzip") });
    let plain_ship = Ship { sshd: &plain, config: plain.client_config(None), cache: t.join("cache") };
    let plain_store = t.join("plain-store");
    let out = plain_ship
        .run(
            &dir,
            &["--json", "ship", "server", "refuse.yml", "--store", plain_store.to_str().unwrap(), "--load", "none"],
        )
        .ok();
    assert_eq!(out.json()[0]["blobs_present"], 0);
    assert_eq!(blobs_verify(&plain_store), out.json()[0]["blobs_sent"].as_u64().unwrap() as usize);

    let bare = Sshd::start(Server { without: Some("sha256sum") });
    let bare_ship = Ship { sshd: &bare, config: bare.client_config(None), cache: t.join("cache") };
    let out = bare_ship.run(&dir, &["ship", "server", "refuse.yml", "--store", store_arg]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("the server has no `sha256sum` on its PATH"), "{}", out.stderr);
}

/// A fleet: `web1,web2,down` (two stores standing in for two servers, and one that does not
/// answer) in one command. The image is built once; each reachable server gets it, one line
/// of result each; the one that failed is named and the exit status says so. A hosts file
/// (`@FILE`, comments allowed) names the same servers; what they hold is not sent again.
#[test]
fn ships_to_a_fleet_and_one_failure_does_not_stop_the_others() {
    let sshd = Sshd::start(Server { without: None });
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ship = Ship { sshd: &sshd, config: sshd.client_config(None), cache: t.join("cache") };
    let dir = project(t, "fleet", 50_000);
    let run = ship.run(&dir, &["--json", "ship", "web1,web2,down", "fleet.yml", "--load", "none", "--parallel", "2"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rows = run.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (row, host) in rows.iter().zip(["web1", "web2"]) {
        assert_eq!(row["host"], host, "{row}");
        assert!(row["blobs_sent"].as_u64().unwrap() >= 8, "{row}");
        let store = sshd.dir.path().join(format!("store-{host}"));
        assert_eq!(blobs_verify(&store) as u64, row["blobs_sent"].as_u64().unwrap(), "{host}");
        let inspect = sh(t, &format!("skopeo inspect --raw oci:{}:fleet:2.0.1", store.display()));
        assert_eq!(inspect.code, 0, "{host}: {}", inspect.stderr);
    }
    assert_eq!(rows[2]["host"], "down");
    assert!(rows[2]["error"].as_str().unwrap().contains("down"), "{}", rows[2]);
    assert!(run.stderr.contains("ship failed for 1 of 3 server(s): down"), "{}", run.stderr);

    // The same fleet from a hosts file, without the one that is down: nothing to send.
    std::fs::write(t.join("hosts"), "# the web tier\nweb1\nweb2  # second\n\n").unwrap();
    let hosts = format!("@{}", t.join("hosts").display());
    let again = ship.run(&dir, &["ship", &hosts, "fleet.yml", "--load", "none"]).ok();
    let lines: Vec<&str> = again.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", again.stdout);
    assert!(
        lines[0].starts_with("web1 fleet:2.0.1 sha256:") && lines[1].starts_with("web2 fleet:2.0.1 sha256:"),
        "{}",
        again.stdout
    );
    assert!(again.stderr.contains("0 blob(s) sent"), "{}", again.stderr);
}

/// The versions a store remembers of `name`: (version, digest, current), newest first.
fn versions(ship: &Ship<'_>, dir: &Path, name: &str) -> Vec<(u64, String, bool)> {
    let list = ship.run(dir, &["--json", "rollback", "web1", name, "--list"]).ok().json();
    list[0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["digest"].as_str().unwrap().to_string(), v["current"] == true))
        .collect()
}

/// `ship --prune` keeps every tagged image and the newest `--keep` versions of each, and
/// removes every other blob; `rollback` makes an earlier version current again — the store's
/// tags and podman's image — without sending a blob; two pruning ships at once leave both
/// images whole.
#[test]
fn prune_keeps_the_newest_versions_and_rollback_goes_back_without_sending() {
    let sshd = Sshd::start(Server { without: None });
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ship = Ship { sshd: &sshd, config: sshd.client_config(None), cache: t.join("cache") };
    let dir = project(t, "tidy", 30_000);
    let mut shipped = Vec::new();
    let ship_version = |v: u32, extra: &[&str]| {
        std::fs::write(dir.join("files/hello.txt"), format!("hello {v}\n")).unwrap();
        let mut args = vec!["--json", "ship", "web1", "tidy.yml", "--load", "none"];
        args.extend_from_slice(extra);
        ship.run(&dir, &args).ok().json()
    };
    for v in 1..=4 {
        shipped.push(ship_version(v, &[])[0]["digest"].as_str().unwrap().to_string());
    }
    let other = project(t, "other", 10_000);
    ship.run(&other, &["ship", "web1", "other.yml", "--load", "none"]).ok();
    let store = sshd.dir.path().join("store-web1");
    let listed = versions(&ship, &dir, "tidy");
    let expected: Vec<(u64, String, bool)> =
        (1..=4u64).rev().map(|v| (v, shipped[v as usize - 1].clone(), v == 4)).collect();
    assert_eq!(listed, expected);

    // A fifth ship prunes to two versions: the first three's own blobs go, the rest stay whole.
    let before = blobs_verify(&store);
    let pruned = ship_version(5, &["--prune", "--keep", "2"]);
    shipped.push(pruned[0]["digest"].as_str().unwrap().to_string());
    let removed = pruned[0]["pruned"]["blobs"].as_u64().unwrap();
    assert!(removed >= 3 * 3, "each old version had its own index, app layer and more: {pruned}");
    assert!(pruned[0]["pruned"]["bytes"].as_u64().unwrap() > 0);
    let after = blobs_verify(&store);
    assert!(after < before, "{before} → {after}");
    let blob = |d: &str| store.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    for gone in &shipped[..3] {
        assert!(!blob(gone).exists(), "{gone} was pruned");
    }
    assert_eq!(versions(&ship, &dir, "tidy").iter().map(|v| v.0).collect::<Vec<_>>(), [5, 4]);
    for name in ["tidy:2.0.1", "other:2.0.1"] {
        let inspect = sh(t, &format!("skopeo inspect --raw oci:{}:{name}", store.display()));
        assert_eq!(inspect.code, 0, "{name}: {}", inspect.stderr);
    }

    // Roll back: version 4 is current again, from the store alone, and podman has it.
    let _cleanup = Cleanup(&sshd, "podman rmi -f tidy:2.0.1 tidy:latest");
    let count = blobs_verify(&store);
    let rolled = ship.run(&dir, &["--json", "rollback", "web1", "tidy"]).ok().json();
    assert_eq!((rolled[0]["version"].as_u64(), rolled[0]["digest"].as_str()), (Some(4), Some(shipped[3].as_str())));
    assert_eq!(blobs_verify(&store), count, "nothing was stored");
    assert_eq!((rolled[0]["blobs_sent"].as_u64(), rolled[0]["bytes_sent"].as_u64()), (Some(0), Some(0)), "{rolled}");
    let index: Value = serde_json::from_slice(&std::fs::read(store.join("index.json")).unwrap()).unwrap();
    let tagged = |name: &str| {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
            .map(|m| m["digest"].as_str().unwrap().to_string())
    };
    assert_eq!(tagged("tidy:2.0.1").as_deref(), Some(shipped[3].as_str()));
    assert_eq!(tagged("tidy:latest").as_deref(), Some(shipped[3].as_str()));
    assert!(
        podman_images(&sshd).contains(&format!("localhost/tidy:2.0.1 {}", shipped[3])),
        "{:#?}",
        podman_images(&sshd)
    );
    let inspect = sh(t, &format!("skopeo inspect --raw oci:{}:tidy:2.0.1", store.display()));
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    // Nothing older is kept; a named version brings the newest back.
    let none = ship.run(&dir, &["rollback", "web1", "tidy", "--load", "none"]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("no version older than the current one, 4 (it has 5, 4)"), "{}", none.stderr);
    ship.run(&dir, &["rollback", "web1", "tidy", "--to", "5", "--load", "none"]).ok();
    assert_eq!(versions(&ship, &dir, "tidy")[0], (5, shipped[4].clone(), true));

    // Two pruning ships at once, of two images into one store: each either lands or says to
    // run it again; then both images are whole.
    std::fs::write(dir.join("files/hello.txt"), "hello 6\n").unwrap();
    std::fs::write(other.join("files/hello.txt"), "other 2\n").unwrap();
    let both: Vec<Run> = std::thread::scope(|s| {
        let a = s.spawn(|| ship.run(&dir, &["ship", "web1", "tidy.yml", "--load", "none", "--prune", "--keep", "1"]));
        let b =
            s.spawn(|| ship.run(&other, &["ship", "web1", "other.yml", "--load", "none", "--prune", "--keep", "1"]));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    for (run, (d, recipe)) in both.iter().zip([(&dir, "tidy.yml"), (&other, "other.yml")]) {
        if run.code != 0 {
            assert!(run.stderr.contains("changed while this ship ran"), "{}", run.stderr);
            ship.run(d, &["ship", "web1", recipe, "--load", "none", "--prune", "--keep", "1"]).ok();
        }
    }
    blobs_verify(&store);
    for name in ["tidy:2.0.1", "other:2.0.1"] {
        let inspect = sh(t, &format!("skopeo copy oci:{}:{name} oci:{}/copy-{name}", store.display(), t.display()));
        assert_eq!(inspect.code, 0, "{name}: every blob is there: {}", inspect.stderr);
    }

    // A fleet rolls back in one command, one line per server, each from its own store.
    let mut on_web2 = Vec::new();
    for v in [7, 8] {
        std::fs::write(dir.join("files/hello.txt"), format!("hello {v}\n")).unwrap();
        let out = ship.run(&dir, &["--json", "ship", "web1,web2", "tidy.yml", "--load", "none"]).ok().json();
        on_web2.push(out[1]["digest"].as_str().unwrap().to_string());
    }
    let fleet = ship.run(&dir, &["--json", "rollback", "web1,web2", "tidy", "--load", "none"]).ok().json();
    let rows = fleet.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{fleet:#}");
    for (row, host) in rows.iter().zip(["web1", "web2"]) {
        assert_eq!(row["host"], host);
        assert_eq!(row["digest"].as_str(), Some(on_web2[0].as_str()), "{host}: the version before the last: {row}");
    }
    let web2 = sshd.dir.path().join("store-web2");
    let index: Value = serde_json::from_slice(&std::fs::read(web2.join("index.json")).unwrap()).unwrap();
    let tag = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "tidy:2.0.1")
        .unwrap();
    assert_eq!(tag["digest"].as_str(), Some(on_web2[0].as_str()));
}

/// The server's side run on this machine through a stand-in `ssh` that drops its options and
/// runs the command with `path` first on PATH.
fn local_ssh(t: &Path, path: Option<&Path>) -> String {
    use std::os::unix::fs::PermissionsExt;
    let shim = t.join(if path.is_some() { "ssh-odd" } else { "ssh-local" });
    let prefix = path.map(|p| format!("PATH=\"{}:$PATH\" ", p.display())).unwrap_or_default();
    std::fs::write(
        &shim,
        format!("#!/bin/sh\nwhile [ \"$#\" -gt 0 ] && [ \"$1\" != \"--\" ]; do shift; done\nshift; shift\n{prefix}exec sh -c \"$1\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    shim.display().to_string()
}

/// A prune follows every document it keeps, however it is written (a manifest with a newline
/// before its JSON), and removes nothing when the server's tools do not behave (a `grep`
/// that ignores `-o`): it says what it needs instead of taking an empty mark for the truth.
#[test]
fn a_prune_keeps_what_it_cannot_read_and_removes_nothing_with_tools_that_misbehave() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cache = t.join("cache");
    let store = t.join("store");
    let store_arg = store.to_str().unwrap().to_string();
    let ssh = local_ssh(t, None);
    let run = |dir: &Path, args: &[&str], ssh: &str| {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--store", &store_arg, "--load", "none"]);
        assemble(dir, &cache, &full, &[("ASSEMBLE_SSH_COMMAND", ssh), ("SHIP_TOKEN", SECRET)])
    };
    // An image on disk whose platform manifest starts with a newline.
    let dir = project(t, "ws", 20_000);
    assemble(&dir, &cache, &["build", "ws.yml", "-o", "oci:ws-layout"], &[("SHIP_TOKEN", SECRET)]).ok();
    let layout = dir.join("ws-layout");
    let blob = |d: &str| layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let put = |bytes: &[u8]| -> (String, usize) {
        let d = format!("sha256:{}", sha256_hex_of(bytes));
        std::fs::write(blob(&d), bytes).unwrap();
        (d, bytes.len())
    };
    let mut top: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["annotations"]["org.opencontainers.image.ref.name"].is_string())
        .unwrap();
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(blob(top["manifests"][entry]["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let manifest = std::fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let (d, n) = put(&[b"\n".as_slice(), &manifest].concat());
    index["manifests"][0]["digest"] = d.into();
    index["manifests"][0]["size"] = n.into();
    let (d, n) = put(&serde_json::to_vec(&index).unwrap());
    top["manifests"] = serde_json::json!([{"mediaType": top["manifests"][entry]["mediaType"], "digest": d, "size": n,
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]);
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    run(&dir, &["ship", "srv", "oci:ws-layout", "--name", "ws"], &ssh).ok();
    let other = project(t, "other", 20_000);
    run(&other, &["ship", "srv", "other.yml", "--prune", "--keep", "1"], &ssh).ok();
    for name in ["ws:latest", "other:2.0.1"] {
        let copy = sh(
            t,
            &format!("skopeo copy oci:{}:{name} oci:{}/copy-{}", store.display(), t.display(), name.replace(':', "-")),
        );
        assert_eq!(copy.code, 0, "{name}: every blob is still there: {}", copy.stderr);
    }

    // A grep that ignores -o: the prune stops before removing anything.
    let fake = t.join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("grep"), "#!/bin/bash\nargs=()\nfor a in \"$@\"; do [[ $a == -o ]] || args+=(\"$a\"); done\nexec /usr/bin/grep \"${args[@]}\"\n").unwrap();
    std::fs::set_permissions(fake.join("grep"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = blobs_verify(&store);
    std::fs::write(other.join("files/hello.txt"), "changed\n").unwrap();
    let odd = local_ssh(t, Some(&fake));
    let refused = run(&other, &["ship", "srv", "other.yml", "--prune", "--keep", "1"], &odd);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("prune needs grep -a -o"), "{}", refused.stderr);
    assert!(blobs_verify(&store) > before, "the new version's blobs were added, nothing removed");
    for name in ["ws:latest", "other:2.0.1"] {
        let inspect = sh(
            t,
            &format!("skopeo copy oci:{}:{name} oci:{}/again-{}", store.display(), t.display(), name.replace(':', "-")),
        );
        assert_eq!(inspect.code, 0, "{name}: {}", inspect.stderr);
    }
}

fn sha256_hex_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
