//! Independent readers of every output format: oci-image-tool, skopeo, umoci, podman,
//! and a chroot that runs the entrypoint of an assembled image.

use crate::common::*;
use serde_json::Value;
use std::path::Path;

const PLATFORMS: [(&str, &str, Option<&str>); 8] = [
    ("amd64", "amd64", None),
    ("arm64", "arm64", Some("v8")),
    ("arm/v7", "arm", Some("v7")),
    ("arm/v6", "arm", Some("v6")),
    ("386", "386", None),
    ("ppc64le", "ppc64le", None),
    ("s390x", "s390x", None),
    ("riscv64", "riscv64", None),
];

#[test]
fn oci_layout_is_valid_and_skopeo_reads_every_platform() {
    require("oci-image-tool");
    require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    assemble(&f, &tmp.path().join("c"), &["build", "golden/golden.yml", "-o", "oci:../layout"], &[]).ok();
    let layout = tmp.path().join("layout");
    // oci-image-tool (1.0.0~rc3) calls a descriptor "not unique" once four names share it
    // (here 1.2.3, stable and the aliases 1 and 1.2), so each name is validated in a copy of
    // index.json that keeps only its own entry; every blob checked is still ours.
    let index_json: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entries = index_json["manifests"].as_array().unwrap();
    let names: Vec<String> = entries
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().map(String::from))
        .collect();
    assert_eq!(names, ["1.2.3", "stable", "1", "1.2"]);
    // The attestations are listed untagged, with their artifact type, as oras lists
    // referrers in a layout: two SBOMs per platform (8), each about its manifest and about
    // the index, and the provenance.
    let kinds: Vec<&str> = entries.iter().filter_map(|m| m["artifactType"].as_str()).collect();
    assert_eq!(kinds.len(), 8 * 2 * 2 + 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "application/vnd.in-toto+json").count(), 1);
    for (i, name) in names.iter().enumerate() {
        let one = serde_json::json!({"schemaVersion": 2, "manifests": [index_json["manifests"][i].clone()]});
        let copy = tmp.path().join(format!("layout-{name}"));
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::write(copy.join("index.json"), one.to_string()).unwrap();
        std::fs::copy(layout.join("oci-layout"), copy.join("oci-layout")).unwrap();
        copy_dir(&layout.join("blobs"), &copy.join("blobs"));
        let v = sh(tmp.path(), &format!("oci-image-tool validate --type image --ref name={name} layout-{name}"));
        assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    }

    let raw = sh(tmp.path(), "skopeo inspect --raw oci:layout:stable");
    assert_eq!(raw.code, 0, "{}", raw.stderr);
    let index: Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let platforms: Vec<(String, String, Option<String>)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            (
                p["os"].as_str().unwrap().into(),
                p["architecture"].as_str().unwrap().into(),
                p["variant"].as_str().map(String::from),
            )
        })
        .collect();
    let expected: Vec<(String, String, Option<String>)> =
        PLATFORMS.iter().map(|(_, a, v)| ("linux".to_string(), a.to_string(), v.map(String::from))).collect();
    assert_eq!(platforms, expected);

    for (name, arch, variant) in PLATFORMS {
        let mut cmd = format!("skopeo inspect --config --override-os linux --override-arch {arch}");
        if let Some(v) = variant {
            cmd.push_str(&format!(" --override-variant {v}"));
        }
        cmd.push_str(&format!(" oci:{}:1.2.3", layout.display()));
        let out = sh(tmp.path(), &cmd);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let config: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(config["architecture"], arch, "{name}");
        assert_eq!(config["variant"].as_str(), variant, "{name}");
        assert!(config["config"]["Env"].as_array().unwrap().contains(&Value::from(format!("ARCH={name}"))), "{name}");
    }

    // The oci-archive holds the same image.
    assemble(&f, &tmp.path().join("c"), &["build", "golden/golden.yml", "-o", "oci-archive:../image.tar"], &[]).ok();
    let out = sh(tmp.path(), "skopeo inspect --raw oci-archive:image.tar:stable");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), raw.stdout.trim());
}

