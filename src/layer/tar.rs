//! A deterministic tar writer. Headers are built here byte by byte from the tree's metadata
//! (the `tar` crate's deterministic mode flattens setuid and sticky bits): ustar headers,
//! PAX records for long names, large ids and `SCHILY.xattr.*`, no user or group names, no
//! atime or ctime, mtime from the tree or the build epoch.

use crate::model::digest::{Digest, Hasher};
use crate::model::path::ImagePath;
use crate::tree::{Content, Entry, Kind};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

const BLOCK: usize = 512;

pub struct TarWriter<W> {
    out: W,
    files: Option<Arc<dyn HostFiles>>,
    /// The read buffer, one for every file (a fresh 256 KiB per file was a zeroed mmap and
    /// munmap each: ~10,000 of them for a Debian base).
    buf: Vec<u8>,
}

/// What the build knows of host files as they are now, by identity (device, inode, size,
/// mtime, ctime): a file's entry carries either its content digest or, for a file the plan
/// left unhashed, its identity, and is then hashed here, as it is packed.
pub trait HostFiles: Send + Sync {
    /// The content digest of the file as it is now, when it was hashed before.
    fn known(&self, path: &Path) -> Option<Digest>;
    /// The file's identity now.
    fn identity(&self, path: &Path) -> Option<Digest>;
    /// The content digest of a file read whole while its identity held.
    fn learned(&self, path: &Path, identity: Digest, digest: Digest);
    /// Whether `file`, open at `path`, is a cache blob (a package's pack, a download) this
    /// process wrote (hashing it as it went) or hashed whole, and unchanged since: its bytes
    /// need no second hash.
    fn hashed_unchanged(&self, path: &Path, file: &std::fs::File) -> bool;
}

/// Host files smaller than this are simply hashed as they are packed: looking up a file's
/// identity (stat, canonical path, a stat-cache read, twice) costs more than hashing it.
pub const LOOKUP_MIN: u64 = 256 << 10;

