//! Reading an image back from a destination (`oci:`, `oci-archive:`, `docker-archive:`)
//! for `assemble inspect`: the index, its platforms, each layer's digest and size, and the
//! runtime config. It reads only the JSON documents, never the layers themselves.

use crate::sink::Dest;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a valid image: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("`{path}` has no image named `{reference}`; it has: {known}")]
    NoReference { path: PathBuf, reference: String, known: String },
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub destination: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Option<String>,
    pub tags: Vec<String>,
    pub platforms: Vec<Platform>,
}

#[derive(Debug, Serialize)]
pub struct Platform {
    pub platform: String,
    pub manifest: Option<String>,
    pub config: String,
    pub layers: Vec<LayerSummary>,
    #[serde(rename = "totalSize")]
    pub total_size: u64,
    #[serde(rename = "runConfig")]
    pub run_config: Value,
    pub created: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LayerSummary {
    pub digest: String,
    #[serde(rename = "diffID")]
    pub diff_id: Option<String>,
    pub size: u64,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Where the blob is inside the layout or archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Small files of an image, by path inside the layout or archive, plus every file's size.
struct Files {
    root: PathBuf,
    small: BTreeMap<String, Vec<u8>>,
    sizes: BTreeMap<String, u64>,
    dir: bool,
}

impl Files {
    fn read(&self, name: &str) -> Result<Vec<u8>, Error> {
        if self.dir {
            let p = self.root.join(name);
            return std::fs::read(&p).map_err(|source| Error::Read { path: p, source });
        }
        self.small.get(name).cloned().ok_or_else(|| self.invalid(format!("missing `{name}`")))
    }

    fn json(&self, name: &str) -> Result<Value, Error> {
        serde_json::from_slice(&self.read(name)?).map_err(|e| self.invalid(format!("`{name}` is not JSON: {e}")))
    }

    fn blob(&self, digest: &str) -> Result<Value, Error> {
        let hex =
            digest.strip_prefix("sha256:").ok_or_else(|| self.invalid(format!("unsupported digest `{digest}`")))?;
        self.json(&format!("blobs/sha256/{hex}"))
    }

    fn invalid(&self, message: String) -> Error {
        Error::Invalid { path: self.root.clone(), message }
    }
}

fn open_archive(path: &Path) -> Result<Files, Error> {
    let rerr = |source| Error::Read { path: path.to_path_buf(), source };
    let f = std::fs::File::open(path).map_err(rerr)?;
    let mut ar = tar::Archive::new(std::io::BufReader::new(f));
    let mut files = Files { root: path.to_path_buf(), small: BTreeMap::new(), sizes: BTreeMap::new(), dir: false };
    for e in ar.entries().map_err(rerr)? {
        let mut e = e.map_err(rerr)?;
        let name = e.path().map_err(rerr)?.to_string_lossy().trim_start_matches("./").to_string();
        let size = e.size();
        files.sizes.insert(name.clone(), size);
        if size <= 8 << 20 && (name.ends_with(".json") || name.starts_with("blobs/") || name == "oci-layout") {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).map_err(rerr)?;
            // Layer blobs are large; keep only what parses as JSON.
            if name.starts_with("blobs/") && serde_json::from_slice::<Value>(&buf).is_err() {
                continue;
            }
            files.small.insert(name, buf);
        }
    }
    Ok(files)
}

pub fn inspect(dest: &Dest) -> Result<Summary, Error> {
    match dest {
        Dest::Oci { dir, reference } => {
            let files = Files { root: dir.clone(), small: BTreeMap::new(), sizes: BTreeMap::new(), dir: true };
            from_layout(&files, reference.as_deref(), dest)
        }
        Dest::OciArchive(p) => from_layout(&open_archive(p)?, None, dest),
        Dest::DockerArchive(p) => from_docker(&open_archive(p)?, dest),
    }
}

fn from_layout(files: &Files, reference: Option<&str>, dest: &Dest) -> Result<Summary, Error> {
    let index = files.json("index.json")?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let name_of = |m: &Value| m["annotations"][crate::oci::REF_NAME].as_str().map(String::from);
    let chosen: Vec<&Value> = match reference {
        Some(r) => entries.iter().filter(|m| name_of(m).as_deref() == Some(r)).collect(),
        None => entries.iter().collect(),
    };
    let Some(first) = chosen.first() else {
        let known = entries.iter().filter_map(name_of).collect::<Vec<_>>().join(", ");
        return Err(Error::NoReference { path: files.root.clone(), reference: reference.unwrap_or("").into(), known });
    };
    let digest = first["digest"].as_str().unwrap_or("").to_string();
    let tags: Vec<String> =
        entries.iter().filter(|m| m["digest"].as_str() == Some(&digest)).filter_map(name_of).collect();
    let media_type = first["mediaType"].as_str().unwrap_or("").to_string();
    let top = files.blob(&digest)?;
    let manifests: Vec<Value> = if top["manifests"].is_array() {
        top["manifests"].as_array().cloned().unwrap_or_default()
    } else {
        vec![(*first).clone()]
    };
    let mut platforms = Vec::new();
    for m in manifests {
        let mdigest = m["digest"].as_str().unwrap_or("").to_string();
        let manifest = files.blob(&mdigest)?;
        let cdigest = manifest["config"]["digest"].as_str().unwrap_or("").to_string();
        let config = files.blob(&cdigest)?;
        let diff_ids: Vec<Option<String>> = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().map(|d| d.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let layers: Vec<LayerSummary> = manifest["layers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, l)| LayerSummary {
                digest: l["digest"].as_str().unwrap_or("").into(),
                diff_id: diff_ids.get(i).cloned().flatten(),
                size: l["size"].as_u64().unwrap_or(0),
                media_type: l["mediaType"].as_str().unwrap_or("").into(),
                file: l["digest"].as_str().and_then(|d| d.strip_prefix("sha256:")).map(|h| format!("blobs/sha256/{h}")),
            })
            .collect();
        platforms.push(Platform {
            platform: platform_name(&config),
            manifest: Some(mdigest),
            config: cdigest,
            total_size: layers.iter().map(|l| l.size).sum(),
            layers,
            run_config: config["config"].clone(),
            created: config["created"].as_str().map(String::from),
        });
    }
    Ok(Summary { destination: dest.to_string(), media_type, digest: Some(digest), tags, platforms })
}

fn platform_name(config: &Value) -> String {
    let mut s = format!("{}/{}", config["os"].as_str().unwrap_or("?"), config["architecture"].as_str().unwrap_or("?"));
    if let Some(v) = config["variant"].as_str() {
        s.push('/');
        s.push_str(v);
    }
    s
}

fn from_docker(files: &Files, dest: &Dest) -> Result<Summary, Error> {
    let manifest = files.json("manifest.json")?;
    let entry = manifest.get(0).ok_or_else(|| files.invalid("`manifest.json` lists no image".into()))?;
    let config_name = entry["Config"].as_str().unwrap_or("");
    let config = files.json(config_name)?;
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let layers: Vec<LayerSummary> = entry["Layers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let name = l.as_str().unwrap_or("");
            LayerSummary {
                digest: diff_ids.get(i).cloned().unwrap_or_default(),
                diff_id: diff_ids.get(i).cloned(),
                size: files.sizes.get(name).copied().unwrap_or(0),
                media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
                file: Some(name.to_string()),
            }
        })
        .collect();
    let tags = entry["RepoTags"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let config_digest = format!("sha256:{}", config_name.trim_end_matches(".json").rsplit('/').next().unwrap_or(""));
    Ok(Summary {
        destination: dest.to_string(),
        media_type: "docker-archive".into(),
        digest: None,
        tags,
        platforms: vec![Platform {
            platform: platform_name(&config),
            manifest: None,
            config: config_digest,
            total_size: layers.iter().map(|l| l.size).sum(),
            layers,
            run_config: config["config"].clone(),
            created: config["created"].as_str().map(String::from),
        }],
    })
}

/// Bytes in a short human form (`1.2 MB`).
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// The plain-text rendering of a summary.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    out.push_str(&format!("image     {}\n", s.destination));
    if let Some(d) = &s.digest {
        out.push_str(&format!("digest    {d}\n"));
    }
    out.push_str(&format!("type      {}\n", s.media_type));
    out.push_str(&format!("tags      {}\n", s.tags.join(", ")));
    for p in &s.platforms {
        out.push_str(&format!("\n{}  ({} layers, {})\n", p.platform, p.layers.len(), human(p.total_size)));
        if let Some(m) = &p.manifest {
            out.push_str(&format!("  manifest  {m}\n"));
        }
        out.push_str(&format!("  config    {}\n", p.config));
        for (i, l) in p.layers.iter().enumerate() {
            out.push_str(&format!(
                "  layer {:<3} {}  {:>9}  {}\n",
                i + 1,
                l.digest,
                human(l.size),
                l.media_type.rsplit('.').next().unwrap_or("")
            ));
        }
        let rc = &p.run_config;
        for (label, key) in [
            ("user", "User"),
            ("entrypoint", "Entrypoint"),
            ("cmd", "Cmd"),
            ("workdir", "WorkingDir"),
            ("env", "Env"),
            ("ports", "ExposedPorts"),
            ("volumes", "Volumes"),
            ("labels", "Labels"),
            ("stopsignal", "StopSignal"),
            ("healthcheck", "Healthcheck"),
        ] {
            if !rc[key].is_null() {
                let v = match &rc[key] {
                    Value::String(s) => s.clone(),
                    Value::Object(o) if key == "ExposedPorts" || key == "Volumes" => {
                        o.keys().cloned().collect::<Vec<_>>().join(" ")
                    }
                    other => other.to_string(),
                };
                out.push_str(&format!("  {label:<12}{v}\n"));
            }
        }
    }
    out
}
