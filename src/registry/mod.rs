//! A distribution-spec client of our own, shared by `push` and by image bases.
//!
//! Why not a crate: manifests must go out as the exact bytes that were hashed, a mount
//! answered with 202 is a normal upload start, uploads are retried by re-reading the blob
//! from the store, and docker identity tokens need the OAuth2 refresh-token flow.
//!
//! Every request goes through [`Client::send`]: it answers a 401 by reading the
//! `WWW-Authenticate` challenge (Basic, or a Bearer token fetched for the request's scope
//! and cached per scope), and retries 408/429/5xx and broken connections with backoff,
//! honouring `Retry-After`. Credentials go only to the registry itself: a request to any
//! other scheme, host or port (an upload `Location` elsewhere, a blob URL) carries no
//! `Authorization`, and redirects to another host drop it (reqwest's redirect policy);
//! Basic credentials go to a token realm as the distribution token spec has it, over HTTPS
//! unless the realm is on this machine. Nothing here logs a header, a token or a password.

pub mod auth;
pub mod pull;
pub mod push;

use crate::model::digest::Digest;
pub use crate::model::reference::{self as reference, Reference};
use auth::{Challenge, Credential, Secret};
use reqwest::{Method, StatusCode, header};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Manifest media types we ask for, in preference order.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{method} {url} failed: HTTP {status}{detail}")]
    Status { method: Method, url: String, status: u16, detail: String },
    #[error("{method} {url} failed")]
    Network {
        method: Method,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The registry could not be reached at all (no name, nothing listening): retrying would
    /// only make the user wait.
    #[error("cannot reach {registry}: {cause}")]
    Unreachable { registry: String, cause: String },
    #[error("{registry} asks for credentials{detail}")]
    Unauthorized { registry: String, detail: String },
    #[error("credentials for {registry} were rejected{detail}")]
    Rejected { registry: String, detail: String },
    #[error("getting a token for {registry} from {realm} failed: {message}")]
    Token { registry: String, realm: String, message: String },
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    Mismatch { what: String, expected: Digest, actual: Digest },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Credentials(#[from] auth::Error),
    #[error("cannot read or write `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Allow plain HTTP to a registry that is not on this machine.
    pub insecure: bool,
    /// `--creds`: overrides every configuration file.
    pub creds: Option<Credential>,
}

/// The body of a request, re-created for every attempt.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Bytes(std::sync::Arc<Vec<u8>>),
    /// `len` bytes of a file from `offset`: blobs are re-read from the store on a retry.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    async fn to_reqwest(&self) -> Result<reqwest::Body> {
        Ok(match self {
            Body::Empty => reqwest::Body::from(Vec::new()),
            Body::Bytes(b) => reqwest::Body::from(b.as_ref().clone()),
            Body::File { path, offset, len } => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let io = |source| Error::Io { path: path.clone(), source };
                let mut f = tokio::fs::File::open(path).await.map_err(io)?;
                f.seek(std::io::SeekFrom::Start(*offset)).await.map_err(io)?;
                let stream =
                    futures_util::stream::unfold((f.take(*len), vec![0u8; 1 << 18]), |(mut f, mut buf)| async {
                        match f.read(&mut buf).await {
                            Ok(0) => None,
                            Ok(n) => Some((Ok::<_, std::io::Error>(buf[..n].to_vec()), (f, buf))),
                            Err(e) => Some((Err(e), (f, buf))),
                        }
                    });
                reqwest::Body::wrap_stream(stream)
            }
        })
    }
}

/// One request: what to send and which access scope it needs.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// A path on the registry (`/v2/…`) or an absolute URL (an upload location).
    pub url: String,
    pub scope: String,
    pub headers: Vec<(header::HeaderName, String)>,
    pub body: Body,
    /// Whether a failure may simply be sent again (false for chunk uploads, which resume).
    pub retry: bool,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>, scope: &str) -> Request {
        Request { method, url: url.into(), scope: scope.into(), headers: Vec::new(), body: Body::Empty, retry: true }
    }

    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }
}