/// How a host file's bytes are checked as they are packed.
enum Check {
    /// Hashed and compared with the entry's digest.
    Digest,
    /// Known by identity: not hashed, the identity checked again once read.
    Trusted,
    /// Left unhashed by the plan: hashed here, the identity checked again once read.
    Learn,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read `{path}` for `{entry}`")]
    Read {
        path: std::path::PathBuf,
        entry: ImagePath,
        #[source]
        source: io::Error,
    },
    #[error("`{path}` changed while the layer was built (for `{entry}`): expected {expected}, read {actual}")]
    Changed { path: std::path::PathBuf, entry: ImagePath, expected: String, actual: String },
    #[error("writing the layer failed")]
    Write(#[source] io::Error),
    #[error("`/{0}` is a file of the base image, whose bytes stay in the base's own layer")]
    BaseFile(ImagePath),
    /// A file of the cache's content store (a download, a package's member) that does not
    /// hold what its name says; it has been removed.
    #[error("cannot pack `{entry}`")]
    Damaged {
        entry: ImagePath,
        #[source]
        source: Box<crate::store::damage::Damaged>,
    },
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out, files: None, buf: Vec::new() }
    }

    /// A writer that reads each host file once: one `files` vouches for is not hashed again,
    /// one the plan left unhashed is hashed now and its digest handed to `files`. Either way
    /// the file's identity must be the same before and after it is read (a write in between
    /// moves its mtime and ctime, and is refused).
    pub fn with_host_files(out: W, files: Arc<dyn HostFiles>) -> Self {
        TarWriter { out, files: Some(files), buf: Vec::new() }
    }

    /// Writes one entry; regular files are read from their content source and checked
    /// against the digest and size the tree recorded.
    pub fn entry(&mut self, path: &ImagePath, entry: &Entry, epoch: u64) -> Result<(), Error> {
        if matches!(entry.kind, Kind::File { content: Content::InBaseLayer, .. }) {
            return Err(Error::BaseFile(path.clone()));
        }
        let mut name = path.as_str().to_string();
        if entry.is_dir() {
            name.push('/');
        }
        let (typeflag, size, link) = match &entry.kind {
            Kind::Dir => (b'5', 0, None),
            Kind::File { size, .. } => (b'0', *size, None),
            Kind::Symlink(t) => (b'2', 0, Some(t.clone())),
            Kind::Hardlink(t) => (b'1', 0, Some(t.as_str().to_string())),
        };
        let mtime = entry.mtime.unwrap_or(epoch);
        self.headers(&name, entry, typeflag, size, link.as_deref(), mtime)?;
        if let Kind::File { content, size, digest } = &entry.kind {
            let mut hasher = Hasher::default();
            match content {
                Content::Bytes(b) => {
                    hasher.update(b);
                    self.write(b)?;
                }
                Content::InBaseLayer => unreachable!("refused above"),
                Content::Host(_) | Content::Stored(_) | Content::Slice { .. } => {
                    let p = content.file().expect("a file's content");
                    let files =
                        self.files.clone().filter(|_| matches!(content, Content::Host(_)) && *size >= LOOKUP_MIN);
                    let check = match &files {
                        Some(f) if f.known(p) == Some(*digest) => Check::Trusted,
                        Some(f) if f.identity(p) == Some(*digest) => Check::Learn,
                        _ => Check::Digest,
                    };
                    let read_err = |source| Error::Read { path: p.to_path_buf(), entry: path.clone(), source };
                    let mut f = fs_err::File::open(p).map_err(read_err)?;
                    let fresh = !matches!(content, Content::Host(_))
                        && self.files.as_ref().is_some_and(|h| h.hashed_unchanged(p, f.file()));
                    // An offset no file can have (from a poisoned listing) is damage, like a short slice.
                    if let Content::Slice { offset, .. } = content {
                        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(*offset))
                            .map_err(|_| damaged_slice(p, path))?;
                    }
                    let mut buf = std::mem::take(&mut self.buf);
                    buf.resize(256 * 1024, 0);
                    let mut left = *size;
                    while left > 0 {
                        let want = buf.len().min(left as usize);
                        let n = f.read(&mut buf[..want]).map_err(read_err)?;
                        if n == 0 {
                            break;
                        }
                        if !matches!(check, Check::Trusted) && !fresh {
                            hasher.update(&buf[..n]);
                        }
                        self.write(&buf[..n])?;
                        left -= n as u64;
                    }
                    // One more byte means the file grew (a slice is followed by the next file).
                    let extra = if matches!(content, Content::Slice { .. }) {
                        0
                    } else {
                        f.read(&mut buf[..1]).map_err(read_err)?
                    };
                    self.buf = buf;
                    if left > 0 && matches!(content, Content::Slice { .. }) {
                        return Err(damaged_slice(p, path));
                    }
                    if (left > 0 || extra > 0) && matches!(content, Content::Stored(_)) {
                        return Err(damaged(p, path, *digest));
                    }
                    if left > 0 || extra > 0 {
                        return Err(Error::Changed {
                            path: p.to_path_buf(),
                            entry: path.clone(),
                            expected: format!("{size} bytes"),
                            actual: format!("{} bytes", size - left + extra as u64),
                        });
                    }
                    if fresh {
                        self.pad(*size)?;
                        return Ok(());
                    }
                    if let Some(known) = files.filter(|_| !matches!(check, Check::Digest)) {
                        let held = match check {
                            Check::Trusted => known.known(p) == Some(*digest),
                            _ => known.identity(p) == Some(*digest),
                        };
                        if !held {
                            return Err(Error::Changed {
                                path: p.to_path_buf(),
                                entry: path.clone(),
                                expected: "the file as the build planned it".into(),
                                actual: "a file written to while it was read (its mtime or ctime moved)".into(),
                            });
                        }
                        if matches!(check, Check::Learn) {
                            known.learned(p, *digest, hasher.finish().0);
                        }
                        self.pad(*size)?;
                        return Ok(());
                    }
                }
            }
            let (got, _) = hasher.finish();
            if got != *digest
                && let Content::Stored(p) = content
            {
                return Err(damaged(p, path, *digest));
            }
            if got != *digest
                && let Content::Slice { path: p, .. } = content
            {
                return Err(damaged_slice(p, path));
            }
            if got != *digest {
                let p = content.file().map_or_else(|| "(generated)".into(), Path::to_path_buf);
                return Err(Error::Changed {
                    path: p,
                    entry: path.clone(),
                    expected: digest.to_string(),
                    actual: got.to_string(),
                });
            }
            self.pad(*size)?;
        }
        Ok(())
    }

    /// The entry's PAX record (for what a ustar header cannot hold) and its ustar header.
    fn headers(
        &mut self,
        name: &str,
        entry: &Entry,
        typeflag: u8,
        size: u64,
        link: Option<&str>,
        mtime: u64,
    ) -> Result<(), Error> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if name.len() > 100 {
            pax.push(("path".into(), name.as_bytes().to_vec()));
        }
        if let Some(l) = link
            && l.len() > 100
        {
            pax.push(("linkpath".into(), l.as_bytes().to_vec()));
        }
        if u64::from(entry.uid) > 0o7777777 {
            pax.push(("uid".into(), entry.uid.to_string().into_bytes()));
        }
        if u64::from(entry.gid) > 0o7777777 {
            pax.push(("gid".into(), entry.gid.to_string().into_bytes()));
        }
        if size > 0o77777777777 {
            pax.push(("size".into(), size.to_string().into_bytes()));
        }
        if mtime > 0o77777777777 {
            pax.push(("mtime".into(), mtime.to_string().into_bytes()));
        }
        for (k, v) in &entry.xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
        if !pax.is_empty() {
            pax.sort();
            let body = pax_records(&pax);
            let h = header(b"././@PaxHeader", 0o644, 0, 0, body.len() as u64, mtime.min(0o77777777777), b'x', b"");
            self.write(&h)?;
            self.write(&body)?;
            self.pad(body.len() as u64)?;
        }
        let h = header(
            truncate(name.as_bytes(), 100),
            entry.mode & 0o7777,
            entry.uid.min(0o7777777),
            entry.gid.min(0o7777777),
            size.min(0o77777777777),
            mtime.min(0o77777777777),
            typeflag,
            link.map(|l| truncate(l.as_bytes(), 100)).unwrap_or(b""),
        );
        self.write(&h)?;
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the inner writer.
    pub fn finish(mut self) -> Result<W, Error> {
        self.write(&[0u8; BLOCK * 2])?;
        Ok(self.out)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), Error> {
        self.out.write_all(b).map_err(Error::Write)
    }

    fn pad(&mut self, len: u64) -> Result<(), Error> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.write(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }
}

