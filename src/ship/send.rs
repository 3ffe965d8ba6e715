//! Sending one image to one server: the ssh session, the store's inventory, the stream of
//! missing blobs, the new `index.json` and the load plan (see the module header of `ship`).

use crate::model::digest::Digest;
use crate::model::platform::Arch;
use crate::oci::blobs::ImageBlobs;
use crate::oci::{MEDIA_INDEX, REF_NAME};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::error::{Error, Result};
use super::history;
use super::stream::{Counting, Stream};

const REMOTE: &str = include_str!("remote.sh");
/// The largest store `index.json` a server may describe (it lists every name and version).
const MAX_STORE_INDEX: u64 = 64 << 20;
/// The annotation docker and containerd name an imported image by.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Where to ship: `[USER@]HOST[:PORT]`; a name from `~/.ssh/config` works as HOST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: Option<u16>,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target> {
        let bad = || Error::Target(s.to_string());
        if s.is_empty() || s.starts_with('-') || s.contains(char::is_whitespace) {
            return Err(bad());
        }
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u), r),
            Some(_) => return Err(bad()),
            None => (None, s),
        };
        // `[::1]:2222`, `host:2222`, `host`.
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(bad()),
            }
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port = port.map(|p| p.parse::<u16>().map_err(|_| bad())).transpose()?;
        let host = match user {
            Some(u) => format!("{u}@{host}"),
            None => host.to_string(),
        };
        Ok(Target { host, port })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Which engine on the server gets the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// podman, else docker, else containerd; none of them: the store only.
    Auto,
    Podman,
    Docker,
    Containerd,
    None,
}

impl std::str::FromStr for Load {
    type Err = String;
    fn from_str(s: &str) -> Result<Load, String> {
        Ok(match s {
            "auto" => Load::Auto,
            "podman" => Load::Podman,
            "docker" => Load::Docker,
            "containerd" | "ctr" => Load::Containerd,
            "none" => Load::None,
            _ => return Err(format!("`{s}`: expected auto, podman, docker, containerd or none")),
        })
    }
}

impl Load {
    fn word(self) -> &'static str {
        match self {
            Load::Auto => "auto",
            Load::Podman => "podman",
            Load::Docker => "docker",
            Load::Containerd => "containerd",
            Load::None => "none",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The store on the server (default: `~/.local/share/assemble/store` of the remote user).
    pub store: Option<String>,
    pub load: Load,
    /// The platform to load (default: the server's own).
    pub load_arch: Option<Arch>,
    /// The ssh program and its arguments (`ASSEMBLE_SSH_COMMAND`, default `ssh`).
    pub ssh: Vec<String>,
    /// `--prune`: after storing, keep this many versions of each image and remove every blob
    /// nothing kept refers to.
    pub prune: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        let ssh = std::env::var("ASSEMBLE_SSH_COMMAND")
            .ok()
            .map(|c| c.split_whitespace().map(String::from).collect::<Vec<_>>())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| vec!["ssh".to_string()]);
        Options { store: None, load: Load::Auto, load_arch: None, ssh, prune: None }
    }
}

/// One image to ship: what a push would send, under `name` with `tags`.
pub struct Image<'a> {
    pub name: &'a str,
    pub tags: &'a [String],
    pub plan: &'a ImageBlobs,
    /// Recorded in the store's history as the newest version of `name` (a rollback is not).
    pub record: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub host: String,
    pub store: String,
    pub image: String,
    pub digest: String,
    pub tags: Vec<String>,
    /// The server's platform (`uname -m` as an OCI architecture).
    pub server_arch: String,
    pub blobs_present: usize,
    pub blobs_sent: usize,
    /// Bytes of blob content sent (the tar stream adds its headers).
    pub bytes_sent: u64,
    /// The engine the image was loaded into, and the platform.
    pub loaded: Option<Loaded>,
    /// What `--prune` removed from the store.
    pub pruned: Option<Pruned>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Pruned {
    pub blobs: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub engine: String,
    pub platform: String,
    /// The engine had this image already under its name: nothing was loaded.
    pub already: bool,
}