#[test]
fn umoci_unpacks_exactly_the_declared_files() {
    require("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    assemble(&f, &tmp.path().join("c"), &["build", "--arch", "amd64", "golden/golden.yml", "-o", "oci:../layout"], &[])
        .ok();
    let out = sh(tmp.path(), "umoci unpack --image layout:stable bundle");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected = "\
d0755 0:0 /etc
-0640 0:2000 /etc/app.conf (60 bytes, 1 links)
-0644 0:0 /etc/arch.txt (6 bytes, 1 links)
-0644 0:0 /etc/group (22 bytes, 1 links)
-0644 0:0 /etc/passwd (77 bytes, 1 links)
-0640 0:0 /etc/shadow (41 bytes, 1 links)
d0755 0:0 /opt
d0755 0:0 /opt/a-directory-name-long-enough-that-the-whole-path-no-longer-fits-the-ustar-name-field
d0755 0:0 /opt/a-directory-name-long-enough-that-the-whole-path-no-longer-fits-the-ustar-name-field/of-one-hundred-bytes
-0644 0:0 /opt/a-directory-name-long-enough-that-the-whole-path-no-longer-fits-the-ustar-name-field/of-one-hundred-bytes/readme.txt (63 bytes, 1 links)
d0755 0:0 /opt/app
l0777 2000:2000 /opt/app/app.ini -> conf/app.ini
d0755 2000:2000 /opt/app/conf
-0644 2000:2000 /opt/app/conf/app.ini (7 bytes, 1 links)
-0755 2000:2000 /opt/app/run.sh (17 bytes, 1 links)
d0755 0:0 /opt/pkg
d0755 0:0 /opt/pkg/bin
-0755 0:0 /opt/pkg/bin/hello (34 bytes, 2 links)
-0755 0:0 /opt/pkg/bin/hello-again (34 bytes, 2 links)
l0777 0:0 /opt/pkg/bin/hi -> hello
d0755 0:0 /opt/pkg/share
d0755 0:0 /opt/pkg/share/doc
-0644 0:0 /opt/pkg/share/doc/README (15 bytes, 1 links)
d0755 0:0 /root
d0755 0:0 /srv
d0750 2000:2000 /srv/data
d1777 0:0 /tmp
d0755 0:0 /usr
d0755 0:0 /usr/bin
l0777 0:0 /usr/bin/tool -> ../local/bin/tool
d0755 0:0 /usr/local
d0755 0:0 /usr/local/bin
-4755 0:0 /usr/local/bin/tool (25 bytes, 1 links)
d0755 0:0 /usr/share
d0755 0:0 /usr/share/doc
d0755 0:0 /usr/share/doc/golden
-0644 0:0 /usr/share/doc/golden/readme.txt (63 bytes, 1 links)";
    assert_eq!(listing(&tmp.path().join("bundle/rootfs")), expected);
    let passwd = std::fs::read_to_string(tmp.path().join("bundle/rootfs/etc/passwd")).unwrap();
    assert_eq!(passwd, "root:x:0:0:root:/root:/sbin/nologin\napp:x:2000:2000::/srv/data:/sbin/nologin\n");
}

#[test]
fn podman_loads_the_docker_archive_with_its_config() {
    require("podman");
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    let built = assemble(
        &f,
        &tmp.path().join("c"),
        &["--json", "build", "--arch", "amd64", "golden/golden.yml", "-o", "docker-archive:../golden.tar"],
        &[],
    )
    .ok()
    .json();
    // The digest given for a docker archive is the one podman shows: the image ID.
    assert_eq!(built[0]["digest"], built[0]["platforms"][0]["config"]);
    let load = sh(tmp.path(), "podman load -i golden.tar");
    assert_eq!(load.code, 0, "{}", load.stderr);
    assert!(load.stdout.contains("golden:1.2.3"), "{}", load.stdout);
    let out = sh(tmp.path(), "podman image inspect golden:1.2.3");
    let id = sh(tmp.path(), "podman image inspect --format '{{.Id}}' golden:1.2.3");
    let _ = sh(tmp.path(), "podman rmi -f golden:1.2.3 golden:stable");
    assert_eq!(format!("sha256:{}", id.stdout.trim()), built[0]["digest"].as_str().unwrap(), "{}", id.stderr);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let c = &v[0]["Config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/local/bin/tool"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--serve"]));
    assert_eq!(c["User"], "app");
    assert_eq!(c["WorkingDir"], "/opt/app");
    assert!(c["Env"].as_array().unwrap().contains(&Value::from("MODE=production")));
    let ports: Vec<&String> = c["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(ports, ["53/udp", "8080/tcp"]);
    assert_eq!(c["StopSignal"], "SIGQUIT");
    // The recipe's metadata is in the labels podman shows, beside the recipe's own labels.
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "golden", "{c}");
    assert_eq!(c["Labels"]["org.opencontainers.image.source"], "https://example.org/golden", "{c}");
    assert_eq!(c["Labels"]["org.example.role"], "golden", "{c}");
}

#[test]
fn skopeo_shows_the_metadata_as_labels() {
    require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    assemble(&f, &tmp.path().join("c"), &["build", "--arch", "amd64", "golden/golden.yml", "-o", "oci:../l"], &[]).ok();
    let out = sh(tmp.path(), "skopeo inspect oci:l:1.2.3");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["Labels"],
        serde_json::json!({
            "org.example.role": "golden",
            "org.opencontainers.image.revision": "0123456789abcdef",
            "org.opencontainers.image.source": "https://example.org/golden",
            "org.opencontainers.image.title": "golden",
            "org.opencontainers.image.version": "1.2.3",
        })
    );
}

#[test]
fn a_static_busybox_runs_as_the_entrypoint_under_chroot() {
    require("umoci");
    require("chroot");
    let tmp = tempfile::tempdir().unwrap();
    let (server, sha) = served_busybox(tmp.path());
    let recipe = format!(
        r#"name: bb
archs: [amd64]
layers:
  - name: busybox
    files:
      - url: {url}
        sha256: {sha}
        to: /bin/busybox
        mode: "0755"
    symlinks:
      /bin/sh: busybox
config:
  env: {{GREETING: "hello from {{name}}"}}
  entrypoint: [/bin/sh, -c, 'echo "$GREETING on $(uname -m) as $(id -u)"']
"#,
        url = server.url("busybox"),
        sha = sha
    );
    std::fs::write(tmp.path().join("bb.yml"), recipe).unwrap();
    assemble(tmp.path(), &tmp.path().join("c"), &["build", "bb.yml", "-o", "oci:layout"], &[]).ok();
    assert_eq!(server.count(), 1);
    let out = sh(tmp.path(), "umoci unpack --image layout:latest bundle");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("bundle/config.json")).unwrap()).unwrap();
    let args: Vec<String> =
        config["process"]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let env: Vec<String> =
        config["process"]["env"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let run = std::process::Command::new("chroot")
        .arg(tmp.path().join("bundle/rootfs"))
        .args(&args)
        .env_clear()
        .envs(env.iter().filter_map(|e| e.split_once('=')))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "hello from bb on x86_64 as 0\n",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// `assemble test` runs the images of a recipe's variants side by side and reports them in
/// the recipe's order; a variant that makes the same image as the default is not run again,
/// and its rows say whose results they are.
/// The static `/bin/busybox` (Debian's busybox-static) served by a local HTTP server, and
/// its sha256, for recipes that download it.
fn served_busybox(tmp: &Path) -> (HttpServer, String) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "this test needs the static /bin/busybox from Debian's busybox-static; `scripts/test` installs it"
    );
    let served = tmp.join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::copy(busybox, served.join("busybox")).unwrap();
    (HttpServer::serve(&served), sha256_file(&served.join("busybox")))
}