/// A stored blob that is not what its name says: removed, and reported with what it holds.
fn damaged(p: &Path, entry: &ImagePath, expected: Digest) -> Error {
    let actual = fs_err::File::open(p)
        .and_then(crate::model::digest::hash_reader)
        .map_or_else(|_| Digest::of(b"(unreadable)"), |(d, _)| d);
    Error::Damaged { entry: entry.clone(), source: Box::new(crate::store::damage::remove_damaged(p, expected, actual)) }
}

/// A slice of a stored blob that is not what the listing pointing into it says: the blob is
/// removed (the package is read again).
fn damaged_slice(p: &Path, entry: &ImagePath) -> Error {
    Error::Damaged { entry: entry.clone(), source: Box::new(crate::store::damage::damaged_blob(p)) }
}

fn truncate(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

/// PAX records: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_records(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3; // space, '=', newline
        let mut len = rest + rest.to_string().len();
        if len.to_string().len() != (len - rest) {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn header(name: &[u8], mode: u32, uid: u32, gid: u32, size: u64, mtime: u64, typeflag: u8, link: &[u8]) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], u64::from(uid));
    octal(&mut h[116..124], u64::from(gid));
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// Zero-padded octal digits filling the field, then a NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    field[..width].copy_from_slice(s.as_bytes());
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let r = pax_records(&[("path".into(), vec![b'a'; 5])]);
        assert_eq!(r, b"14 path=aaaaa\n");
        let r = pax_records(&[("path".into(), vec![b'a'; 92])]);
        assert_eq!(r.len(), 102);
        assert!(r.starts_with(b"102 path="));
    }

    /// What a build knows of host files, scripted: the digest `known` returns, an identity
    /// that moves after `moves_after` calls, and what was learned.
    struct Scripted {
        known: Option<Digest>,
        identity: Digest,
        moves_after: usize,
        calls: std::sync::Mutex<usize>,
        learned: std::sync::Mutex<Vec<Digest>>,
    }

    impl Scripted {
        fn new(known: Option<Digest>, moves_after: usize) -> Arc<Scripted> {
            let identity = Digest::of(b"identity");
            Arc::new(Scripted { known, identity, moves_after, calls: Default::default(), learned: Default::default() })
        }

        fn now(&self) -> bool {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls <= self.moves_after
        }
    }

    impl HostFiles for Scripted {
        fn known(&self, _: &Path) -> Option<Digest> {
            self.known.filter(|_| self.now())
        }
        fn identity(&self, _: &Path) -> Option<Digest> {
            Some(self.identity).filter(|_| self.now())
        }
        fn learned(&self, _: &Path, identity: Digest, digest: Digest) {
            assert_eq!(identity, self.identity);
            self.learned.lock().unwrap().push(digest);
        }
        fn hashed_unchanged(&self, _: &Path, _: &std::fs::File) -> bool {
            false
        }
    }

    /// A host file the build vouches for is not hashed again, one the plan left unhashed is
    /// hashed as it is packed, and either is refused when its identity moves while it is read;
    /// without a voucher the digest is checked.
    #[test]
    fn host_files_are_read_once_and_only_while_their_identity_holds() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        let now = vec![b'n'; LOOKUP_MIN as usize];
        fs_err::write(&p, &now).unwrap();
        let path = ImagePath::new("f").unwrap();
        let entry = |digest| Entry::file(Content::Host(p.clone()), LOOKUP_MIN, digest, 0o644, Arc::from("test"));
        // Vouched for under other bytes: trusted, the digest is not recomputed.
        let claimed = Digest::of(b"old");
        let files = Scripted::new(Some(claimed), usize::MAX);
        TarWriter::with_host_files(Vec::new(), files).entry(&path, &entry(claimed), 0).unwrap();
        // Unhashed by the plan: the entry carries the identity; the bytes are hashed now.
        let files = Scripted::new(None, usize::MAX);
        let unhashed = entry(files.identity);
        TarWriter::with_host_files(Vec::new(), files.clone()).entry(&path, &unhashed, 0).unwrap();
        assert_eq!(*files.learned.lock().unwrap(), vec![Digest::of(&now)]);
        // The identity moves between the look before reading and the one after.
        for (known, moves_after) in [(Some(claimed), 1), (None, 1)] {
            let files = Scripted::new(known, moves_after);
            let e = if known.is_some() { entry(claimed) } else { entry(files.identity) };
            let err = TarWriter::with_host_files(Vec::new(), files.clone()).entry(&path, &e, 0).unwrap_err();
            assert!(err.to_string().contains("changed while the layer was built"), "{err}");
            assert!(files.learned.lock().unwrap().is_empty());
        }
        // No voucher: the bytes are hashed and the mismatch found.
        let err = TarWriter::new(Vec::new()).entry(&path, &entry(claimed), 0).unwrap_err();
        assert!(err.to_string().contains(&Digest::of(&now).to_string()), "{err}");
        // A small file is hashed, vouched for or not: looking it up would cost more.
        fs_err::write(&p, b"now").unwrap();
        let small = Entry::file(Content::Host(p.clone()), 3, claimed, 0o644, Arc::from("test"));
        let files = Scripted::new(Some(claimed), usize::MAX);
        let err = TarWriter::with_host_files(Vec::new(), files).entry(&path, &small, 0).unwrap_err();
        assert!(err.to_string().contains(&Digest::of(b"now").to_string()), "{err}");
    }
}
