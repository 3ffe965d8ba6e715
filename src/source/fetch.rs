//! Downloads into the content-addressed store, verified against the pinned sha256 while
//! the bytes arrive. Downloads run in parallel with a bound, are retried on transient
//! failures, and land under their digest only once verified.

use crate::model::digest::{Digest, Hasher};
use crate::model::text::redact;
use crate::progress::{self, Phase};
use crate::store::Store;
use futures_util::StreamExt;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Download {
    pub url: String,
    pub sha256: Digest,
    /// Where the recipe asks for it (`file:line:col`), for messages.
    pub origin: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("download of `{url}` failed: HTTP {status} (asked for by {origin})")]
    Status { url: String, status: u16, origin: String },
    #[error("download of `{url}` failed (asked for by {origin})")]
    Network {
        url: String,
        origin: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "download of `{url}` does not match its pinned digest (asked for by {origin}): expected {expected}, got {actual}"
    )]
    Mismatch { url: String, origin: String, expected: Digest, actual: Digest },
    #[error("`{url}` answered with more than {limit} bytes (asked for by {origin})")]
    TooLarge { url: String, limit: u64, origin: String },
    #[error("cannot write a download into the cache")]
    Io(#[from] std::io::Error),
}

const PARALLEL: usize = 6;
const ATTEMPTS: u32 = 3;

fn retry_delay(attempt: u32) -> Duration {
    let base = std::env::var("ASSEMBLE_RETRY_DELAY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(500u64);
    Duration::from_millis(base * u64::from(attempt))
}

/// Fetches a small document that changes in place (an `InRelease`), revalidating the copy
/// kept in `cache_dir` with `If-None-Match` / `If-Modified-Since`: a 304 reuses it. The
/// caller verifies what it gets either way.
pub fn get_revalidated(url: &str, origin: &str, cache_dir: &std::path::Path) -> Result<Vec<u8>, Error> {
    let key = crate::model::digest::Digest::of(url.as_bytes()).hex();
    let (body_path, meta_path) = (cache_dir.join(format!("{key}.body")), cache_dir.join(format!("{key}.meta")));
    // The kept copy is the cache's, so no more trusted than the mirror: bounded alike.
    let cached = fs_err::metadata(&body_path)
        .ok()
        .filter(|m| m.len() <= MAX_SIGNED_INDEX)
        .and_then(|_| fs_err::read(&body_path).ok());
    let meta: Vec<String> =
        fs_err::read_to_string(&meta_path).map(|m| m.lines().map(String::from).collect()).unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (status, etag, modified, body) = rt.block_on(async {
        let net = |source| Error::Network { url: redact(url), origin: origin.into(), source };
        let mut req = client().get(url);
        if cached.is_some() {
            if let Some(e) = meta.first().filter(|e| !e.is_empty()) {
                req = req.header("If-None-Match", e.as_str());
            }
            if let Some(m) = meta.get(1).filter(|m| !m.is_empty()) {
                req = req.header("If-Modified-Since", m.as_str());
            }
        }
        let resp = req.send().await.map_err(net)?;
        let header = |h: &str| resp.headers().get(h).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let (status, etag, modified) = (resp.status().as_u16(), header("etag"), header("last-modified"));
        let body = read_body(resp, MAX_SIGNED_INDEX, url, origin).await?;
        Ok::<_, Error>((status, etag, modified, body))
    })?;
    match (status, cached) {
        (304, Some(c)) => {
            tracing::debug!("{} not modified", redact(url));
            Ok(c)
        }
        (200..=299, _) => {
            fs_err::create_dir_all(cache_dir)?;
            for (path, bytes) in
                [(&body_path, body.clone()), (&meta_path, format!("{etag}\n{modified}\n").into_bytes())]
            {
                let mut tmp = tempfile::NamedTempFile::new_in(cache_dir)?;
                tmp.write_all(&bytes)?;
                tmp.persist(path).map_err(|e| e.error)?;
            }
            Ok(body)
        }
        _ if transient(&Error::Status { url: String::new(), status, origin: String::new() }) => {
            get_bounded(url, origin, MAX_SIGNED_INDEX)
        }
        _ => Err(Error::Status { url: redact(url), status, origin: origin.into() }),
    }
}

/// A signed index (`InRelease`, `APKINDEX`) is read at most this long: Debian's is ~150 kB,
/// Alpine's ~1 MB; a mirror that answers endlessly is refused, not held in memory.
const MAX_SIGNED_INDEX: u64 = 32 << 20;

/// A response's body, refused once it passes `limit` bytes (read as it streams).
async fn read_body(mut resp: reqwest::Response, limit: u64, url: &str, origin: &str) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) =
        resp.chunk().await.map_err(|source| Error::Network { url: redact(url), origin: origin.into(), source })?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > limit {
            return Err(Error::TooLarge { url: redact(url), limit, origin: origin.into() });
        }
    }
    Ok(body)
}

/// Fetches a small document into memory, with the same retries as downloads.
pub fn get_bytes(url: &str, origin: &str) -> Result<Vec<u8>, Error> {
    get_bounded(url, origin, u64::MAX)
}

