//! Every validation error, pinned to its exact message. Each runs `assemble build r.yml`
//! in a scratch directory holding `files/a.txt` and `files/b.txt`.

use crate::common::*;

fn check(recipe: &str, expected: &str) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("files")).unwrap();
    std::fs::write(tmp.path().join("files/a.txt"), "a\n").unwrap();
    std::fs::write(tmp.path().join("files/b.txt"), "b\n").unwrap();
    std::fs::write(tmp.path().join("r.yml"), recipe).unwrap();
    let run = assemble(tmp.path(), &tmp.path().join("cache"), &["build", "r.yml"], &[]);
    assert_eq!(run.code, 1, "expected a failure, got:\n{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, expected);
    assert!(!tmp.path().join("out").exists(), "a failed build writes no output");
    assert!(!tmp.path().join("r.lock").exists(), "a failed build writes no lock");
}

#[test]
fn unknown_field_suggests_the_nearest() {
    check(
        "name: x\nconfig:\n  entrypont: [/bin/sh]\n",
        "error: r.yml:3:3: unknown field `entrypont` in `config`\n  |\n3 |   entrypont: [/bin/sh]\n  |   ^\nhint: did you mean `entrypoint`?\n",
    );
}

#[test]
fn unknown_field_without_a_near_name_lists_the_known_ones() {
    check(
        "name: x\nflavour: vanilla\n",
        "error: r.yml:2:1: unknown field `flavour` in the recipe\n  |\n2 | flavour: vanilla\n  | ^\nhint: expected one of: name, context, archs, tags, variants, registry, variables, epoch, compression, unpack_limit, metadata, annotations, base, layers, config, tests\n",
    );
}

#[test]
fn missing_local_file() {
    check(
        "name: x\nlayers:\n  - files:\n      - {path: files/nope.txt, to: /etc/nope}\n",
        "error: r.yml:4:9: local file `files/nope.txt` does not exist (looked for `./files/nope.txt`)\n  |\n4 |       - {path: files/nope.txt, to: /etc/nope}\n  |         ^\nhint: relative paths are relative to the recipe's directory\n",
    );
}

#[test]
fn bad_arch_name() {
    check(
        "name: x\narchs: [amd64, mips64]\n",
        "error: r.yml:2:16: unknown architecture `mips64`, expected one of amd64, arm64, arm/v7, arm/v6, 386, ppc64le, s390x, riscv64\n  |\n2 | archs: [amd64, mips64]\n  |                ^\n",
    );
}

#[test]
fn bad_mode() {
    check(
        "name: x\nlayers:\n  - files:\n      - {path: files/a.txt, to: /a, mode: \"0999\"}\n",
        "error: r.yml:4:43: bad mode `0999`: expected octal permissions such as \"0644\", \"0755\", \"4755\" or \"1777\"\n  |\n4 |       - {path: files/a.txt, to: /a, mode: \"0999\"}\n  |                                           ^\nhint: quote modes in YAML so they stay octal: mode: \"0755\"\n",
    );
}

#[test]
fn bad_owner_syntax() {
    check(
        "name: x\nlayers:\n  - files:\n      - {path: files/a.txt, to: /a, owner: \"bad name\"}\n",
        "error: r.yml:4:44: bad owner `bad name`: expected `user`, `user:group`, `uid` or `uid:gid`\n  |\n4 |       - {path: files/a.txt, to: /a, owner: \"bad name\"}\n  |                                            ^\n",
    );
}

#[test]
fn unknown_owner() {
    check(
        "name: x\nlayers:\n  - files:\n      - {path: files/a.txt, to: /a, owner: nginx}\n",
        "error: r.yml:4:44: bad owner: unknown user `nginx`; known users: `root`\n  |\n4 |       - {path: files/a.txt, to: /a, owner: nginx}\n  |                                            ^\nhint: declare it under `config.users` / `config.groups`, or give a number\n",
    );
}

#[test]
fn duplicate_destination_names_both_sources() {
    check(
        "name: x\nlayers:\n  - files:\n      - {path: files/a.txt, to: /etc/app.conf}\n      - {path: files/b.txt, to: /etc/app.conf}\n",
        "error: r.yml:5:9: `/etc/app.conf` is given twice with different content: a file from r.yml:4:9 (`files/a.txt`) and a file from r.yml:5:9 (`files/b.txt`)\n  |\n5 |       - {path: files/b.txt, to: /etc/app.conf}\n  |         ^\n",
    );
}

#[test]
fn the_same_content_twice_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.txt"), "a\n").unwrap();
    std::fs::write(
        tmp.path().join("r.yml"),
        "name: x\nlayers:\n  - files:\n      - {path: a.txt, to: /a}\n      - {path: a.txt, to: /a}\n",
    )
    .unwrap();
    assemble(tmp.path(), &tmp.path().join("c"), &["build", "r.yml"], &[]).ok();
}

#[test]
fn url_without_a_digest() {
    check(
        "name: x\nlayers:\n  - files:\n      - url: https://example.org/tool.tar.gz\n        to: /usr/local/bin/tool\n",
        "error: r.yml:4:14: a `url` file needs a `sha256` digest\n  |\n4 |       - url: https://example.org/tool.tar.gz\n  |              ^\nhint: downloads are pinned: add `sha256: <64 hex digits>` (or one per architecture)\n",
    );
}

#[test]
fn malformed_digest() {
    check(
        "name: x\nlayers:\n  - files:\n      - {url: \"https://example.org/t\", sha256: abc, to: /t}\n",
        "error: r.yml:4:48: `abc` is not a sha256 digest (expected 64 lowercase hex digits)\n  |\n4 |       - {url: \"https://example.org/t\", sha256: abc, to: /t}\n  |                                                ^\n",
    );
}

