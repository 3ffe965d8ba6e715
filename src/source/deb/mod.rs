//! Debian packages as a layer source: read the archives (each one's signed `InRelease` with
//! its own keyring, `Packages` checked against it and read a chunk of paragraphs at a time;
//! the main archive and the recipe's `sources`, see [`sources`]), resolve like apt (pin
//! priority, then version; while the main suite's index is read, what the build will almost
//! surely want is fetched on a [`Guess`]), fetch each `.deb` checked against its SHA256,
//! unpack without running anything (a package's files into one pack blob, see [`unpack`]),
//! and do natively what maintainer scripts would have done (see [`install`]).

pub mod certs;
pub mod control;
pub mod index;
pub mod install;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod sources;
pub mod unpack;
pub mod version;

use crate::model::platform::Arch;
use crate::source::fetch::{self, Download};
use crate::store::Store;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// One package pinned for one architecture and layer: what the lock records.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pin {
    pub arch: String,
    pub layer: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub url: String,
    pub sha256: String,
    pub size: u64,
    pub multi_arch_same: bool,
}

/// Someone told a set of resolved packages (see `resolve::Given::resolved_arch`).
pub type Told<'a> = &'a (dyn Fn(&[Pin]) + Sync);

/// What a build will almost surely install, told while the first index is still being
/// read: the main suite's `Essential: yes` packages (when the recipe asks for the Essential
/// set) and the packages the recipe names. Reading that index keeps one core busy for the
/// first half second of a cold build; fetching and unpacking these meanwhile keeps the
/// other one busy. A guess is fetched like any download (its size and SHA256 come from the
/// signed index and are checked as it arrives); one that resolution does not pick — a later
/// suite has another version — costs a download and an unpack, and nothing else.
pub struct Guess<'a> {
    pub told: Told<'a>,
    pub essential: bool,
    pub names: &'a [String],
}

impl Guess<'_> {
    fn wants(&self, p: &index::Package) -> bool {
        (self.essential && p.essential) || self.names.contains(&p.name)
    }
}

impl Pin {
    /// An index entry pinned for `arch` and `layer` (a guess is in no layer yet).
    fn of(p: &index::Package, arch: Arch, layer: &str) -> Pin {
        Pin {
            arch: arch.name().to_string(),
            layer: layer.to_string(),
            name: p.name.clone(),
            version: p.version.to_string(),
            architecture: p.arch.to_string(),
            url: p.url(),
            sha256: hex::encode(p.sha256),
            size: p.size,
            multi_arch_same: p.multi_arch_same,
        }
    }
}

