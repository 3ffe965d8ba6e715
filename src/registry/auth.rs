//! Registry credentials and the `WWW-Authenticate` challenge.
//!
//! Credentials are looked up the way docker and podman users expect, first match wins:
//! `--creds` / `ASSEMBLE_CREDS`; `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`
//! (`credHelpers`, then `credsStore`, then `auths`); `$REGISTRY_AUTH_FILE`; podman's
//! `$XDG_RUNTIME_DIR/containers/auth.json`. Secrets are held in [`Secret`], whose `Debug`
//! and `Display` print `***`, so no log line or error can carry one.

use base64::Engine as _;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A password or token. Its formatting never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: Secret,
    },
    /// A docker identity token: exchanged for access tokens with OAuth2 `refresh_token`.
    IdentityToken(Secret),
}

impl Credential {
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credential::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.expose()))
            )),
            Credential::IdentityToken(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("credentials file `{path}` is not valid JSON: {message}")]
    File { path: PathBuf, message: String },
    #[error("credential helper `docker-credential-{helper}` failed for {registry}: {message}")]
    Helper { helper: String, registry: String, message: String },
    #[error("--creds must be USER:PASSWORD")]
    BadCreds,
}

/// `USER:PASSWORD` from `--creds` or `ASSEMBLE_CREDS`.
pub fn parse_creds(s: &str) -> Result<Credential, Error> {
    let (u, p) = s.split_once(':').ok_or(Error::BadCreds)?;
    if u.is_empty() {
        return Err(Error::BadCreds);
    }
    Ok(Credential::Basic { username: u.into(), password: Secret(p.into()) })
}

/// The credential for `registry`/`repository` from the configuration files, if any.
pub fn lookup(registry: &str, repository: &str) -> Result<Option<(Credential, String)>, Error> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let docker = match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => Some(PathBuf::from(d).join("config.json")),
        None => home.map(|h| h.join(".docker/config.json")),
    };
    let mut files: Vec<PathBuf> = docker.into_iter().collect();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(f.into());
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(d).join("containers/auth.json"));
    }
    for path in files {
        let Ok(bytes) = fs_err::read(&path) else { continue };
        let config: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::File { path: path.clone(), message: e.to_string() })?;
        if let Some(c) = from_config(&config, registry, repository)? {
            return Ok(Some((c, path.display().to_string())));
        }
    }
    Ok(None)
}

/// Keys of `auths` may be a host, a URL (`https://index.docker.io/v1/`) or, in podman's
/// files, `host/namespace`: the longest key that covers the repository wins.
fn from_config(config: &serde_json::Value, registry: &str, repository: &str) -> Result<Option<Credential>, Error> {
    let want = format!("{registry}/{repository}");
    let helper = config["credHelpers"]
        .as_object()
        .and_then(|h| h.iter().find(|(k, _)| normalise_key(k) == registry))
        .and_then(|(_, v)| v.as_str())
        .or_else(|| config["credsStore"].as_str());
    if let Some(helper) = helper.filter(|h| !h.is_empty()) {
        return run_helper(helper, registry);
    }
    let Some(auths) = config["auths"].as_object() else { return Ok(None) };
    let best = auths
        .iter()
        .map(|(k, v)| (normalise_key(k), v))
        .filter(|(k, _)| *k == registry || want.starts_with(&format!("{k}/")))
        .max_by_key(|(k, _)| k.len());
    let Some((_, entry)) = best else { return Ok(None) };
    if let Some(t) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(Secret(t.into()))));
    }
    if let Some(a) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())));
        if let Some((username, password)) = decoded {
            return Ok(Some(Credential::Basic { username, password: Secret(password) }));
        }
    }
    if let (Some(u), Some(p)) = (entry["username"].as_str(), entry["password"].as_str()) {
        return Ok(Some(Credential::Basic { username: u.into(), password: Secret(p.into()) }));
    }
    Ok(None)
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/` → `host:5000`.
fn normalise_key(key: &str) -> String {
    let k = key.split_once("://").map_or(key, |(_, rest)| rest).trim_end_matches('/');
    let k = k.strip_suffix("/v1").or_else(|| k.strip_suffix("/v2")).unwrap_or(k);
    let (host, path) = k.split_once('/').unwrap_or((k, ""));
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" => crate::model::reference::DOCKER_HUB,
        h => h,
    };
    if path.is_empty() { host.to_string() } else { format!("{host}/{path}") }
}

fn run_helper(helper: &str, registry: &str) -> Result<Option<Credential>, Error> {
    use std::io::Write;
    let err = |message: String| Error::Helper { helper: helper.into(), registry: registry.into(), message };
    let server = if registry == crate::model::reference::DOCKER_HUB { "https://index.docker.io/v1/" } else { registry };
    let mut child = std::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    child.stdin.take().expect("piped").write_all(server.as_bytes()).map_err(|e| err(e.to_string()))?;
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        // Helpers answer "credentials not found" with a failure: not an error for us.
        return Ok(None);
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| err("its answer is not JSON".into()))?;
    let user = v["Username"].as_str().unwrap_or("");
    let secret = Secret(v["Secret"].as_str().unwrap_or("").into());
    Ok(Some(if user == "<token>" {
        Credential::IdentityToken(secret)
    } else {
        Credential::Basic { username: user.into(), password: secret }
    }))
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = BTreeMap::new();
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            let Some((key, after)) = rest.split_once('=') else { break };
            let key = key.trim().to_ascii_lowercase();
            let (value, next) = if let Some(q) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = q.char_indices();
                let mut end = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &q[end..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            params.insert(key, value);
            rest = next;
        }
        Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn challenges_parse_with_quotes_and_commas() {
        let c = Challenge::parse(r#"Bearer realm="http://a/token",service="reg",scope="repository:x/y:pull,push""#)
            .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "http://a/token");
        assert_eq!(c.params["scope"], "repository:x/y:pull,push");
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!((c.scheme.as_str(), c.params["realm"].as_str()), ("basic", "Registry Realm"));
    }

    #[test]
    fn config_keys_match_hosts_urls_and_namespaces() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config = json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("hub:pw")},
            "reg.example:5000": {"auth": b64("u1:p1")},
            "reg.example:5000/team": {"auth": b64("u2:p2")},
            "tok.example": {"identitytoken": "idt"},
        }});
        let user = |r: &str, repo: &str| match from_config(&config, r, repo).unwrap() {
            Some(Credential::Basic { username, .. }) => username,
            Some(Credential::IdentityToken(_)) => "<token>".into(),
            None => "-".into(),
        };
        assert_eq!(user("docker.io", "library/caddy"), "hub");
        assert_eq!(user("reg.example:5000", "other/app"), "u1");
        assert_eq!(user("reg.example:5000", "team/app"), "u2");
        assert_eq!(user("tok.example", "a"), "<token>");
        assert_eq!(user("ghcr.io", "a"), "-");
        let c = parse_creds("alice:s3cret:x").unwrap();
        assert_eq!(format!("{c:?}"), r#"Basic { username: "alice", password: *** }"#);
        assert!(c.basic_header().unwrap().starts_with("Basic "));
    }
}