#[test]
fn unknown_variable_suggests_the_nearest() {
    check(
        "name: x\nvariables: {version: \"1\"}\nlayers:\n  - files:\n      - {url: \"https://example.org/t-{verison}\", sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, to: /t}\n",
        "error: r.yml:5:15: in `url`: unknown variable `verison`\n  |\n5 |       - {url: \"https://example.org/t-{verison}\", sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, to: /t}\n  |               ^\nhint: did you mean `{version}`?\n",
    );
}

#[test]
fn unset_secret_variable() {
    check(
        "name: x\nconfig:\n  secrets:\n    - {env: ASSEMBLE_TEST_UNSET_SECRET, to: /etc/app/db.pass}\n",
        "error: r.yml:4:7: secret for `/etc/app/db.pass` needs the environment variable `ASSEMBLE_TEST_UNSET_SECRET`, which is not set\n  |\n4 |     - {env: ASSEMBLE_TEST_UNSET_SECRET, to: /etc/app/db.pass}\n  |       ^\n",
    );
}

#[test]
fn yaml_syntax_error() {
    check(
        "name: x\nlayers: [\n",
        "error: r.yml:3:1: invalid YAML: while parsing a node, did not find expected node content\n",
    );
}

#[test]
fn duplicate_yaml_key() {
    check(
        "name: x\nname: y\n",
        "error: r.yml:2:1: invalid YAML: duplicate key `name` (first given at line 1)\n  |\n2 | name: y\n  | ^\n",
    );
}

#[test]
fn bad_tag() {
    check(
        "name: x\ntags: [\"-bad\"]\n",
        "error: r.yml:2:8: `-bad` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)\n  |\n2 | tags: [\"-bad\"]\n  |        ^\n",
    );
}

#[test]
fn unknown_config_user() {
    check(
        "name: x\nconfig:\n  user: nginx\n",
        "error: r.yml:3:9: `user: nginx` names a user the image does not have\n  |\n3 |   user: nginx\n  |         ^\nhint: declare it under `config.users`, or give a uid\n",
    );
}

#[test]
fn relative_image_path() {
    check(
        "name: x\nlayers:\n  - files:\n      - {path: files/a.txt, to: etc/a}\n",
        "error: r.yml:4:33: image path `etc/a` must be absolute (start with `/`)\n  |\n4 |       - {path: files/a.txt, to: etc/a}\n  |                                 ^\n",
    );
}

#[test]
fn bad_port() {
    check(
        "name: x\nconfig:\n  ports: [http]\n",
        "error: r.yml:3:11: bad port `http`: expected `PORT` or `PORT/tcp|udp|sctp` with PORT in 1..=65535\n  |\n3 |   ports: [http]\n  |           ^\n",
    );
}

#[test]
fn user_clash_with_an_existing_uid() {
    check(
        "name: x\nconfig:\n  users:\n    - {name: app, uid: 0}\n",
        "error: r.yml:4:7: uid 0 of user `app` is already used by `root`\n  |\n4 |     - {name: app, uid: 0}\n  |       ^\n",
    );
}

#[test]
fn file_below_a_symlink_is_refused() {
    check(
        "name: x\nlayers:\n  - symlinks: {/etc: /tmp}\n    files:\n      - {path: files/a.txt, to: /etc/a}\n",
        "error: r.yml:3:5: `/etc/a` would be placed below `/etc`, which is not a directory (r.yml:3:16 (symlink))\n  |\n3 |   - symlinks: {/etc: /tmp}\n  |     ^\n",
    );
}