#[test]
fn test_runs_each_distinct_image_once_and_reports_in_order() {
    require("chroot");
    let tmp = tempfile::tempdir().unwrap();
    let (server, sha) = served_busybox(tmp.path());
    let recipe = format!(
        r#"name: bbv
archs: [amd64]
variables: {{word: one}}
variants:
  - {{name: same, suffix: "-same", variables: {{word: one}}}}
  - {{name: other, suffix: "-other", variables: {{word: two}}}}
layers:
  - name: busybox
    files:
      - url: {url}
        sha256: {sha}
        to: /bin/busybox
        mode: "0755"
config:
  env: {{WORD: "{{word}}"}}
tests:
  - run: [/bin/busybox, echo, "{{word}}"]
    output: "{{word}}"
"#,
        url = server.url("busybox"),
        sha = sha
    );
    std::fs::write(tmp.path().join("bbv.yml"), recipe).unwrap();
    let run = assemble(tmp.path(), &tmp.path().join("c"), &["--json", "test", "--strict", "bbv.yml"], &[]).ok();
    // The first build wrote the lock, and says so.
    assert!(run.stderr.contains("bbv: wrote ") && run.stderr.contains("bbv.lock"), "{}", run.stderr);
    let rows = run.json();
    let seen: Vec<(String, String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "passed", "{r}");
            (r["variant"].to_string(), r["test"].as_str().unwrap().into(), r["detail"].as_str().unwrap().into())
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("null".into(), "run /bin/busybox echo one".into(), "chroot, exit 0: one".into()),
            ("\"same\"".into(), "run /bin/busybox echo one".into(), "same image as bbv: chroot, exit 0: one".into()),
            ("\"other\"".into(), "run /bin/busybox echo two".into(), "chroot, exit 0: two".into()),
        ]
    );
}

