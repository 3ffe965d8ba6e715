//! Helpers shared by the integration tests: running the binary in a scratch directory,
//! copying fixtures, a tiny HTTP server for downloads, and checks for the external
//! programs the tests need (which fail loudly when missing, never skip).
#![allow(dead_code)]

pub mod registry;
pub mod ssh;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// `n` incompressible bytes (xorshift64 from `seed`): layers whose size on the wire is known.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails the test when an external program is missing: `scripts/test` installs them.
pub fn require(program: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "this test needs `{program}`; run the test suite through `scripts/test`, which installs it");
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "assemble failed:\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

fn finish(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs `assemble` in `dir` with `cache` as its cache, no colour, and `envs` added.
pub fn assemble(dir: &Path, cache: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_assemble"));
    c.current_dir(dir)
        .args(args)
        .env("ASSEMBLE_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("ASSEMBLE_JOBS");
    for (k, v) in envs {
        c.env(k, v);
    }
    finish(c.output().expect("run assemble"))
}

/// Runs `assemble` through `sh` so a umask can be set first.
pub fn assemble_with_umask(dir: &Path, cache: &Path, umask: &str, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut c = Command::new("sh");
    c.current_dir(dir)
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_assemble"))
        .args(args)
        .env("ASSEMBLE_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in envs {
        c.env(k, v);
    }
    finish(c.output().expect("run assemble"))
}

pub fn sh(dir: &Path, script: &str) -> Run {
    finish(Command::new("sh").current_dir(dir).arg("-c").arg(script).output().expect("run sh"))
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let meta = std::fs::symlink_metadata(&src).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if meta.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Copies the repository's `fixtures/` into a scratch directory and returns its path.
pub fn fixtures(tmp: &Path) -> PathBuf {
    let dst = tmp.join("fixtures");
    copy_dir(&repo().join("fixtures"), &dst);
    dst
}

/// `mode uid:gid path -> target`, one line per entry under `root`, sorted by path.
pub fn listing(root: &Path) -> String {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for p in names {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let kind = if m.file_type().is_symlink() {
                'l'
            } else if m.is_dir() {
                'd'
            } else {
                '-'
            };
            let mut line = format!("{kind}{:04o} {}:{} /{rel}", m.mode() & 0o7777, m.uid(), m.gid());
            if m.file_type().is_symlink() {
                line.push_str(&format!(" -> {}", std::fs::read_link(&p).unwrap().display()));
            } else if m.is_file() {
                line.push_str(&format!(" ({} bytes, {} links)", m.len(), m.nlink()));
            }
            out.push(line);
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.join("\n")
}

/// A small HTTP/1.1 file server on 127.0.0.1 for download tests. It counts requests (and
/// keeps the paths asked for) and can answer the first N of them with a 500.
pub struct HttpServer {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
    pub fail_first: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl HttpServer {
    pub fn serve(root: &Path) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let fail_first = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (root, count, fail, asked) = (root.to_path_buf(), requests.clone(), fail_first.clone(), paths.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let root = root.clone();
                let n = count.fetch_add(1, Ordering::SeqCst);
                let failing = n < fail.load(Ordering::SeqCst);
                let asked = asked.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap_or(0);
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
                    asked.lock().unwrap().push(path.clone());
                    let body = if failing {
                        None
                    } else if root.join(&path).is_dir() {
                        // A directory answers with an HTML index, as mirrors' web servers do.
                        let mut names: Vec<String> = std::fs::read_dir(root.join(&path))
                            .unwrap()
                            .map(|e| e.unwrap())
                            .map(|e| {
                                let n = e.file_name().to_string_lossy().into_owned();
                                if e.path().is_dir() { format!("{n}/") } else { n }
                            })
                            .collect();
                        names.sort();
                        let links: String = names.iter().map(|n| format!("<a href=\"{n}\">{n}</a>\n")).collect();
                        Some(format!("<html><body>\n<a href=\"../\">../</a>\n{links}</body></html>\n").into_bytes())
                    } else {
                        std::fs::read(root.join(&path)).ok()
                    };
                    let (status, body) = match body {
                        Some(b) => ("200 OK", b),
                        None if failing => ("500 Internal Server Error", b"fail".to_vec()),
                        None => ("404 Not Found", b"not found".to_vec()),
                    };
                    let head =
                        format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                });
            }
        });
        HttpServer { port, requests, fail_first, paths }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// How many requests asked for `path` (relative to the served directory).
    pub fn hits(&self, path: &str) -> usize {
        self.paths.lock().unwrap().iter().filter(|p| *p == path).count()
    }
}

pub fn sha256_file(p: &Path) -> String {
    use std::fmt::Write as _;
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    let mut hex = String::new();
    write!(hex, "{}", s.split_whitespace().next().unwrap()).unwrap();
    hex
}

/// A raw tar header for `name`, with no sanitising at all.
pub fn raw_header(name: &str, size: u64, typeflag: u8, link: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let field = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    field(&mut h, 100, 8, if typeflag == b'2' { 0o777 } else { 0o644 });
    field(&mut h, 108, 8, 0);
    field(&mut h, 116, 8, 0);
    field(&mut h, 124, 12, size);
    field(&mut h, 136, 12, 0);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

pub fn raw_tar(members: &[(String, Vec<u8>, u8, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data, typeflag, link) in members {
        out.extend_from_slice(&raw_header(name, data.len() as u64, *typeflag, link));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A tar like [`raw_tar`], but every member's name (and link target) also goes in a PAX
/// record before it, so names may be of any length and hold any byte, NUL included.
/// One member of [`pax_tar`]: name, content, typeflag, link target (all raw bytes).
pub type PaxMember = (Vec<u8>, Vec<u8>, u8, Vec<u8>);

pub fn pax_tar(members: &[PaxMember]) -> Vec<u8> {
    let record = |key: &str, value: &[u8]| -> Vec<u8> {
        let rest = key.len() + value.len() + 3;
        let mut len = rest + rest.to_string().len();
        if len.to_string().len() + rest != len {
            len = rest + len.to_string().len();
        }
        let mut r = format!("{len} {key}=").into_bytes();
        r.extend_from_slice(value);
        r.push(b'\n');
        r
    };
    let mut out = Vec::new();
    for (name, data, typeflag, link) in members {
        let mut pax = record("path", name);
        if !link.is_empty() {
            pax.extend(record("linkpath", link));
        }
        out.extend_from_slice(&raw_header("pax", pax.len() as u64, b'x', ""));
        out.extend_from_slice(&pax);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out.extend_from_slice(&raw_header("placeholder", data.len() as u64, *typeflag, ""));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Validates a recipe's SBOMs for one platform with the independent readers `scripts/test`
/// installs (spdx-tools; cyclonedx-python-lib's strict schema validation) and returns the
/// packages the SPDX document lists as `name version`, with the purl type (`deb`, `apk`).
pub fn validated_sbom_packages(dir: &Path, cache: &Path, recipe: &str, arch: &str) -> BTreeSet<(String, String)> {
    let venv = std::env::var("ASSEMBLE_TEST_VENV").unwrap_or_default();
    let python = Path::new(&venv).join("bin/python");
    assert!(
        !venv.is_empty() && python.is_file(),
        "this test needs spdx-tools and cyclonedx-python-lib; run the test suite through `scripts/test`, which installs them into a virtualenv and sets ASSEMBLE_TEST_VENV"
    );
    let spdx = dir.join(format!("sbom-{}.spdx.json", arch.replace('/', "-")));
    let cdx = dir.join(format!("sbom-{}.cdx.json", arch.replace('/', "-")));
    for (format, file) in [("spdx", &spdx), ("cyclonedx", &cdx)] {
        let run = assemble(dir, cache, &["sbom", "--locked", recipe, "--arch", arch, "--format", format], &[]).ok();
        std::fs::write(file, &run.stdout).unwrap();
    }
    let check = Command::new(&python)
        .arg("-c")
        .arg(
            "import sys\n\
             from spdx_tools.spdx.parser.parse_anything import parse_file\n\
             from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document\n\
             msgs = validate_full_spdx_document(parse_file(sys.argv[1]))\n\
             assert not msgs, [m.validation_message for m in msgs]\n\
             from cyclonedx.validation.json import JsonStrictValidator\n\
             from cyclonedx.schema import SchemaVersion\n\
             e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[2]).read())\n\
             assert e is None, e\n\
             print('valid')\n",
        )
        .arg(&spdx)
        .arg(&cdx)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "valid\n",
        "{arch}: the SBOMs do not validate:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&spdx).unwrap()).unwrap();
    let mut out = BTreeSet::new();
    for p in doc["packages"].as_array().unwrap() {
        let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap_or("");
        for kind in ["deb", "apk"] {
            if purl.starts_with(&format!("pkg:{kind}/")) {
                let name = p["name"].as_str().unwrap();
                out.insert((kind.to_string(), format!("{name} {}", p["versionInfo"].as_str().unwrap())));
            }
        }
    }
    // The CycloneDX document lists the same packages.
    let cdx: serde_json::Value = serde_json::from_slice(&std::fs::read(&cdx).unwrap()).unwrap();
    let listed: BTreeSet<(String, String)> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            let purl = c["purl"].as_str()?;
            let kind = purl.strip_prefix("pkg:")?.split('/').next()?;
            ["deb", "apk"].contains(&kind).then(|| {
                (kind.to_string(), format!("{} {}", c["name"].as_str().unwrap(), c["version"].as_str().unwrap()))
            })
        })
        .collect();
    assert_eq!(listed, out, "{arch}: SPDX and CycloneDX list other packages");
    out
}

/// A program `scripts/test` fetches from the Debian mirror's trixie suite (cosign, oras).
pub fn trixie_tool(name: &str) -> PathBuf {
    let dir = std::env::var("ASSEMBLE_TEST_TOOLS").unwrap_or_default();
    let path = Path::new(&dir).join(name);
    assert!(
        !dir.is_empty() && path.is_file(),
        "this test needs `{name}` from Debian's trixie suite; run the test suite through `scripts/test`, which fetches it and sets ASSEMBLE_TEST_TOOLS"
    );
    path
}

/// The hex digest of the first layer of the first platform in a `build --json` report.
pub fn first_layer_hex(built: &serde_json::Value) -> String {
    built[0]["platforms"][0]["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string()
}