#[test]
fn local_errors_are_reported_before_any_download() {
    let tmp = tempfile::tempdir().unwrap();
    let server = HttpServer::serve(tmp.path());
    let recipe = format!(
        "name: x\nlayers:\n  - files:\n      - {{url: \"{}\", sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, to: /t}}\n  - files:\n      - {{path: missing.txt, to: /m}}\n",
        server.url("t")
    );
    std::fs::write(tmp.path().join("r.yml"), recipe).unwrap();
    let run = assemble(tmp.path(), &tmp.path().join("c"), &["build", "r.yml"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("error: r.yml:6:9: local file `missing.txt` does not exist"), "{}", run.stderr);
    assert_eq!(server.count(), 0, "no download may start before the recipe is known to be good");
}

#[test]
fn unknown_recipe_name() {
    let tmp = tempfile::tempdir().unwrap();
    let run = assemble(tmp.path(), &tmp.path().join("c"), &["build", "nope"], &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: no recipe `nope`: looked for `nope`, `recipes/nope.yml`, `recipes/nope.yaml`\nhint: give a path to a recipe file, or run from the directory that holds `recipes/`\n"
    );
}

/// More validation errors, each with its exact message: (case, recipe, stderr).
const MORE: &[(&str, &str, &str)] = &[
    (
        "name",
        "name: Web\n",
        "error: r.yml:1:7: `name` must be a repository name (lowercase letters, digits, `.`, `_`, `-`, `/`), found `Web`\n  |\n1 | name: Web\n  |       ^\n",
    ),
    (
        "base",
        "name: x\nbase: debian\n",
        "error: r.yml:2:7: unknown base `debian`, expected `scratch` or a mapping with `debian`, `alpine`, `image` or `recipe`\n  |\n2 | base: debian\n  |       ^\n",
    ),
    (
        "base_map",
        "name: x\nbase: {recipe: base-debian}\n",
        "error: r.yml:2:16: no recipe `base-debian` beside this one (looked for `./base-debian.yml`)\n  |\n2 | base: {recipe: base-debian}\n  |                ^\nhint: `base.recipe` names a recipe file in the same directory, without `.yml`\n",
    ),
    (
        "base_image_own_packages",
        "name: x\nbase:\n  image: reg.example/a/b:1\n  alpine: {repositories: [r], keys: [k], packages: [busybox]}\n",
        "error: r.yml:4:11: with `base.image` or `base.recipe`, `debian`/`alpine` only say where packages come from: list packages in a layer\n  |\n4 |   alpine: {repositories: [r], keys: [k], packages: [busybox]}\n  |           ^\nhint: move `packages` into a layer under `layers:`\n",
    ),
    (
        "image_file_with_a_digest",
        "name: x\nlayers:\n  - name: a\n    files:\n      - {image: reg.example/a:1, path: /a, to: /a, sha256: abc}\n",
        "error: r.yml:5:60: `sha256` does not go with `image`: a path is taken from the image as it is\n  |\n5 |       - {image: reg.example/a:1, path: /a, to: /a, sha256: abc}\n  |                                                            ^\n",
    ),
    (
        "image_file_relative_path",
        "name: x\nlayers:\n  - name: a\n    files:\n      - {image: reg.example/a:1, path: bin/a, to: /a}\n",
        "error: r.yml:5:40: image path `bin/a` must be absolute (start with `/`)\n  |\n5 |       - {image: reg.example/a:1, path: bin/a, to: /a}\n  |                                        ^\n",
    ),
    (
        "platform_without_image",
        "name: x\nlayers:\n  - name: a\n    files:\n      - {path: a, to: /a, platform: amd64}\n",
        "error: r.yml:5:37: `platform` belongs to `image` files: the platform of the image a path is taken from\n  |\n5 |       - {path: a, to: /a, platform: amd64}\n  |                                     ^\n",
    ),
    (
        "releases_pattern_without_a_prefix",
        "name: x\nvariables: {v: \"1\"}\nlayers:\n  - name: a\n    files:\n      - url: \"https://e.invalid/t_{v}\"\n        sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n        to: /t\n        releases: {listing: \"https://e.invalid/\", pattern: \"{version}.tgz\", version: v}\n",
        "error: r.yml:9:60: `pattern` must hold `{version}` after some text (`tool_{version}.tgz`), found `{version}.tgz`\n  |\n9 |         releases: {listing: \"https://e.invalid/\", pattern: \"{version}.tgz\", version: v}\n  |                                                            ^\n",
    ),
    (
        "releases_version_not_a_variable",
        "name: x\nvariables: {v: \"1\"}\nlayers:\n  - name: a\n    files:\n      - url: \"https://e.invalid/t_{v}\"\n        sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n        to: /t\n        releases: {github: a/b, pattern: \"t_{version}\", version: vv}\n",
        "error: r.yml:9:66: `version` names the variable `vv`, which the recipe does not declare\n  |\n9 |         releases: {github: a/b, pattern: \"t_{version}\", version: vv}\n  |                                                                  ^\nhint: did you mean `v`?\n",
    ),
    (
        "releases_on_a_local_file",
        "name: x\nlayers:\n  - name: a\n    files:\n      - {path: f, to: /f, releases: {github: a/b, pattern: \"t_{version}\", version: v}}\n",
        "error: r.yml:5:37: `releases` belongs to `url` files: where new versions of a download are announced\n  |\n5 |       - {path: f, to: /f, releases: {github: a/b, pattern: \"t_{version}\", version: v}}\n  |                                     ^\n",
    ),
    (
        "debian_source_priority_out_of_range",
        "name: x\nbase:\n  debian:\n    suite: bookworm\n    sources:\n      - {mirror: \"https://e.invalid/\", suite: s, keyring: [k.gpg], priority: 5000}\n",
        "error: r.yml:6:78: `priority` is a whole number from -1000 to 1000 (apt's pin priority), found `5000`\n  |\n6 |       - {mirror: \"https://e.invalid/\", suite: s, keyring: [k.gpg], priority: 5000}\n  |                                                                              ^\n",
    ),
    (
        "debian_mirror_neither_url_nor_directory",
        "name: x\nbase:\n  debian:\n    suite: bookworm\n    mirror: ftp.debian.org/debian\n",
        "error: r.yml:5:13: `mirror` must be an https:// or http:// URL, or a local directory (`/…` or `file:…`), found `ftp.debian.org/debian`\n  |\n5 |     mirror: ftp.debian.org/debian\n  |             ^\n",
    ),
    (
        "debian_suite_with_a_newline_from_a_variable",
        "name: x\nvariables:\n  s: \"bookworm\\nevil\"\nbase:\n  debian:\n    suite: \"{s}\"\n",
        "error: r.yml:6:12: `suite` must be a suite name such as bookworm or bookworm-updates (letters, digits, `.-_+~/`, no `..`), found `bookworm\\nevil`\n  |\n6 |     suite: \"{s}\"\n  |            ^\n",
    ),
    (
        "debian_suite_climbing_out_of_dists",
        "name: x\nbase:\n  debian:\n    suite: ../../pool\n",
        "error: r.yml:4:12: `suite` must be a suite name such as bookworm or bookworm-updates (letters, digits, `.-_+~/`, no `..`), found `../../pool`\n  |\n4 |     suite: ../../pool\n  |            ^\n",
    ),
    (
        "test_two_kinds",
        "name: x\ntests:\n  - {exists: /a, absent: /b}\n",
        "error: r.yml:3:5: a test has exactly one of `exists`, `absent`, `non_root`, `max_size` or `run`\n  |\n3 |   - {exists: /a, absent: /b}\n  |     ^\n",
    ),
    (
        "test_field_of_another_kind",
        "name: x\ntests:\n  - {run: [/bin/true], mode: \"0755\"}\n",
        "error: r.yml:3:24: `mode` does not apply to a `run` test\n  |\n3 |   - {run: [/bin/true], mode: \"0755\"}\n  |                        ^\n",
    ),
    (
        "test_size",
        "name: x\ntests:\n  - {max_size: lots}\n",
        "error: r.yml:3:16: `max_size` is a size such as `80 MB` or `512KiB`, found `lots`\n  |\n3 |   - {max_size: lots}\n  |                ^\n",
    ),
    (
        "base_image_ref",
        "name: x\nbase: {image: \"Example/Caddy:2\"}\n",
        "error: r.yml:2:15: `Example/Caddy:2` is not an image reference: repository components are lowercase letters and digits, joined by `.`, `_`, `__` or `-`\n  |\n2 | base: {image: \"Example/Caddy:2\"}\n  |               ^\n",
    ),
    (
        "both",
        "name: x\nlayers:\n  - files:\n      - {path: files/a.txt, url: \"https://e.org/a\", to: /a}\n",
        "error: r.yml:4:34: a file has either `path` or `url`, not both\n  |\n4 |       - {path: files/a.txt, url: \"https://e.org/a\", to: /a}\n  |                                  ^\n",
    ),
    (
        "neither",
        "name: x\nlayers:\n  - files:\n      - {to: /a}\n",
        "error: r.yml:4:9: a file needs `path` (a local file) or `url` (a download)\n  |\n4 |       - {to: /a}\n  |         ^\n",
    ),
    (
        "sha_local",
        "name: x\nlayers:\n  - files:\n      - {path: files/a.txt, sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, to: /a}\n",
        "error: r.yml:4:37: `sha256` belongs to `url` files; a local file is hashed when it is read\n  |\n4 |       - {path: files/a.txt, sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, to: /a}\n  |                                     ^\n",
    ),
    (
        "no_to",
        "name: x\nlayers:\n  - files:\n      - {path: files/a.txt}\n",
        "error: r.yml:4:9: a file needs `to` (where it goes in the image)\n  |\n4 |       - {path: files/a.txt}\n  |         ^\n",
    ),
    (
        "bad_extract",
        "name: x\nlayers:\n  - files:\n      - {path: files/a.txt, extract: rar, to: /a}\n",
        "error: r.yml:4:38: unknown archive type `rar`, expected true, false, tar, tar.gz, tar.xz, tar.zst or zip\n  |\n4 |       - {path: files/a.txt, extract: rar, to: /a}\n  |                                      ^\n",
    ),
    (
        "strip_without_extract",
        "name: x\nlayers:\n  - files:\n      - {path: files/a.txt, strip_components: 1, to: /a}\n",
        "error: r.yml:4:47: `strip_components` only applies with `extract`\n  |\n4 |       - {path: files/a.txt, strip_components: 1, to: /a}\n  |                                               ^\n",
    ),
    (
        "url_scheme",
        "name: x\nlayers:\n  - files:\n      - {url: \"ftp://e.org/a\", sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, to: /a}\n",
        "error: r.yml:4:15: `url` must start with https:// or http://, found `ftp://e.org/a`\n  |\n4 |       - {url: \"ftp://e.org/a\", sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, to: /a}\n  |               ^\n",
    ),
    (
        "sha_missing_arch",
        "name: x\narchs: [amd64, arm64]\nlayers:\n  - files:\n      - url: {amd64: \"https://e.org/a\", arm64: \"https://e.org/b\"}\n        sha256: {amd64: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855}\n        to: /a\n",
        "error: r.yml:6:17: `sha256` has no digest for `arm64`, which `url` lists\n  |\n6 |         sha256: {amd64: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855}\n  |                 ^\n",
    ),
    (
        "dotdot",
        "name: x\nlayers:\n  - dirs: [/a/../b]\n",
        "error: r.yml:3:12: image path `/a/../b` must not contain `.` or `..`\n  |\n3 |   - dirs: [/a/../b]\n  |            ^\n",
    ),
    (
        "arch_twice",
        "name: x\narchs: [amd64, x86_64]\n",
        "error: r.yml:2:16: architecture `amd64` is listed twice\n  |\n2 | archs: [amd64, x86_64]\n  |                ^\n",
    ),
    (
        "reserved_layer_name",
        "name: x\nlayers:\n  - name: config\n",
        "error: r.yml:3:5: layer name `config` is used twice (`base` and `config` are reserved)\n  |\n3 |   - name: config\n  |     ^\n",
    ),
    (
        "compression",
        "name: x\ncompression: bzip2\n",
        "error: r.yml:2:14: unknown compression `bzip2`, expected `gzip` or `zstd`\n  |\n2 | compression: bzip2\n  |              ^\n",
    ),
    (
        "level",
        "name: x\ncompression: {algorithm: gzip, level: 12}\n",
        "error: r.yml:2:39: compression level must be 1..=9, found 12\n  |\n2 | compression: {algorithm: gzip, level: 12}\n  |                                       ^\n",
    ),
    (
        "secret_both",
        "name: x\nconfig:\n  secrets:\n    - {env: A, file: b, to: /s}\n",
        "error: r.yml:4:7: a secret needs exactly one of `env` (a variable name) or `file` (a local path)\n  |\n4 |     - {env: A, file: b, to: /s}\n  |       ^\n",
    ),
    (
        "account_name",
        "name: x\nconfig:\n  users:\n    - {name: 9lives, uid: 5}\n",
        "error: r.yml:4:14: bad user or group name `9lives`: expected letters, digits, `_`, `-`, `.`, not starting with a digit or `-`\n  |\n4 |     - {name: 9lives, uid: 5}\n  |              ^\n",
    ),
    (
        "uid_range",
        "name: x\nconfig:\n  users:\n    - {name: a, uid: 4294967295}\n",
        "error: r.yml:4:22: `uid` 4294967295 is out of range (0 to 2147483647)\n  |\n4 |     - {name: a, uid: 4294967295}\n  |                      ^\n",
    ),
    (
        "healthcheck",
        "name: x\nconfig:\n  healthcheck: {test: [/bin/true]}\n",
        "error: r.yml:3:23: `test` must start with `CMD`, `CMD-SHELL` or `NONE` (as in Docker)\n  |\n3 |   healthcheck: {test: [/bin/true]}\n  |                       ^\n",
    ),
    (
        "duration",
        "name: x\nconfig:\n  healthcheck: {test: [CMD, /bin/true], interval: soon}\n",
        "error: r.yml:3:51: bad duration `soon`: expected e.g. `30s`, `1m30s`, `500ms`\n  |\n3 |   healthcheck: {test: [CMD, /bin/true], interval: soon}\n  |                                                   ^\n",
    ),
    (
        "signal",
        "name: x\nconfig:\n  stop_signal: TERM\n",
        "error: r.yml:3:16: bad stop signal `TERM`: expected a name such as `SIGTERM` or a number\n  |\n3 |   stop_signal: TERM\n  |                ^\n",
    ),
    (
        "builtin_var",
        "name: x\nvariables: {arch: x}\n",
        "error: r.yml:2:13: `arch` is a built-in variable and cannot be set\n  |\n2 | variables: {arch: x}\n  |             ^\n",
    ),
    (
        "not_a_map",
        "name: x\nconfig: [a]\n",
        "error: r.yml:2:9: `config` must be a mapping, found a list\n  |\n2 | config: [a]\n  |         ^\n",
    ),
    (
        "env_name",
        "name: x\nconfig:\n  env: {\"A=B\": c}\n",
        "error: r.yml:3:8: bad environment variable name `A=B`\n  |\n3 |   env: {\"A=B\": c}\n  |        ^\n",
    ),
    (
        "missing_template",
        "name: x\nconfig:\n  templates: [{src: nope.j2, to: /etc/x}]\n",
        "error: r.yml:3:15: template `nope.j2` does not exist (looked for `./nope.j2`)\n  |\n3 |   templates: [{src: nope.j2, to: /etc/x}]\n  |               ^\nhint: relative paths are relative to the recipe's directory\n",
    ),
    (
        "template_undefined",
        "name: x\nconfig:\n  templates: [{src: t.j2, to: /etc/x}]\n",
        "error: r.yml:3:15: template `t.j2` line 1: `nope` is undefined\n  |\n3 |   templates: [{src: t.j2, to: /etc/x}]\n  |               ^\n",
    ),
    (
        "unknown_group",
        "name: x\nconfig:\n  users: [{name: a, uid: 5, group: wheel}]\n",
        "error: r.yml:3:11: unknown group `wheel`; known groups: `root`\n  |\n3 |   users: [{name: a, uid: 5, group: wheel}]\n  |           ^\n",
    ),
    (
        "tag_variable",
        "name: x\ntags: [\"{arch}\"]\n",
        "error: r.yml:2:8: in a tag: unknown variable `arch` (only the recipe's `variables` and `name` can be used here)\n  |\n2 | tags: [\"{arch}\"]\n  |        ^\n",
    ),
    (
        "tree_not_dir",
        "name: x\nlayers:\n  - tree: files/a.txt\n",
        "error: r.yml:3:11: tree `files/a.txt` is not a directory\n  |\n3 |   - tree: files/a.txt\n  |           ^\n",
    ),
    ("empty", "", "error: r.yml:1:1: invalid YAML: the file is empty\n"),
];

#[test]
fn every_other_validation_error_has_its_exact_message() {
    for (case, recipe, expected) in MORE {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("files")).unwrap();
        std::fs::write(tmp.path().join("files/a.txt"), "a\n").unwrap();
        std::fs::write(tmp.path().join("t.j2"), "x = {{ nope }}\n").unwrap();
        std::fs::write(tmp.path().join("r.yml"), recipe).unwrap();
        let run = assemble(tmp.path(), &tmp.path().join("cache"), &["build", "r.yml"], &[]);
        assert_eq!(run.code, 1, "{case}: expected a failure");
        assert_eq!(&run.stderr, expected, "{case}");
    }
}

