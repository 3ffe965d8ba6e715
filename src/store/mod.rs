//! The local cache: a content-addressed blob store plus small indexes that let a rebuild
//! skip work — the layer cache (layer key → packed layer) and the stat cache (file
//! identity → content digest; a file changed in the last 2 s is not remembered, as file
//! timestamps are coarse). Every write lands in `tmp/` first and is renamed into place,
//! so two builds sharing the cache never see a half-written file, and a crash leaves none
//! under a final name. A writer holds an exclusive lock on its temporary file while it
//! lives; what a killed run left in `tmp/` is removed by the next [`Store::open`] once no
//! process holds it.
//!
//! The cache is not trusted (a CI cache restored from shared storage is input like any
//! other): a blob is re-hashed whenever it is read into a layer or sent anywhere
//! ([`Store::verify_blob`]) — unless the stat cache hashed it as the very file it is now, or
//! this process wrote it or hashed it whole and the file is still the one it hashed
//! ([`Store::hashed_unchanged`], [`Store::vouches`]: one record per file, no trust without a
//! stamp); one that does not match its name is removed on the spot and
//! reported as [`Damaged`], and the build fetches or makes it again. What a writer of the
//! cache directory can still do is in docs/security.md.
//!
//! ```text
//! <cache>/blobs/sha256/<hex>   blobs: downloads, packages, packed layers, extracted files
//!                               (a `.deb`'s files as one pack, read by offset), configs and
//!                               manifests
//! <cache>/layers/<key>.json     layer cache records (LayerInfo)
//! <cache>/layers/*.members.json, *.deb.json
//!                               listings of unpacked archives and .debs (contents in blobs)
//! <cache>/releases/             InRelease / APKINDEX copies revalidated with ETag/Last-Modified
//! <cache>/stat/<key>            content digest of a host file, keyed by its stat data; or a
//!                               check a file passed (an OCI layout's layer blob: digest,
//!                               diff_id), keyed by its stat data and the check
//! <cache>/registries/<host>/<hex>
//!                               repositories of that registry known to hold the blob
//!                               (pushed or pulled there): the sources of cross-repository mounts
//! <cache>/tmp/                  in-flight writes
//! ```

use crate::model::digest::{Digest, hash_reader};
use crate::model::layer::LayerInfo;
pub use damage::{Damaged, damaged_in, remove_damaged};
use fs_err as fs;

pub mod damage;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What time it is, for deciding whether a file has settled (tests move it forward).
pub type Clock = std::sync::Arc<dyn Fn() -> std::time::SystemTime + Send + Sync>;

#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    clock: Clock,
    /// Files this process hashed — blobs it committed (hashed as it wrote them, stamped
    /// after the rename) or hashed whole and found intact (stamped before reading) — with the
    /// digest found and the file's stamp: while a file still has that stamp, it holds those
    /// bytes, and reading or copying it needs no second hash. A blob found in the cache from
    /// an earlier run is hashed before it is used (the cache may have been damaged).
    hashed: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<PathBuf, (Digest, Stamp)>>>,
    /// Another cache this one may copy blobs from instead of downloading them (`verify`'s
    /// fresh cache takes the user's pinned downloads), each re-hashed as it is copied.
    seed: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/assemble`, else `~/.cache/assemble`.
pub fn default_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("assemble");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("assemble")
}

/// Why a blob could not be read back: it is missing or unreadable, or damaged.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("cannot read the cached blob `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Damaged(#[from] Damaged),
}

