//! `ship`: a recipe's image (built once) or an image on disk, to one server or a fleet over ssh.

use super::build::{self, Options};
use super::session::Session;
use crate::Error;
use crate::oci::blobs::ImageBlobs;
use crate::oci::read::Stored;
use crate::recipe::Recipe;
use crate::ship::{self, Image, Report, Target};

/// What one server of a fleet got: its report, or why it failed.
pub struct Shipped {
    pub server: Target,
    pub result: Result<Report, Error>,
}

/// Ships one image to every server, `at_once` at a time; a failure on one does not stop the
/// others. `progress` hears each server's bytes sent and total.
pub fn to_fleet(
    servers: &[Target],
    image: &Image<'_>,
    ship_opts: &ship::Options,
    at_once: usize,
    progress: &(dyn Fn(&Target, u64, u64) + Sync),
) -> Vec<Shipped> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<Result<Report, Error>>>> =
        std::sync::Mutex::new((0..servers.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..at_once.clamp(1, servers.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(server) = servers.get(i) else { break };
                    let result = ship::ship(server, image, ship_opts, &mut |sent, total| progress(server, sent, total))
                        .map_err(Error::from);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    servers
        .iter()
        .zip(results)
        .map(|(server, result)| Shipped {
            server: server.clone(),
            result: result.expect("every server was shipped to"),
        })
        .collect()
}

/// Builds `r` once and ships it to every server (see [`to_fleet`]).
pub fn recipe_to_fleet(
    session: &Session,
    servers: &[Target],
    r: &Recipe,
    opts: &Options,
    ship_opts: &ship::Options,
    at_once: usize,
    progress: &(dyn Fn(&Target, u64, u64) + Sync),
) -> Result<Vec<Shipped>, Error> {
    let built = build::build(session, r, opts)?;
    let blobs = ImageBlobs::of_image(&built.image, |d| session.store.blob_path(d), &r.tags);
    Ok(to_fleet(
        servers,
        &Image { name: &r.name, tags: &r.tags, plan: &blobs, record: true },
        ship_opts,
        at_once,
        progress,
    ))
}

/// Ships an image already opened (every blob checked) to every server as `name` (default:
/// the last component of its path), under its names there (`latest` when it has none).
pub fn image_to_fleet(
    servers: &[Target],
    image: &Stored,
    name: Option<&str>,
    ship_opts: &ship::Options,
    at_once: usize,
    progress: &(dyn Fn(&Target, u64, u64) + Sync),
) -> Result<Vec<Shipped>, Error> {
    let blobs = ImageBlobs::of_stored(image).map_err(|e| Error::Usage(e.to_string()))?;
    let mut tags = image.tags.clone();
    if tags.is_empty() {
        tags.push("latest".into());
    }
    let name = name.map_or_else(|| default_name(&image.source), String::from);
    Ok(to_fleet(servers, &Image { name: &name, tags: &tags, plan: &blobs, record: true }, ship_opts, at_once, progress))
}

/// The last path component of `oci:DIR[:REF]` or `oci-archive:FILE`, as an image name.
fn default_name(source: &str) -> String {
    let path = source.split_once(':').map_or(source, |(_, p)| p);
    let path = if source.starts_with("oci:") { path.split(':').next().unwrap_or(path) } else { path };
    let stem = std::path::Path::new(path).file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect();
    if name.is_empty() { "image".into() } else { name }
}
