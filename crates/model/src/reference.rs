//! Image references as docker and skopeo write them: `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`.
//! A first component with a `.` or `:`, or `localhost`, is a registry; otherwise the image
//! is on Docker Hub, where one-component names live under `library/`.

use crate::digest::Digest;
use std::fmt;

pub const DOCKER_HUB: &str = "docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// As the user names it (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, String> {
        let bad = |why: &str| format!("`{s}` is not an image reference: {why}");
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|e| bad(&e))?)),
            None => (s, None),
        };
        // A `:` after the last `/` starts the tag; one before it belongs to a registry port.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(bad(&format!("`{t}` is not a valid tag")));
        }
        let (registry, repository) = split_registry(name);
        if repository.is_empty() {
            return Err(bad("the repository name is empty"));
        }
        if !repository.split('/').all(valid_component) {
            return Err(bad("repository components are lowercase letters and digits, joined by `.`, `_`, `__` or `-`"));
        }
        Ok(Reference { registry, repository, tag, digest })
    }

    /// The host and port requests go to (Docker Hub's API lives on its own host).
    pub fn host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The tag or digest a manifest request names: the digest when both are given.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    pub fn with_repository(&self, repository: &str) -> Reference {
        Reference { repository: repository.into(), tag: None, digest: None, ..self.clone() }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Splits `registry/rest` from a name, applying Docker Hub's defaults.
pub fn split_registry(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest)) if is_registry_host(first) => (normalise_registry(first), rest.to_string()),
        Some(_) => (DOCKER_HUB.into(), name.to_string()),
        None => (DOCKER_HUB.into(), format!("library/{name}")),
    }
}

/// Whether the first component of a name is a registry host rather than a namespace.
pub fn is_registry_host(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost"
}

fn normalise_registry(r: &str) -> String {
    match r {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.into(),
        other => other.to_string(),
    }
}

pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB { "registry-1.docker.io" } else { registry }
}

/// Whether a registry host is this machine, where plain HTTP is used without `--insecure`.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A tag as registries take it: letters, digits, `_`, `.`, `-`, at most 128, not starting
/// with `.` or `-`.
pub fn valid_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with(['.', '-'])
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_docker_reads_them() {
        let r = Reference::parse("caddy:2.8").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/caddy", Some("2.8"))
        );
        assert_eq!(r.host(), "registry-1.docker.io");
        let r = Reference::parse("127.0.0.1:5000/team/app").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "team/app", None)
        );
        assert!(is_loopback(&r.registry));
        let d = "sha256:".to_string() + &"ab".repeat(32);
        let r = Reference::parse(&format!("ghcr.io/o/n:1.0@{d}")).unwrap();
        assert_eq!(r.reference(), d);
        assert_eq!(r.to_string(), format!("ghcr.io/o/n:1.0@{d}"));
        assert!(!is_loopback("ghcr.io"));
        assert!(is_loopback("localhost:5000") && is_loopback("[::1]:5000"));
        assert!(Reference::parse("ghcr.io/Bad/Name").is_err());
        assert!(Reference::parse("ghcr.io/o/n@sha256:zz").is_err());
    }
}