/// A variable declared without a default (`~`) reads fine (`graph`, `tags`); building stops
/// and names it until `--var` gives it, and `--var` replaces a default.
#[test]
fn variable_without_a_default_needs_var() {
    let recipe = "name: x\nvariables:\n  greeting: hello\n  sha: ~\nlayers:\n  - files:\n      - {url: \"http://127.0.0.1:9/{greeting}\", sha256: \"{sha}\", to: /g}\nconfig:\n  env: {GREETING: \"{greeting}\"}\n";
    check(
        recipe,
        "error: r.yml:4:3: `x` needs the variable sha (declared without a default)\n  |\n4 |   sha: ~\n  |   ^\nhint: give each with `--var NAME=VALUE`, e.g. `--var sha=…`\n",
    );
    let tmp = tempfile::tempdir().unwrap();
    let (t, cache) = (tmp.path(), tmp.path().join("cache"));
    std::fs::write(
        t.join("r.yml"),
        recipe.replace("url: \"http://127.0.0.1:9/{greeting}\", sha256: \"{sha}\", to: /g", "path: r.yml, to: /g"),
    )
    .unwrap();
    assemble(t, &cache, &["graph", "r.yml"], &[]).ok();
    assemble(t, &cache, &["build", "r.yml", "--var", "sha=unused", "--var", "greeting=bonjour", "-o", "oci:out"], &[])
        .ok();
    let config = assemble(t, &cache, &["--json", "inspect", "oci:out"], &[]).ok().stdout;
    assert!(config.contains("GREETING=bonjour"), "{config}");
    // A name no recipe declares is a usage error (exit 2), with the nearest declared name.
    let unused = assemble(t, &cache, &["build", "r.yml", "--var", "sha=x", "--var", "greting=1"], &[]);
    assert_eq!(unused.code, 2, "{}", unused.stderr);
    assert_eq!(
        unused.stderr,
        "error: `--var greting=…` is not used: no recipe read declares `greting` in its `variables` (read: x); did you mean `greeting`?\n"
    );
    // A value meant for the recipe a recipe builds on counts as used.
    std::fs::write(t.join("child.yml"), "name: child\nbase: {recipe: r}\n").unwrap();
    let on_parent = assemble(t, &cache, &["graph", "child.yml", "--var", "greeting=hi"], &[]);
    assert_eq!(on_parent.code, 0, "{}", on_parent.stderr);
    let digest = assemble(t, &cache, &["build", "r.yml", "--var", "sha=1234"], &[]);
    assert_eq!(digest.code, 0, "an unused variable is not parsed: {}", digest.stderr);
}

