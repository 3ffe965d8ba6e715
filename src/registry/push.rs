//! Pushing an image: every blob (skipped when the registry has it, mounted when another
//! repository of the same registry does, else uploaded whole or in chunks), then each
//! platform's manifest by digest, then the index by digest, then every tag; then the
//! artifacts about it (SBOMs, provenance) as referrers.

use super::{Body, Client, Error, Request, Result, scope};
use crate::model::digest::Digest;
use crate::oci::Doc;
use crate::oci::Referrer;
use crate::oci::blobs::{Blob, ImageBlobs};
use crate::oci::referrer;
use crate::sign::cosign;
use crate::store::Store;
use futures_util::StreamExt;
use reqwest::{Method, header};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Blobs pushed at once.
    pub parallel: usize,
    /// Blobs larger than this go up in chunks of this size.
    pub chunk_size: u64,
    /// Also tag each platform's manifest `TAG-<arch>` (for consumers that take no index).
    pub platform_tags: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let chunk_size = std::env::var("ASSEMBLE_CHUNK_SIZE").ok().and_then(|v| v.parse().ok()).unwrap_or(64 << 20);
        Settings { parallel: 4, chunk_size, platform_tags: false }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The registry had it.
    Skipped,
    /// Linked from another repository of the same registry.
    Mounted,
    Pushed,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlobReport {
    pub digest: Digest,
    pub size: u64,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub reference: String,
    pub digest: Digest,
    pub tags: Vec<String>,
    pub blobs: Vec<BlobReport>,
    /// Blob bytes sent (a resumed chunk counts once per time it was sent).
    pub bytes_uploaded: u64,
    pub manifests: usize,
}

/// Pushes `plan` to the repository `repo` of the client's registry.
pub async fn push(
    client: &Client,
    store: &Store,
    repo: &str,
    plan: &ImageBlobs,
    settings: &Settings,
) -> Result<Report> {
    let mut blobs = plan.blobs.clone();
    blobs.sort_by_key(|b| b.digest);
    blobs.dedup_by_key(|b| b.digest);
    let results: Vec<Result<(BlobReport, u64)>> = futures_util::stream::iter(&blobs)
        .map(|b| push_blob(client, store, repo, b, settings))
        .buffer_unordered(settings.parallel.max(1))
        .collect()
        .await;
    let mut reports = Vec::new();
    let mut sent = 0;
    for r in results {
        let (report, bytes) = r?;
        sent += bytes;
        reports.push(report);
    }
    reports.sort_by_key(|r| r.digest);
    for m in &plan.manifests {
        put_manifest(client, repo, &m.digest.to_string(), m).await?;
    }
    put_manifest(client, repo, &plan.index.digest.to_string(), &plan.index).await?;
    for tag in &plan.tags {
        put_manifest(client, repo, tag, &plan.index).await?;
    }
    for (tag, manifest) in &plan.platform_tags {
        put_manifest(client, repo, tag, manifest).await?;
    }
    push_referrers(client, repo, &plan.referrers).await?;
    Ok(Report {
        reference: format!("{}/{repo}", client.registry),
        digest: plan.index.digest,
        tags: plan.tags.clone(),
        blobs: reports,
        bytes_uploaded: sent,
        manifests: plan.manifests.len() + 1,
    })
}

/// Tags an index the repository already holds, without sending anything else.
pub async fn tag_existing(client: &Client, repository: &str, index: &Digest, tags: &[String]) -> Result<()> {
    let r = super::Reference {
        registry: client.registry.clone(),
        repository: repository.into(),
        tag: None,
        digest: Some(*index),
    };
    let fetched = super::pull::manifest(client, &r, &index.to_string()).await?;
    let doc = Doc { bytes: fetched.bytes, digest: fetched.digest, media_type: fetched.media_type };
    for tag in tags {
        put_manifest(client, repository, tag, &doc).await?;
    }
    Ok(())
}

async fn put_manifest(client: &Client, repo: &str, reference: &str, doc: &Doc) -> Result<()> {
    put_manifest_answer(client, repo, reference, doc).await.map(|_| ())
}

/// Puts a manifest; the answer's headers (`OCI-Subject` says the registry indexed a subject).
async fn put_manifest_answer(
    client: &Client,
    repo: &str,
    reference: &str,
    doc: &Doc,
) -> Result<reqwest::header::HeaderMap> {
    let req = Request::new(Method::PUT, format!("/v2/{repo}/manifests/{reference}"), &scope(repo, "pull,push"))
        .header(header::CONTENT_TYPE, doc.media_type.clone())
        .body(Body::Bytes(Arc::new(doc.bytes.clone())));
    let resp = client.expect(&req, &[201, 200]).await?;
    check_digest(&resp, &doc.digest, &format!("the manifest {reference}"))?;
    tracing::debug!("put manifest {repo}:{reference}");
    Ok(resp.headers().clone())
}