/// What the server said before `ready`.
#[derive(Debug, Default)]
pub(super) struct Inventory {
    store: String,
    machine: String,
    engine: Option<String>,
    /// Whether the server can take the stream gzipped.
    gzip: bool,
    pub(super) index: Vec<u8>,
    pub(super) have: BTreeSet<String>,
}

/// A blob to send: bytes in memory (manifests, index) or a file in the local store.
enum Body<'a> {
    Bytes(&'a [u8]),
    File(&'a std::path::Path),
}

/// Ships one image to `target`. `progress` is told the bytes sent so far and the total.
pub fn ship(target: &Target, image: &Image<'_>, opts: &Options, progress: &mut dyn FnMut(u64, u64)) -> Result<Report> {
    session(target, opts, |c| {
        let stdin = c.stdin.take().expect("piped");
        let send = exchange(&c.host, &c.inv, image, opts, stdin, progress)?;
        c.finish(send)
    })
}

/// One ssh session with the server's side: `work` gets the store's inventory and the
/// session's pipes; a failure is explained by what the server or ssh said.
pub(super) fn session<T>(target: &Target, opts: &Options, work: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
    let host = target.to_string();
    let mut cmd = Command::new(&opts.ssh[0]);
    cmd.args(&opts.ssh[1..]);
    // Batch mode: no prompt can hang a pipeline; an unknown host key is refused, whatever
    // the user's config says about accepting new ones.
    cmd.args(["-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]);
    if let Some(p) = target.port {
        cmd.args(["-p", &p.to_string()]);
    }
    let store_arg = opts.store.clone().unwrap_or_default();
    cmd.arg("--").arg(&target.host).arg(format!(
        "sh -c {} assemble-ship {} {}",
        quote(REMOTE),
        quote(&store_arg),
        quote(opts.load.word())
    ));
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    tracing::debug!("running {} … {} (the server's side of ship)", opts.ssh.join(" "), target.host);
    let mut child = cmd.spawn().map_err(|source| Error::Spawn { program: opts.ssh[0].clone(), source })?;
    let stderr = child.stderr.take().expect("piped");
    let said = Arc::new(Mutex::new(String::new()));
    let said2 = said.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            tracing::debug!("{line}");
            let mut s = said2.lock().expect("lock");
            s.push_str(&line);
            s.push('\n');
        }
    });
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let stdin = child.stdin.take();
    let result = read_inventory(&mut out, &host).and_then(|inv| {
        let mut conn = Conn { host: host.clone(), out, stdin, inv };
        let r = work(&mut conn);
        drop(conn.stdin.take());
        r
    });
    let status = child.wait().map_err(|source| Error::Spawn { program: opts.ssh[0].clone(), source })?;
    reader.join().ok();
    let said = said.lock().expect("lock").clone();
    match result {
        Ok(v) if status.success() => Ok(v),
        // What the server or ssh said explains a failure better than a broken pipe does.
        other => Err(failure(target, opts, status.code().unwrap_or(-1), &said).or(other.err()).unwrap_or_else(|| {
            Error::Ssh { host: host.clone(), code: status.code().unwrap_or(-1), message: said.trim().to_string() }
        })),
    }
}

/// An open session: the store's inventory and the pipes to the server's side.
pub(super) struct Conn {
    pub(super) host: String,
    pub(super) out: BufReader<std::process::ChildStdout>,
    pub(super) stdin: Option<std::process::ChildStdin>,
    pub(super) inv: Inventory,
}

impl Conn {
    /// After the stream: what the server reported (stored, loaded, pruned, done).
    pub(super) fn finish(&mut self, send: Report) -> Result<Report> {
        let mut tail = String::new();
        self.out.read_to_string(&mut tail).ok();
        if !tail.lines().any(|l| l == "done") {
            return Err(Error::Protocol {
                host: self.host.clone(),
                message: format!("no `done` after the stream: {tail}"),
            });
        }
        let said = |word: &str| tail.lines().any(|l| l.starts_with(word));
        let loaded = send
            .loaded
            .clone()
            .filter(|_| said("loaded ") || said("present "))
            .map(|l| Loaded { already: said("present "), ..l });
        let pruned = tail.lines().find_map(|l| {
            let mut w = l.strip_prefix("pruned ")?.split(' ');
            Some(Pruned { blobs: w.next()?.parse().ok()?, bytes: w.next()?.parse().ok()? })
        });
        Ok(Report { loaded, pruned, ..send })
    }