/// A digest from a variable is checked as one, naming what the variable made of it.
#[test]
fn digest_from_a_variable_is_checked() {
    check(
        "name: x\nvariables: {sha: abc}\nlayers:\n  - files:\n      - {url: \"https://example.org/a\", sha256: \"{sha}\", to: /a}\n",
        "error: r.yml:5:48: `sha256` is `{sha}`: `abc` is not a sha256 digest (expected 64 lowercase hex digits)\n  |\n5 |       - {url: \"https://example.org/a\", sha256: \"{sha}\", to: /a}\n  |                                                ^\n",
    );
}

/// Recipe values that would add a line (a uid-0 account with no password) or a field to
/// /etc/passwd, /etc/group or /etc/shadow are refused with `file:line`, whether written in
/// the recipe or brought in by a variable.
#[test]
fn account_fields_cannot_inject_passwd_lines() {
    let fields = "/etc/passwd and /etc/group are lines of `:`-separated fields";
    let name = "expected letters, digits, `_`, `-`, `.`, not starting with a digit or `-`";
    let cases = [
        (
            "name: x\nconfig:\n  users: [{name: a, uid: 5, shell: \"/bin/sh\\nevil::0:0::/:/bin/sh\"}]\n",
            format!(
                "error: r.yml:3:36: `shell` `/bin/sh\\nevil::0:0::/:/bin/sh` holds a newline; {fields}\n  |\n3 |   users: [{{name: a, uid: 5, shell: \"/bin/sh\\nevil::0:0::/:/bin/sh\"}}]\n  |                                    ^\n"
            ),
        ),
        (
            "name: x\nconfig:\n  users: [{name: a, uid: 5, shell: \"/bin/sh,x\"}]\n",
            "error: r.yml:3:36: `shell` `/bin/sh,x` holds `,`, which account files do not take in it\n  |\n3 |   users: [{name: a, uid: 5, shell: \"/bin/sh,x\"}]\n  |                                    ^\n".to_string(),
        ),
        (
            "name: x\nconfig:\n  users: [{name: a, uid: 5, home: \"/home/a:0\"}]\n",
            format!(
                "error: r.yml:3:35: `home` `/home/a:0` holds `:`; {fields}\n  |\n3 |   users: [{{name: a, uid: 5, home: \"/home/a:0\"}}]\n  |                                   ^\n"
            ),
        ),
        (
            "name: x\nconfig:\n  users: [{name: a, uid: 5, gecos: \"A\\rroot\"}]\n",
            format!(
                "error: r.yml:3:36: `gecos` `A\\rroot` holds the control character U+000D; {fields}\n  |\n3 |   users: [{{name: a, uid: 5, gecos: \"A\\rroot\"}}]\n  |                                    ^\n"
            ),
        ),
        (
            "name: x\nconfig:\n  groups: [{name: g, gid: 5, members: [\"a\\nroot\"]}]\n",
            format!(
                "error: r.yml:3:40: bad user or group name `a\\nroot`: {name}\n  |\n3 |   groups: [{{name: g, gid: 5, members: [\"a\\nroot\"]}}]\n  |                                        ^\n"
            ),
        ),
        (
            "name: x\nconfig:\n  users: [{name: a, uid: 5, groups: [\"x:y\"]}]\n",
            format!(
                "error: r.yml:3:38: bad user or group name `x:y`: {name}\n  |\n3 |   users: [{{name: a, uid: 5, groups: [\"x:y\"]}}]\n  |                                      ^\n"
            ),
        ),
    ];
    for (recipe, expected) in &cases {
        check(recipe, expected);
    }
    // Through a variable given on the command line.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("r.yml"),
        "name: x\nvariables: {sh: /bin/sh}\nconfig:\n  users: [{name: a, uid: 5, shell: \"{sh}\"}]\n",
    )
    .unwrap();
    let run = assemble(
        tmp.path(),
        &tmp.path().join("c"),
        &["build", "r.yml", "--var", "sh=/bin/sh\nroot::0:0::/:/bin/sh"],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: r.yml:4:36: `shell` `/bin/sh\\nroot::0:0::/:/bin/sh` holds a newline"),
        "{}",
        run.stderr
    );
}

