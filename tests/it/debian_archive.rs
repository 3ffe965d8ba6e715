//! Against the real Debian archive this machine's apt uses (read from its sources, never
//! written here): the package set equals apt's, the images run (amd64 under chroot, arm64
//! under qemu-aarch64-static copied into the image), dpkg sees exactly the locked packages,
//! and the CA bundle holds what update-ca-certificates makes of the same certificates.

use crate::common::*;
use std::collections::BTreeSet;
use std::path::Path;

const PACKAGES: [&str; 5] = ["bash", "coreutils", "curl", "ca-certificates", "tzdata"];

fn recipe() -> String {
    format!(
        "name: deb-real\narchs: [amd64, arm64]\nbase:\n  debian:\n    suite: bookworm\n    suites: [bookworm-updates, bookworm-security]\n    packages: [{}]\nconfig:\n  entrypoint: [/bin/bash]\n",
        PACKAGES.join(", ")
    )
}

/// What `apt-get -s install --no-install-recommends` would install onto an empty system,
/// with a throwaway state directory and the machine's own sources.
fn apt_set(tmp: &Path, arch: &str) -> BTreeSet<String> {
    require("apt-get");
    let s = tmp.join(format!("apt-{arch}"));
    std::fs::create_dir_all(s.join("lists/partial")).unwrap();
    std::fs::create_dir_all(s.join("cache/archives/partial")).unwrap();
    std::fs::write(s.join("status"), "").unwrap();
    let d = s.display();
    let opts = format!(
        "-o Dir::State={d} -o Dir::State::Lists={d}/lists -o Dir::State::status={d}/status -o Dir::Cache={d}/cache -o APT::Architecture={arch} -o APT::Architectures={arch} -o Debug::NoLocking=1"
    );
    let update = sh(tmp, &format!("apt-get {opts} -qq update"));
    assert_eq!(update.code, 0, "{}", update.stderr);
    let sim = sh(tmp, &format!("apt-get {opts} -s install --no-install-recommends {}", PACKAGES.join(" ")));
    assert_eq!(sim.code, 0, "{}", sim.stderr);
    sim.stdout
        .lines()
        .filter(|l| l.starts_with("Inst "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", w[1], w[2].trim_start_matches('('))
        })
        .collect()
}

