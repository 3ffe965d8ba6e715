//! Alpine's APK v2 formats, written here (no crate exists): signed `APKINDEX.tar.gz`,
//! `.apk` packages as concatenated gzip members (signature, control, data), and apk's
//! version order. Trust is checked as apk does: the index's signature member is an RSA
//! PKCS#1 v1.5 signature (`.SIGN.RSA.` = SHA-1, `.SIGN.RSA256.` = SHA-256) over the bytes
//! after it, by one of the given keys; a package's control member must hash (SHA-1) to the
//! index's `C:Q1…`; its data member must hash (SHA-256) to `.PKGINFO`'s `datahash`.
//!
//! [`resolve`] chooses packages as `apk add` would; [`install`] lays them into a layer and
//! writes apk's database; [`resolve_all`] is what a build calls for `base: {alpine: …}`.

pub mod install;
pub mod record;
pub mod resolve;
pub mod version;

pub use record::Record;
use rsa::pkcs8::DecodePublicKey;
use sha1::Digest as _;
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{file}`: {why}")]
    Format { file: String, why: String },
    #[error("`{file}` is signed by `{key}`, which is not among the given keys ({keys})")]
    UnknownKey { file: String, key: String, keys: String },
    #[error("the signature of `{file}` does not verify with `{key}`")]
    BadSignature { file: String, key: String },
    #[error("`{file}`: {member} member does not match: expected {expected}, got {actual}")]
    Mismatch { file: String, member: &'static str, expected: String, actual: String },
    #[error(
        "`{file}` is not vouched for by the index: its control member is {actual}, the index lists {expected} for {package}"
    )]
    NotInIndex { file: String, package: String, expected: String, actual: String },
    #[error(transparent)]
    Fetch(Box<crate::source::fetch::Error>),
    #[error("cannot read `{}`: {source}", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("{arch}: {source}")]
    Resolve { arch: String, source: resolve::Error },
    /// The architectures of one image resolved to different versions.
    #[error("{0}")]
    Versions(String),
}

/// One gzip member: its compressed bytes and its decompressed content.
pub type Member = (Vec<u8>, Vec<u8>);

/// Splits the concatenated gzip members of an APK file or index.
pub fn members(bytes: &[u8], file: &str) -> Result<Vec<Member>, Error> {
    members_limited(bytes, file, DEFAULT_LIMIT)
}

/// No member may decompress to more than this unless the index says the package is larger.
pub const DEFAULT_LIMIT: u64 = 1 << 30;

/// Like [`members`], refusing any member that decompresses to more than `limit` bytes
/// (a gzip bomb) before it is all in memory.
pub fn members_limited(bytes: &[u8], file: &str, limit: u64) -> Result<Vec<Member>, Error> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        let mut content = Vec::new();
        (&mut d)
            .take(limit + 1)
            .read_to_end(&mut content)
            .map_err(|e| Error::Format { file: file.into(), why: format!("gzip member {}: {e}", out.len() + 1) })?;
        if content.len() as u64 > limit {
            return Err(Error::Format {
                file: file.into(),
                why: format!("gzip member {}: decompresses to more than {limit} bytes", out.len() + 1),
            });
        }
        let left = d.into_inner();
        let used = rest.len() - left.len();
        out.push((rest[..used].to_vec(), content));
        rest = left;
    }
    Ok(out)
}

/// The files of a tar stream (apk's members have no end-of-archive blocks), by name.
pub fn tar_files(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pos = 0;
    while pos + 512 <= data.len() {
        let h = &data[pos..pos + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let name = String::from_utf8_lossy(&h[..100]).trim_end_matches('\0').to_string();
        let size_text = String::from_utf8_lossy(&h[124..136]).trim_matches(|c: char| c == '\0' || c == ' ').to_string();
        let size = usize::from_str_radix(&size_text, 8).unwrap_or(0);
        let start = pos + 512;
        let end = (start + size).min(data.len());
        if h[156] == b'0' || h[156] == 0 {
            out.insert(name, data[start..end].to_vec());
        }
        pos = start + size.div_ceil(512) * 512;
    }
    out
}

/// Public keys by file name (`alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub`).
pub struct Keys(BTreeMap<String, rsa::RsaPublicKey>);

impl Keys {
    pub fn load(paths: &[&Path]) -> Result<Keys, Error> {
        let mut keys = BTreeMap::new();
        for p in paths {
            let file = p.display().to_string();
            let pem =
                fs_err::read_to_string(p).map_err(|e| Error::Format { file: file.clone(), why: e.to_string() })?;
            let key = rsa::RsaPublicKey::from_public_key_pem(&pem)
                .map_err(|e| Error::Format { file: file.clone(), why: format!("not an RSA public key: {e}") })?;
            keys.insert(p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(file), key);
        }
        Ok(Keys(keys))
    }

    fn names(&self) -> String {
        self.0.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
    }
}

const SHA1_PREFIX: [u8; 15] =
    [0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];
const SHA256_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// Verifies the signature member (`sig_tar`, decompressed) over `signed` (the compressed
/// bytes after it). Returns the key name used.
pub fn verify_signature(sig_tar: &[u8], signed: &[u8], keys: &Keys, file: &str) -> Result<String, Error> {
    let files = tar_files(sig_tar);
    let (name, sig) = files
        .iter()
        .find(|(n, _)| n.starts_with(".SIGN.RSA"))
        .ok_or_else(|| Error::Format { file: file.into(), why: "no .SIGN.RSA signature in the first member".into() })?;
    let (key_name, sha256) = match name.strip_prefix(".SIGN.RSA256.") {
        Some(k) => (k.to_string(), true),
        None => (name.trim_start_matches(".SIGN.RSA.").to_string(), false),
    };
    let key = keys.0.get(&key_name).ok_or_else(|| Error::UnknownKey {
        file: file.into(),
        key: key_name.clone(),
        keys: keys.names(),
    })?;
    let (hashed, scheme) = if sha256 {
        (sha2::Sha256::digest(signed).to_vec(), rsa::Pkcs1v15Sign { hash_len: Some(32), prefix: SHA256_PREFIX.into() })
    } else {
        (sha1::Sha1::digest(signed).to_vec(), rsa::Pkcs1v15Sign { hash_len: Some(20), prefix: SHA1_PREFIX.into() })
    };
    key.verify(scheme, &hashed, sig).map_err(|_| Error::BadSignature { file: file.into(), key: key_name.clone() })?;
    Ok(key_name)
}

/// Parses the `APKINDEX` text: records separated by blank lines, `L:value` lines.
pub fn parse_index(text: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut cur = Record::default();
    for line in text.lines() {
        if line.is_empty() {
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let mut chars = line.chars();
        if let (Some(l), Some(':')) = (chars.next(), chars.next()) {
            cur.fields.push((l, chars.as_str().to_string()));
        }
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    out
}

/// A verified index.
pub struct Index {
    pub records: Vec<Record>,
    pub description: String,
    pub signed_by: String,
}

/// Verifies and parses an `APKINDEX.tar.gz`.
pub fn read_index(bytes: &[u8], keys: &Keys, file: &str) -> Result<Index, Error> {
    let parts = members(bytes, file)?;
    if parts.len() < 2 {
        return Err(Error::Format {
            file: file.into(),
            why: "an index needs a signature member and a content member".into(),
        });
    }
    let sig_len = parts[0].0.len();
    let signed_by = verify_signature(&parts[0].1, &bytes[sig_len..], keys, file)?;
    let content: Vec<u8> = parts[1..].iter().flat_map(|(_, c)| c.clone()).collect();
    let files = tar_files(&content);
    let text =
        files.get("APKINDEX").ok_or_else(|| Error::Format { file: file.into(), why: "no APKINDEX file".into() })?;
    Ok(Index {
        records: parse_index(&String::from_utf8_lossy(text)),
        description: files
            .get("DESCRIPTION")
            .map(|d| String::from_utf8_lossy(d).trim().to_string())
            .unwrap_or_default(),
        signed_by,
    })
}

/// `Q1` + base64 of the SHA-1 of the control member, as the index's `C:` field writes it.
pub fn control_checksum(control_member: &[u8]) -> String {
    use base64::Engine as _;
    format!("Q1{}", base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(control_member)))
}

/// A package checked against its index record.
pub struct Package {
    pub pkginfo: BTreeMap<String, Vec<String>>,
    /// Maintainer scripts from the control member (`.pre-install`, `.post-install`, …).
    pub scripts: BTreeMap<String, Vec<u8>>,
    /// The data member, decompressed (a tar stream).
    pub data: Vec<u8>,
}

/// Checks a `.apk` against the index record that should vouch for it: the control member's
/// SHA-1 must equal `C:`, the data member's SHA-256 must equal `.PKGINFO`'s `datahash`, and a
/// signature member, when present, must verify.
pub fn read_package(bytes: &[u8], record: &Record, keys: &Keys, file: &str) -> Result<Package, Error> {
    // A package may not decompress to much more than the index says it installs.
    let limit =
        record.get('I').and_then(|i| i.parse::<u64>().ok()).map_or(DEFAULT_LIMIT, |i| i.saturating_mul(2) + (16 << 20));
    let parts = members_limited(bytes, file, limit).map_err(|e| match e {
        // Name the member by its role: signed packages start with a signature member.
        Error::Format { file, why } => {
            let signed = {
                let mut head = Vec::new();
                let _ = flate2::bufread::GzDecoder::new(bytes).take(512).read_to_end(&mut head);
                head.starts_with(b".SIGN.")
            };
            let roles: &[&str] = if signed { &["signature", "control", "data"] } else { &["control", "data"] };
            let why = roles
                .iter()
                .enumerate()
                .fold(why, |w, (i, r)| w.replace(&format!("gzip member {}:", i + 1), &format!("{r} member:")));
            Error::Format { file, why }
        }
        other => other,
    })?;
    let (sig, control, data) = match parts.len() {
        3 => (Some(&parts[0]), &parts[1], &parts[2]),
        2 => (None, &parts[0], &parts[1]),
        n => return Err(Error::Format { file: file.into(), why: format!("expected 2 or 3 gzip members, found {n}") }),
    };
    if let Some(sig) = sig {
        verify_signature(&sig.1, &control.0, keys, file).map_err(|e| match e {
            Error::BadSignature { file, key } => Error::Format {
                file,
                why: format!("control member: the signature member (key `{key}`) does not verify over it"),
            },
            other => other,
        })?;
    }
    let actual = control_checksum(&control.0);
    let expected = record.get('C').unwrap_or("");
    if actual != expected {
        return Err(Error::NotInIndex {
            file: file.into(),
            package: format!("{} {}", record.name(), record.version()),
            expected: expected.into(),
            actual,
        });
    }
    let files = tar_files(&control.1);
    let info = files
        .get(".PKGINFO")
        .ok_or_else(|| Error::Format { file: file.into(), why: "no .PKGINFO in the control member".into() })?;
    let mut pkginfo: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(info).lines() {
        if let Some((k, v)) = line.split_once(" = ") {
            pkginfo.entry(k.trim().to_string()).or_default().push(v.trim().to_string());
        }
    }
    if let Some(want) = pkginfo.get("datahash").and_then(|v| v.first()) {
        let got = hex::encode(sha2::Sha256::digest(&data.0));
        if *want != got {
            return Err(Error::Mismatch { file: file.into(), member: "data", expected: want.clone(), actual: got });
        }
    }
    let scripts = files
        .into_iter()
        .filter(|(n, _)| n.starts_with('.') && n != ".PKGINFO" && !n.starts_with(".SIGN"))
        .filter(|(n, _)| n.contains("install") || n.contains("upgrade") || n.contains("deinstall") || n == ".trigger")
        .collect();
    Ok(Package { pkginfo, scripts, data: data.1.clone() })
}

/// One package pinned for one architecture and layer, as the lock records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pin {
    pub arch: String,
    pub layer: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub repository: String,
    pub checksum: String,
    pub size: u64,
    /// The index's `I:` (installed size), which bounds decompression.
    pub installed_size: u64,
    pub url: String,
    pub sha256: String,
}

/// Alpine's name for an architecture.
pub fn arch_name(a: crate::model::platform::Arch) -> &'static str {
    use crate::model::platform::Arch;
    match a {
        Arch::Amd64 => "x86_64",
        Arch::Arm64 => "aarch64",
        Arch::ArmV7 => "armv7",
        Arch::ArmV6 => "armhf",
        Arch::I386 => "x86",
        Arch::Ppc64le => "ppc64le",
        Arch::S390x => "s390x",
        Arch::Riscv64 => "riscv64",
    }
}

/// Reads a repository location: a local path (relative to `dir`) or a URL.
pub fn fetch_location(location: &str, dir: &Path, cache: &Path) -> Result<Vec<u8>, Error> {
    if location.starts_with("http://") || location.starts_with("https://") {
        crate::source::fetch::get_revalidated(location, location, cache).map_err(|e| Error::Fetch(Box::new(e)))
    } else {
        let p = dir.join(location);
        fs_err::read(&p).map_err(|source| Error::Read { path: p, source })
    }
}

/// Each repository's signed index for `arch` (`x86_64`, `aarch64`, …): (tag, location, index).
fn indexes(
    spec: &crate::model::spec::AlpineSpec,
    arch: &str,
    keys: &Keys,
    dir: &Path,
    cache: &Path,
) -> Result<Vec<(Option<String>, String, Index)>, Error> {
    let mut out = Vec::new();
    for (tag, loc) in &spec.repositories {
        let where_ = format!("{}/{arch}/APKINDEX.tar.gz", loc.trim_end_matches('/'));
        let bytes = fetch_location(&where_, dir, cache)?;
        let idx = read_index(&bytes, keys, &where_)?;
        out.push((tag.clone(), loc.clone(), idx));
    }
    Ok(out)
}

/// For every pin, the highest version the repositories' indexes now have, when it is newer
/// than the locked one (`suite` names the repository).
pub fn newer(
    spec: &crate::model::spec::AlpineSpec,
    pins: &[Pin],
    dir: &Path,
    cache: &Path,
) -> Result<Vec<crate::source::deb::Newer>, Error> {
    let key_paths: Vec<&Path> = spec.keys.iter().map(|p| p.as_path()).collect();
    let keys = Keys::load(&key_paths)?;
    let mut out = Vec::new();
    let archs: std::collections::BTreeSet<&str> = pins.iter().map(|p| p.arch.as_str()).collect();
    for arch in archs {
        let Ok(a) = arch.parse::<crate::model::platform::Arch>() else { continue };
        let mut best: BTreeMap<&str, (version::Version, &str)> = BTreeMap::new();
        let indexes = indexes(spec, arch_name(a), &keys, dir, cache)?;
        for (_, loc, idx) in &indexes {
            for r in &idx.records {
                let Some(v) = version::Version::parse(r.version()) else { continue };
                if best.get(r.name()).is_none_or(|(b, _)| v > *b) {
                    best.insert(r.name(), (v, loc.as_str()));
                }
            }
        }
        for p in pins.iter().filter(|p| p.arch == arch) {
            let (Some((v, loc)), Some(locked)) = (best.get(p.name.as_str()), version::Version::parse(&p.version))
            else {
                continue;
            };
            if *v > locked {
                out.push(crate::source::deb::Newer {
                    arch: p.arch.clone(),
                    name: p.name.clone(),
                    locked: p.version.clone(),
                    available: v.as_str().to_string(),
                    suite: loc.to_string(),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    out.dedup();
    Ok(out)
}

/// Resolves every layer's requests for every architecture and checks the architectures
/// agree on versions. `installed` is an image base's `lib/apk/db/installed` per architecture:
/// what it lists satisfies dependencies and is not installed again. Returns the pins (without
/// their sha256, known once fetched).
pub fn resolve_all(
    spec: &crate::model::spec::AlpineSpec,
    layers: &[(String, Vec<String>)],
    archs: &[crate::model::platform::Arch],
    installed: &BTreeMap<crate::model::platform::Arch, String>,
    dir: &Path,
    cache: &Path,
) -> Result<Vec<Pin>, Error> {
    let key_paths: Vec<&Path> = spec.keys.iter().map(|p| p.as_path()).collect();
    let keys = Keys::load(&key_paths)?;
    let mut pins = Vec::new();
    let mut per_arch: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for &a in archs {
        let arch = arch_name(a);
        let indexes = indexes(spec, arch, &keys, dir, cache)?;
        let available: Vec<resolve::Available<'_>> = indexes
            .iter()
            .flat_map(|(tag, _, idx)| {
                idx.records.iter().map(move |r| resolve::Available { record: r, tag: tag.as_deref() })
            })
            .collect();
        let repo_of: BTreeMap<*const Record, &str> = indexes
            .iter()
            .flat_map(|(_, loc, idx)| idx.records.iter().map(move |r| (r as *const Record, loc.as_str())))
            .collect();
        let below = installed.get(&a).map(|db| parse_index(db)).unwrap_or_default();
        let mut r = resolve::Resolver::over(&below, available);
        let mut names = Vec::new();
        for (layer, requests) in layers {
            let before = r.chosen.len();
            for req in requests {
                r.install(req).map_err(|source| Error::Resolve { arch: arch.to_string(), source })?;
            }
            for rec in &r.chosen_records()[before..] {
                let repo = repo_of.get(&(*rec as *const Record)).copied().unwrap_or("");
                names.push((rec.name().to_string(), rec.version().to_string()));
                pins.push(Pin {
                    arch: a.name().into(),
                    layer: layer.clone(),
                    name: rec.name().into(),
                    version: rec.version().into(),
                    architecture: rec.get('A').unwrap_or(arch).into(),
                    repository: repo.into(),
                    checksum: rec.get('C').unwrap_or("").into(),
                    size: rec.get('S').and_then(|s| s.parse().ok()).unwrap_or(0),
                    installed_size: rec.get('I').and_then(|s| s.parse().ok()).unwrap_or(0),
                    url: format!("{}/{arch}/{}-{}.apk", repo.trim_end_matches('/'), rec.name(), rec.version()),
                    sha256: String::new(),
                });
            }
        }
        per_arch.push((arch.to_string(), names));
    }
    // The same versions for every architecture of one image.
    let records: Vec<Vec<Record>> = per_arch
        .iter()
        .map(|(_, n)| n.iter().map(|(p, v)| Record { fields: vec![('P', p.clone()), ('V', v.clone())] }).collect())
        .collect();
    let refs: Vec<(String, Vec<&Record>)> =
        per_arch.iter().zip(&records).map(|((a, _), rs)| (a.clone(), rs.iter().collect())).collect();
    resolve::same_everywhere(&refs).map_err(Error::Versions)?;
    Ok(pins)
}