#[test]
fn inspect_reads_all_three_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures(tmp.path());
    let c = tmp.path().join("c");
    for dest in ["oci:../l", "oci-archive:../a.tar", "docker-archive:../d.tar"] {
        assemble(&f, &c, &["build", "--arch", "amd64", "golden/golden.yml", "-o", dest], &[]).ok();
    }
    let oci = assemble(tmp.path(), &c, &["--json", "inspect", "oci:l"], &[]).ok().json();
    let archive = assemble(tmp.path(), &c, &["--json", "inspect", "oci-archive:a.tar"], &[]).ok().json();
    let docker = assemble(tmp.path(), &c, &["--json", "inspect", "docker-archive:d.tar"], &[]).ok().json();
    assert_eq!(oci["digest"], archive["digest"]);
    assert_eq!(oci["tags"], serde_json::json!(["1.2.3", "stable", "1", "1.2"]));
    assert_eq!(docker["tags"], serde_json::json!(["golden:1.2.3", "golden:stable", "golden:1", "golden:1.2"]));
    for v in [&oci, &archive, &docker] {
        let p = &v["platforms"][0];
        assert_eq!(p["platform"], "linux/amd64");
        assert_eq!(p["layers"].as_array().unwrap().len(), 3);
        assert_eq!(p["run_config"]["User"], "app");
    }
    assert_eq!(oci["platforms"][0]["config"], docker["platforms"][0]["config"], "same config in both formats");
    // The oci-archive carries the attestations as the layout does (index.json entries and
    // their blobs); the docker archive has no place for them.
    let listed = sh(tmp.path(), "tar -xOf a.tar index.json");
    let index_json: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let artifacts: Vec<&serde_json::Value> =
        index_json["manifests"].as_array().unwrap().iter().filter(|m| m["artifactType"].is_string()).collect();
    assert_eq!(artifacts.len(), 2 * 2 + 1, "{}", listed.stdout);
    for a in artifacts {
        let blob = format!("blobs/sha256/{}", &a["digest"].as_str().unwrap()[7..]);
        assert_eq!(sh(tmp.path(), &format!("tar -tf a.tar {blob}")).code, 0, "{blob} is in the archive");
    }
    let text = assemble(tmp.path(), &c, &["inspect", "oci:l"], &[]).ok().stdout;
    assert!(text.contains("linux/amd64  (3 layers,"), "{text}");
    // The recipe's metadata, as annotations, is shown (text and JSON).
    assert!(text.contains("\nannotation org.opencontainers.image.title="), "{text}");
    assert!(oci["annotations"]["org.opencontainers.image.title"].is_string(), "{oci}");
    assert!(oci["platforms"][0]["annotations"]["org.opencontainers.image.title"].is_string(), "{oci}");
    // Labels, one per line, and each layer's recipe name.
    assert!(text.contains("\n  label       org.opencontainers.image.title=golden\n"), "{text}");
    assert!(text.contains("\n  label       org.example.role=golden\n"), "{text}");
    for (i, name) in ["files", "tree", "config"].iter().enumerate() {
        assert!(text.contains(&format!("\n  layer {:<3} {name:<8} sha256:", i + 1)), "{text}");
        assert_eq!(oci["platforms"][0]["layers"][i]["name"], *name, "{oci}");
    }
}
