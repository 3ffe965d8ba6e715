//! Reading from a registry: manifests as their exact bytes, blobs streamed into the store
//! and checked against their digest before they get their final name; a whole image (every
//! platform) written as an OCI layout for `diff` and `verify --against`. What a registry
//! answers is bounded as it streams: a manifest at [`MAX_MANIFEST`], a blob at the size its
//! descriptor gives.

use super::{ACCEPT, Client, Error, Reference, Request, Result, scope};
use crate::model::digest::{Digest, Hasher};
use crate::store::Store;
use futures_util::StreamExt;
use reqwest::{Method, header};
use std::io::Write;

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// GETs a manifest by tag or digest. A digest reference is checked against the bytes.
/// The largest manifest or index taken from a registry (4 MiB, as the distribution registry's
/// own limit).
pub const MAX_MANIFEST: u64 = 4 << 20;

pub async fn manifest(client: &Client, r: &Reference, reference: &str) -> Result<Fetched> {
    let req =
        Request::new(Method::GET, format!("/v2/{}/manifests/{reference}", r.repository), &scope(&r.repository, "pull"))
            .header(header::ACCEPT, ACCEPT);
    let resp = client.expect(&req, &[200]).await?;
    let media_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    // A manifest or index is small: a registry answering with more is refused as it streams.
    if resp.content_length().is_some_and(|n| n > MAX_MANIFEST) {
        return Err(Error::Invalid(format!("{r}: the manifest `{reference}` is larger than {MAX_MANIFEST} bytes")));
    }
    let mut bytes = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| Error::Network { method: Method::GET, url: format!("{r}"), source: e.without_url() })?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(Error::Invalid(format!("{r}: the manifest `{reference}` is larger than {MAX_MANIFEST} bytes")));
        }
    }
    let digest = Digest::of(&bytes);
    if let Ok(expected) = reference.parse::<Digest>()
        && expected != digest
    {
        return Err(Error::Mismatch { what: format!("the manifest of {r}"), expected, actual: digest });
    }
    let media_type = if media_type.is_empty() || media_type == "application/json" {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(String::from))
            .unwrap_or_default()
    } else {
        media_type
    };
    Ok(Fetched { bytes, media_type, digest })
}