/// Sends the artifacts about an image (their blobs are already there). A registry with the
/// referrers API indexes each by its subject and says so (`OCI-Subject`); for one without
/// (the distribution registry 2.8), the referrers tag schema: the tag `sha256-<subject hex>`
/// holds an image index listing the subject's referrers, ours merged into what it had.
async fn push_referrers(client: &Client, repo: &str, referrers: &[Referrer]) -> Result<()> {
    let mut fallback: BTreeMap<Digest, Vec<serde_json::Value>> = BTreeMap::new();
    for r in referrers {
        let headers = put_manifest_answer(client, repo, &r.manifest.digest.to_string(), &r.manifest).await?;
        if !headers.contains_key("oci-subject") {
            fallback.entry(r.subject).or_default().push(r.listing_entry());
        }
    }
    for (subject, entries) in fallback {
        let tag = referrer::fallback_tag(&subject);
        let existing = super::pull::manifest_json(client, repo, &tag).await?;
        let bytes = referrer::listing(existing.as_ref(), &entries);
        let doc = Doc { digest: Digest::of(&bytes), bytes, media_type: crate::oci::MEDIA_INDEX.into() };
        if existing.is_some_and(|e| crate::oci::json::canonical(&e) == doc.bytes) {
            continue;
        }
        put_manifest(client, repo, &tag, &doc).await?;
        tracing::debug!(
            "listed {} referrer(s) of {subject} under {tag}",
            doc.value()["manifests"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(())
}

fn check_digest(resp: &reqwest::Response, expected: &Digest, what: &str) -> Result<()> {
    if let Some(d) = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok())
        && let Ok(actual) = d.parse::<Digest>()
        && actual != *expected
    {
        return Err(Error::Mismatch { what: format!("{what} as stored by the registry"), expected: *expected, actual });
    }
    Ok(())
}

async fn push_blob(
    client: &Client,
    store: &Store,
    repo: &str,
    blob: &Blob,
    settings: &Settings,
) -> Result<(BlobReport, u64)> {
    let report = |action, from| BlobReport { digest: blob.digest, size: blob.size, action, from };
    let head = Request::new(Method::HEAD, format!("/v2/{repo}/blobs/{}", blob.digest), &scope(repo, "pull,push"));
    if client.expect(&head, &[200, 404]).await?.status().as_u16() == 200 {
        store.remember_repository(&client.registry, repo, &blob.digest);
        return Ok((report(Action::Skipped, None), 0));
    }
    let mut from = store.repositories_with(&client.registry, &blob.digest);
    from.retain(|r| r != repo);
    let mut sent = 0;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let source = from.first().cloned();
        let (mounted, location) = start_upload(client, repo, &blob.digest, source.as_deref()).await?;
        if mounted {
            store.remember_repository(&client.registry, repo, &blob.digest);
            return Ok((report(Action::Mounted, source), 0));
        }
        if source.is_some() {
            tracing::debug!("mount of {} into {repo} was answered with an upload; uploading", blob.digest);
            from.clear();
        }
        match upload(client, repo, blob, &location, settings, &mut sent).await {
            Ok(()) => {
                store.remember_repository(&client.registry, repo, &blob.digest);
                return Ok((report(Action::Pushed, None), sent));
            }
            Err(e) if attempt < 4 => tracing::warn!("upload of {} failed: {e}; starting it again", blob.digest),
            Err(e) => return Err(e),
        }
    }
}

/// POSTs an upload (a mount when `from` is given). Returns whether the blob was mounted,
/// else the upload location.
async fn start_upload(client: &Client, repo: &str, digest: &Digest, from: Option<&str>) -> Result<(bool, String)> {
    let (url, sc) = match from {
        Some(f) => (
            format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={f}"),
            format!("{} {}", scope(repo, "pull,push"), scope(f, "pull")),
        ),
        None => (format!("/v2/{repo}/blobs/uploads/"), scope(repo, "pull,push")),
    };
    let resp = client.expect(&Request::new(Method::POST, url, &sc), &[201, 202]).await?;
    if resp.status().as_u16() == 201 {
        return Ok((true, String::new()));
    }
    Ok((false, location(client, &resp)?))
}

fn location(client: &Client, resp: &reqwest::Response) -> Result<String> {
    let loc = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Invalid(format!("{} answered an upload without a Location", client.registry)))?;
    if loc.starts_with("http://") || loc.starts_with("https://") || loc.starts_with('/') {
        Ok(client.url(loc))
    } else {
        Err(Error::Invalid(format!("{} gave the upload location `{}`", client.registry, super::loggable(loc))))
    }
}

fn with_query(url: &str, q: &str) -> String {
    if url.contains('?') { format!("{url}&{q}") } else { format!("{url}?{q}") }
}