/// Values that every reader must be able to read: times within RFC 3339's four-digit years,
/// durations within Go's `time.Duration`, ids within 0..2^31-1, exit statuses within a byte;
/// and a YAML alias bomb or a NUL byte, each refused with `file:line`.
#[test]
fn values_beyond_what_readers_take_are_refused() {
    let cases = [
        (
            "name: x\nepoch: 9223372036854775807\n",
            "error: r.yml:2:8: `epoch` 9223372036854775807 is after the year 9999 (at most 253402300799); image times are RFC 3339 dates, which end there\n",
        ),
        (
            "name: x\nconfig:\n  healthcheck: {test: [CMD, /x], interval: 99999999999999999999h}\n",
            "error: r.yml:3:44: duration `99999999999999999999h` is longer than Go's time.Duration holds (about 292 years), which docker and podman read it into\n",
        ),
        (
            "name: x\nconfig:\n  healthcheck: {test: [CMD, /x], timeout: 2562048h}\n",
            "error: r.yml:3:43: duration `2562048h` is longer than Go's time.Duration holds (about 292 years), which docker and podman read it into\n",
        ),
        (
            "name: x\nconfig:\n  users: [{name: a, uid: 2147483648}]\n",
            "error: r.yml:3:26: `uid` 2147483648 is out of range (0 to 2147483647)\n",
        ),
        (
            "name: x\nconfig:\n  groups: [{name: a, gid: 4294967295}]\n",
            "error: r.yml:3:27: `gid` 4294967295 is out of range (0 to 2147483647)\n",
        ),
        (
            "name: x\nlayers:\n  - dirs: [{path: /d, owner: \"4294967295\"}]\n",
            "error: r.yml:3:30: bad owner `4294967295`: the id 4294967295 is out of range (0 to 2147483647)\n",
        ),
        (
            "name: x\ntests:\n  - {run: [/bin/true], exit: 256}\n",
            "error: r.yml:3:30: `exit` is an exit status, 0 to 255; found 256\n",
        ),
        (
            "name: x\nlayers:\n  - dirs: [\"/a\\0b\"]\n",
            "error: r.yml:3:12: invalid YAML: a NUL byte in a value: recipe values end up in file names, account files and command lines, where NUL cuts them short\n",
        ),
    ];
    for (recipe, first_line) in cases {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("r.yml"), recipe).unwrap();
        let run = assemble(tmp.path(), &tmp.path().join("c"), &["build", "r.yml"], &[]);
        assert_eq!(run.code, 1, "{recipe}");
        assert_eq!(run.stderr.lines().next().unwrap_or(""), first_line.trim_end(), "{recipe}");
    }
}

