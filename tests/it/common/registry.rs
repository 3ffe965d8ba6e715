//! A real distribution registry (Debian's `docker-registry`) on 127.0.0.1 with its own
//! storage, a token server that signs JWTs with a throwaway key, and a proxy that counts
//! what reaches the registry and injects faults.

use super::require;
use base64::Engine as _;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub enum Auth {
    None,
    Htpasswd { user: String, password: String },
    Token { realm: String, cert: PathBuf },
}

pub struct Registry {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        require("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let auth_yaml = match auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                require("htpasswd");
                let file = dir.path().join("htpasswd");
                let ok = Command::new("htpasswd")
                    .args(["-Bbc", file.to_str().unwrap(), &user, &password])
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(ok.success(), "htpasswd failed");
                format!("auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n", file.display())
            }
            Auth::Token { realm, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_yaml}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let start = Instant::now();
        while TcpStream::connect(&addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not start: {}",
                std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, addr, dir }
    }
}

/// A throwaway RSA key and self-signed certificate for signing registry tokens.
pub struct Signer {
    pub dir: tempfile::TempDir,
    x5c: String,
}

impl Signer {
    pub fn new() -> Signer {
        require("openssl");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ok = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=assemble-test-token"])
            .arg("-keyout")
            .arg(d.join("key.pem"))
            .arg("-out")
            .arg(d.join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "openssl req failed");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(d.join("cert.pem"))
            .output()
            .unwrap()
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        Signer { dir, x5c }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// An RS256 JWT granting `scopes` (`repository:NAME:ACTIONS` each).
    pub fn token(&self, subject: &str, scopes: &[String]) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": "test-issuer", "sub": subject, "aud": "test-registry",
            "exp": now + 600, "nbf": now - 60, "iat": now,
            "jti": format!("{now}-{}", rand_id()), "access": access,
        });
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(self.dir.path().join("key.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(signing_input.as_bytes()).unwrap();
        let sig = child.wait_with_output().unwrap().stdout;
        format!("{signing_input}.{}", b64(&sig))
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

/// One HTTP request as read off a socket.
pub struct HttpRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Method, target and headers of a request.
type Head = (String, String, Vec<(String, String)>);

fn read_head(r: &mut BufReader<TcpStream>) -> Option<Head> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Some((method, target, headers))
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<HttpRequest> {
    let (method, target, headers) = read_head(r)?;
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(HttpRequest { method, target, headers, body })
}

fn respond(s: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = s.write_all(out.as_bytes());
    let _ = s.write_all(body);
}

/// The token endpoint: Basic credentials for `user:password`, or the OAuth2
/// `refresh_token` grant for `refresh`. Every token it hands out is kept in `issued`.
pub struct TokenServer {
    pub addr: String,
    pub issued: Arc<Mutex<Vec<String>>>,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl TokenServer {
    pub fn start(signer: Arc<Signer>, user: &str, password: &str, refresh: &str) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let issued = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
        let refresh = refresh.to_string();
        let (issued2, requests2) = (issued.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let Some(req) = read_request(&mut r) else { continue };
                let mut s = stream;
                let (query, form) = (
                    req.target.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default(),
                    String::from_utf8_lossy(&req.body).into_owned(),
                );
                let params = |text: &str, key: &str| -> Vec<String> {
                    text.split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .filter(|(k, _)| *k == key)
                        .map(|(_, v)| percent_decode(v))
                        .collect()
                };
                requests2.lock().unwrap().push(format!("{} {}", req.method, req.target));
                let (granted, key) = if req.method == "POST" {
                    let ok = params(&form, "grant_type") == ["refresh_token"]
                        && params(&form, "refresh_token") == [refresh.clone()];
                    let scopes: Vec<String> = params(&form, "scope")
                        .iter()
                        .flat_map(|s| s.split(' ').map(String::from).collect::<Vec<_>>())
                        .collect();
                    (ok.then_some(scopes), "access_token")
                } else {
                    let ok = req.header("authorization") == Some(basic.as_str());
                    (ok.then(|| params(&query, "scope")), "token")
                };
                match granted {
                    Some(scopes) => {
                        let token = signer.token("tester", &scopes);
                        issued2.lock().unwrap().push(token.clone());
                        let body = serde_json::json!({key: token, "expires_in": 600}).to_string();
                        respond(&mut s, "200 OK", &[("Content-Type", "application/json".into())], body.as_bytes());
                    }
                    None => respond(&mut s, "401 Unauthorized", &[], b"{}"),
                }
            }
        });
        TokenServer { addr, issued, requests }
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the proxy does to one matching request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` seconds when given) without forwarding.
    Status(u16, Option<u64>),
    /// Read half the body, then drop the connection.
    ResetMidBody,
    /// Answer `307` to the same path on this base URL (another host).
    Redirect(String),
    /// Forward the request, then point the answer's `Location` at the same path on this
    /// base URL (an upload location on another host).
    RewriteLocation(String),
    /// Answer 200 with a body that never ends (no Content-Length), until the client hangs up.
    Endless,
}

/// A rule: the first `times` requests whose method is `method` and whose path contains
/// `path_contains` get `fault`.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    pub path_contains: &'static str,
    pub fault: Fault,
    pub times: usize,
}

#[derive(Default)]
pub struct Seen {
    /// Body bytes of PUT and PATCH requests to blob uploads that reached the registry.
    pub blob_bytes: u64,
    pub requests: Vec<String>,
    pub faults: Vec<String>,
    /// Requests that arrived with an `Authorization` header.
    pub authorized: Vec<String>,
}

/// A reverse proxy in front of the registry: one request per connection.
pub struct Proxy {
    pub addr: String,
    pub seen: Arc<Mutex<Seen>>,
}

impl Proxy {
    pub fn start(upstream: &str, rules: Vec<Rule>) -> Proxy {
        Self::start_on("127.0.0.1", upstream, rules)
    }

    /// A proxy listening on another loopback address (`127.0.0.2` is another host to a client).
    pub fn start_on(ip: &str, upstream: &str, rules: Vec<Rule>) -> Proxy {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let rules = Arc::new(Mutex::new(rules.into_iter().collect::<VecDeque<_>>()));
        let (seen2, upstream) = (seen.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (seen, rules, upstream) = (seen2.clone(), rules.clone(), upstream.clone());
                std::thread::spawn(move || serve(stream, &upstream, &seen, &rules));
            }
        });
        Proxy { addr, seen }
    }
}

fn serve(stream: TcpStream, upstream: &str, seen: &Mutex<Seen>, rules: &Mutex<VecDeque<Rule>>) {
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut s = stream;
    let Some((method, target, headers)) = read_head(&mut r) else { return };
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let fault = {
        let mut rules = rules.lock().unwrap();
        let hit = rules
            .iter_mut()
            .find(|rule| rule.times > 0 && rule.method == method && target.contains(rule.path_contains));
        hit.map(|rule| {
            rule.times -= 1;
            rule.fault.clone()
        })
    };
    if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
        seen.lock().unwrap().authorized.push(format!("{method} {target}"));
    }
    if let Some(f) = &fault {
        seen.lock().unwrap().faults.push(format!("{method} {target}: {f:?}"));
    }
    match fault {
        Some(Fault::ResetMidBody) => {
            let mut half = vec![0; len / 2];
            let _ = r.read_exact(&mut half);
            let _ = s.shutdown(std::net::Shutdown::Both);
            return;
        }
        Some(Fault::Status(code, retry_after)) => {
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let headers: Vec<(&str, String)> =
                retry_after.map(|s| ("Retry-After", s.to_string())).into_iter().collect();
            respond(&mut s, &format!("{code} Injected"), &headers, b"");
            return;
        }
        Some(Fault::Redirect(base)) => {
            respond(&mut s, "307 Temporary Redirect", &[("Location", format!("{base}{target}"))], b"");
            return;
        }
        Some(Fault::Endless) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n";
            if s.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b' '; 1 << 16];
            while s.write_all(&chunk).is_ok() {}
            return;
        }
        Some(Fault::RewriteLocation(_)) | None => {}
    }
    let mut body = vec![0; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    {
        let mut seen = seen.lock().unwrap();
        seen.requests.push(format!("{method} {target}"));
        if (method == "PUT" || method == "PATCH") && target.contains("/blobs/uploads/") {
            seen.blob_bytes += len as u64;
        }
    }
    let Ok(mut up) = TcpStream::connect(upstream) else { return };
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in &headers {
        if !k.eq_ignore_ascii_case("connection") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    if up.write_all(head.as_bytes()).and_then(|_| up.write_all(&body)).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    if let Some(Fault::RewriteLocation(base)) = &fault {
        answer = rewrite_location(&answer, base);
    }
    let _ = s.write_all(&answer);
}

/// The HTTP answer with its `Location` header's path put on `base`.
fn rewrite_location(answer: &[u8], base: &str) -> Vec<u8> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else { return answer.to_vec() };
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let lines: Vec<String> = head
        .split("\r\n")
        .map(|l| match l.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("location") => {
                let v = v.trim();
                let path = match v.split_once("://") {
                    Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
                    None => v.to_string(),
                };
                format!("Location: {base}{path}")
            }
            _ => l.to_string(),
        })
        .collect();
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&answer[end..]);
    out
}

/// Writes a docker `config.json` with `auths` for `registry` into `dir`.
pub fn docker_config(dir: &Path, registry: &str, entry: serde_json::Value) {
    std::fs::create_dir_all(dir).unwrap();
    let config = serde_json::json!({"auths": {registry: entry}});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}
