//! The OCI image layout directory: `oci-layout`, `index.json`, `blobs/sha256/*`.
//! `index.json` names the image index once per tag (`org.opencontainers.image.ref.name`);
//! entries for other names already in the layout are kept, as skopeo does. The image's
//! referrers (SBOMs, provenance) are listed untagged with their `artifactType`, as oras does
//! ([`crate::oci::referrer::relist`]).

use super::error::Error;
use crate::model::digest::{Digest, HashWriter};
use crate::oci::{Doc, Image, MEDIA_INDEX, json};
use crate::store::Store;
use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub const LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn werr(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Write { path: path.to_path_buf(), source }
}

/// `files`: the cache whose stat records vouch for an output blob hashed before and not
/// touched since (see [`copy_blob`]).
pub fn write(image: &Image, dir: &Path, files: Option<&Store>) -> Result<(), Error> {
    let blobs = dir.join("blobs/sha256");
    fs_err::create_dir_all(&blobs).map_err(werr(dir))?;
    write_atomic(&dir.join("oci-layout"), LAYOUT_FILE, false)?;
    for p in &image.platforms {
        for l in &p.layers {
            copy_blob(&l.path, &l.info.digest, l.info.size, &blobs, l.secret, files)?;
        }
        put_doc(&p.config, &blobs)?;
        put_doc(&p.manifest, &blobs)?;
    }
    put_doc(&image.index, &blobs)?;
    if !image.referrers.is_empty() {
        put_doc(&crate::oci::referrer::empty_config(), &blobs)?;
    }
    for r in &image.referrers {
        put_doc(&r.document, &blobs)?;
        put_doc(&r.manifest, &blobs)?;
    }
    let index_path = dir.join("index.json");
    let existing: Vec<Value> = fs_err::symlink_metadata(&index_path)
        .ok()
        .filter(|m| m.is_file() && m.len() <= crate::oci::read::MAX_DOC)
        .and_then(|_| fs_err::read(&index_path).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["manifests"].as_array().cloned())
        .unwrap_or_default();
    let manifests = crate::oci::referrer::relist(existing, &image.tags, &image.index, &image.referrers);
    write_atomic(&index_path, &index_of(manifests), false)
}

/// `index.json` listing `manifests`.
pub fn index_of(manifests: Vec<Value>) -> Vec<u8> {
    json::canonical(&json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests}))
}

/// `index.json` for a layout that holds just this image and its referrers (used by the
/// archive sink).
pub fn index_json(image: &Image) -> Vec<u8> {
    index_of(crate::oci::referrer::relist(Vec::new(), &image.tags, &image.index, &image.referrers))
}

fn put_doc(doc: &Doc, blobs: &Path) -> Result<(), Error> {
    let path = blobs.join(doc.digest.hex());
    if fs_err::read(&path).is_ok_and(|b| b == doc.bytes) {
        return Ok(());
    }
    write_atomic(&path, &doc.bytes, false)
}

