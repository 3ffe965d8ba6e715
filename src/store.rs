//! The local cache: a content-addressed blob store plus small indexes that let a rebuild
//! skip work — the layer cache (layer key → packed layer) and the stat cache (file
//! identity → content digest; a file changed in the last 2 s is not remembered, as file
//! timestamps are coarse). Every write lands in `tmp/` first and is renamed into place,
//! so two builds sharing the cache never see a half-written file, and a crash leaves none.
//!
//! ```text
//! <cache>/blobs/sha256/<hex>   blobs: downloads, packages, packed layers, extracted files,
//!                               configs and manifests
//! <cache>/layers/<key>.json     layer cache records (LayerInfo)
//! <cache>/layers/*.members.json, *.deb.json
//!                               listings of unpacked archives and .debs (contents in blobs)
//! <cache>/releases/             InRelease / APKINDEX copies revalidated with ETag/Last-Modified
//! <cache>/stat/<key>            content digest of a host file, keyed by its stat data
//! <cache>/registries/<host>/<hex>
//!                               repositories of that registry known to hold the blob
//!                               (pushed or pulled there): the sources of cross-repository mounts
//! <cache>/tmp/                  in-flight writes
//! ```

use crate::digest::{Digest, hash_reader};
use crate::layer::LayerInfo;
use fs_err as fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// The default cache directory: `$XDG_CACHE_HOME/assemble`, else `~/.cache/assemble`.
pub fn default_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("assemble");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("assemble")
}

