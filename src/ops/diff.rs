//! Comparing two images down to the file: which platform, which layer (or config,
//! manifest), then which entries differ and in which header field or content. `assemble
//! diff` and `assemble verify` both report through here.
//!
//! Images are opened through [`crate::oci::read`], which checks every blob first, so equal
//! digests mean equal bytes. A layer is listed by reading its tar once (decompressing gzip
//! or zstd as its first bytes say) and hashing each file's content.

use crate::model::digest::{Digest, Hasher};
use crate::oci::read::Stored;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// How many differing entries a layer reports before summarising the rest.
pub const SHOWN: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read layer `{path}`")]
    Layer {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One tar entry as far as the image's bytes are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub link: Option<String>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub content: Option<Digest>,
}

/// Every entry of a layer blob (gzip, zstd or plain tar), by path without `./` or `/`.
pub fn list_layer(path: &Path) -> Result<BTreeMap<String, FileInfo>, Error> {
    let err = |source| Error::Layer { path: path.to_path_buf(), source };
    let mut f = fs_err::File::open(path).map_err(err)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(err)?;
    drop(f);
    let f = std::io::BufReader::new(fs_err::File::open(path).map_err(err)?);
    let reader: Box<dyn Read> = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(f).map_err(err)?)
    } else {
        Box::new(f)
    };
    let mut ar = tar::Archive::new(reader);
    let mut out = BTreeMap::new();
    for e in ar.entries().map_err(err)? {
        let mut e = e.map_err(err)?;
        let name = String::from_utf8_lossy(&e.path_bytes())
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        let mut xattrs = BTreeMap::new();
        if let Ok(Some(exts)) = e.pax_extensions() {
            for ext in exts.flatten() {
                if let Some(k) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    xattrs.insert(k.to_string(), ext.value_bytes().to_vec());
                }
            }
        }
        let h = e.header();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Regular | tar::EntryType::Continuous => '-',
            _ => '?',
        };
        let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        let (mode, uid, gid, mtime) =
            (h.mode().unwrap_or(0) & 0o7777, h.uid().unwrap_or(0), h.gid().unwrap_or(0), h.mtime().unwrap_or(0));
        let size = e.size();
        let content = if kind == '-' {
            let mut hasher = Hasher::default();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = e.read(&mut buf).map_err(err)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            Some(hasher.finish().0)
        } else {
            None
        };
        out.insert(name, FileInfo { kind, mode, uid, gid, mtime, size, link, xattrs, content });
    }
    Ok(out)
}

/// The fields in which two entries differ, as `field old → new`.
fn entry_changes(a: &FileInfo, b: &FileInfo) -> Vec<String> {
    let mut out = Vec::new();
    let kinds = |k: char| match k {
        'd' => "directory",
        'l' => "symlink",
        'h' => "hard link",
        '-' => "file",
        _ => "special file",
    };
    if a.kind != b.kind {
        out.push(format!("type {} → {}", kinds(a.kind), kinds(b.kind)));
    }
    if a.mode != b.mode {
        out.push(format!("mode {:04o} → {:04o}", a.mode, b.mode));
    }
    if a.uid != b.uid {
        out.push(format!("uid {} → {}", a.uid, b.uid));
    }
    if a.gid != b.gid {
        out.push(format!("gid {} → {}", a.gid, b.gid));
    }
    if a.mtime != b.mtime {
        out.push(format!("mtime {} → {}", a.mtime, b.mtime));
    }
    if a.size != b.size {
        out.push(format!("size {} → {}", a.size, b.size));
    }
    if a.link != b.link {
        out.push(format!("link target {} → {}", a.link.as_deref().unwrap_or("-"), b.link.as_deref().unwrap_or("-")));
    }
    let keys: std::collections::BTreeSet<&String> = a.xattrs.keys().chain(b.xattrs.keys()).collect();
    for k in keys {
        let show =
            |v: Option<&Vec<u8>>| v.map_or("(none)".to_string(), |v| format!("{:?}", String::from_utf8_lossy(v)));
        if a.xattrs.get(k) != b.xattrs.get(k) {
            out.push(format!("xattr {k} {} → {}", show(a.xattrs.get(k)), show(b.xattrs.get(k))));
        }
    }
    if a.content != b.content {
        out.push("content differs".to_string());
    }
    out
}

/// Entry-level differences between two layer blobs.
pub fn layer_entries(a: &Path, b: &Path) -> Result<Vec<String>, Error> {
    let (la, lb) = (list_layer(a)?, list_layer(b)?);
    let mut lines = Vec::new();
    let paths: std::collections::BTreeSet<&String> = la.keys().chain(lb.keys()).collect();
    for p in paths {
        match (la.get(p), lb.get(p)) {
            (Some(_), None) => lines.push(format!("/{p}: only in the first")),
            (None, Some(_)) => lines.push(format!("/{p}: only in the second")),
            (Some(x), Some(y)) => {
                let c = entry_changes(x, y);
                if !c.is_empty() {
                    lines.push(format!("/{p}: {}", c.join(", ")));
                }
            }
            (None, None) => {}
        }
    }
    Ok(lines)
}

/// Keys of two JSON objects whose values differ, as `key: old → new`.
pub fn json_changes(prefix: &str, a: &Value, b: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (ma, mb) = (a.as_object().unwrap_or(&empty), b.as_object().unwrap_or(&empty));
    let keys: std::collections::BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
    keys.into_iter()
        .filter(|k| ma.get(*k) != mb.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or("(none)".to_string(), Value::to_string);
            format!("{prefix}{k}: {} → {}", show(ma.get(k)), show(mb.get(k)))
        })
        .collect()
}