    /// A blob of the store, checked against its digest (the server is not trusted to say
    /// what it holds); at most `limit` bytes.
    pub(super) fn blob(&mut self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let protocol = |message: String| Error::Protocol { host: self.host.clone(), message };
        let stdin = self.stdin.as_mut().expect("open");
        stdin.write_all(format!("cat {}\n", digest.hex()).as_bytes()).map_err(|e| protocol(e.to_string()))?;
        stdin.flush().map_err(|e| protocol(e.to_string()))?;
        let mut line = String::new();
        self.out.read_line(&mut line).map_err(|e| protocol(e.to_string()))?;
        let size: u64 = match line.trim_end().strip_prefix("blob ") {
            Some(n) => n.parse().map_err(|_| protocol(format!("bad blob size `{n}`")))?,
            None => return Err(protocol(format!("the store has no blob {digest} (it said `{}`)", line.trim_end()))),
        };
        if size > limit {
            return Err(protocol(format!("blob {digest} is {size} bytes, more than the {limit} a document may be")));
        }
        let mut bytes = vec![0; size as usize];
        self.out.read_exact(&mut bytes).map_err(|e| protocol(e.to_string()))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(protocol(format!("blob {digest} of the store has sha256 {actual}")));
        }
        Ok(bytes)
    }
}

/// The error the server's side or ssh reported on stderr, if any.
fn failure(target: &Target, opts: &Options, code: i32, said: &str) -> Option<Error> {
    let host = target.to_string();
    if let Some(m) = said.lines().find_map(|l| l.strip_prefix("assemble-ship: ")) {
        return Some(Error::Remote { host, message: m.to_string() });
    }
    if said.contains("Host key verification failed") || said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        let word = |w: &str| {
            if w.chars().all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c)) {
                w.to_string()
            } else {
                quote(w)
            }
        };
        let port = target.port.map(|p| format!("-p {p} ")).unwrap_or_default();
        let mut connect: Vec<String> = opts.ssh.iter().map(|w| word(w)).collect();
        connect.push(format!("{port}{}", word(&target.host)));
        let bare = target.host.rsplit_once('@').map_or(target.host.as_str(), |(_, h)| h);
        let keyscan = format!("ssh-keyscan {port}{}", word(bare));
        return Some(Error::HostKey { host, connect: connect.join(" "), keyscan });
    }
    (code == 255).then(|| Error::Ssh { host, code, message: said.trim().to_string() })
}

fn read_inventory(out: &mut impl BufRead, host: &str) -> Result<Inventory> {
    let protocol = |message: String| Error::Protocol { host: host.into(), message };
    let mut inv = Inventory::default();
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).map_err(|e| protocol(e.to_string()))? == 0 {
            return Err(protocol("the session ended before the store was ready".into()));
        }
        let l = line.trim_end_matches('\n');
        let (key, value) = l.split_once(' ').unwrap_or((l, ""));
        match key {
            "store" => inv.store = value.into(),
            "arch" => inv.machine = value.into(),
            "engine" => inv.engine = Some(value.into()),
            "gzip" => inv.gzip = true,
            "have" => {
                inv.have.insert(value.into());
            }
            "index" => {
                let n: u64 = value.parse().map_err(|_| protocol(format!("bad index size `{value}`")))?;
                if n > MAX_STORE_INDEX {
                    return Err(protocol(format!(
                        "the store's index.json is {n} bytes, more than the {MAX_STORE_INDEX} ship takes"
                    )));
                }
                inv.index = Vec::new();
                (&mut *out).take(n).read_to_end(&mut inv.index).map_err(|e| protocol(e.to_string()))?;
                if inv.index.len() as u64 != n {
                    return Err(protocol("the session ended inside the store's index.json".into()));
                }
                out.read_line(&mut String::new()).map_err(|e| protocol(e.to_string()))?;
            }
            "ready" => return Ok(inv),
            // A login banner or a shell's greeting: not ours.
            _ => tracing::debug!("{host}: {l}"),
        }
    }
}