/// Whether the repository holds a manifest with this digest.
/// The manifest (or index) `reference` — a tag or a digest — of `repository`, parsed (`null`
/// when it is not JSON); `None` when the registry has none by that name.
pub async fn manifest_json(client: &Client, repository: &str, reference: &str) -> Result<Option<serde_json::Value>> {
    let r = Reference { registry: client.registry.clone(), repository: repository.into(), tag: None, digest: None };
    match manifest(client, &r, reference).await {
        Ok(f) => Ok(Some(serde_json::from_slice(&f.bytes).unwrap_or_default())),
        Err(Error::Status { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn has_manifest(client: &Client, repository: &str, digest: &Digest) -> Result<bool> {
    let req = Request::new(Method::HEAD, format!("/v2/{repository}/manifests/{digest}"), &scope(repository, "pull"))
        .header(header::ACCEPT, ACCEPT);
    let resp = client.expect(&req, &[200, 404]).await?;
    Ok(resp.status().as_u16() == 200)
}

/// Downloads a blob into the store unless it is there already; the digest is checked
/// while the bytes arrive.
pub async fn blob(client: &Client, store: &Store, repository: &str, digest: &Digest, size: u64) -> Result<()> {
    // A copy in the cache is used only while it is intact (a damaged one is removed here).
    if store.has_or_adopt(digest) && store.verify_blob(digest).is_ok() {
        return Ok(());
    }
    let io = |source| Error::Io { path: store.tmp_dir(), source };
    let req = Request::new(Method::GET, format!("/v2/{repository}/blobs/{digest}"), &scope(repository, "pull"));
    let mut last = None;
    for _ in 0..3 {
        let resp = client.expect(&req, &[200]).await?;
        let mut tmp = store.temp().map_err(io)?;
        let mut hasher = Hasher::default();
        let mut body = resp.bytes_stream();
        let mut broken = None;
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => {
                    received += c.len() as u64;
                    if received > size {
                        // More than the descriptor says: not the blob, however long it goes on.
                        return Err(Error::Mismatch {
                            what: format!("blob of {repository} (more than the {size} bytes its descriptor gives)"),
                            expected: *digest,
                            actual: Digest::of(b""),
                        });
                    }
                    hasher.update(&c);
                    tmp.write_all(&c).map_err(io)?;
                }
                Err(e) => {
                    broken = Some(e.without_url());
                    break;
                }
            }
        }
        if let Some(e) = broken {
            tracing::warn!("download of {digest} from {repository} broke off: {e}; retrying");
            last = Some(Error::Network { method: Method::GET, url: format!("{repository}@{digest}"), source: e });
            continue;
        }
        let (actual, n) = hasher.finish();
        if actual != *digest || n != size {
            return Err(Error::Mismatch {
                what: format!("blob of {repository} ({n} bytes, {size} expected)"),
                expected: *digest,
                actual,
            });
        }
        store.commit(tmp, digest, false).map_err(io)?;
        store.remember_repository(&client.registry, repository, digest);
        return Ok(());
    }
    Err(last.expect("an attempt was made"))
}

/// Downloads every platform of the image `r` names (each blob checked against its digest)
/// and writes it as an OCI layout in `dir`, named by the reference's tag; returns the digest
/// of the image's top manifest or index.
pub fn to_layout(store: &Store, r: &Reference, dir: &std::path::Path) -> Result<Digest> {
    use crate::sink::layout;
    let client = Client::new(&r.registry, &r.repository, &super::Options::default())?;
    let blobs = dir.join("blobs/sha256");
    fs_err::create_dir_all(&blobs).map_err(|source| Error::Io { path: blobs.clone(), source })?;
    let written = |e: crate::sink::Error| Error::Io { path: dir.to_path_buf(), source: std::io::Error::other(e) };
    let invalid = |what: String| Error::Invalid(format!("{r}: {what}"));
    let parse = |bytes: &[u8], d: &Digest| -> Result<serde_json::Value> {
        layout::write_atomic(&blobs.join(d.hex()), bytes, false).map_err(written)?;
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("manifest {d} is not JSON: {e}")))
    };
    let descriptor = |d: &serde_json::Value| -> Result<(Digest, u64)> {
        let digest = d["digest"].as_str().and_then(|x| x.parse().ok());
        digest
            .map(|x| (x, d["size"].as_u64().unwrap_or(0)))
            .ok_or_else(|| invalid("a descriptor has no valid digest".into()))
    };
    super::runtime()?.block_on(async {
        let top = manifest(&client, r, &r.reference()).await?;
        let v = parse(&top.bytes, &top.digest)?;
        let manifests = match v["manifests"].as_array() {
            None => vec![v.clone()],
            Some(list) => {
                let mut out = Vec::new();
                for m in list {
                    let (d, _) = descriptor(m)?;
                    out.push(parse(&manifest(&client, r, &d.to_string()).await?.bytes, &d)?);
                }
                out
            }
        };
        let mut wanted: Vec<(Digest, u64)> = Vec::new();
        for m in &manifests {
            wanted.push(descriptor(&m["config"])?);
            for l in m["layers"].as_array().into_iter().flatten() {
                wanted.push(descriptor(l)?);
            }
        }
        wanted.sort();
        wanted.dedup();
        let results: Vec<Result<()>> = futures_util::stream::iter(&wanted)
            .map(|(d, size)| blob(&client, store, &r.repository, d, *size))
            .buffer_unordered(4)
            .collect()
            .await;
        results.into_iter().collect::<Result<()>>()?;
        for (d, size) in &wanted {
            layout::copy_blob(&store.blob_path(d), d, *size, &blobs, false, Some(store)).map_err(written)?;
        }
        let entry = serde_json::json!({
            "mediaType": top.media_type,
            "digest": top.digest.to_string(),
            "size": top.bytes.len(),
            "annotations": {crate::oci::REF_NAME: r.tag.as_deref().unwrap_or("latest")},
        });
        layout::write_atomic(&dir.join("oci-layout"), layout::LAYOUT_FILE, false).map_err(written)?;
        layout::write_atomic(&dir.join("index.json"), &layout::index_of(vec![entry]), false).map_err(written)?;
        Ok(top.digest)
    })
}
