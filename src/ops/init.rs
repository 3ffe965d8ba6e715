//! `assemble init`: a starter recipe for a chosen base, every line commented, written where
//! no file of that name exists yet.

use std::path::{Path, PathBuf};

/// What the starter recipe builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starter {
    Scratch,
    Debian,
    Alpine,
    Image,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "`{0}` is not a recipe name: lowercase letters, digits, `.`, `_`, `-` and `/`, starting with a letter or digit"
    )]
    Name(String),
    #[error("`{0}` exists already; init never overwrites a file (choose another name, or move it away)")]
    Exists(PathBuf),
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `<dir>/<name>.yml`, a starter recipe on `base`, and returns its path. The file is
/// created only if it does not exist (never overwritten, whatever happens in between).
pub fn write(dir: &Path, name: &str, base: Starter) -> Result<PathBuf, Error> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        && !name.contains("..")
        && !name.ends_with('/');
    if !valid {
        return Err(Error::Name(name.into()));
    }
    let file_name = name.rsplit('/').next().unwrap_or(name);
    let path = dir.join(format!("{file_name}.yml"));
    let mut file = match fs_err::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(Error::Exists(path)),
        Err(source) => return Err(Error::Write { path, source }),
    };
    std::io::Write::write_all(&mut file, recipe(name, base).as_bytes())
        .map_err(|source| Error::Write { path: path.clone(), source })?;
    Ok(path)
}

/// The starter recipe's text.
pub fn recipe(name: &str, base: Starter) -> String {
    let (intro, base_block, tests) = match base {
        Starter::Scratch => (
            "An image of your own files only: no distribution, no shell. It builds anywhere, offline.",
            "base: scratch                      # nothing below the layers that follow\n".to_string(),
            "  - exists: /srv/app\n    kind: dir\n",
        ),
        Starter::Debian => (
            "An image on Debian packages, resolved as `apt-get install --no-install-recommends`\n# would and pinned in the lock; no maintainer script runs.",
            "base:\n  debian:\n    suite: bookworm                  # the mirror is this machine's apt source unless `mirror:` names one\n    packages: [base-files, ca-certificates]   # base-files gives /etc/os-release, which scanners read\n".to_string(),
            "  - exists: /etc/ssl/certs/ca-certificates.crt\n",
        ),
        Starter::Alpine => (
            "An image on Alpine packages: the indexes' signatures and every package's checksums\n# are checked against the keys named here.",
            "base:\n  alpine:\n    # A repository URL (or a local directory) holding <arch>/APKINDEX.tar.gz, and the\n    # public keys that sign it, as files beside this recipe.\n    repositories: [https://alpine-mirror.example.org/alpine/v3.20/main]\n    keys: [keys/alpine-devel.rsa.pub]\n    packages: [alpine-baselayout, ca-certificates-bundle]\n".to_string(),
            "  - exists: /etc/ssl/certs/ca-certificates.crt\n",
        ),
        Starter::Image => (
            "An image on another image from a registry: its layers are reused as they are, and\n# the lock pins the digest the reference resolved to.",
            "base:\n  image: registry.example.org/team/base:1.0   # a tag, a digest (@sha256:…) or both\n".to_string(),
            "  - exists: /srv/app\n    kind: dir\n",
        ),
    };
    format!(
        r#"# {name}: a starter recipe made by `assemble init`.
# {intro}
# Build it with `assemble build {name}.yml`; docs/recipe.md describes every field.
# Editors complete and check it once `assemble schema > recipe.schema.json` is run here:
# yaml-language-server: $schema=recipe.schema.json
name: {name}
archs: [amd64, arm64]                # the platforms of the image index
tags: ["{{version}}", latest]
variables:
  version: "0.1.0"                   # {{version}} anywhere below; `--var version=…` replaces it
metadata:                            # org.opencontainers.image.* annotations
  title: {name}
  version: "{{version}}"
{base_block}layers:
  - name: app                        # one layer per part that changes at its own pace
    dirs:
      - {{path: /srv/app, mode: "0755"}}
    # files:
    #   - {{path: app/, to: /srv/app/}}                       # local files, inside the build context
    #   - {{url: https://…/tool.tar.gz, sha256: …, to: /usr/local/bin, extract: true}}
config:                              # the configuration layer, always last
  users:
    - {{name: app, uid: 1000, home: /srv/app}}
  user: app
  workdir: /srv/app
  # entrypoint: [/srv/app/run]       # always a list, one item per argument
  # env: {{KEY: value}}
  # ports: [8080/tcp]
tests:                               # `assemble test {name}.yml` runs them in the image
  - non_root: true
{tests}"#
    )
}