/// A 400-byte "billion laughs" document: `assemble tags` refuses it at once.
#[test]
fn yaml_alias_bomb_is_refused() {
    let mut doc = String::from("name: x\nvariables:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        doc.push_str(&format!("  a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
    }
    assert!(doc.len() < 600);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("r.yml"), &doc).unwrap();
    let run = assemble(tmp.path(), &tmp.path().join("c"), &["tags", "r.yml"], &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: r.yml:") && run.stderr.contains("the recipe expands to more than 100000 values"),
        "{}",
        run.stderr
    );
}

/// Local files come from the build context (the recipe's directory) only: an absolute path,
/// `../…`, a tree or archive reached through a symlink that leads out, a template or secret
/// file outside — each refused with file:line. A symlink given as a plain file is copied as
/// the link it is. `context:` in the recipe or `--context` widens the context on purpose.
#[test]
fn local_files_come_from_the_build_context_only() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (proj, outside) = (t.join("proj"), t.join("outside"));
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    std::fs::write(outside.join("secret.txt"), "host secret\n").unwrap();
    std::fs::write(outside.join("dir/inner.txt"), "inner\n").unwrap();
    std::os::unix::fs::symlink("../outside/dir", proj.join("linked-dir")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", proj.join("linked-file")).unwrap();
    let abs = outside.join("secret.txt");
    let context = std::fs::canonicalize(&proj).unwrap();
    let outside_c = std::fs::canonicalize(&outside).unwrap();
    let cases = [
        (
            "layers:\n  - files:\n      - {path: ../outside/secret.txt, to: /s}\n",
            "local file `../outside/secret.txt`",
            format!("{}/secret.txt", outside_c.display()),
            "4:9",
        ),
        (
            &*format!("layers:\n  - files:\n      - {{path: {}, to: /s}}\n", abs.display()),
            &*format!("local file `{}`", abs.display()),
            format!("{}/secret.txt", outside_c.display()),
            "4:9",
        ),
        ("layers:\n  - tree: linked-dir\n", "tree `linked-dir`", format!("{}/dir", outside_c.display()), "3:11"),
        (
            "layers:\n  - files:\n      - {path: linked-dir, to: /d}\n",
            "local file `linked-dir`",
            format!("{}/dir", outside_c.display()),
            "4:9",
        ),
        (
            "config:\n  templates:\n    - {src: linked-file, to: /t}\n",
            "template `linked-file`",
            format!("{}/secret.txt", outside_c.display()),
            "4:7",
        ),
        (
            "config:\n  secrets:\n    - {file: ../outside/secret.txt, to: /s}\n",
            "secret file `../outside/secret.txt`",
            format!("{}/secret.txt", outside_c.display()),
            "4:7",
        ),
        (
            "layers:\n  - files:\n      - {path: linked-file, extract: tar, to: /x}\n",
            "local file `linked-file`",
            format!("{}/secret.txt", outside_c.display()),
            "4:9",
        ),
    ];
    for (body, what, resolved, at) in cases {
        std::fs::write(proj.join("r.yml"), format!("name: x\n{body}")).unwrap();
        let run = assemble(&proj, &t.join("c"), &["build", "r.yml"], &[]);
        assert_eq!(run.code, 1, "{body}");
        let first = run.stderr.lines().next().unwrap_or("");
        assert_eq!(
            first,
            format!(
                "error: r.yml:{at}: {what} is outside the build context `{}` (it resolves to `{resolved}`)",
                context.display()
            ),
            "{body}"
        );
        assert!(run.stderr.contains("hint: local files come from the recipe's directory; widen the context on purpose with `context:` in the recipe or `--context DIR`"), "{}", run.stderr);
    }
    // A symlink given as a file is copied as a link (its target is the image's business).
    std::fs::write(proj.join("r.yml"), "name: x\nlayers:\n  - files:\n      - {path: linked-file, to: /etc/l}\n")
        .unwrap();
    assemble(&proj, &t.join("c"), &["build", "r.yml", "-o", "oci:../link"], &[]).ok();
    let mut links = Vec::new();
    for blob in std::fs::read_dir(t.join("link/blobs/sha256")).unwrap() {
        let bytes = std::fs::read(blob.unwrap().path()).unwrap();
        assert!(!bytes.windows(11).any(|w| w == b"host secret"), "the secret's bytes are not in the image");
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
            for e in ar.entries().unwrap() {
                let e = e.unwrap();
                if e.header().entry_type().is_symlink() {
                    links.push((
                        e.path().unwrap().display().to_string(),
                        e.link_name().unwrap().unwrap().display().to_string(),
                    ));
                }
                let mut content = String::new();
                let _ = std::io::Read::read_to_string(&mut { e }, &mut content);
                assert!(!content.contains("host secret"), "the secret's bytes are not in a layer");
            }
        }
    }
    assert_eq!(links, vec![("etc/l".to_string(), "../outside/secret.txt".to_string())]);
    // Widened on purpose: in the recipe, and on the command line.
    let widened = "name: x\nlayers:\n  - files:\n      - {path: ../outside/secret.txt, to: /s}\n";
    std::fs::write(proj.join("r.yml"), format!("context: ..\n{widened}")).unwrap();
    assemble(&proj, &t.join("c"), &["build", "r.yml"], &[]).ok();
    std::fs::write(proj.join("r.yml"), widened).unwrap();
    assemble(&proj, &t.join("c"), &["--context", "..", "build", "r.yml"], &[]).ok();
}

