//! The recipes in `recipes/`, as a new user finds them: each builds for amd64 and arm64 from
//! the machine's Debian mirror in graph order, passes its own `tests:` with every command
//! actually run (chroot for amd64, qemu-aarch64-static for arm64), verifies from its lock,
//! carries a dpkg database that lists its packages, and does not run as root.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;

#[test]
fn every_recipe_builds_for_both_archs_passes_its_tests_and_verifies() {
    require("chroot");
    require("qemu-aarch64-static");
    require("umoci");
    require("dpkg-query");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // The Debian recipes' locks are not committed (the archive moves on); hello's is.
    copy_dir(&repo().join("recipes"), &t.join("recipes"));
    copy_dir(&repo().join("layers"), &t.join("layers"));
    for e in std::fs::read_dir(t.join("recipes")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "lock") && !p.ends_with("hello.lock") {
            std::fs::remove_file(p).unwrap();
        }
    }
    // The Alpine recipes need an Alpine mirror, Ubuntu's needs Ubuntu's archive, and the
    // deb.sury.org one that repository (and its key, which the user adds): none can be reached
    // here. The Alpine ones are resolved against Alpine's real indexes (`apk_formats`), the
    // others built against archives laid out as theirs (`debian_sources`).
    for elsewhere in
        ["three-layer-alpine.yml", "nginx-php-fpm-alpine.yml", "nginx-php-fpm-ubuntu.yml", "nginx-php-fpm-sury.yml"]
    {
        std::fs::remove_file(t.join("recipes").join(elsewhere)).unwrap();
    }
    let cache = t.join("cache");
    // `monitor` takes Tailscale from URLs and digests the user gives, and Gatus from an image;
    // `caddy-plugins` takes Caddy from an image the user names: stand-ins, served here, whose
    // output names their architecture.
    let standins = t.join("standins");
    let pins = monitor_standins(&standins);
    let server = HttpServer::serve(&standins);
    let mut vars = Vec::new();
    for (name, arch, file) in &pins {
        vars.push(format!("--var={name}_url_{arch}={}", server.url(file)));
        vars.push(format!("--var={name}_sha256_{arch}={}", sha256_file(&standins.join(file))));
    }
    // Liquibase: a stand-in release tarball laid out as the real one (the script at the top),
    // whose script runs the image's Java before it answers.
    let liquibase = liquibase_standin(&standins);
    vars.push(format!("--var=liquibase_url={}", server.url(&liquibase)));
    vars.push(format!("--var=liquibase_sha256={}", sha256_file(&standins.join(&liquibase))));
    let registry = crate::common::registry::Registry::start(crate::common::registry::Auth::None);
    for (var, reference) in standin_images(&standins, &cache, &registry.addr) {
        vars.push(format!("--var={var}={reference}"));
    }
    let with_vars = |args: &[&'static str]| -> Vec<String> {
        args.iter().map(|a| a.to_string()).chain(vars.iter().cloned()).collect()
    };
    let graph = assemble(t, &cache, &["--json", "graph"], &[]).ok().json();
    let level: BTreeMap<String, u64> = graph
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["recipe"].as_str().unwrap().to_string(), r["level"].as_u64().unwrap()))
        .collect();
    for service in [
        "caddy",
        "caddy-plugins",
        "apache-debian",
        "bind-debian",
        "certbot-debian",
        "mail-debian",
        "postgres-debian",
        "monitor",
    ] {
        assert!(level[service] > level["base-debian"], "{graph}");
    }

    let built = assemble(t, &cache, &strs(&with_vars(&["--json", "build", "--all"])), &[]).ok().json();
    let names: Vec<&str> = built.as_array().unwrap().iter().map(|r| r["recipe"].as_str().unwrap()).collect();
    assert!(names.iter().position(|n| *n == "base-debian") < names.iter().position(|n| *n == "caddy"), "{names:?}");
    for r in built.as_array().unwrap() {
        let archs: Vec<&str> =
            r["platforms"].as_array().unwrap().iter().map(|p| p["platform"].as_str().unwrap()).collect();
        assert_eq!(archs, ["amd64", "arm64"], "{}", r["recipe"]);
    }

    let tested = assemble(t, &cache, &strs(&with_vars(&["--json", "test", "--all", "--strict"])), &[]).ok().json();
    let rows = tested.as_array().unwrap();
    assert!(rows.iter().all(|r| r["status"] == "passed"), "{tested:#}");
    for name in &names {
        for arch in ["amd64", "arm64"] {
            let mine = |r: &&Value| r["recipe"] == *name && r["arch"] == arch;
            assert!(
                rows.iter().filter(mine).any(|r| r["test"] == "user is not root"),
                "{name} {arch}: no non_root test"
            );
            if *name != "hello" {
                let ran = rows.iter().filter(mine).filter(|r| r["test"].as_str().unwrap().starts_with("run ")).count();
                assert!(ran > 0, "{name} {arch}: no command was run");
            }
        }
    }

    // The stand-ins ran, one per architecture (the arm64 one through qemu).
    for arch in ["amd64", "arm64"] {
        let row = rows
            .iter()
            .find(|r| {
                r["recipe"] == "monitor" && r["arch"] == arch && r["test"] == "run /usr/local/bin/tailscaled --version"
            })
            .unwrap_or_else(|| panic!("{tested:#}"));
        assert!(row["detail"].as_str().unwrap().contains(&format!("stand-in tailscaled for linux/{arch}")), "{row}");
    }

    let verified = assemble(t, &cache, &strs(&with_vars(&["verify", "--all"])), &[]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);

    // dpkg-query reads each Debian image's database (umoci unpacks one platform: amd64,
    // built on its own from the same lock).
    let tag_of: BTreeMap<&str, &str> = built
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["recipe"].as_str().unwrap(), r["tags"][0].as_str().unwrap()))
        .collect();
    let expected = [
        ("base-debian", "python3"),
        ("caddy", "caddy"),
        ("three-layer", "busybox"),
        ("apache-debian", "apache2"),
        ("bind-debian", "bind9"),
        ("certbot-debian", "certbot"),
        ("mail-debian", "postfix"),
        ("mail-debian", "dovecot-imapd"),
        ("postgres-debian", "postgresql-15"),
        ("nginx-php-fpm", "supervisor"),
        ("monitor", "supervisor"),
        ("liquibase-debian", "default-jre-headless"),
    ];
    // Two at a time: each is a build (from the cache) and an unpack.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let names: Vec<&str> = tag_of.keys().copied().filter(|n| expected.iter().any(|(e, _)| e == n)).collect();
    let unpacked: BTreeMap<&str, std::path::PathBuf> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    while let Some(name) = names.get(next.fetch_add(1, std::sync::atomic::Ordering::SeqCst)) {
                        let one = format!("oci:one-{name}");
                        // `--var` only where a recipe declares it (an unused one is an error).
                        let base = ["build", "--locked", "--arch", "amd64"];
                        // `--var` only for the variables this recipe declares.
                        let declared = match *name {
                            "monitor" => &["--var=gatus_", "--var=tailscale_"][..],
                            "liquibase-debian" => &["--var=liquibase_"][..],
                            _ => &[][..],
                        };
                        let args: Vec<String> = if !declared.is_empty() {
                            with_vars(&base)
                                .into_iter()
                                .filter(|a| !a.starts_with("--var=") || declared.iter().any(|p| a.starts_with(p)))
                                .collect()
                        } else {
                            base.iter().map(|a| a.to_string()).collect()
                        };
                        let mut args = strs(&args);
                        args.extend([*name, "-o", &one]);
                        assemble(t, &cache, &args, &[]).ok();
                        let out = sh(t, &format!("umoci unpack --image one-{name}:{} u-{name}", tag_of[name]));
                        assert_eq!(out.code, 0, "{}", out.stderr);
                        mine.push((*name, t.join(format!("u-{name}/rootfs"))));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    for (name, package) in expected {
        let root = &unpacked[name];
        let q = sh(t, &format!("dpkg-query --admindir={}/var/lib/dpkg -W -f '${{Package}}\\n'", root.display()));
        assert_eq!(q.code, 0, "{}", q.stderr);
        assert!(q.stdout.lines().any(|l| l == package), "{name}: {}", q.stdout);
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Stand-ins for the monitor's downloads, laid out as the real ones are: a plain `gatus`
/// binary, and a Tailscale tarball with `tailscale_VERSION_ARCH/{tailscale,tailscaled}`.
/// Returns (variable prefix, arch, file under `dir`).
fn monitor_standins(dir: &std::path::Path) -> Vec<(&'static str, &'static str, String)> {
    use std::os::unix::fs::PermissionsExt;
    let script = |what: String| format!("#!/bin/bash\necho \"{what}\"\n");
    let mut pins = Vec::new();
    for arch in ["amd64", "arm64"] {
        let top = format!("tailscale_1.90.6_{arch}");
        std::fs::create_dir_all(dir.join(&top).join("systemd")).unwrap();
        for program in ["tailscale", "tailscaled"] {
            let p = dir.join(&top).join(program);
            std::fs::write(&p, script(format!("1.90.6 (stand-in {program} for linux/{arch})"))).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.join(&top).join("systemd/tailscaled.service"), "[Unit]\n").unwrap();
        let out = sh(dir, &format!("tar czf {top}.tgz {top}"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        pins.push(("tailscale", arch, format!("{top}.tgz")));
    }
    pins
}

/// A stand-in Liquibase release: `liquibase` (a bash script that runs `java -version` from
/// JAVA_HOME, then prints the version line the real one prints) and `internal/lib/` at the top
/// of the tarball, as in the real one. Returns its file name under `dir`.
fn liquibase_standin(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let top = dir.join("liquibase-standin");
    std::fs::create_dir_all(top.join("internal/lib")).unwrap();
    let script = top.join("liquibase");
    std::fs::write(
        &script,
        "#!/bin/bash\nset -eo pipefail\n\"${JAVA_HOME:?}/bin/java\" -version 2>&1 | head -n 1 >&2\necho \"Liquibase Version: 5.0.1 (stand-in)\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(top.join("internal/lib/liquibase-core.jar"), "stand-in\n").unwrap();
    let out = sh(dir, "tar czf liquibase-5.0.1.tar.gz -C liquibase-standin .");
    assert_eq!(out.code, 0, "{}", out.stderr);
    "liquibase-5.0.1.tar.gz".into()
}

/// Stand-in images in the registry at `addr`, built and pushed by assemble itself: Gatus's
/// (its program at `/gatus`, as the real image has it) and a plugin build of Caddy's (at
/// `/usr/bin/caddy`). Returns the variables that name them.
fn standin_images(dir: &std::path::Path, cache: &std::path::Path, addr: &str) -> Vec<(&'static str, String)> {
    std::fs::create_dir_all(dir).unwrap();
    for arch in ["amd64", "arm64"] {
        std::fs::write(
            dir.join(format!("gatus-{arch}")),
            format!("#!/bin/sh\necho \"stand-in gatus for linux/{arch}\"\n"),
        )
        .unwrap();
        let caddy = format!(
            "#!/bin/bash\ncase \"$1\" in\n  list-modules) echo http.handlers.file_server; echo dns.providers.cloudflare ;;\n  validate) echo \"Valid configuration\" ;;\n  *) echo \"v2.8.4 stand-in with plugins for linux/{arch}\" ;;\nesac\n"
        );
        std::fs::write(dir.join(format!("caddy-{arch}")), caddy).unwrap();
    }
    let recipe = |name: &str, tag: &str, to: &str| {
        format!(
            "name: {name}\narchs: [amd64, arm64]\ntags: [\"{tag}\"]\nlayers:\n  - name: program\n    files:\n      - {{path: {{amd64: {name}-amd64, arm64: {name}-arm64}}, to: {to}, mode: \"0755\"}}\n"
        )
    };
    std::fs::write(dir.join("gatus.yml"), recipe("gatus", "v5.20.0", "/gatus")).unwrap();
    std::fs::write(dir.join("caddy.yml"), recipe("caddy", "plugins", "/usr/bin/caddy")).unwrap();
    for name in ["gatus.yml", "caddy.yml"] {
        assemble(dir, cache, &["push", name, "--to", &format!("{addr}/standin")], &[]).ok();
    }
    vec![
        ("gatus_image", format!("{addr}/standin/gatus:v5.20.0")),
        ("caddy_image", format!("{addr}/standin/caddy:plugins")),
    ]
}

/// `examples/webapp` (docs/example-app.md) builds for both architectures from the Debian
/// mirror, passes its tests (Flask imported and the app's page rendered, natively and under
/// qemu) and verifies from the lock its first build wrote.
#[test]
fn the_example_application_builds_tests_and_verifies() {
    require("chroot");
    require("qemu-aarch64-static");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    copy_dir(&repo().join("examples/webapp"), &t.join("webapp"));
    let _ = std::fs::remove_file(t.join("webapp/webapp.lock"));
    let (dir, cache) = (t.join("webapp"), t.join("cache"));
    let built = assemble(&dir, &cache, &["--json", "build", "webapp.yml"], &[]).ok().json();
    let archs: Vec<&str> =
        built[0]["platforms"].as_array().unwrap().iter().map(|p| p["platform"].as_str().unwrap()).collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    let tested = assemble(&dir, &cache, &["--json", "test", "--strict", "webapp.yml"], &[]).ok().json();
    let rows = tested.as_array().unwrap();
    assert_eq!(rows.len(), 8, "{tested:#}");
    for arch in ["amd64", "arm64"] {
        let page = rows.iter().find(|r| r["arch"] == arch && r["test"].as_str().unwrap().starts_with("run ")).unwrap();
        assert!(page["detail"].as_str().unwrap().ends_with("Hello from webapp"), "{page}");
    }
    assemble(&dir, &cache, &["verify", "webapp.yml"], &[]).ok();
}