/// What differs between two image configs: the runtime fields, `created`, then `extra`; when
/// nothing else does, only the diff_ids (which follow from the layers).
pub fn config_lines(a: (&Value, Option<&str>), b: (&Value, Option<&str>), extra: Vec<String>) -> Vec<String> {
    let mut lines = json_changes("", a.0, b.0);
    if a.1 != b.1 {
        lines.push(format!("created: {} → {}", a.1.unwrap_or("-"), b.1.unwrap_or("-")));
    }
    lines.extend(extra);
    if lines.is_empty() {
        lines.push("only rootfs.diff_ids, which follow the layers".into());
    }
    lines
}

/// One difference, where it is and what it is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub platform: String,
    /// `index`, `manifest`, `config`, `layer N`, or `platforms`.
    pub part: String,
    pub summary: String,
    pub entries: Vec<String>,
    #[serde(rename = "more_entries")]
    pub more: usize,
}

impl Finding {
    pub fn new(platform: impl Into<String>, part: impl Into<String>, summary: impl Into<String>) -> Finding {
        Finding { platform: platform.into(), part: part.into(), summary: summary.into(), entries: vec![], more: 0 }
    }

    /// Adds detail lines, keeping the first [`SHOWN`] and counting the rest.
    pub fn with_entries(mut self, lines: Vec<String>) -> Finding {
        self.more = lines.len().saturating_sub(SHOWN);
        self.entries = lines.into_iter().take(SHOWN).collect();
        self
    }

    pub fn render(&self) -> String {
        let mut out = if self.platform.is_empty() {
            format!("{}: {}\n", self.part, self.summary)
        } else {
            format!("{} {}: {}\n", self.platform, self.part, self.summary)
        };
        for e in &self.entries {
            out.push_str(&format!("  {e}\n"));
        }
        if self.more > 0 {
            out.push_str(&format!("  … and {} more\n", self.more));
        }
        out
    }
}

/// `sha256:` and the first 12 hex digits.
pub fn short(d: &str) -> String {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// Differences between a layer `a` and `b`, given where each blob can be found (when it can).
pub fn layer_finding(
    platform: &str,
    index: usize,
    (da, ia, pa): (&str, Option<&str>, Option<PathBuf>),
    (db, ib, pb): (&str, Option<&str>, Option<PathBuf>),
) -> Result<Finding, Error> {
    let part = format!("layer {}", index + 1);
    let same_content = ia.is_some() && ia == ib;
    let summary = if same_content {
        format!(
            "same files (diff_id {}), compressed differently: {} → {} (the compressor or its settings changed)",
            short(ia.unwrap_or("")),
            short(da),
            short(db)
        )
    } else {
        format!("{} → {}", short(da), short(db))
    };
    let entries = if same_content {
        Vec::new()
    } else {
        match (pa.filter(|p| p.is_file()), pb.filter(|p| p.is_file())) {
            (Some(a), Some(b)) => layer_entries(&a, &b)?,
            _ => vec!["(the other layer's bytes are not available here to compare its files)".into()],
        }
    };
    Ok(Finding::new(platform, part, summary).with_entries(entries))
}

/// Every difference between two opened images, platform by platform.
pub fn images(a: &Stored, b: &Stored) -> Result<Vec<Finding>, Error> {
    let mut out = Vec::new();
    let (sa, sb) = (&crate::ops::inspect::summary(a), &crate::ops::inspect::summary(b));
    if sa.digest.is_some() && sa.digest == sb.digest {
        return Ok(out);
    }
    let pa: Vec<&str> = sa.platforms.iter().map(|p| p.platform.as_str()).collect();
    let pb: Vec<&str> = sb.platforms.iter().map(|p| p.platform.as_str()).collect();
    if pa != pb {
        out.push(Finding::new("", "platforms", format!("{} → {}", pa.join(", "), pb.join(", "))));
    }
    for x in &sa.platforms {
        let Some(y) = sb.platforms.iter().find(|p| p.platform == x.platform) else { continue };
        if x.manifest.is_some() && x.manifest == y.manifest {
            continue;
        }
        if x.config != y.config {
            let mut extra = Vec::new();
            if x.layers.len() != y.layers.len() {
                extra.push(format!("layers: {} → {}", x.layers.len(), y.layers.len()));
            }
            let lines =
                config_lines((&x.run_config, x.created.as_deref()), (&y.run_config, y.created.as_deref()), extra);
            let summary = format!("{} → {}", short(&x.config), short(&y.config));
            out.push(Finding::new(x.platform.clone(), "config", summary).with_entries(lines));
        }
        for (i, (la, lb)) in x.layers.iter().zip(&y.layers).enumerate() {
            if la.digest == lb.digest {
                continue;
            }
            out.push(layer_finding(
                &x.platform,
                i,
                (&la.digest, la.diff_id.as_deref(), la.file.as_deref().map(|f| a.root.join(f))),
                (&lb.digest, lb.diff_id.as_deref(), lb.file.as_deref().map(|f| b.root.join(f))),
            )?);
        }
        if out.iter().all(|f| f.platform != x.platform) && x.manifest != y.manifest {
            let (ma, mb) = (short(x.manifest.as_deref().unwrap_or("")), short(y.manifest.as_deref().unwrap_or("")));
            out.push(Finding::new(x.platform.clone(), "manifest", format!("{ma} → {mb} (annotations or media types)")));
        }
    }
    if out.is_empty() && sa.digest != sb.digest {
        let (ia, ib) = (short(sa.digest.as_deref().unwrap_or("")), short(sb.digest.as_deref().unwrap_or("")));
        out.push(Finding::new("", "index", format!("{ia} → {ib} (annotations or platform order)")));
    }
    Ok(out)
}