impl Store {
    pub fn open(root: &Path) -> io::Result<Store> {
        // Tests move the clock forward instead of waiting for files to settle.
        let offset = std::env::var("ASSEMBLE_CLOCK_OFFSET_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        let later = std::time::Duration::from_secs(offset);
        Store::open_with_clock(root, std::sync::Arc::new(move || std::time::SystemTime::now() + later))
    }

    /// [`Store::open`] with a clock of the caller's (tests move time forward instead of
    /// waiting for files to settle).
    pub fn open_with_clock(root: &Path, clock: Clock) -> io::Result<Store> {
        for sub in ["blobs", "blobs/sha256", "layers", "stat", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir)?;
            // The cache's own directories are directories: a symlink there (a restored cache
            // may hold one) would send writes — and the clean-up of `tmp/` — elsewhere.
            if !fs::symlink_metadata(&dir)?.is_dir() {
                return Err(io::Error::other(format!(
                    "`{}` is a symlink or not a directory; the cache's own directories must be directories",
                    dir.display()
                )));
            }
        }
        let store = Store { root: root.to_path_buf(), clock, hashed: Default::default(), seed: None };
        store.clean_tmp();
        Ok(store)
    }

    /// Removes what killed runs left in `tmp/`: files and directories no live process
    /// holds a lock on, and that have not changed for a minute (a writer takes its lock
    /// just after creating its file; the minute covers that instant).
    fn clean_tmp(&self) {
        let Ok(entries) = fs_err::read_dir(self.root.join("tmp")) else { return };
        let stale = |m: &std::fs::Metadata| {
            m.modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= std::time::Duration::from_secs(60))
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = fs_err::symlink_metadata(&path) else { continue };
            if !stale(&meta) {
                continue;
            }
            let lock = if meta.is_dir() { path.join(LOCK_FILE) } else { path.clone() };
            let free = match fs_err::File::open(&lock) {
                Ok(f) => try_lock(f.file()),
                // A directory without its lock file: made by no writer of ours that lives.
                Err(_) => meta.is_dir(),
            };
            if !free {
                continue;
            }
            let removed = if meta.is_dir() { fs_err::remove_dir_all(&path) } else { fs_err::remove_file(&path) };
            match removed {
                Ok(()) => tracing::debug!("removed `{}`, left by an interrupted run", path.display()),
                Err(e) => tracing::debug!("cannot remove `{}`: {e}", path.display()),
            }
        }
    }

    /// A new temporary directory in `tmp/`, locked while the guard lives (see [`Store::open`]).
    pub fn temp_dir(&self, prefix: &str) -> io::Result<TempDir> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(self.root.join("tmp"))?;
        let lock = fs_err::File::create(dir.path().join(LOCK_FILE))?.into_parts().0;
        lock_file(&lock)?;
        Ok(TempDir { dir, _lock: lock })
    }

    /// The blob `d`, re-hashed — unless this process wrote or hashed it and its file is
    /// unchanged since ([`Store::hashed_unchanged`]): a blob that does not match its name is
    /// removed and reported as [`Damaged`].
    pub fn verify_blob(&self, d: &Digest) -> Result<PathBuf, BlobError> {
        let path = self.blob_path(d);
        let io_err = |source| BlobError::Io { path: path.clone(), source };
        let file = fs::File::open(&path).map_err(io_err)?.into_parts().0;
        if self.hashed_unchanged(&path, &file) {
            return Ok(path);
        }
        let before = file.metadata().map_err(io_err)?;
        let (actual, _) = hash_reader(file).map_err(io_err)?;
        if actual != *d {
            return Err(remove_damaged(&path, *d, actual).into());
        }
        self.hashed_as(&path, d, &before);
        Ok(path)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Copies of signed indexes (`InRelease`, `APKINDEX`), revalidated before each use.
    pub fn releases_dir(&self) -> PathBuf {
        self.root.join("releases")
    }

    /// Where a listing of something unpacked is kept (`<name>` names what it lists).
    pub fn listing_path(&self, name: &str) -> PathBuf {
        self.root.join("layers").join(name)
    }

    /// The directory for in-flight writes and scratch directories.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Whether `file` (open at `path`) is a file this process hashed and found to be `d`,
    /// and still the very file it hashed, unchanged (see [`Store::hashed_unchanged`]):
    /// copies of it need no second hash.
    pub fn vouches(&self, path: &Path, d: &Digest, file: &std::fs::File) -> bool {
        self.hashed_digest(path, file) == Some(*d)
    }

    /// The digest this process found `path` to have, while `file` (open at `path`) is still
    /// the very file it hashed: same stamp.
    fn hashed_digest(&self, path: &Path, file: &std::fs::File) -> Option<Digest> {
        let (digest, stamp) = self.hashed.lock().unwrap_or_else(|e| e.into_inner()).get(path).copied()?;
        file.metadata().is_ok_and(|m| Stamp::of(&m) == stamp).then_some(digest)
    }

    /// Records that `path`, as `before` describes it (taken before it was read), was hashed
    /// whole and found to be `d`: a change while or after it was read moves its stamp.
    fn hashed_as(&self, path: &Path, d: &Digest, before: &std::fs::Metadata) {
        self.hashed.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_path_buf(), (*d, Stamp::of(before)));
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// This store, taking blobs it lacks from `seed` when asked through [`Store::has_or_adopt`].
    pub fn with_seed(mut self, seed: &Store) -> Store {
        self.seed = Some(seed.root.clone());
        self
    }

    /// Whether the store holds `d`, copying it from the seed cache when that one has it: the
    /// copy is hashed as it is made and kept only when it is what `d` names, so a damaged or
    /// poisoned seed costs a download, never a wrong byte.
    pub fn has_or_adopt(&self, d: &Digest) -> bool {
        self.has_blob(d) || self.adopt(d)
    }

    /// Copies `d` from the seed cache, checked as it is copied (see [`Store::has_or_adopt`]);
    /// whether the store now holds it.
    pub fn adopt(&self, d: &Digest) -> bool {
        let Some(seed) = &self.seed else { return false };
        let Ok(mut from) = fs_err::File::open(seed.join("blobs/sha256").join(d.hex())) else { return false };
        let Ok(tmp) = self.temp() else { return false };
        let mut w = crate::model::digest::HashWriter::new(tmp);
        if io::copy(&mut from, &mut w).is_err() {
            return false;
        }
        let (tmp, got, _) = w.finish();
        if got != *d {
            tracing::debug!("the seed cache's copy of {d} is damaged; it is downloaded instead");
            return false;
        }
        self.commit(tmp, d, false).is_ok()
    }

    /// A new temporary file in the store's own file system, removed unless committed, and
    /// locked while it is open (see [`Store::open`]).
    pub fn temp(&self) -> io::Result<tempfile::NamedTempFile> {
        let tmp = tempfile::Builder::new().prefix(".partial-").tempfile_in(self.root.join("tmp"))?;
        lock_file(tmp.as_file())?;
        Ok(tmp)
    }

    /// Moves a finished temporary file, which the caller hashed as it wrote it, to its
    /// digest's place. `private` keeps it 0600 (blobs holding secrets); others become 0644.
    pub fn commit(&self, tmp: tempfile::NamedTempFile, d: &Digest, private: bool) -> io::Result<PathBuf> {
        let mode = if private { 0o600 } else { 0o644 };
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
        let path = self.blob_path(d);
        let file = tmp.persist(&path).map_err(|e| e.error)?;
        // The stamp after the rename (which moves the ctime), of the file this process wrote.
        self.hashed_as(&path, d, &file.metadata()?);
        Ok(path)
    }

    /// Whether `file` (open at `path`) is a blob this process committed or hashed whole, and
    /// still the very file it renamed into place or hashed, unchanged: same device, inode,
    /// size, mtime and ctime. Any write or replacement since moves the ctime, which no user
    /// can set back, so its bytes are those hashed and need no second hash.
    pub fn hashed_unchanged(&self, path: &Path, file: &std::fs::File) -> bool {
        self.hashed_digest(path, file).is_some()
    }

    /// Streams `r` into the store, hashing as it goes; returns its digest and size.
    pub fn put_reader(&self, r: &mut impl io::Read) -> io::Result<(Digest, u64)> {
        let mut w = crate::model::digest::HashWriter::new(self.temp()?);
        io::copy(r, &mut w)?;
        let (tmp, digest, size) = w.finish();
        if !self.has_blob(&digest) {
            self.commit(tmp, &digest, false)?;
        }
        Ok((digest, size))
    }

    /// Stores `bytes` under their digest. A copy already there is kept only while it holds
    /// the same bytes (small documents: comparing costs less than trusting).
    pub fn put_bytes(&self, bytes: &[u8], private: bool) -> io::Result<(Digest, PathBuf)> {
        let d = Digest::of(bytes);
        let path = self.blob_path(&d);
        let kept = fs::File::open(&path).ok().map(|f| f.into_parts().0).and_then(|mut f| {
            let before = f.metadata().ok()?;
            let mut held = Vec::with_capacity(bytes.len());
            io::Read::read_to_end(&mut io::Read::take(&mut f, bytes.len() as u64 + 1), &mut held).ok()?;
            (held == bytes).then_some(before)
        });
        if let Some(before) = kept {
            self.hashed_as(&path, &d, &before);
        } else {
            let mut tmp = self.temp()?;
            tmp.write_all(bytes)?;
            self.commit(tmp, &d, private)?;
        }
        Ok((d, path))
    }

    /// The layer recorded for `key`, while its blob is still there and intact: the blob is
    /// re-hashed unless the stat cache hashed it as the very file it is now (same device,
    /// inode, size, mtime and ctime: a rewrite or a replacement moves the ctime, which no
    /// writer of the cache can set back; a restored cache has new inodes). A damaged one is
    /// removed with its record, and the layer is packed again. Re-hashing a 60 MB base layer
    /// was 40 % of a rebuild with nothing changed.
    pub fn layer(&self, key: &Digest) -> Option<LayerInfo> {
        let record = self.root.join("layers").join(format!("{}.json", key.hex()));
        let bytes = fs::read(&record).ok()?;
        let info: LayerInfo = serde_json::from_slice(&bytes).ok()?;
        let path = self.blob_path(&info.digest);
        let file = fs::File::open(&path).ok()?.into_parts().0;
        let before = file.metadata().ok()?;
        if before.len() != info.size {
            return None;
        }
        if self.vouches(&path, &info.digest, &file) {
            return Some(info);
        }
        if self.file_digest(&path).is_ok_and(|(d, _)| d == info.digest) {
            self.hashed_as(&path, &info.digest, &before);
            return Some(info);
        }
        match self.verify_blob(&info.digest) {
            Ok(_) => Some(info),
            Err(e) => {
                tracing::debug!("layer record {}: {e}", key.hex());
                let _ = fs_err::remove_file(&record);
                None
            }
        }
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
        self.record(path, before, self.stat_path(before), &digest.to_string())
    }

    /// What the stat cache holds of `fact` (a check's name and what it checked) for a file
    /// with this identity: the value recorded when the file, as it is now, passed that check.
    pub fn remembered_fact(&self, id: &Identity, fact: &Digest) -> Option<String> {
        fs::read_to_string(self.stat_path(&fact_key(&id.digest, fact))).ok()
    }

    /// Records that the file whose identity was `before` passed the check `fact`, giving
    /// `value` — if it still has that identity and has settled (as [`Store::remember`]).
    pub fn remember_fact(&self, path: &Path, before: &Identity, fact: &Digest, value: &str) -> io::Result<()> {
        self.record(path, &before.digest, self.stat_path(&fact_key(&before.digest, fact)), value)
    }

    /// Writes `value` to the stat record `at` if the file at `path` still has the identity
    /// `before` and has settled (see [`Store::remember`]).
    fn record(&self, path: &Path, before: &Digest, at: PathBuf, value: &str) -> io::Result<()> {
        let now = self.identity(path)?;
        let settled = (self.clock)().duration_since(now.changed).is_ok_and(|age| age >= RACY);
        if settled && now.digest == *before {
            let mut tmp = self.temp()?;
            tmp.write_all(value.as_bytes())?;
            tmp.persist(at).map_err(|e| e.error)?;
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
        fs_err::read_to_string(self.repositories_file(registry, d))
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

/// The lock file inside a temporary directory of `tmp/`.
const LOCK_FILE: &str = ".lock";

/// A temporary directory of the store, removed on drop, locked while it lives.
pub struct TempDir {
    dir: tempfile::TempDir,
    _lock: std::fs::File,
}

impl TempDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn lock_file(f: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function borrows; no memory is involved.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether an exclusive lock on `f` can be had now (no live process holds one).
fn try_lock(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: as in `lock_file`; the lock is released when `f` is closed.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Where the stat cache keeps `fact` of a file with identity `id`.
fn fact_key(id: &Digest, fact: &Digest) -> Digest {
    Digest::of(format!("{id}\0{fact}").as_bytes())
}

/// What a file's metadata says of its contents: device, inode, size, mtime and ctime.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp([i64; 7]);

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp([m.dev() as i64, m.ino() as i64, m.size() as i64, m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()])
    }
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
    fs_err::read_to_string(key).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file's digest is remembered by identity only once the file has settled, and only
    /// while that identity holds.
    #[test]
    fn the_stat_cache_remembers_only_settled_files() {
        let t = tempfile::tempdir().unwrap();
        let later = std::sync::Arc::new(std::sync::Mutex::new(std::time::Duration::ZERO));
        let offset = later.clone();
        let clock: Clock = std::sync::Arc::new(move || std::time::SystemTime::now() + *offset.lock().unwrap());
        let store = Store::open_with_clock(&t.path().join("cache"), clock).unwrap();
        let f = t.path().join("f");
        fs::write(&f, b"fresh").unwrap();
        assert_eq!(store.file_digest(&f).unwrap(), (Digest::of(b"fresh"), 5));
        assert_eq!(store.known_digest(&f), None, "a file written just now is racy");
        *later.lock().unwrap() = RACY + std::time::Duration::from_secs(1);
        assert_eq!(store.file_digest(&f).unwrap().0, Digest::of(b"fresh"));
        assert_eq!(store.known_digest(&f), Some(Digest::of(b"fresh")));
        fs::write(&f, b"fresh").unwrap();
        assert_eq!(store.known_digest(&f), None, "a rewrite moves mtime and ctime");
    }

    /// A blob this process committed is not hashed again while its file is the one it wrote;
    /// rewritten in place with the same bytes' length and its mtime put back, or replaced by
    /// another file, it is hashed again (and found damaged), as is a blob it did not write.
    #[test]
    fn a_blob_written_here_is_trusted_only_while_unchanged() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("cache")).unwrap();
        let (d, path) = store.put_bytes(b"package members", false).unwrap();
        let open = || fs::File::open(&path).unwrap().into_parts().0;
        assert!(store.hashed_unchanged(&path, &open()));
        assert!(store.verify_blob(&d).is_ok());
        // Rewritten in place, same size, mtime restored: the ctime moved.
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        fs::write(&path, b"PACKAGE MEMBERS").unwrap();
        open().set_modified(mtime).unwrap();
        assert!(!store.hashed_unchanged(&path, &open()));
        assert!(store.verify_blob(&d).is_err(), "hashed again, and found damaged");
        // Another store (another process) never wrote it.
        let (d2, path2) = store.put_bytes(b"other", false).unwrap();
        let other = Store::open(&t.path().join("cache")).unwrap();
        assert!(!other.hashed_unchanged(&path2, fs::File::open(&path2).unwrap().file()));
        assert!(other.verify_blob(&d2).is_ok());
    }
}