#[test]
fn an_argv_given_as_a_string_is_refused_with_the_list_to_write() {
    check(
        "name: x\nconfig:\n  entrypoint: /usr/bin/python3 /app/server.py\n",
        "error: r.yml:3:15: `entrypoint` must be a list, one item per argument, not a string\n  |\n3 |   entrypoint: /usr/bin/python3 /app/server.py\n  |               ^\nhint: write `[/usr/bin/python3, /app/server.py]`; a string would be one argument, a program of that name\n",
    );
    check(
        "name: x\nconfig:\n  cmd: \"--port 8080\"\n",
        "error: r.yml:3:8: `cmd` must be a list, one item per argument, not a string\n  |\n3 |   cmd: \"--port 8080\"\n  |        ^\nhint: write `[--port, 8080]`; a string would be one argument, a program of that name\n",
    );
    check(
        "name: x\nconfig:\n  healthcheck: {test: \"CMD curl -f http://localhost/\"}\n",
        "error: r.yml:3:23: `test` must be a list, one item per argument, not a string\n  |\n3 |   healthcheck: {test: \"CMD curl -f http://localhost/\"}\n  |                       ^\nhint: write `[CMD, curl, -f, \"http://localhost/\"]`; a string would be one argument, a program of that name\n",
    );
    check(
        "name: x\ntests:\n  - run: caddy version\n",
        "error: r.yml:3:10: `run` must be a list, one item per argument, not a string\n  |\n3 |   - run: caddy version\n  |          ^\nhint: write `[caddy, version]`; a string would be one argument, a program of that name\n",
    );
}

/// An empty variable means unset: `ASSEMBLE_JOBS=` and `ASSEMBLE_CACHE_DIR=` neither fail to
/// parse nor override the flag given beside them.
#[test]
fn empty_environment_variables_mean_unset() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::write(t.join("a.txt"), "a\n").unwrap();
    std::fs::write(t.join("r.yml"), "name: x\nlayers:\n  - files:\n      - {path: a.txt, to: /a}\n").unwrap();
    let cache = t.join("given");
    let run = assemble(
        t,
        &t.join("unused"),
        &["--cache-dir", cache.to_str().unwrap(), "-j", "1", "build", "r.yml", "-o", "oci:one"],
        &[("ASSEMBLE_JOBS", ""), ("ASSEMBLE_CACHE_DIR", ""), ("SOURCE_DATE_EPOCH", "")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(cache.join("blobs").is_dir(), "the flag's cache was used");
    let run = assemble(t, &cache, &["build", "r.yml", "-o", "oci:two"], &[("ASSEMBLE_JOBS", "")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
