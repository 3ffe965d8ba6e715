//! A deterministic tar writer. Headers are built here byte by byte from the tree's metadata
//! (the `tar` crate's deterministic mode flattens setuid and sticky bits): ustar headers,
//! PAX records for long names, large ids and `SCHILY.xattr.*`, no user or group names, no
//! atime or ctime, mtime from the tree or the build epoch.

use crate::digest::Hasher;
use crate::tree::{Content, Entry, ImagePath, Kind};
use std::io::{self, Read, Write};

const BLOCK: usize = 512;

pub struct TarWriter<W> {
    out: W,
    known: Option<Known>,
}

/// What the build already knows of a host file as it is now (its stat cache): the digest it
/// had when it was hashed with the same device, inode, size, mtime and ctime, if it was.
pub type Known = std::sync::Arc<dyn Fn(&std::path::Path) -> Option<crate::digest::Digest> + Send + Sync>;

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
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out, known: None }
    }

    /// A writer that does not hash a host file again when `known` vouches for it: its
    /// identity is the one it had when hashed for the plan, before and after it is read (a
    /// write in between changes its mtime and ctime, and is refused).
    pub fn trusting(out: W, known: Known) -> Self {
        TarWriter { out, known: Some(known) }
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
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if name.len() > 100 {
            pax.push(("path".into(), name.clone().into_bytes()));
        }
        if let Some(l) = &link
            && l.len() > 100
        {
            pax.push(("linkpath".into(), l.clone().into_bytes()));
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
            link.as_deref().map(|l| truncate(l.as_bytes(), 100)).unwrap_or(b""),
        );
        self.write(&h)?;
        if let Kind::File { content, size, digest } = &entry.kind {
            let mut hasher = Hasher::default();
            match content {
                Content::Bytes(b) => {
                    hasher.update(b);
                    self.write(b)?;
                }
                Content::InBaseLayer => unreachable!("refused above"),
                Content::Host(p) | Content::Stored(p) => {
                    let known = self.known.clone().filter(|_| matches!(content, Content::Host(_)));
                    let vouched = |p: &std::path::Path| known.as_ref().is_some_and(|k| k(p) == Some(*digest));
                    let trusted = vouched(p);
                    let read_err = |source| Error::Read { path: p.clone(), entry: path.clone(), source };
                    let mut f = std::fs::File::open(p).map_err(read_err)?;
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut left = *size;
                    while left > 0 {
                        let want = buf.len().min(left as usize);
                        let n = f.read(&mut buf[..want]).map_err(read_err)?;
                        if n == 0 {
                            break;
                        }
                        if !trusted {
                            hasher.update(&buf[..n]);
                        }
                        self.write(&buf[..n])?;
                        left -= n as u64;
                    }
                    // One more byte means the file grew.
                    let extra = f.read(&mut buf[..1]).map_err(read_err)?;
                    if left > 0 || extra > 0 {
                        return Err(Error::Changed {
                            path: p.clone(),
                            entry: path.clone(),
                            expected: format!("{size} bytes"),
                            actual: format!("{} bytes", size - left + extra as u64),
                        });
                    }
                    if trusted {
                        if !vouched(p) {
                            return Err(Error::Changed {
                                path: p.clone(),
                                entry: path.clone(),
                                expected: digest.to_string(),
                                actual: "a file written to while it was read (its mtime or ctime moved)".into(),
                            });
                        }
                        self.pad(*size)?;
                        return Ok(());
                    }
                }
            }
            let (got, _) = hasher.finish();
            if got != *digest {
                let p = match content {
                    Content::Host(p) | Content::Stored(p) => p.clone(),
                    Content::Bytes(_) | Content::InBaseLayer => "(generated)".into(),
                };
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

    /// A host file the stat cache vouches for is not hashed again; one whose identity moves
    /// while it is read is refused; without a voucher the digest is checked.
    #[test]
    fn host_files_are_trusted_only_while_their_identity_holds() {
        use crate::digest::Digest;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, b"now").unwrap();
        // The plan hashed other bytes under this identity: trusted, the digest is not recomputed.
        let claimed = Digest::of(b"old");
        let entry = Entry::file(Content::Host(p.clone()), 3, claimed, 0o644, Arc::from("test"));
        let path = ImagePath::new("f").unwrap();
        let always: Known = Arc::new(move |_| Some(claimed));
        TarWriter::trusting(Vec::new(), always).entry(&path, &entry, 0).unwrap();
        // The identity moves between the check before reading and the one after.
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let moving: Known = Arc::new(move |_| (seen.fetch_add(1, Ordering::SeqCst) == 0).then_some(claimed));
        let err = TarWriter::trusting(Vec::new(), moving).entry(&path, &entry, 0).unwrap_err();
        assert!(err.to_string().contains("changed while the layer was built"), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // No voucher: the bytes are hashed and the mismatch found.
        let err = TarWriter::new(Vec::new()).entry(&path, &entry, 0).unwrap_err();
        assert!(err.to_string().contains(&Digest::of(b"now").to_string()), "{err}");
    }
}