/// Copies a blob, checking its digest on the way unless `files` (the cache) vouches for the
/// very file it reads: this process hashed it — wrote it from bytes it hashed, or hashed it
/// whole — and it has not changed since (same device, inode, size, mtime, ctime; then the
/// kernel copies it without a second hash). A blob already in the output is left alone only
/// while it is what its name says (the output directory is the user's, not ours): one the
/// stat cache hashed as the very file it is now is not hashed again (writing the same image
/// to the same directory re-hashed its 60 MB base layer every time).
pub fn copy_blob(
    from: &Path,
    digest: &Digest,
    size: u64,
    blobs: &Path,
    private: bool,
    files: Option<&Store>,
) -> Result<(), Error> {
    let path = blobs.join(digest.hex());
    let intact = |path: &Path| match files {
        Some(store) => store.file_digest(path).is_ok_and(|(d, _)| d == *digest),
        None => fs_err::File::open(path).and_then(crate::model::digest::hash_reader).is_ok_and(|(d, _)| d == *digest),
    };
    if fs_err::metadata(&path).is_ok_and(|m| m.len() == size) && intact(&path) {
        return Ok(());
    }
    let w = werr(&path);
    let tmp = tempfile::Builder::new().prefix(".partial-").tempfile_in(blobs).map_err(&w)?;
    // One open file, vouched for and read: a file put in its place after the check is not
    // the one copied unhashed.
    let mut src = fs_err::File::open(from).map_err(&w)?;
    if files.is_some_and(|store| store.vouches(from, digest, src.file())) {
        let mut tmp = tmp;
        // Between two std files the kernel copies (copy_file_range); through fs_err's
        // wrapper, `io::copy` read and wrote 8 KiB at a time (14,500 calls for two layers).
        let n = std::io::copy(&mut src.file(), tmp.as_file_mut()).map_err(&w)?;
        if n != size {
            return Err(Error::Damaged { digest: digest.to_string(), actual: format!("{n} bytes, {size} expected") });
        }
        return persist(tmp, &path, private);
    }
    let mut hw = HashWriter::new(std::io::BufWriter::new(tmp));
    std::io::copy(&mut src, &mut hw).map_err(&w)?;
    let (buf, actual, _) = hw.finish();
    if actual != *digest {
        return Err(Error::Damaged { digest: digest.to_string(), actual: actual.to_string() });
    }
    persist(buf.into_inner().map_err(|e| w(e.into_error()))?, &path, private)
}

fn persist(tmp: tempfile::NamedTempFile, path: &Path, private: bool) -> Result<(), Error> {
    let w = werr(path);
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(if private { 0o600 } else { 0o644 })).map_err(&w)?;
    tmp.persist(path).map_err(|e| w(e.error))?;
    Ok(())
}

/// Writes a file via a temporary sibling and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), Error> {
    let w = werr(path);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".partial-").tempfile_in(dir).map_err(&w)?;
    tmp.write_all(bytes).map_err(&w)?;
    persist(tmp, path, private)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache blob this process hashed whole is copied without a second hash only while it
    /// is the very file it hashed: rewritten in place after the check (same length, mtime put
    /// back), the copy hashes it, finds it damaged and writes nothing under its name.
    #[test]
    fn a_blob_rewritten_after_its_check_is_hashed_when_copied() {
        let t = tempfile::tempdir().unwrap();
        let cache = t.path().join("cache");
        let (d, path) = Store::open(&cache).unwrap().put_bytes(b"layer bytes", false).unwrap();
        // Another run: the blob is from the cache, hashed whole before use.
        let store = Store::open(&cache).unwrap();
        let open = || fs_err::File::open(&path).unwrap().into_parts().0;
        assert!(!store.vouches(&path, &d, &open()), "not hashed by this process yet");
        store.verify_blob(&d).unwrap();
        assert!(store.vouches(&path, &d, &open()));
        let out = t.path().join("out");
        fs_err::create_dir_all(&out).unwrap();
        copy_blob(&path, &d, 11, &out, false, Some(&store)).unwrap();
        assert_eq!(fs_err::read(out.join(d.hex())).unwrap(), b"layer bytes");
        // Rewritten in place between the check and a second copy.
        let mtime = fs_err::metadata(&path).unwrap().modified().unwrap();
        fs_err::write(&path, b"LAYER BYTES").unwrap();
        open().set_modified(mtime).unwrap();
        assert!(!store.vouches(&path, &d, &open()), "the ctime moved");
        let other = t.path().join("other");
        fs_err::create_dir_all(&other).unwrap();
        let err = copy_blob(&path, &d, 11, &other, false, Some(&store)).unwrap_err();
        assert!(matches!(err, Error::Damaged { .. }), "{err}");
        assert!(!other.join(d.hex()).exists(), "nothing under the blob's name");
    }
}