fn locked_set(lock: &str, arch: &str) -> BTreeSet<String> {
    let v: toml::Value = toml::from_str(lock).unwrap();
    v["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["arch"].as_str() == Some(arch))
        .map(|p| format!("{} {}", p["name"].as_str().unwrap(), p["version"].as_str().unwrap()))
        .collect()
}

fn pem_blocks(bundle: &str) -> BTreeSet<String> {
    bundle.split("-----END CERTIFICATE-----").filter(|b| b.contains("BEGIN")).map(|b| b.trim().to_string()).collect()
}

#[test]
fn real_archive_images_match_apt_run_and_register_their_packages() {
    require("umoci");
    require("chroot");
    require("dpkg-query");
    require("qemu-aarch64-static");
    require("update-ca-certificates");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::write(t.join("deb.yml"), recipe()).unwrap();
    let cache = t.join("cache");
    assemble(t, &cache, &["build", "deb.yml", "-o", "oci:both"], &[]).ok();
    let lock = std::fs::read_to_string(t.join("deb.lock")).unwrap();

    for arch in ["amd64", "arm64"] {
        // The same set and versions as apt.
        assert_eq!(locked_set(&lock, arch), apt_set(t, arch), "{arch}: package set differs from apt's");

        // A one-platform layout for umoci, from the same cache and lock (nothing re-resolved).
        let layout = format!("img-{arch}");
        let run = assemble(
            t,
            &cache,
            &["--json", "build", "--locked", "--arch", arch, "deb.yml", "-o", &format!("oci:{layout}")],
            &[],
        )
        .ok();
        assert_eq!(run.json()[0]["packed"], 0, "{arch}: layers come from the cache");
        let out = sh(t, &format!("umoci unpack --image {layout}:latest bundle-{arch}"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let root = t.join(format!("bundle-{arch}/rootfs"));

        // It runs.
        let prefix = if arch == "arm64" {
            std::fs::copy("/usr/bin/qemu-aarch64-static", root.join("usr/bin/qemu-aarch64-static")).unwrap();
            "/usr/bin/qemu-aarch64-static "
        } else {
            ""
        };
        let ok = sh(t, &format!("chroot {} {prefix}/bin/bash -c 'echo ok'", root.display()));
        assert_eq!(ok.stdout, "ok\n", "{arch}: {}", ok.stderr);
        let curl = sh(t, &format!("chroot {} {prefix}/usr/bin/curl --version", root.display()));
        assert_eq!(curl.code, 0, "{arch}: {}", curl.stderr);
        let uname = if arch == "arm64" { "aarch64" } else { "x86_64" };
        assert!(
            curl.stdout.starts_with(&format!("curl 7.88.1 ({uname}-pc-linux-gnu)"))
                || curl.stdout.starts_with(&format!("curl 7.88.1 ({uname}-unknown-linux-gnu)")),
            "{arch}: {}",
            curl.stdout
        );

        // dpkg sees exactly the locked packages.
        let q = sh(
            t,
            &format!("dpkg-query --admindir={}/var/lib/dpkg -W -f '${{Package}} ${{Version}}\\n'", root.display()),
        );
        assert_eq!(q.code, 0, "{}", q.stderr);
        let listed: BTreeSet<String> = q.stdout.lines().map(String::from).collect();
        assert_eq!(listed, locked_set(&lock, arch), "{arch}: dpkg-query");
        // The SBOMs (valid to spdx-tools and CycloneDX's schema) list exactly what dpkg does.
        let sbom: BTreeSet<String> = validated_sbom_packages(t, &cache, "deb.yml", arch)
            .into_iter()
            .map(|(kind, p)| {
                assert_eq!(kind, "deb");
                p
            })
            .collect();
        assert_eq!(sbom, listed, "{arch}: the SBOM's packages are not dpkg-query's");
        let status = sh(
            t,
            &format!("dpkg-query --admindir={}/var/lib/dpkg -W -f '${{db:Status-Abbrev}}\\n' bash", root.display()),
        );
        assert_eq!(status.stdout.trim(), "ii", "{arch}: bash is installed as far as dpkg knows");

        // merged /usr, os-release, accounts.
        assert_eq!(std::fs::read_link(root.join("bin")).unwrap().to_str(), Some("usr/bin"));
        assert!(std::fs::read_to_string(root.join("etc/os-release")).unwrap().contains("ID=debian"));
        // base-passwd is Essential, not a dependency, so apt does not install it here.
        assert!(!listed.iter().any(|p| p.starts_with("base-passwd ")));
        assert!(!root.join("etc/passwd").exists());

        // The CA bundle holds what update-ca-certificates makes of the same certificates.
        let certs = root.join("usr/share/ca-certificates");
        let mut list: Vec<String> =
            sh(&certs, "find . -name '*.crt' -printf '%P\\n'").stdout.lines().map(String::from).collect();
        list.sort();
        assert!(list.len() > 100, "{arch}: expected Mozilla's certificates, found {}", list.len());
        let work = t.join(format!("uca-{arch}"));
        for d in ["etc", "local", "hooks"] {
            std::fs::create_dir_all(work.join(d)).unwrap();
        }
        std::fs::write(work.join("conf"), list.join("\n") + "\n").unwrap();
        let uca = sh(
            t,
            &format!(
                "update-ca-certificates --certsconf {w}/conf --certsdir {c} --localcertsdir {w}/local --etccertsdir {w}/etc --hooksdir {w}/hooks",
                w = work.display(),
                c = certs.display()
            ),
        );
        assert_eq!(uca.code, 0, "{}", uca.stderr);
        let theirs = pem_blocks(&std::fs::read_to_string(work.join("etc/ca-certificates.crt")).unwrap());
        let ours = pem_blocks(&std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap());
        assert_eq!(ours.len(), list.len());
        assert_eq!(ours, theirs, "{arch}: CA bundle");

        // And the same OpenSSL subject-hash links, pointing at the same certificates.
        let hash_links = |dir: &Path| -> BTreeSet<(String, String)> {
            std::fs::read_dir(dir)
                .unwrap()
                .filter_map(|e| {
                    let e = e.unwrap();
                    let name = e.file_name().to_string_lossy().into_owned();
                    let (h, n) = name.split_once('.')?;
                    (h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit()) && n.parse::<u32>().is_ok())
                        .then(|| (name.clone(), std::fs::read_link(e.path()).unwrap().display().to_string()))
                })
                .collect()
        };
        let our_links = hash_links(&root.join("etc/ssl/certs"));
        assert_eq!(our_links.len(), list.len(), "{arch}: one hash link per certificate");
        assert_eq!(our_links, hash_links(&work.join("etc")), "{arch}: subject-hash links");
    }
}
