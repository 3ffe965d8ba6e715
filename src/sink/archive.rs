//! Single-file images: `oci-archive` (a tar of the OCI layout) and `docker-archive` (the
//! `docker save` format: `manifest.json`, the config, and one uncompressed `layer.tar` per
//! layer, which `docker load` and `podman load` both read). Both are written as
//! deterministic tars by the layer tar writer, so the same image gives the same file.

use super::error::Error;
use super::layout;
use crate::model::digest::{Digest, HashWriter};
use crate::model::path::ImagePath;
use crate::oci::{Image, PlatformImage, json};
use crate::tree::{Content, Entry, Tree};
use serde_json::json;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

fn add_bytes(tree: &mut Tree, path: &str, bytes: Vec<u8>) {
    let e = Entry::bytes(bytes, 0o644, Arc::from("archive"));
    tree.insert(ImagePath::new(path).expect("valid"), e).expect("archive paths are distinct");
}

fn add_file(tree: &mut Tree, path: &str, file: &Path, digest: Digest, size: u64) {
    let e = Entry::file(Content::Stored(file.to_path_buf()), size, digest, 0o644, Arc::from("archive"));
    tree.insert(ImagePath::new(path).expect("valid"), e).expect("archive paths are distinct");
}

fn write_tree(tree: &mut Tree, dest: &Path) -> Result<(), Error> {
    tree.add_parents(&Default::default());
    let w = |source| Error::Write { path: dest.to_path_buf(), source };
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(w)?;
    let tmp = tempfile::Builder::new().prefix(".partial-").tempfile_in(dir).map_err(w)?;
    let mut tw = crate::layer::tar::TarWriter::new(std::io::BufWriter::new(tmp));
    for (path, entry) in tree.iter() {
        tw.entry(path, entry, 0)?;
    }
    let tmp = tw.finish()?.into_inner().map_err(|e| w(e.into_error()))?;
    let private = tree.iter().any(|(_, e)| e.secret);
    let mode = if private { 0o600 } else { 0o644 };
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(w)?;
    tmp.persist(dest).map_err(|e| w(e.error))?;
    Ok(())
}

pub fn write_oci(image: &Image, dest: &Path) -> Result<(), Error> {
    let mut tree = Tree::default();
    add_bytes(&mut tree, "oci-layout", layout::LAYOUT_FILE.to_vec());
    add_bytes(&mut tree, "index.json", layout::index_json(image));
    let mut docs = vec![&image.index];
    for p in &image.platforms {
        docs.push(&p.manifest);
        docs.push(&p.config);
        for l in &p.layers {
            let mut e =
                Entry::file(Content::Stored(l.path.clone()), l.info.size, l.info.digest, 0o644, Arc::from("archive"));
            e.secret = l.secret;
            let _ = tree.insert(ImagePath::new(&format!("blobs/sha256/{}", l.info.digest.hex())).expect("valid"), e);
        }
    }
    let empty = crate::oci::referrer::empty_config();
    if !image.referrers.is_empty() {
        docs.push(&empty);
    }
    for r in &image.referrers {
        docs.push(&r.manifest);
        docs.push(&r.document);
    }
    for d in docs {
        let p = ImagePath::new(&format!("blobs/sha256/{}", d.digest.hex())).expect("valid");
        let _ = tree.insert(p, Entry::bytes(d.bytes.clone(), 0o644, Arc::from("archive")));
    }
    write_tree(&mut tree, dest)
}

pub fn write_docker(image: &Image, platform: &PlatformImage, dest: &Path) -> Result<(), Error> {
    let w = |source| Error::Write { path: dest.to_path_buf(), source };
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(w)?;
    // Uncompressed layers are staged next to the destination and removed afterwards.
    let staging = tempfile::Builder::new().prefix(".partial-").tempdir_in(dir).map_err(w)?;
    let mut tree = Tree::default();
    let mut layers = Vec::new();
    for l in &platform.layers {
        let staged = staging.path().join(l.info.diff_id.hex());
        let name = format!("{}/layer.tar", l.info.diff_id.hex());
        if !staged.exists() {
            let f = fs_err::File::open(&l.path).map_err(w)?;
            let mut r: Box<dyn Read> = if l.info.media_type.ends_with("zstd") {
                Box::new(zstd::stream::read::Decoder::new(f).map_err(w)?)
            } else {
                Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)))
            };
            let mut hw = HashWriter::new(std::io::BufWriter::new(fs_err::File::create(&staged).map_err(w)?));
            std::io::copy(&mut r, &mut hw).map_err(w)?;
            let (_, actual, _) = hw.finish();
            if actual != l.info.diff_id {
                return Err(Error::Damaged { digest: l.info.diff_id.to_string(), actual: actual.to_string() });
            }
            add_file(&mut tree, &name, &staged, l.info.diff_id, l.info.uncompressed_size);
        }
        layers.push(name);
    }
    let config_name = format!("{}.json", platform.config.digest.hex());
    add_bytes(&mut tree, &config_name, platform.config.bytes.clone());
    let repo_tags: Vec<String> = image.tags.iter().map(|t| format!("{}:{t}", image.name)).collect();
    let manifest = json!([{"Config": config_name, "RepoTags": repo_tags, "Layers": layers}]);
    add_bytes(&mut tree, "manifest.json", json::canonical(&manifest));
    if platform.layers.iter().any(|l| l.secret)
        && let Some(e) = tree.get_mut(&ImagePath::new("manifest.json").expect("valid"))
    {
        e.secret = true;
    }
    write_tree(&mut tree, dest)
}
