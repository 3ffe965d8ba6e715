//! `assemble inspect`: an image read back through [`crate::oci::read`] (every blob checked)
//! summarised — the index, its platforms, each layer's digest, diff_id and size, and the
//! runtime config.

use crate::model::text::human;
use crate::oci::read::Stored;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub destination: String,
    pub media_type: String,
    pub digest: Option<String>,
    pub tags: Vec<String>,
    /// The index's (or single manifest's) annotations: `org.opencontainers.image.*` from the
    /// recipe's `metadata`, and its `annotations`.
    pub annotations: Value,
    pub platforms: Vec<Platform>,
}

#[derive(Debug, Serialize)]
pub struct Platform {
    pub platform: String,
    pub manifest: Option<String>,
    /// The platform manifest's annotations.
    pub annotations: Value,
    pub config: String,
    pub layers: Vec<LayerSummary>,
    pub total_size: u64,
    pub run_config: Value,
    pub created: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LayerSummary {
    /// The recipe's name for the layer (`base`, `app`, `config`), when the image says it.
    pub name: Option<String>,
    pub digest: String,
    pub diff_id: Option<String>,
    pub size: u64,
    pub media_type: String,
    /// Where the blob is inside the layout or archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// The summary of an image already opened (and so checked).
pub fn summary(image: &Stored) -> Summary {
    let platforms = image
        .platforms
        .iter()
        .map(|p| {
            let layers: Vec<LayerSummary> = p
                .layers
                .iter()
                .map(|l| LayerSummary {
                    name: l.name.clone(),
                    digest: l.digest.to_string(),
                    diff_id: Some(l.diff_id.to_string()),
                    size: l.size,
                    media_type: l.media_type.clone(),
                    file: Some(l.file.clone()),
                })
                .collect();
            Platform {
                platform: p.name.clone(),
                manifest: p.manifest.as_ref().map(|m| m.digest.to_string()),
                annotations: p.manifest.as_ref().map(|m| m.value()["annotations"].clone()).unwrap_or(Value::Null),
                config: p.config.digest.to_string(),
                total_size: layers.iter().map(|l| l.size).sum(),
                layers,
                run_config: p.config_value["config"].clone(),
                created: p.config_value["created"].as_str().map(String::from),
            }
        })
        .collect();
    Summary {
        destination: image.source.clone(),
        media_type: image.top.as_ref().map_or_else(|| "docker-archive".to_string(), |t| t.media_type.clone()),
        digest: image.digest().map(|d| d.to_string()),
        tags: image.tags.clone(),
        annotations: image.top.as_ref().map(|t| t.value()["annotations"].clone()).unwrap_or(Value::Null),
        platforms,
    }
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
    for (k, v) in s.annotations.as_object().into_iter().flatten() {
        out.push_str(&format!("annotation {k}={}\n", v.as_str().unwrap_or_default()));
    }
    for p in &s.platforms {
        out.push_str(&format!("\n{}  ({} layers, {})\n", p.platform, p.layers.len(), human(p.total_size)));
        if let Some(m) = &p.manifest {
            out.push_str(&format!("  manifest  {m}\n"));
        }
        out.push_str(&format!("  config    {}\n", p.config));
        for (i, l) in p.layers.iter().enumerate() {
            out.push_str(&format!(
                "  layer {:<3} {:<8} {}  {:>9}  {}\n",
                i + 1,
                l.name.as_deref().unwrap_or("-"),
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
        for (k, v) in rc["Labels"].as_object().into_iter().flatten() {
            out.push_str(&format!("  label       {k}={}\n", v.as_str().unwrap_or_default()));
        }
    }
    out
}