/// The OCI architecture `uname -m` names.
fn machine_arch(m: &str) -> Option<Arch> {
    match m {
        "x86_64" | "amd64" => Some(Arch::Amd64),
        "aarch64" | "arm64" | "armv8l" => Some(Arch::Arm64),
        "armv7l" | "armv7" => Some(Arch::ArmV7),
        "armv6l" => Some(Arch::ArmV6),
        "i386" | "i686" => Some(Arch::I386),
        "ppc64le" => Some(Arch::Ppc64le),
        "s390x" => Some(Arch::S390x),
        "riscv64" => Some(Arch::Riscv64),
        _ => None,
    }
}

/// Sends the stream (missing blobs, new index.json, load plan) and returns the report.
pub(super) fn exchange(
    host: &str,
    inv: &Inventory,
    image: &Image<'_>,
    opts: &Options,
    stdin: std::process::ChildStdin,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report> {
    let plan = image.plan;
    let index = &plan.index;
    // Everything the store must hold for this image, each digest once.
    let mut all: BTreeMap<Digest, (u64, Body<'_>)> = BTreeMap::new();
    for b in &plan.blobs {
        all.entry(b.digest).or_insert((b.size, Body::File(&b.path)));
    }
    for d in plan.manifests.iter().chain(std::iter::once(index)).chain(plan.referrers.iter().map(|r| &r.manifest)) {
        all.entry(d.digest).or_insert((d.bytes.len() as u64, Body::Bytes(&d.bytes)));
    }
    let missing: Vec<(&Digest, &(u64, Body<'_>))> = all.iter().filter(|(d, _)| !inv.have.contains(&d.hex())).collect();
    let total: u64 = missing.iter().map(|(_, (size, _))| size).sum();
    tracing::info!(
        "{host}: {} blob(s) to send ({}), {} already in the store",
        missing.len(),
        crate::model::text::human(total),
        all.len() - missing.len()
    );

    let names: Vec<String> = image.tags.iter().map(|t| format!("{}:{t}", image.name)).collect();
    if names.is_empty() {
        return Err(Error::Protocol {
            host: host.into(),
            message: format!("`{}` has no tag to ship under", image.name),
        });
    }
    let update = history::Update {
        names: &names,
        index,
        referrers: &plan.referrers,
        record: image.record.then_some((image.name, image.tags)),
        keep: opts.prune,
    };
    let new_index = history::merged_index(host, &inv.index, &update)?;
    let server = machine_arch(&inv.machine);
    let load = match (&inv.engine, opts.load) {
        (_, Load::None) | (None, _) => None,
        (Some(engine), _) => {
            Some((engine.clone(), load_plan(host, &inv.machine, server, image, &names, opts.load_arch, engine)?))
        }
    };
    if opts.load == Load::Auto && inv.engine.is_none() {
        tracing::info!("{host}: no podman, docker or containerd found; the image stays in the store");
    }

    let mut w = Counting { inner: stdin, sent: 0, total, progress };
    let old_sum = Digest::of(&inv.index);
    let broke = |e: std::io::Error| Error::Protocol { host: host.into(), message: format!("the stream broke: {e}") };
    let mode = if inv.gzip { "gzip" } else { "plain" };
    let prune = if opts.prune.is_some() { "prune" } else { "keep" };
    w.inner.write_all(format!("go {} {mode} {prune}\n", old_sum.hex()).as_bytes()).map_err(broke)?;
    let mut stream = Stream { out: w, gzip: inv.gzip, pending: Vec::new() };
    for (digest, (size, body)) in &missing {
        let name = format!("blobs/{}", digest.hex());
        match body {
            Body::Bytes(b) => stream.small(&name, b).map_err(broke)?,
            Body::File(p) => {
                let f = fs_err::File::open(p).map_err(|source| Error::Io { path: p.to_path_buf(), source })?;
                stream.file(&name, *size, f).map_err(broke)?;
            }
        }
    }
    stream.small("index.json", &new_index).map_err(broke)?;
    // Every blob of this image: a prune on the server never removes them.
    let keep: String = all.keys().map(|d| format!("{}\n", d.hex())).collect();
    stream.small("keep", keep.as_bytes()).map_err(broke)?;
    let platform = if let Some((engine, plan)) = &load {
        stream.small("load/index.json", &plan.index).map_err(broke)?;
        if let Some(m) = &plan.docker_manifest {
            stream.small("load/manifest.json", m).map_err(broke)?;
        }
        stream.small("load/plan", format!("engine {engine}\n{}", plan.text).as_bytes()).map_err(broke)?;
        Some(plan.platform.clone())
    } else {
        None
    };
    stream.finish().map_err(broke)?;
    Ok(Report {
        host: host.into(),
        store: inv.store.clone(),
        image: image.name.into(),
        digest: index.digest.to_string(),
        tags: image.tags.to_vec(),
        server_arch: server.map_or(inv.machine.clone(), |a| a.name().to_string()),
        blobs_present: all.len() - missing.len(),
        blobs_sent: missing.len(),
        bytes_sent: total,
        loaded: load.zip(platform).map(|((engine, _), platform)| Loaded { engine, platform, already: false }),
        pruned: None,
    })
}

/// What the server is told to load: the plan's text (names, digest, the blobs of the platform
/// to load), the one-image `index.json` the engine reads, the platform's name, and for a
/// Docker-format load the archive's `manifest.json`.
struct LoadPlan {
    text: String,
    index: Vec<u8>,
    platform: String,
    docker_manifest: Option<Vec<u8>>,
}

/// The load plan of one platform.
fn load_plan(
    host: &str,
    machine: &str,
    server: Option<Arch>,
    image: &Image<'_>,
    names: &[String],
    wanted: Option<Arch>,
    engine: &str,
) -> Result<LoadPlan> {
    let plan = image.plan;
    let index = &plan.index;
    let manifest_blobs = |bytes: &[u8]| -> Vec<String> {
        let v: Value = serde_json::from_slice(bytes).unwrap_or_default();
        std::iter::once(&v["config"])
            .chain(v["layers"].as_array().into_iter().flatten())
            .filter_map(|d| d["digest"].as_str()?.strip_prefix("sha256:").map(String::from))
            .collect()
    };
    let top: Value = serde_json::from_slice(&index.bytes).unwrap_or_default();
    let (descriptor, mut blobs, platform, manifest) = match top["manifests"].as_array() {
        // A single-platform image: load it as it is.
        None => {
            let arch = format!("{}/{}", top["config"]["platform"]["os"].as_str().unwrap_or("linux"), machine);
            let d =
                json!({"mediaType": index.media_type, "digest": index.digest.to_string(), "size": index.bytes.len()});
            (d, manifest_blobs(&index.bytes), arch, index.bytes.as_slice())
        }
        Some(entries) => {
            let arch = wanted.or(server);
            let found = entries.iter().find(|m| {
                let p = &m["platform"];
                arch.is_some_and(|a| {
                    Arch::from_oci(p["architecture"].as_str().unwrap_or(""), p["variant"].as_str()) == Some(a)
                })
            });
            let Some(entry) = found else {
                let have: Vec<String> = entries
                    .iter()
                    .map(|m| {
                        format!(
                            "{}/{}",
                            m["platform"]["os"].as_str().unwrap_or("?"),
                            m["platform"]["architecture"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                return Err(Error::NoPlatform {
                    host: host.into(),
                    arch: arch.map_or(machine.to_string(), |a| a.name().to_string()),
                    have: have.join(", "),
                });
            };
            let a = arch.expect("found a platform for it");
            let digest = entry["digest"].as_str().unwrap_or("");
            let doc =
                plan.manifests.iter().find(|m| m.digest.to_string() == digest).ok_or_else(|| Error::Protocol {
                    host: host.into(),
                    message: format!("the image's index names {digest}, which it does not carry"),
                })?;
            let mut blobs = manifest_blobs(&doc.bytes);
            // The server's own platform: the engine gets the index and picks it (so the image
            // is known by the index digest, as built); another: its manifest alone.
            let d = if Some(a) == server {
                blobs.extend(plan.manifests.iter().map(|m| m.digest.hex().to_string()));
                json!({"mediaType": index.media_type, "digest": index.digest.to_string(), "size": index.bytes.len()})
            } else {
                blobs.push(doc.digest.hex().to_string());
                json!({"mediaType": doc.media_type, "digest": doc.digest.to_string(), "size": doc.bytes.len()})
            };
            (d, blobs, format!("linux/{}", a.name()), doc.bytes.as_slice())
        }
    };
    blobs.push(index.digest.hex().to_string());
    blobs.sort();
    blobs.dedup();
    let mut descriptor = descriptor;
    descriptor["annotations"] = json!({REF_NAME: names[0], CONTAINERD_NAME: names[0]});
    let load_index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [descriptor]});
    // What the engine will know the image by, to skip a load it already has.
    let mut text = format!("digest {}\n", descriptor["digest"].as_str().unwrap_or(""));
    for n in names {
        text.push_str(&format!("name {n}\n"));
    }
    for b in &blobs {
        text.push_str(&format!("blob {b}\n"));
    }
    let docker = if engine == "podman" { docker_format(plan, manifest, names) } else { None };
    let docker_manifest = docker.map(|(lines, manifest)| {
        text.push_str(&lines);
        manifest
    });
    Ok(LoadPlan { text, index: serde_json::to_vec(&load_index).expect("json"), platform, docker_manifest })
}

/// podman keeps a health check only from a Docker-format image: a platform whose config has
/// one is loaded into podman as a `docker save` archive. The plan's lines (the config, each
/// layer with its compression and diff_id) and the archive's `manifest.json`; `None` for a
/// platform without a health check.
fn docker_format(plan: &ImageBlobs, manifest: &[u8], names: &[String]) -> Option<(String, Vec<u8>)> {
    let m: Value = serde_json::from_slice(manifest).ok()?;
    let config_hex = m["config"]["digest"].as_str()?.strip_prefix("sha256:")?;
    let path = &plan.blobs.iter().find(|b| b.digest.hex() == config_hex)?.path;
    let config: Value = serde_json::from_slice(&fs_err::read(path).ok()?).ok()?;
    if config["config"]["Healthcheck"].is_null() {
        return None;
    }
    let diff_ids = config["rootfs"]["diff_ids"].as_array()?;
    let mut lines = format!("format docker\nconfig {config_hex}\n");
    let mut layers = Vec::new();
    for (layer, diff_id) in m["layers"].as_array()?.iter().zip(diff_ids) {
        let hex = layer["digest"].as_str()?.strip_prefix("sha256:")?;
        let diff = diff_id.as_str()?.strip_prefix("sha256:")?;
        let media = layer["mediaType"].as_str().unwrap_or("");
        let how = if media.ends_with("+gzip") {
            "gzip"
        } else if media.ends_with("+zstd") {
            "zstd"
        } else {
            "none"
        };
        lines.push_str(&format!("layer {hex} {how} {diff}\n"));
        layers.push(format!("layers/{diff}.tar"));
    }
    let archive_manifest =
        json!([{"Config": format!("blobs/sha256/{config_hex}"), "RepoTags": names, "Layers": layers}]);
    Some((lines, serde_json::to_vec(&archive_manifest).expect("json")))
}

/// One word for a POSIX shell: in single quotes, each `'` as `'\''`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_key_hint_gives_commands_ssh_can_run() {
        let target = Target { host: "root@127.0.0.1".into(), port: Some(2222) };
        let opts = Options { ssh: vec!["ssh".into(), "-F".into(), "my config".into()], ..Options::default() };
        let e = failure(&target, &opts, 255, "Host key verification failed.\n").unwrap();
        assert_eq!(
            e.hint().unwrap(),
            "connect once with `ssh -F 'my config' -p 2222 root@127.0.0.1`, check the fingerprint it shows with the server's owner and accept it; or look at the keys with `ssh-keyscan -p 2222 127.0.0.1` and add the one you checked to ~/.ssh/known_hosts"
        );
    }

    #[test]
    fn targets_parse_user_host_and_port() {
        let t = |s: &str| Target::parse(s).map(|t| (t.host, t.port));
        assert_eq!(t("web1").unwrap(), ("web1".into(), None));
        assert_eq!(t("root@10.0.0.5:2222").unwrap(), ("root@10.0.0.5".into(), Some(2222)));
        assert_eq!(t("deploy@[::1]:22").unwrap(), ("deploy@::1".into(), Some(22)));
        for bad in ["", "-oProxyCommand=x", "host:port", "@host", "a b", "[::1", "host:99999"] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