const ATTEMPTS: u32 = 6;

pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = std::env::var("ASSEMBLE_RETRY_DELAY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(500u64);
    Duration::from_millis(base.saturating_mul(1 << attempt.min(6)))
}

/// Access to one registry: its base URL, credential, challenge and token cache.
pub struct Client {
    http: reqwest::Client,
    pub registry: String,
    base: String,
    credential: Option<Credential>,
    /// `--insecure`: plain HTTP allowed to hosts that are not this machine.
    insecure: bool,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Secret>>,
    /// Whether the registry has answered once: a connection refused after that is a restart
    /// worth waiting for; before it, the registry is not there.
    answered: std::sync::atomic::AtomicBool,
}

impl Client {
    pub fn new(registry: &str, repository: &str, opts: &Options) -> Result<Client> {
        let loopback = reference::is_loopback(registry);
        let scheme = if loopback || opts.insecure { "http" } else { "https" };
        let credential = match &opts.creds {
            Some(c) => Some(c.clone()),
            None => match auth::lookup(registry, repository)? {
                Some((c, from)) => {
                    tracing::debug!("credentials for {registry} from {from}");
                    Some(c)
                }
                None => None,
            },
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("assemble/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .redirect(redirect_policy())
            .build()
            .map_err(|e| Error::Invalid(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            registry: registry.into(),
            base: format!("{scheme}://{}", reference::api_host(registry)),
            credential,
            insecure: opts.insecure,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            answered: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    /// Sends `req`, authenticating and retrying as the module describes. Returns any
    /// response that is not a retryable failure; the caller judges its status.
    pub async fn send(&self, req: &Request) -> Result<reqwest::Response> {
        let url = self.url(&req.url);
        let shown = loggable(&url);
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            let mut rb = self.http.request(req.method.clone(), &url);
            for (k, v) in &req.headers {
                rb = rb.header(k, v);
            }
            let ours = self.is_registry_url(&url);
            let sent = self.authorization(&req.scope).filter(|_| ours);
            let had_auth = sent.is_some();
            if let Some(h) = sent {
                rb = rb.header(header::AUTHORIZATION, h);
            }
            if !matches!(req.body, Body::Empty) || matches!(req.method, Method::PUT | Method::PATCH | Method::POST) {
                rb = rb.header(header::CONTENT_LENGTH, req.body.len());
                rb = rb.body(req.body.to_reqwest().await?);
            }
            let result = rb.send().await;
            attempt += 1;
            let resp = match result {
                Ok(r) => {
                    self.answered.store(true, std::sync::atomic::Ordering::Relaxed);
                    r
                }
                Err(e) if e.is_connect() && ours && !self.answered.load(std::sync::atomic::Ordering::Relaxed) => {
                    return Err(Error::Unreachable { registry: self.registry.clone(), cause: root_cause(&e) });
                }
                Err(e) if req.retry && attempt < ATTEMPTS => {
                    tracing::warn!("{} {shown}: {}; retrying ({attempt}/{ATTEMPTS})", req.method, e.without_url());
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => {
                    return Err(Error::Network { method: req.method.clone(), url: shown, source: e.without_url() });
                }
            };
            let status = resp.status();
            tracing::debug!("{} {shown} → {}", req.method, status.as_u16());
            if status == StatusCode::UNAUTHORIZED && ours {
                let header =
                    resp.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(String::from);
                let challenge = header.as_deref().and_then(Challenge::parse);
                // A Bearer token may have expired: one new token. Basic credentials that
                // were sent and refused are simply wrong.
                let retry = !had_auth || (!refreshed && challenge.as_ref().is_some_and(|c| c.scheme == "bearer"));
                if let Some(c) = challenge.filter(|_| retry) {
                    refreshed = had_auth;
                    self.tokens.lock().expect("token cache").remove(&req.scope);
                    *self.challenge.lock().expect("challenge") = Some(c.clone());
                    self.authenticate(&c, &req.scope).await?;
                    continue;
                }
                let detail = error_detail(resp).await;
                if had_auth {
                    return Err(Error::Rejected { registry: self.registry.clone(), detail });
                }
                return Err(Error::Unauthorized { registry: self.registry.clone(), detail });
            }
            let transient = matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504);
            if transient && req.retry && attempt < ATTEMPTS {
                let wait = retry_after(&resp).unwrap_or_else(|| backoff(attempt));
                tracing::warn!(
                    "{} {shown}: HTTP {}; retrying in {:.1}s ({attempt}/{ATTEMPTS})",
                    req.method,
                    status.as_u16(),
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Whether `url` is on the registry itself (same scheme, host and port): only then may a
    /// request carry its credentials.
    fn is_registry_url(&self, url: &str) -> bool {
        same_origin(url, &self.base)
    }

    /// Like [`Client::send`], but a status outside `ok` is an error naming the request.
    pub async fn expect(&self, req: &Request, ok: &[u16]) -> Result<reqwest::Response> {
        let resp = self.send(req).await?;
        let status = resp.status().as_u16();
        if ok.contains(&status) {
            return Ok(resp);
        }
        Err(Error::Status {
            method: req.method.clone(),
            url: loggable(&self.url(&req.url)),
            status,
            detail: error_detail(resp).await,
        })
    }

    fn authorization(&self, scope: &str) -> Option<String> {
        let challenge = self.challenge.lock().expect("challenge").clone()?;
        match challenge.scheme.as_str() {
            "basic" => self.credential.as_ref().and_then(Credential::basic_header),
            "bearer" => self.tokens.lock().expect("token cache").get(scope).map(|t| format!("Bearer {}", t.expose())),
            _ => None,
        }
    }

    async fn authenticate(&self, c: &Challenge, scope: &str) -> Result<()> {
        match c.scheme.as_str() {
            "basic" => match &self.credential {
                Some(Credential::Basic { .. }) => Ok(()),
                _ => Err(Error::Unauthorized {
                    registry: self.registry.clone(),
                    detail: " (Basic); give --creds, or log in with `docker login` or `podman login`".into(),
                }),
            },
            "bearer" => {
                let token = self.fetch_token(c, scope).await?;
                self.tokens.lock().expect("token cache").insert(scope.to_string(), token);
                Ok(())
            }
            other => Err(Error::Unauthorized {
                registry: self.registry.clone(),
                detail: format!(" with the unsupported scheme `{other}`"),
            }),
        }
    }

    /// The token flow: GET on the realm with Basic credentials (or none), or the OAuth2
    /// `refresh_token` grant when the credential is an identity token.
    async fn fetch_token(&self, c: &Challenge, scope: &str) -> Result<Secret> {
        let realm = c.params.get("realm").cloned().unwrap_or_default();
        let err = |message: String| Error::Token { registry: self.registry.clone(), realm: loggable(&realm), message };
        let realm_url = reqwest::Url::parse(&realm).map_err(|_| err("the challenge names no usable realm".into()))?;
        let plain_ok = realm_url.host_str().is_some_and(reference::is_loopback) || self.insecure;
        match realm_url.scheme() {
            "https" => {}
            "http" if plain_ok => {}
            "http" => {
                return Err(err(
                    "the realm is plain HTTP on another machine; credentials are sent to it only over HTTPS (or with --insecure)"
                        .into(),
                ));
            }
            _ => return Err(err("the challenge names no usable realm".into())),
        }
        let service = c.params.get("service").cloned().unwrap_or_default();
        let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        let mut attempt = 0;
        let resp = loop {
            let rb = match &self.credential {
                Some(Credential::IdentityToken(t)) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", t.expose()),
                        ("service", &service),
                        ("client_id", "assemble"),
                    ];
                    let joined = scopes.join(" ");
                    if !joined.is_empty() {
                        form.push(("scope", &joined));
                    }
                    let body =
                        form.iter().map(|(k, v)| format!("{k}={}", form_escape(v))).collect::<Vec<_>>().join("&");
                    self.http.post(&realm).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body)
                }
                other => {
                    let mut query: Vec<(&str, &str)> = vec![("service", &service)];
                    query.extend(scopes.iter().map(|s| ("scope", *s)));
                    let mut rb = self.http.get(&realm).query(&query);
                    if let Some(h) = other.as_ref().and_then(Credential::basic_header) {
                        rb = rb.header(header::AUTHORIZATION, h);
                    }
                    rb
                }
            };
            attempt += 1;
            match rb.send().await {
                Ok(r) if matches!(r.status().as_u16(), 429 | 500..=599) && attempt < ATTEMPTS => {
                    tokio::time::sleep(retry_after(&r).unwrap_or_else(|| backoff(attempt))).await;
                }
                Ok(r) => break r,
                Err(_) if attempt < ATTEMPTS => tokio::time::sleep(backoff(attempt)).await,
                Err(e) => return Err(err(e.without_url().to_string())),
            }
        };
        let status = resp.status();
        if status.as_u16() == 401 && self.credential.is_some() {
            return Err(Error::Rejected {
                registry: self.registry.clone(),
                detail: format!(" by its token service {}", loggable(&realm)),
            });
        }
        if !status.is_success() {
            return Err(err(format!("HTTP {}", status.as_u16())));
        }
        let body = resp.bytes().await.map_err(|e| err(e.without_url().to_string()))?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| err("the answer is not JSON".into()))?;
        let token = v["token"].as_str().or_else(|| v["access_token"].as_str()).unwrap_or("");
        if token.is_empty() {
            return Err(err("the answer holds no token".into()));
        }
        Ok(Secret::new(token.into()))
    }

    /// Checks the registry speaks the API, learning its challenge on the way.
    pub async fn ping(&self, scope: &str) -> Result<()> {
        self.expect(&Request::new(Method::GET, "/v2/", scope), &[200]).await.map(|_| ())
    }
}

/// Redirects are followed (blobs live on object storage), at most 10, but never from HTTPS
/// to plain HTTP: reqwest drops `Authorization` only when the host or port changes, so a
/// downgrade on the same host and port would send credentials in the clear.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade =
            attempt.previous().last().is_some_and(|p| p.scheme() == "https") && attempt.url().scheme() == "http";
        if downgrade {
            attempt.error("a redirect from HTTPS to plain HTTP is not followed")
        } else if attempt.previous().len() > 10 {
            attempt.error("more than 10 redirects")
        } else {
            attempt.follow()
        }
    })
}

/// Whether two URLs have the same scheme, host and port (default ports filled in).
pub fn same_origin(a: &str, b: &str) -> bool {
    let origin = |u: &str| {
        let u = reqwest::Url::parse(u).ok()?;
        Some((u.scheme().to_string(), u.host_str()?.to_ascii_lowercase(), u.port_or_known_default()))
    };
    matches!((origin(a), origin(b)), (Some(x), Some(y)) if x == y)
}

/// `repository:NAME:ACTIONS`.
pub fn scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

/// A URL for messages: without its query, which may carry upload state.
pub fn loggable(url: &str) -> String {
    let u = crate::model::text::redact(url);
    match u.split_once('?') {
        Some((p, _)) => format!("{p}?…"),
        None => u,
    }
}

fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The innermost cause of an error, which says what actually happened ("Connection refused",
/// "failed to lookup address information: Name or service not known").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(120)))
}

/// The registry's own words from an error body (`{"errors":[{"code","message"}]}`).
async fn error_detail(resp: reqwest::Response) -> String {
    let Ok(bytes) = resp.bytes().await else { return String::new() };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return String::new() };
    let parts: Vec<String> = v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| format!("{} {}", e["code"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join("; ").trim()) }
}

/// One runtime per command: registry work is async, the rest of the program is not.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Io { path: "tokio runtime".into(), source })
}