/// [`get_bytes`], refusing an answer longer than `limit` bytes as it streams.
pub fn get_bounded(url: &str, origin: &str, limit: u64) -> Result<Vec<u8>, Error> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let client = client();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r: Result<Vec<u8>, Error> = async {
                let net = |source| Error::Network { url: redact(url), origin: origin.into(), source };
                let resp = client.get(url).send().await.map_err(net)?;
                if !resp.status().is_success() {
                    return Err(Error::Status {
                        url: redact(url),
                        status: resp.status().as_u16(),
                        origin: origin.into(),
                    });
                }
                read_body(resp, limit, url, origin).await
            }
            .await;
            match r {
                Err(e) if attempt < ATTEMPTS && transient(&e) => {
                    tracing::warn!("{e}; retrying ({attempt}/{ATTEMPTS})");
                    tokio::time::sleep(retry_delay(attempt)).await;
                }
                other => return other,
            }
        }
    })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("assemble/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client")
}

/// Fetches every download the store does not already hold (or cannot take, checked, from
/// its seed cache).
pub fn fetch_all(store: &Store, downloads: &[Download]) -> Result<(), Error> {
    fetch_each(store, downloads, &|_| ())
}

/// As [`fetch_all`], handing each digest the store did not hold to `arrived` as soon as it is
/// there, checked (taken from the seed cache: at once; downloaded: as each one ends), so its
/// reader can start while the rest are on the way. Downloads start in the order given.
pub fn fetch_each(store: &Store, downloads: &[Download], arrived: &(dyn Fn(Digest) + Sync)) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    let mut todo: Vec<&Download> = Vec::new();
    for d in downloads {
        if !seen.insert(d.sha256) || store.has_blob(&d.sha256) {
            continue;
        }
        if store.adopt(&d.sha256) {
            arrived(d.sha256);
        } else {
            todo.push(d);
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    tracing::info!("downloading {} file(s)", todo.len());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let client = &client();
        let results: Vec<Result<(), Error>> = futures_util::stream::iter(todo)
            .map(|d| async move {
                fetch_one(client, store, d).await?;
                arrived(d.sha256);
                Ok(())
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        results.into_iter().collect()
    })
}

async fn fetch_one(client: &reqwest::Client, store: &Store, d: &Download) -> Result<(), Error> {
    retrying(|| try_fetch(client, store, d)).await
}

/// Runs `attempt` until it succeeds, fails for good, or has failed [`ATTEMPTS`] times.
async fn retrying<T, F: std::future::Future<Output = Result<T, Error>>>(
    mut attempt: impl FnMut() -> F,
) -> Result<T, Error> {
    let mut n = 0;
    loop {
        n += 1;
        match attempt().await {
            Err(e) if n < ATTEMPTS && transient(&e) => {
                tracing::warn!("{e}; retrying ({n}/{ATTEMPTS})");
                tokio::time::sleep(retry_delay(n)).await;
            }
            other => return other,
        }
    }
}

fn transient(e: &Error) -> bool {
    match e {
        Error::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
        Error::Network { .. } => true,
        _ => false,
    }
}

async fn try_fetch(client: &reqwest::Client, store: &Store, d: &Download) -> Result<(), Error> {
    let (tmp, actual, _) = stream(client, store, &d.url, &d.origin).await?;
    if actual != d.sha256 {
        return Err(Error::Mismatch { url: redact(&d.url), origin: d.origin.clone(), expected: d.sha256, actual });
    }
    store.commit(tmp, &d.sha256, false)?;
    Ok(())
}

/// Streams `url` into a temporary file of the store, hashing it as it arrives.
async fn stream(
    client: &reqwest::Client,
    store: &Store,
    url: &str,
    origin: &str,
) -> Result<(tempfile::NamedTempFile, Digest, u64), Error> {
    let shown = redact(url);
    let net = |source| Error::Network { url: shown.clone(), origin: origin.into(), source };
    tracing::debug!("downloading {shown}");
    let resp = client.get(url).send().await.map_err(net)?;
    if !resp.status().is_success() {
        return Err(Error::Status { url: shown.clone(), status: resp.status().as_u16(), origin: origin.into() });
    }
    let mut tmp = store.temp()?;
    let mut hasher = Hasher::default();
    if let Some(n) = resp.content_length() {
        progress::expect(Phase::Download, n);
    }
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(net)?;
        hasher.update(&chunk);
        tmp.write_all(&chunk)?;
        progress::done(Phase::Download, chunk.len() as u64);
    }
    let (digest, size) = hasher.finish();
    Ok((tmp, digest, size))
}

async fn learn_one(client: &reqwest::Client, store: &Store, url: &str, origin: &str) -> Result<Digest, Error> {
    retrying(|| async {
        let (tmp, digest, _) = stream(client, store, url, origin).await?;
        store.commit(tmp, &digest, false)?;
        Ok(digest)
    })
    .await
}

/// Downloads whose sha256 is not known yet — a package its index vouches for by another
/// checksum (an `.apk`'s control hash), fetched once to learn it: each `(url, origin)` is
/// streamed into the store, never held whole in memory, and its digest returned, in order.
/// The caller checks the content against what vouches for it before using it.
pub fn fetch_unpinned(store: &Store, wanted: &[(String, String)]) -> Result<Vec<Digest>, Error> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    tracing::info!("downloading {} file(s)", wanted.len());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let client = client();
        let results: Vec<Result<Digest, Error>> = futures_util::stream::iter(wanted)
            .map(|(url, origin)| learn_one(&client, store, url, origin))
            .buffered(PARALLEL)
            .collect()
            .await;
        results.into_iter().collect()
    })
}