impl Store {
    pub fn open(root: &Path) -> io::Result<Store> {
        for sub in ["blobs/sha256", "layers", "stat", "tmp"] {
            fs::create_dir_all(root.join(sub))?;
        }
        Ok(Store { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// A new temporary file in the store's own file system, removed unless committed.
    pub fn temp(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new().prefix(".partial-").tempfile_in(self.root.join("tmp"))
    }

    /// Moves a finished temporary file, which the caller hashed as it wrote it, to its
    /// digest's place. `private` keeps it 0600 (blobs holding secrets); others become 0644.
    pub fn commit(&self, tmp: tempfile::NamedTempFile, d: &Digest, private: bool) -> io::Result<PathBuf> {
        let mode = if private { 0o600 } else { 0o644 };
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
        let path = self.blob_path(d);
        tmp.persist(&path).map_err(|e| e.error)?;
        WRITTEN_HERE.lock().unwrap_or_else(|e| e.into_inner()).insert((path.clone(), *d));
        Ok(path)
    }

    /// Streams `r` into the store, hashing as it goes; returns its digest and size.
    pub fn put_reader(&self, r: &mut impl io::Read) -> io::Result<(Digest, u64)> {
        let mut w = crate::digest::HashWriter::new(self.temp()?);
        io::copy(r, &mut w)?;
        let (tmp, digest, size) = w.finish();
        if !self.has_blob(&digest) {
            self.commit(tmp, &digest, false)?;
        }
        Ok((digest, size))
    }

    pub fn put_bytes(&self, bytes: &[u8], private: bool) -> io::Result<(Digest, PathBuf)> {
        let d = Digest::of(bytes);
        let path = self.blob_path(&d);
        if !path.is_file() {
            let mut tmp = self.temp()?;
            tmp.write_all(bytes)?;
            self.commit(tmp, &d, private)?;
        }
        Ok((d, path))
    }

    pub fn layer(&self, key: &Digest) -> Option<LayerInfo> {
        let bytes = fs::read(self.root.join("layers").join(format!("{}.json", key.hex()))).ok()?;
        let info: LayerInfo = serde_json::from_slice(&bytes).ok()?;
        // A record is only good while its blob is still there with the right size.
        let meta = std::fs::metadata(self.blob_path(&info.digest)).ok()?;
        (meta.len() == info.size).then_some(info)
    }

    pub fn put_layer(&self, key: &Digest, info: &LayerInfo) -> io::Result<()> {
        let mut tmp = self.temp()?;
        tmp.write_all(&serde_json::to_vec(info).expect("serialisable"))?;
        tmp.persist(self.root.join("layers").join(format!("{}.json", key.hex()))).map_err(|e| e.error)?;
        Ok(())
    }

    /// The sha256 and size of a host file, from the stat cache when the file's identity
    /// (device, inode, size, mtime, ctime) is unchanged, else by reading it.
    pub fn file_digest(&self, path: &Path) -> io::Result<(Digest, u64)> {
        let id = self.identity(path)?;
        if let Some(d) = self.remembered(&id) {
            return Ok((d, id.size));
        }
        let (d, n) = hash_reader(fs::File::open(path)?)?;
        self.remember(path, &id.digest, &d)?;
        Ok((d, n))
    }

    /// The digest the stat cache holds for the file as it is now (same identity as when it
    /// was hashed), without reading it.
    pub fn known_digest(&self, path: &Path) -> Option<Digest> {
        self.remembered(&self.identity(path).ok()?)
    }

    /// The digest the stat cache holds for a file with this identity.
    pub fn remembered(&self, id: &Identity) -> Option<Digest> {
        read_digest(&self.stat_path(&id.digest))
    }

    /// Remembers `digest` for the file whose identity was `before`, if it still is and the
    /// file has settled. A file changed in the last [`RACY`] is not remembered: file
    /// timestamps are coarse, and a write within the same tick would keep its identity.
    pub fn remember(&self, path: &Path, before: &Digest, digest: &Digest) -> io::Result<()> {
        let now = self.identity(path)?;
        let settled = std::time::SystemTime::now().duration_since(now.changed).is_ok_and(|age| age >= RACY);
        if settled && now.digest == *before {
            let mut tmp = self.temp()?;
            tmp.write_all(digest.to_string().as_bytes())?;
            tmp.persist(self.stat_path(before)).map_err(|e| e.error)?;
        }
        Ok(())
    }

    /// A host file's identity: a digest of its canonical path, device, inode, size, mtime
    /// and ctime (not of its bytes).
    pub fn identity(&self, path: &Path) -> io::Result<Identity> {
        let meta = fs::metadata(path)?;
        let canon = fs::canonicalize(path)?;
        let id = format!(
            "{}\0{}:{}:{}:{}.{}:{}.{}",
            canon.display(),
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        );
        // Whole seconds, rounded up.
        let changed =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime().max(meta.ctime()).max(0) as u64 + 1);
        Ok(Identity { digest: Digest::of(id.as_bytes()), size: meta.size(), changed })
    }

    fn stat_path(&self, identity: &Digest) -> PathBuf {
        self.root.join("stat").join(identity.hex())
    }

    fn repositories_file(&self, registry: &str, d: &Digest) -> PathBuf {
        let host: String =
            registry.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
        self.root.join("registries").join(host).join(d.hex())
    }

    /// Repositories of `registry` known to hold blob `d`, most recent first.
    pub fn repositories_with(&self, registry: &str, d: &Digest) -> Vec<String> {
        std::fs::read_to_string(self.repositories_file(registry, d))
            .map(|s| s.lines().rev().map(String::from).collect())
            .unwrap_or_default()
    }

    /// Records that `repository` on `registry` holds blob `d` (best effort: it only
    /// saves uploads later).
    pub fn remember_repository(&self, registry: &str, repository: &str, d: &Digest) {
        let path = self.repositories_file(registry, d);
        let mut known: Vec<String> = self.repositories_with(registry, d).into_iter().rev().collect();
        known.retain(|r| r != repository);
        known.push(repository.to_string());
        let keep = known.len().saturating_sub(8);
        let text = known[keep..].join("\n") + "\n";
        let write = || -> io::Result<()> {
            fs::create_dir_all(path.parent().expect("has a parent"))?;
            let mut tmp = self.temp()?;
            tmp.write_all(text.as_bytes())?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::debug!("cannot record where {d} was pushed: {e}");
        }
    }
}

/// Blobs this process wrote under their digest after hashing them itself: copies of them
/// need no second check. A blob found in the cache from an earlier run is checked as it is
/// copied (the cache may have been damaged since).
static WRITTEN_HERE: std::sync::Mutex<std::collections::BTreeSet<(PathBuf, Digest)>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Whether this process wrote `path` as the blob `d` (see [`Store::commit`]).
pub fn written_here(path: &Path, d: &Digest) -> bool {
    WRITTEN_HERE.lock().unwrap_or_else(|e| e.into_inner()).contains(&(path.to_path_buf(), *d))
}

/// See [`Store::identity`].
pub struct Identity {
    pub digest: Digest,
    pub size: u64,
    /// When the file last changed, rounded up to the second.
    changed: std::time::SystemTime,
}

/// How long a file must have been left alone before its digest is remembered by identity.
const RACY: std::time::Duration = std::time::Duration::from_secs(2);

fn read_digest(key: &Path) -> Option<Digest> {
    std::fs::read_to_string(key).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file's digest is remembered by identity only once the file has settled, and only
    /// while that identity holds.
    #[test]
    fn the_stat_cache_remembers_only_settled_files() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("cache")).unwrap();
        let f = t.path().join("f");
        fs::write(&f, b"fresh").unwrap();
        assert_eq!(store.file_digest(&f).unwrap(), (Digest::of(b"fresh"), 5));
        assert_eq!(store.known_digest(&f), None, "a file written just now is racy");
        std::thread::sleep(RACY + std::time::Duration::from_secs(1));
        assert_eq!(store.file_digest(&f).unwrap().0, Digest::of(b"fresh"));
        assert_eq!(store.known_digest(&f), Some(Digest::of(b"fresh")));
        fs::write(&f, b"fresh").unwrap();
        assert_eq!(store.known_digest(&f), None, "a rewrite moves mtime and ctime");
    }
}
