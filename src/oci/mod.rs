//! OCI image-spec objects: the image config, manifests, the image index, referrers, and the
//! in-memory [`Image`] that every sink consumes. All JSON is canonical so the same
//! inputs always give the same bytes and digests.

pub mod blobs;
pub mod json;
pub mod read;
pub mod referrer;

use crate::layer::LayerInfo;
use crate::model::digest::Digest;
use crate::model::platform::Arch;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const CREATED: &str = "org.opencontainers.image.created";

/// A JSON document together with its exact bytes and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
}

impl Doc {
    pub fn new(value: &Value, media_type: &str) -> Doc {
        let bytes = json::canonical(value);
        Doc { digest: Digest::of(&bytes), bytes, media_type: media_type.into() }
    }

    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest.to_string(), "size": self.bytes.len()})
    }

    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.bytes).expect("a Doc holds valid JSON")
    }
}

/// A layer blob of a built image and where its bytes are.
#[derive(Debug, Clone)]
pub struct Layer {
    pub info: LayerInfo,
    pub path: PathBuf,
    /// Which recipe layer it is (`base`, an application layer's name, `config`).
    pub name: String,
    /// Holds a secret: written readable by its owner only.
    pub secret: bool,
}

impl Layer {
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.info.media_type, "digest": self.info.digest.to_string(), "size": self.info.size})
    }
}

/// One platform of an image.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub arch: Arch,
    pub config: Doc,
    pub manifest: Doc,
    pub layers: Vec<Layer>,
}

/// A multi-platform image ready for a sink.
#[derive(Debug, Clone)]
pub struct Image {
    pub name: String,
    pub tags: Vec<String>,
    pub index: Doc,
    pub platforms: Vec<PlatformImage>,
    /// Artifacts about the image (SBOMs, provenance) written and pushed beside it.
    pub referrers: Vec<Referrer>,
}

/// An artifact about an image (an OCI 1.1 referrer, see [`referrer`]), ready to be written
/// or pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub subject: Digest,
    pub artifact_type: String,
    pub manifest: Doc,
    /// The document it carries (its one layer).
    pub document: Doc,
    pub annotations: BTreeMap<String, String>,
}

impl Image {
    pub fn platform(&self, arch: Arch) -> Option<&PlatformImage> {
        self.platforms.iter().find(|p| p.arch == arch)
    }

    pub fn has_secrets(&self) -> bool {
        self.platforms.iter().any(|p| p.layers.iter().any(|l| l.secret))
    }
}

pub fn platform_json(arch: Arch) -> Value {
    let mut p = json!({"architecture": arch.oci_arch(), "os": "linux"});
    if let Some(v) = arch.variant() {
        p["variant"] = json!(v);
    }
    p
}

/// RFC 3339 UTC for a Unix time, e.g. `1970-01-01T00:00:00Z`.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The runtime part of the image config (`config` in the OCI config JSON).
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub user: Option<String>,
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    /// Docker's `Healthcheck` object, already in its JSON shape.
    pub healthcheck: Option<Value>,
}

impl RunConfig {
    fn to_json(&self) -> Value {
        let mut c = serde_json::Map::new();
        if let Some(u) = &self.user {
            c.insert("User".into(), json!(u));
        }
        if !self.env.is_empty() {
            c.insert("Env".into(), json!(self.env));
        }
        if let Some(e) = &self.entrypoint {
            c.insert("Entrypoint".into(), json!(e));
        }
        if let Some(e) = &self.cmd {
            c.insert("Cmd".into(), json!(e));
        }
        if let Some(w) = &self.workdir {
            c.insert("WorkingDir".into(), json!(w));
        }
        if !self.ports.is_empty() {
            c.insert("ExposedPorts".into(), Value::Object(self.ports.iter().map(|p| (p.clone(), json!({}))).collect()));
        }
        if !self.volumes.is_empty() {
            c.insert("Volumes".into(), Value::Object(self.volumes.iter().map(|p| (p.clone(), json!({}))).collect()));
        }
        if !self.labels.is_empty() {
            c.insert("Labels".into(), json!(self.labels));
        }
        if let Some(s) = &self.stop_signal {
            c.insert("StopSignal".into(), json!(s));
        }
        if let Some(h) = &self.healthcheck {
            c.insert("Healthcheck".into(), h.clone());
        }
        Value::Object(c)
    }
}

/// Builds the config and manifest of one platform.
pub fn platform_image(
    arch: Arch,
    epoch: u64,
    run: &RunConfig,
    layers: Vec<Layer>,
    annotations: &BTreeMap<String, String>,
) -> PlatformImage {
    let created = rfc3339(epoch);
    let history: Vec<Value> = layers
        .iter()
        .map(|l| json!({"created": created, "created_by": format!("assemble: {} layer", l.name)}))
        .collect();
    let mut config = json!({
        "architecture": arch.oci_arch(),
        "os": "linux",
        "created": created,
        "config": run.to_json(),
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.info.diff_id.to_string()).collect::<Vec<_>>()},
        "history": history,
    });
    if let Some(v) = arch.variant() {
        config["variant"] = json!(v);
    }
    let config = Doc::new(&config, MEDIA_CONFIG);
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor(),
        "layers": layers.iter().map(Layer::descriptor).collect::<Vec<_>>(),
    });
    if !annotations.is_empty() {
        manifest["annotations"] = json!(annotations);
    }
    let manifest = Doc::new(&manifest, MEDIA_MANIFEST);
    PlatformImage { arch, config, manifest, layers }
}

/// The image index over the platforms, in the fixed platform order.
pub fn index(platforms: &[PlatformImage], annotations: &BTreeMap<String, String>) -> Doc {
    let manifests: Vec<Value> = platforms
        .iter()
        .map(|p| {
            let mut d = p.manifest.descriptor();
            d["platform"] = platform_json(p.arch);
            d
        })
        .collect();
    let mut index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests});
    if !annotations.is_empty() {
        index["annotations"] = json!(annotations);
    }
    Doc::new(&index, MEDIA_INDEX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