/// Sends the blob's bytes to an upload location: in one PUT when it is small, else in
/// PATCH chunks, resuming from what the registry reports it has after a failure.
async fn upload(
    client: &Client,
    repo: &str,
    blob: &Blob,
    location: &str,
    settings: &Settings,
    sent: &mut u64,
) -> Result<()> {
    let sc = scope(repo, "pull,push");
    let file = |offset, len| Body::File { path: blob.path.clone(), offset, len };
    if blob.size <= settings.chunk_size {
        let req = Request::new(Method::PUT, with_query(location, &format!("digest={}", blob.digest)), &sc)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(file(0, blob.size));
        let req = Request { retry: false, ..req };
        *sent += blob.size;
        let resp = client.expect(&req, &[201]).await?;
        return check_digest(&resp, &blob.digest, &format!("blob {}", blob.digest));
    }
    let mut location = location.to_string();
    let mut offset = 0u64;
    let mut failures = 0;
    while offset < blob.size {
        let len = settings.chunk_size.min(blob.size - offset);
        let req = Request::new(Method::PATCH, location.clone(), &sc)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_RANGE, format!("{offset}-{}", offset + len - 1))
            .body(file(offset, len));
        let req = Request { retry: false, ..req };
        *sent += len;
        match client.expect(&req, &[202]).await {
            Ok(resp) => {
                location = self::location(client, &resp)?;
                offset = range_end(&resp).unwrap_or(offset + len);
            }
            Err(e) if failures < 5 => {
                failures += 1;
                tracing::warn!("chunk {offset}+{len} of {} failed: {e}; asking where to resume", blob.digest);
                tokio::time::sleep(super::backoff(failures)).await;
                let status = client.expect(&Request::new(Method::GET, location.clone(), &sc), &[204]).await?;
                location = self::location(client, &status).unwrap_or(location);
                offset = range_end(&status).unwrap_or(0);
            }
            Err(e) => return Err(e),
        }
    }
    let req = Request::new(Method::PUT, with_query(&location, &format!("digest={}", blob.digest)), &sc);
    let resp = client.expect(&Request { retry: false, ..req }, &[201]).await?;
    check_digest(&resp, &blob.digest, &format!("blob {}", blob.digest))
}

/// The next offset from a `Range: 0-N` answer (N is the last byte held).
fn range_end(resp: &reqwest::Response) -> Option<u64> {
    let r = resp.headers().get(header::RANGE)?.to_str().ok()?;
    let (_, end) = r.trim_start_matches("bytes=").split_once('-')?;
    // `0-0` is also what an empty upload reports: start that chunk again from 0.
    end.trim().parse::<u64>().ok().map(|e| if e == 0 { 0 } else { e + 1 })
}

/// Signature and attestation layers for the image `index` (see [`crate::sign::cosign`]): for
/// each tag suffix (`sig`, `att`), our layers are uploaded and listed after those the tag
/// already held (other keys' signatures stay), as cosign adds to it.
pub async fn push_signatures(
    client: &Client,
    store: &Store,
    repo: &str,
    index: &Digest,
    sets: &[(&str, Vec<cosign::Layer>)],
    settings: &Settings,
) -> Result<()> {
    let io = |source| Error::Io { path: store.root().to_path_buf(), source };
    for (suffix, layers) in sets {
        if layers.is_empty() {
            continue;
        }
        let tag = cosign::tag(index, suffix);
        let existing: Vec<serde_json::Value> = super::pull::manifest_json(client, repo, &tag)
            .await?
            .and_then(|v| v["layers"].as_array().cloned())
            .unwrap_or_default();
        // What the tag holds a signature of already (by this or an earlier push) is not added
        // again: re-pushing does not grow the tag.
        let signed = |d: &serde_json::Value| d["annotations"][cosign::SIGNED_ANNOTATION].as_str().map(String::from);
        let layers: Vec<&cosign::Layer> = layers
            .iter()
            .filter(|l| !existing.iter().any(|e| signed(e).is_some() && signed(e) == signed(&l.descriptor())))
            .collect();
        if layers.is_empty() {
            tracing::info!("{repo}:{tag} holds these signatures already");
            continue;
        }
        let ours: Vec<serde_json::Value> = layers.iter().map(|l| l.descriptor()).collect();
        let mut all: Vec<serde_json::Value> =
            existing.into_iter().filter(|e| !ours.iter().any(|o| o["digest"] == e["digest"])).collect();
        all.extend(ours);
        let (config, manifest) = cosign::manifest(&all);
        for doc in layers.iter().map(|l| &l.blob).chain([&config]) {
            let (digest, path) = store.put_bytes(&doc.bytes, false).map_err(io)?;
            push_blob(client, store, repo, &Blob { digest, size: doc.bytes.len() as u64, path }, settings).await?;
        }
        put_manifest(client, repo, &tag, &manifest).await?;
        tracing::info!("signed: {} layer(s) under {repo}:{tag}", layers.len());
    }
    Ok(())
}