/// A verified suite, as the lock records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReleaseInfo {
    pub suite: String,
    pub mirror: String,
    pub date: String,
    pub signed_by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Sources(String),
    #[error(transparent)]
    Release(#[from] release::Error),
    #[error(transparent)]
    Fetch(#[from] fetch::Error),
    #[error("`{url}` does not match the SHA256 that `{release}` lists for it: expected {expected}, got {actual}")]
    IndexMismatch { url: String, release: String, expected: String, actual: String },
    #[error("suite `{suite}` lists no `{path}` (or .xz/.gz) in its InRelease")]
    NoIndex { suite: String, path: String },
    /// The mirror has no such suite (`dists/SUITE/InRelease` answers 404); `known` are the
    /// suites its `dists/` lists, when it lists them.
    #[error("suite `{suite}` is not on {mirror} (`dists/{suite}/InRelease` answers 404)")]
    NoSuite { suite: String, mirror: String, known: Vec<String> },
    #[error("cannot read index `{url}`")]
    Index {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{arch}: {error}")]
    Resolve { arch: Arch, error: resolve::Error },
    #[error(transparent)]
    Unpack(#[from] unpack::Error),
    #[error(transparent)]
    Install(#[from] install::Error),
    #[error("{0}")]
    Blob(#[from] crate::store::BlobError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Every architecture's package universe and the verified releases behind them.
pub struct Archive {
    pub universes: BTreeMap<Arch, index::Universe>,
    pub releases: Vec<ReleaseInfo>,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What decides an opened archive: where it is, what it holds, the keys that vouch for it.
type ArchiveKey = (
    Vec<String>,
    Vec<String>,
    Option<String>,
    BTreeMap<Arch, String>,
    Vec<crate::model::spec::DebianSource>,
    Vec<PathBuf>,
    bool,
    Vec<Arch>,
);

/// An archive being opened or open: recipes asking for it wait on the one lock. The slot
/// holds it weakly; [`Archives`] holds it too unless told to let go after use.
type ArchiveSlot = Arc<Mutex<Option<std::sync::Weak<Archive>>>>;

/// The releases a command has verified, by `InRelease` URL, keyring and whether
/// `Valid-Until` is checked: every architecture and recipe reads one release of a suite
/// (fetched and its signature checked once), so a mirror updated mid-command cannot give
/// one lock two releases of the same suite.
type Verified = Mutex<BTreeMap<(String, Vec<PathBuf>, bool), Arc<release::Release>>>;

/// The archives one command has opened, shared by its recipes: however many recipes resolve
/// against the same suites, their indexes are fetched, checked and read once, and held once
/// in memory (ten recipes on bookworm resolving at once used to hold ten copies, 4.8 GB).
#[derive(Default)]
pub struct Archives {
    open: Mutex<BTreeMap<ArchiveKey, ArchiveSlot>>,
    /// Archives kept for the rest of the command (all of them, unless `release` is set).
    held: Mutex<Vec<Arc<Archive>>>,
    /// Let an archive go once no recipe uses it: for a command that builds one recipe, so
    /// that an architecture's universe is gone once it is resolved.
    release: std::sync::atomic::AtomicBool,
    verified: Verified,
}

impl Archives {
    /// The archive for `spec` and `archs`: the one this command opened, else opened now
    /// ([`open`], telling `guess` what it will likely want as the main suite's index is
    /// read); a recipe asking while another opens it waits for that one.
    pub fn open(
        &self,
        store: &Store,
        spec: &crate::model::spec::DebianSpec,
        archs: &[Arch],
        origin: &str,
        guess: Option<&Guess<'_>>,
    ) -> Result<Arc<Archive>, Error> {
        let key = (
            spec.suites.clone(),
            spec.components.clone(),
            spec.mirror.clone(),
            spec.arch_mirrors.clone(),
            spec.sources.clone(),
            spec.keyring.clone(),
            spec.check_valid_until,
            archs.to_vec(),
        );
        let slot = self.open.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone();
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(archive) = slot.as_ref().and_then(std::sync::Weak::upgrade) {
            return Ok(archive);
        }
        let archive = Arc::new(open(store, spec, archs, origin, &self.verified, guess)?);
        *slot = Some(Arc::downgrade(&archive));
        if !self.release.load(std::sync::atomic::Ordering::Relaxed) {
            self.held.lock().unwrap_or_else(|e| e.into_inner()).push(archive.clone());
        }
        Ok(archive)
    }

    /// From now on, an archive is dropped as soon as no recipe holds it (see `release`).
    pub fn release_after_use(&self) {
        self.release.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Fetches and verifies the suites' `InRelease` (each once per command: `verified`) and
/// `Packages` for `archs`.
fn open(
    store: &Store,
    spec: &crate::model::spec::DebianSpec,
    archs: &[Arch],
    origin: &str,
    verified: &Verified,
    guess: Option<&Guess<'_>>,
) -> Result<Archive, Error> {
    let explicit =
        spec.mirror.clone().or_else(|| std::env::var("ASSEMBLE_DEBIAN_MIRROR").ok().filter(|m| !m.is_empty()));
    let entries = sources::apt_entries(std::path::Path::new("/"));
    let archives = sources::archives(spec, archs, explicit.as_deref(), &entries, std::path::Path::new(DEFAULT_KEYRING))
        .map_err(Error::Sources)?;
    let mut releases = Vec::new();
    // source, arch, suite, mirror, path, download
    let mut wanted: Vec<(usize, Arch, String, String, String, Download)> = Vec::new();
    for (n, source) in archives.iter().enumerate() {
        let keyring = release::Keyring::load(&source.keyring.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
        for suite in &source.suites {
            // Architectures whose mirror is the same read one InRelease.
            let mut by_mirror: BTreeMap<&str, Vec<Arch>> = BTreeMap::new();
            for &arch in archs {
                by_mirror.entry(source.mirrors[&(suite.clone(), arch)].as_str()).or_default().push(arch);
            }
            for (mirror, mirror_archs) in by_mirror {
                let first = suite == &source.suites[0];
                wanted.extend(
                    release_indexes(
                        store,
                        spec,
                        source,
                        suite,
                        mirror,
                        &mirror_archs,
                        first,
                        &keyring,
                        verified,
                        origin,
                        &mut releases,
                    )?
                    .into_iter()
                    .map(|(a, p, d)| (n, a, suite.clone(), mirror.to_string(), p, d)),
                );
            }
        }
    }
    let downloads: Vec<Download> = wanted.iter().map(|w| w.5.clone()).collect();
    fetch::fetch_all(store, &downloads).map_err(|e| match e {
        fetch::Error::Mismatch { url, origin, expected, actual } => {
            Error::IndexMismatch { url, release: origin, expected: expected.hex(), actual: actual.hex() }
        }
        other => Error::Fetch(other),
    })?;
    // Each index is decompressed and read on its own thread (they are independent), then
    // added in the order of `wanted`, so the universe does not depend on the threads.
    let read: Vec<Result<Vec<index::Package>, Error>> = std::thread::scope(|s| {
        let jobs: Vec<_> = wanted
            .iter()
            .map(|(n, arch, suite, mirror, path, d)| {
                // Guesses come from the main archive's first suite only.
                let guess = guess.filter(|_| *n == 0 && archives[0].suites.first() == Some(suite));
                s.spawn(move || read_index(store, *arch, suite, mirror, path, d, guess))
            })
            .collect();
        jobs.into_iter().map(|j| j.join().expect("an index reader panicked")).collect()
    });
    let mut universes: BTreeMap<Arch, index::Universe> =
        archs.iter().map(|a| (*a, index::Universe::default())).collect();
    for ((source, arch, ..), packages) in wanted.iter().zip(read) {
        let u = universes.get_mut(arch).expect("every arch has a universe");
        let mut packages = packages?;
        for pkg in &mut packages {
            pkg.pin = archives[*source].pin(&pkg.name);
        }
        u.add_all(packages);
    }
    Ok(Archive { universes, releases })
}

/// One suite of one archive on one mirror: its `InRelease`, verified with the archive's
/// keyring (recorded in `releases`), and the `Packages` indexes it lists for `archs`:
/// `(arch, path, download)`. The first suite of an archive must have every index; others
/// (security, updates) may lack an architecture or component.
#[allow(clippy::too_many_arguments)]
fn release_indexes(
    store: &Store,
    spec: &crate::model::spec::DebianSpec,
    source: &sources::Source,
    suite: &str,
    mirror: &str,
    archs: &[Arch],
    first: bool,
    keyring: &release::Keyring,
    verified: &Verified,
    origin: &str,
    releases: &mut Vec<ReleaseInfo>,
) -> Result<Vec<(Arch, String, Download)>, Error> {
    let url = format!("{mirror}/dists/{suite}/InRelease");
    let key = (url.clone(), source.keyring.clone(), spec.check_valid_until);
    let known = verified.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
    let rel = match known {
        Some(rel) => rel,
        None => {
            let rel = Arc::new(fetch_release(store, &url, suite, mirror, keyring, spec.check_valid_until, origin)?);
            verified.lock().unwrap_or_else(|e| e.into_inner()).insert(key, rel.clone());
            rel
        }
    };
    let info = ReleaseInfo {
        suite: suite.to_string(),
        mirror: mirror.to_string(),
        date: rel.fields.get("Date").unwrap_or("").to_string(),
        signed_by: rel.signed_by.clone(),
    };
    if !releases.contains(&info) {
        releases.push(info);
    }
    let mut out = Vec::new();
    for arch in archs {
        for comp in &source.components {
            let base = format!("{comp}/binary-{}/Packages", arch.debian());
            // gzip first: it decompresses in a fifth of xz's time (0.12 s against 0.57 s for
            // bookworm's 50 MB amd64 index here), which a cold build waits on, for 12 MB
            // downloaded instead of 9. Both are checked against the signed list alike.
            let found = [".gz", ".xz", ""]
                .iter()
                .find_map(|ext| rel.sha256.get(&format!("{base}{ext}")).map(|h| (format!("{base}{ext}"), h.clone())));
            let Some((path, (hash, _size))) = found else {
                if first {
                    return Err(Error::NoIndex { suite: suite.to_string(), path: base });
                }
                continue;
            };
            let file_url = if rel.by_hash {
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                format!("{mirror}/dists/{suite}/{dir}/by-hash/SHA256/{hash}")
            } else {
                format!("{mirror}/dists/{suite}/{path}")
            };
            let sha = hash.parse().map_err(|_| Error::IndexMismatch {
                url: file_url.clone(),
                release: url.clone(),
                expected: hash.clone(),
                actual: "an unparseable digest".into(),
            })?;
            out.push((*arch, path, Download { url: file_url, sha256: sha, origin: url.to_string() }));
        }
    }
    Ok(out)
}

/// The `InRelease` at `url`, fetched (revalidated against the cache's copy), its signature
/// checked with `keyring`, and checked to be `suite`.
fn fetch_release(
    store: &Store,
    url: &str,
    suite: &str,
    mirror: &str,
    keyring: &release::Keyring,
    check_valid_until: bool,
    origin: &str,
) -> Result<release::Release, Error> {
    tracing::info!("reading {}", crate::model::text::redact(url));
    let text = match fetch::get_revalidated(url, origin, &store.releases_dir()) {
        Err(fetch::Error::Status { status: 404, .. }) => {
            return Err(Error::NoSuite {
                suite: suite.to_string(),
                mirror: crate::model::text::redact(mirror),
                known: suites_on(mirror),
            });
        }
        got => String::from_utf8_lossy(&got?).into_owned(),
    };
    let rel = release::verify(url, &text, keyring, check_valid_until, now())?;
    release::check_suite(url, &rel, suite)?;
    Ok(rel)
}

/// The suites a mirror's `dists/` lists (its HTML index), for suggesting one; empty when
/// the mirror does not list them.
fn suites_on(mirror: &str) -> Vec<String> {
    let Ok(page) = fetch::get_bytes(&format!("{mirror}/dists/"), "the suite suggestion") else { return Vec::new() };
    let page = String::from_utf8_lossy(&page);
    let mut out: Vec<String> = page
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.strip_suffix('/').map(str::to_string))
        .filter(|n| !n.is_empty() && !n.contains(['/', '?', '.']))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One `Packages` file from the store, decompressed and read into the entries resolution
/// needs (unusable entries are skipped, as apt does).
fn read_index(
    store: &Store,
    arch: Arch,
    suite: &str,
    mirror: &str,
    path: &str,
    d: &Download,
    guess: Option<&Guess<'_>>,
) -> Result<Vec<index::Package>, Error> {
    let ierr = |source| Error::Index { url: d.url.clone(), source };
    let f = fs_err::File::open(store.verify_blob(&d.sha256)?).map_err(ierr)?;
    let r: Box<dyn Read + Send> = if path.ends_with(".xz") {
        Box::new(crate::source::archive::xz_of_checked(std::io::BufReader::new(f)).map_err(ierr)?)
    } else if path.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)))
    } else {
        Box::new(f)
    };
    // A chunk of paragraphs at a time: the decompressed index (tens of MB per architecture)
    // is never held whole. One thread decompresses and cuts paragraphs, this one reads them
    // (the next architecture's while the last one's packages are fetched; see
    // `resolve::debian::pins`).
    let (suite, mirror): (std::sync::Arc<str>, std::sync::Arc<str>) = (suite.into(), mirror.into());
    // Chunks of about CHUNK bytes, at most four waiting: what is in flight stays a few MB.
    const CHUNK: usize = 256 << 10;
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(4);
    std::thread::scope(|scope| {
        let cutter = scope.spawn(move || -> std::io::Result<()> {
            let mut r = std::io::BufReader::with_capacity(256 << 10, r);
            let mut chunk = String::with_capacity(CHUNK + (64 << 10));
            loop {
                let start = chunk.len();
                let n = std::io::BufRead::read_line(&mut r, &mut chunk)?;
                // Whole paragraphs only: a chunk ends at a blank line past CHUNK, or the end.
                let full = n == 0 || (chunk.len() >= CHUNK && chunk[start..].trim().is_empty());
                if full
                    && !chunk.is_empty()
                    && tx.send(std::mem::replace(&mut chunk, String::with_capacity(CHUNK + (64 << 10)))).is_err()
                {
                    return Ok(());
                }
                if n == 0 {
                    return Ok(());
                }
            }
        });
        let mut out = Vec::new();
        let mut guessed_here: Vec<Pin> = Vec::new();
        for chunk in rx {
            let from = out.len();
            out.extend(control::borrowed(&chunk).filter_map(|fields| {
                let get = |name: &str| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
                index::Package::from_fields(&get, arch.debian(), &suite, &mirror).ok()
            }));
            if let Some(g) = guess {
                guessed_here.extend(out[from..].iter().filter(|p| g.wants(p)).map(|p| Pin::of(p, arch, "")));
                // A few at a time: each telling is a fetch of its own.
                if guessed_here.len() >= 4 {
                    (g.told)(&std::mem::take(&mut guessed_here));
                }
            }
        }
        if let Some(g) = guess.filter(|_| !guessed_here.is_empty()) {
            (g.told)(&guessed_here);
        }
        cutter.join().expect("the index reader panicked").map_err(ierr)?;
        out.shrink_to_fit();
        Ok(out)
    })
}

/// The packages a dpkg status database says are installed (an image base's), as the
/// resolver sees installed packages.
pub fn installed(status: &str, arch: Arch) -> Vec<index::Package> {
    control::parse(status)
        .into_iter()
        .filter(|p| p.get("Status").is_some_and(|s| s.ends_with(" installed")))
        .filter_map(|mut p| {
            // Installed packages are never downloaded: they stand in for what the index gives.
            for (field, value) in [("Filename", String::new()), ("SHA256", "0".repeat(64))] {
                if p.get(field).is_none() {
                    p.fields.push((field.into(), value));
                }
            }
            index::Package::from_paragraph(&p, arch.debian(), "installed", "").ok()
        })
        .collect()
}

/// Resolves each layer's requested packages on top of the ones below (starting from
/// `installed`, an image base's packages), for `arch`.
pub fn resolve(
    archive: &Archive,
    spec: &crate::model::spec::DebianSpec,
    layers: &[(String, Vec<String>)],
    arch: Arch,
    installed: &[index::Package],
) -> Result<Vec<Pin>, Error> {
    let universe = &archive.universes[&arch];
    let mut below: Vec<&index::Package> = installed.iter().collect();
    let mut pins = Vec::new();
    for (i, (layer, requested)) in layers.iter().enumerate() {
        let mut r = resolve::Resolver::new(universe, &below, spec.recommends, &spec.suites);
        let mut names = requested.clone();
        if i == 0 && spec.essential {
            let mut ess = universe.essential();
            ess.extend(names);
            names = ess;
        }
        for n in &names {
            r.install(n).map_err(|error| Error::Resolve { arch, error })?;
        }
        for name in &r.chosen {
            let p = universe
                .candidate(name)
                .or_else(|| r.installed().into_iter().find(|p| &p.name == name))
                .expect("chosen from the universe");
            pins.push(Pin::of(p, arch, layer));
        }
        below = r.installed();
    }
    Ok(pins)
}

/// The pins' `.deb` downloads.
pub fn downloads(pins: &[Pin]) -> Vec<Download> {
    pins.iter()
        .filter_map(|p| {
            Some(Download {
                url: p.url.clone(),
                sha256: p.sha256.parse().ok()?,
                origin: format!("package `{}` {} ({})", p.name, p.version, p.arch),
            })
        })
        .collect()
}

/// Reads a fetched `.deb`, or its listing from the cache when it was read before.
pub fn unpacked(store: &Store, pin: &Pin, limit: u64) -> Result<unpack::Deb, Error> {
    let listing = store.listing_path(&format!("{}.deb.json", pin.sha256));
    if let Ok(bytes) = fs_err::read(&listing)
        && let Ok(deb) = serde_json::from_slice::<unpack::Deb>(&bytes)
        && deb.complete(store)
    {
        return Ok(deb);
    }
    let sha: crate::model::digest::Digest = pin.sha256.parse().map_err(|e: String| Error::Sources(e))?;
    // The `.deb` in the cache must still be the one the pin names (a damaged or swapped one
    // is removed here and fetched again).
    let path = store.verify_blob(&sha)?;
    let deb = unpack::read(store, &path, &format!("{}_{}_{}.deb", pin.name, pin.version, pin.architecture), limit)?;
    let mut tmp = store.temp()?;
    std::io::Write::write_all(&mut tmp, &serde_json::to_vec(&deb).expect("serialisable"))?;
    tmp.persist(&listing).map_err(|e| e.error)?;
    Ok(deb)
}

/// A locked package for which the archive now has another candidate version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Newer {
    pub arch: String,
    pub name: String,
    pub locked: String,
    pub available: String,
    pub suite: String,
}

/// For every pin, the archive's current candidate when it is newer than the locked version.
pub fn newer(archive: &Archive, pins: &[Pin]) -> Vec<Newer> {
    let mut out = Vec::new();
    for p in pins {
        let Some(u) = p.arch.parse::<Arch>().ok().and_then(|a| archive.universes.get(&a)) else { continue };
        let (Some(c), Some(locked)) = (u.candidate(&p.name), version::Version::parse(&p.version)) else { continue };
        if c.version > locked {
            out.push(Newer {
                arch: p.arch.clone(),
                name: p.name.clone(),
                locked: p.version.clone(),
                available: c.version.to_string(),
                suite: c.suite.to_string(),
            });
        }
    }
    out.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    out.dedup();
    out
}

/// `name arch: old → new` lines between two pin sets (added and removed too).
pub fn pin_changes(old: &[Pin], new: &[Pin]) -> Vec<String> {
    let key = |p: &Pin| (p.arch.clone(), p.layer.clone(), p.name.clone());
    let before: BTreeMap<_, &Pin> = old.iter().map(|p| (key(p), p)).collect();
    let after: BTreeMap<_, &Pin> = new.iter().map(|p| (key(p), p)).collect();
    let mut out = Vec::new();
    for (k, n) in &after {
        match before.get(k) {
            Some(o) if o.version == n.version => {}
            Some(o) => out.push(format!("{} {} ({}): {} → {}", k.2, k.0, k.1, o.version, n.version)),
            None => out.push(format!("{} {} ({}): new, {}", k.2, k.0, k.1, n.version)),
        }
    }
    for (k, o) in &before {
        if !after.contains_key(k) {
            out.push(format!("{} {} ({}): removed, was {}", k.2, k.0, k.1, o.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While an index is read, the guess is told its `Essential: yes` packages and the ones
    /// named, with the URL, SHA256 and size the index gives (what the fetch checks), and
    /// nothing else; without Essential asked for, only the named ones.
    #[test]
    fn the_index_reader_tells_the_essential_and_named_packages() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("cache")).unwrap();
        let entry = |name: &str, essential: bool, n: u8| {
            format!(
                "Package: {name}\nVersion: 1.{n}\nArchitecture: amd64\n{}Filename: pool/{name}.deb\nSize: {n}\nSHA256: {}\n\n",
                if essential { "Essential: yes\n" } else { "" },
                hex::encode([n; 32])
            )
        };
        let text =
            [entry("base-files", true, 1), entry("curl", false, 2), entry("less", false, 3), entry("bash", true, 4)]
                .concat();
        let (sha256, _) = store.put_bytes(text.as_bytes(), false).unwrap();
        let d = Download { url: "http://m/dists/s/main/binary-amd64/Packages".into(), sha256, origin: String::new() };
        for (essential, want) in [(true, vec!["base-files", "curl", "bash"]), (false, vec!["curl"])] {
            let told: Mutex<Vec<Pin>> = Mutex::new(Vec::new());
            let tell = |pins: &[Pin]| told.lock().unwrap().extend_from_slice(pins);
            let names = vec!["curl".to_string(), "absent".to_string()];
            let guess = Guess { told: &tell, essential, names: &names };
            let read = read_index(&store, Arch::Amd64, "s", "http://m", "main/binary-amd64/Packages", &d, Some(&guess));
            assert_eq!(read.unwrap().len(), 4);
            let told = told.into_inner().unwrap();
            assert_eq!(told.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), want);
            let curl = told.iter().find(|p| p.name == "curl").unwrap();
            assert_eq!((curl.url.as_str(), curl.size, curl.version.as_str()), ("http://m/pool/curl.deb", 2, "1.2"));
            assert_eq!(curl.sha256, hex::encode([2u8; 32]));
        }
    }
}
