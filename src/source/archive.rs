//! Unpacking downloaded archives (tar, tar.gz, tar.xz, tar.zst, zip) into the store.
//! Nothing is written to the host file system under an archive's own names: each member's
//! bytes go into the content store by digest, and the archive becomes a list of members
//! that the layer tree is built from.
//!
//! Archives and packages are untrusted, so every reader (archives here, `.deb` data,
//! `.apk` data) checks its members through one [`Guard`]: names are clean (no absolute path,
//! no `..`, no NUL, within `PATH_MAX`/`NAME_MAX`), a name is not given twice, a hard link
//! names an earlier regular file of the same archive and does not go through one of its
//! symlinks, and what the archive expands to stays within a bound ([`crate::model::archive::DEFAULT_UNPACK_LIMIT`], or the
//! recipe's `unpack_limit`), counted on the decompressed stream so a bomb stops early.

use crate::model::archive::ArchiveKind;
use crate::model::digest::Digest;
pub use crate::model::member::{Member, MemberKind};
use crate::model::path::{BadName, NAME_MAX, PATH_MAX, clean_name};
use crate::store::Store;
use std::io::{self, Read};
use std::path::Path;

/// The most members one archive or package may have.
pub const MAX_MEMBERS: usize = 1_000_000;
/// The most bytes of member names one archive or package may have (they are kept in memory).
pub const MAX_NAME_BYTES: usize = 128 << 20;

/// The checks every reader of an archive or package applies to its members as they come
/// (see the module header). `what` names the archive in messages.
pub struct Guard {
    what: String,
    /// Regular files (and hard links to them) seen so far.
    files: std::collections::HashSet<String>,
    symlinks: std::collections::HashSet<String>,
    /// Every non-directory name seen so far.
    seen: std::collections::HashSet<String>,
    members: usize,
    name_bytes: usize,
}

/// A member as far as the [`Guard`] is concerned.
pub enum Seen<'a> {
    Dir,
    File,
    Symlink,
    Hardlink(&'a str),
}

impl Guard {
    pub fn new(what: &str) -> Guard {
        Guard {
            what: what.to_string(),
            files: Default::default(),
            symlinks: Default::default(),
            seen: Default::default(),
            members: 0,
            name_bytes: 0,
        }
    }

    fn refuse(&self, member: &str, why: impl Into<String>) -> Refused {
        Refused { archive: self.what.clone(), member: member.escape_debug().to_string(), why: why.into() }
    }

    /// The cleaned name of a member (`None` for the root), or why it is refused.
    pub fn name(&self, raw: &[u8]) -> Result<Option<String>, Refused> {
        let text = String::from_utf8_lossy(raw);
        match clean_name(&text) {
            Ok(n) => Ok(n),
            Err(BadName::Absolute) => Err(self.refuse(&text, "an absolute path")),
            Err(BadName::Climbs) => Err(self.refuse(&text, "outside the archive (`..`)")),
            Err(BadName::Nul) => Err(self.refuse(&text, "a name with a NUL byte in it")),
            Err(BadName::TooLong) => Err(self.refuse(
                &text,
                format!("a path longer than {PATH_MAX} bytes or with a component longer than {NAME_MAX}"),
            )),
        }
    }

    /// Records a member: refuses a name given twice (directories aside), a hard link that
    /// names no earlier regular file, itself, or a path through one of the archive's
    /// symlinks, and more than [`MAX_MEMBERS`] members.
    pub fn add(&mut self, path: &str, kind: Seen<'_>) -> Result<(), Refused> {
        self.members += 1;
        if self.members > MAX_MEMBERS {
            return Err(self.refuse(path, format!("one member more than the {MAX_MEMBERS} an archive may have")));
        }
        self.name_bytes += path.len();
        if self.name_bytes > MAX_NAME_BYTES {
            return Err(self.refuse(path, format!("past the {MAX_NAME_BYTES} bytes of names an archive may have")));
        }
        if !matches!(kind, Seen::Dir) && !self.seen.insert(path.to_string()) {
            return Err(self.refuse(path, "in the archive twice"));
        }
        match kind {
            Seen::Dir => {}
            Seen::File => {
                self.files.insert(path.to_string());
            }
            Seen::Symlink => {
                self.symlinks.insert(path.to_string());
            }
            Seen::Hardlink(target) => {
                if target == path {
                    return Err(self.refuse(path, "a hard link to itself"));
                }
                let mut at = 0;
                while let Some(i) = target[at..].find('/') {
                    let dir = &target[..at + i];
                    if self.symlinks.contains(dir) {
                        return Err(self.refuse(
                            path,
                            format!("a hard link to `{target}`, which goes through the symlink `{dir}`"),
                        ));
                    }
                    at += i + 1;
                }
                if !self.files.contains(target) {
                    return Err(self.refuse(
                        path,
                        format!("a hard link to `{target}`, which is not a regular file earlier in the archive"),
                    ));
                }
                self.files.insert(path.to_string());
            }
        }
        Ok(())
    }

    /// A reader of an archive's decompressed stream that fails once more than `limit` bytes
    /// have come through (a decompression bomb), naming the archive.
    pub fn bounded<R: Read>(&self, inner: R, limit: u64) -> Bounded<R> {
        Bounded { inner, left: limit, limit, what: self.what.clone() }
    }
}

/// A member a [`Guard`] refuses.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{archive}` holds `{member}`, which is {why}")]
pub struct Refused {
    pub archive: String,
    pub member: String,
    pub why: String,
}

/// See [`Guard::bounded`].
pub struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
    what: String,
}

/// The error a [`Bounded`] reader fails with.
#[derive(Debug, thiserror::Error)]
#[error("`{what}` expands to more than {limit} bytes; if it really is that large, raise `unpack_limit` in the recipe")]
pub struct TooLarge {
    pub what: String,
    pub limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more means the stream goes on past the limit.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(TooLarge { what: self.what.clone(), limit: self.limit })),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The [`TooLarge`] inside an I/O error, if that is what it is (the tar reader wraps the
/// errors of the stream it reads in its own).
pub fn too_large(e: &io::Error) -> Option<&TooLarge> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|i| i as _);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<TooLarge>() {
            return Some(t);
        }
        cur = match err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as _),
            None => err.source(),
        };
    }
    None
}

/// What a tar entry is, read from its header alone.
pub enum TarKind {
    Dir,
    Symlink(String),
    /// A hard link, to the member name as written (not yet cleaned).
    Hardlink(String),
    File,
    /// A PAX or GNU long-name record, which the tar reader has already applied.
    Skip,
}

/// The one reading of tar entry types shared by archives, `.deb` data and image layers.
/// Devices, FIFOs and other special files are refused (the `Err` says what it is).
pub fn tar_kind<R: Read>(entry: &tar::Entry<'_, R>) -> Result<TarKind, &'static str> {
    let link = || -> Result<String, &'static str> {
        let l = entry.link_name_bytes().ok_or("a link without a target")?;
        if l.contains(&0) {
            return Err("a link whose target has a NUL byte in it");
        }
        if l.len() > PATH_MAX {
            return Err("a link whose target is longer than PATH_MAX");
        }
        Ok(String::from_utf8_lossy(&l).into_owned())
    };
    Ok(match entry.header().entry_type() {
        tar::EntryType::Directory => TarKind::Dir,
        tar::EntryType::Symlink => TarKind::Symlink(link()?),
        tar::EntryType::Link => TarKind::Hardlink(link()?),
        tar::EntryType::Regular | tar::EntryType::Continuous => TarKind::File,
        tar::EntryType::XGlobalHeader
        | tar::EntryType::XHeader
        | tar::EntryType::GNULongName
        | tar::EntryType::GNULongLink => TarKind::Skip,
        _ => return Err("a device, FIFO or other special file"),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("archive `{archive}` holds `{member}`, which is {why}")]
    BadMember { archive: String, member: String, why: &'static str },
    #[error("archive {0}")]
    Refused(#[from] Refused),
    #[error("archive {0}")]
    TooLarge(TooLarge),
    #[error("archive `{0}` is empty")]
    Empty(String),
    #[error(
        "cannot tell what kind of archive `{0}` is (name or first bytes); set `extract: tar.gz` (or tar, tar.xz, tar.zst, zip)"
    )]
    Unknown(String),
    #[error("cannot read archive `{archive}`")]
    Read {
        archive: String,
        #[source]
        source: io::Error,
    },
}

/// Detects the archive type from its name, then from its first bytes.
pub fn detect(name: &str, file: &Path) -> Option<ArchiveKind> {
    if let Some(k) = ArchiveKind::from_name(name) {
        return Some(k);
    }
    let mut head = [0u8; 262];
    let n = fs_err::File::open(file).and_then(|mut f| f.read(&mut head)).ok()?;
    let head = &head[..n];
    Some(if head.starts_with(&[0x1f, 0x8b]) {
        ArchiveKind::TarGz
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        ArchiveKind::TarXz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        ArchiveKind::TarZst
    } else if head.starts_with(b"PK\x03\x04") {
        ArchiveKind::Zip
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        ArchiveKind::Tar
    } else {
        return None;
    })
}

fn clean(archive: &str, name: &str) -> Result<Option<String>, Error> {
    clean_name(name).map_err(|b| Error::BadMember {
        archive: archive.into(),
        member: name.escape_debug().to_string(),
        why: match b {
            BadName::Absolute => "an absolute path",
            BadName::Climbs => "outside the archive (`..`)",
            BadName::Nul => "a name with a NUL byte in it",
            BadName::TooLong => "a path longer than PATH_MAX or with a component longer than NAME_MAX",
        },
    })
}

/// An xz stream (concatenated streams too) whose bytes were checked against a SHA-256 before
/// reading — a verified `.deb`, an index named by a signed `InRelease` — so the stream's own
/// CRC-64 adds nothing and is not computed (it was 3.5 % of a cold Debian build's CPU). A local
/// archive, pinned by nothing, keeps its check (`unpack`).
pub fn xz_of_checked<R: io::BufRead>(r: R) -> io::Result<liblzma::bufread::XzDecoder<R>> {
    let flags = liblzma::stream::CONCATENATED | liblzma::stream::IGNORE_CHECK;
    let stream = liblzma::stream::Stream::new_stream_decoder(u64::MAX, flags).map_err(io::Error::other)?;
    Ok(liblzma::bufread::XzDecoder::new_stream(r, stream))
}

/// Lists the members of `file`, storing each regular file's bytes in the store; the archive
/// may expand to at most `limit` bytes.
pub fn unpack(store: &Store, file: &Path, kind: ArchiveKind, display: &str, limit: u64) -> Result<Vec<Member>, Error> {
    let read_err = |source: io::Error| match too_large(&source) {
        Some(t) => Error::TooLarge(TooLarge { what: t.what.clone(), limit: t.limit }),
        None => Error::Read { archive: display.into(), source },
    };
    let f = fs_err::File::open(file).map_err(read_err)?;
    let reader: Box<dyn Read> = match kind {
        ArchiveKind::Tar => Box::new(f),
        ArchiveKind::TarGz => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(f))),
        ArchiveKind::TarXz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(io::BufReader::new(f))),
        ArchiveKind::TarZst => Box::new(zstd::stream::read::Decoder::new(f).map_err(read_err)?),
        ArchiveKind::Zip => return unpack_zip(store, file, display, limit),
    };
    let mut guard = Guard::new(display);
    let mut archive = tar::Archive::new(guard.bounded(reader, limit));
    let mut members = Vec::new();
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path_bytes().into_owned();
        let Some(path) = guard.name(&raw)? else {
            continue;
        };
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let mode = entry.header().mode().map_err(read_err)? & 0o7777;
        let bad = |why| Error::BadMember { archive: display.into(), member: raw.clone(), why };
        let kind = match tar_kind(&entry).map_err(bad)? {
            TarKind::Dir => MemberKind::Dir,
            TarKind::Symlink(target) => MemberKind::Symlink(target),
            TarKind::Hardlink(target) => {
                MemberKind::Hardlink(clean(display, &target)?.ok_or_else(|| bad("a hard link to the archive root"))?)
            }
            TarKind::File => MemberKind::File { digest: Digest::of(b""), size: entry.size() },
            TarKind::Skip => continue,
        };
        guard.add(&path, seen(&kind))?;
        let kind = match kind {
            MemberKind::File { .. } => {
                let (digest, size) = store.put_reader(&mut entry).map_err(read_err)?;
                MemberKind::File { digest, size }
            }
            other => other,
        };
        members.push(Member::new(path, kind, mode));
    }
    if members.is_empty() {
        return Err(Error::Empty(display.into()));
    }
    Ok(members)
}

/// The names in a zip's central directory, in order, read directly (ZIP64 included).
fn central_directory_names(file: &Path) -> io::Result<Vec<Vec<u8>>> {
    use std::io::{Seek, SeekFrom};
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("not a zip: {why}"));
    let mut f = fs_err::File::open(file)?;
    let len = f.metadata()?.len();
    let tail_len = len.min(65_557);
    f.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    f.read_exact(&mut tail)?;
    let u16_at = |b: &[u8], i: usize| u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
    // The end record whose comment ends exactly at the end of the file (a fake one inside a
    // comment would not), as zip readers find it.
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..].starts_with(b"PK\x05\x06") && i + 22 + u16_at(&tail, i + 20) as usize == tail.len())
        .ok_or_else(|| bad("no end of central directory"))?;
    let u32_at = |b: &[u8], i: usize| u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let (mut count, mut offset) = (u16_at(&tail, eocd + 10), u32_at(&tail, eocd + 16));
    if (count == 0xffff || offset == 0xffff_ffff) && eocd >= 20 && tail[eocd - 20..].starts_with(b"PK\x06\x07") {
        let at = u64_at(&tail, eocd - 20 + 8);
        let mut record = [0u8; 56];
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(&mut record)?;
        if !record.starts_with(b"PK\x06\x06") {
            return Err(bad("a broken ZIP64 end of central directory"));
        }
        (count, offset) = (u64_at(&record, 32), u64_at(&record, 48));
    }
    if count > MAX_MEMBERS as u64 {
        return Err(bad("more entries than an archive may have"));
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut r = io::BufReader::new(f);
    let mut names = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let mut head = [0u8; 46];
        r.read_exact(&mut head)?;
        if !head.starts_with(b"PK\x01\x02") {
            return Err(bad("a broken central directory"));
        }
        let (name_len, extra, comment) = (u16_at(&head, 28), u16_at(&head, 30), u16_at(&head, 32));
        let mut name = vec![0u8; name_len as usize];
        r.read_exact(&mut name)?;
        io::copy(&mut (&mut r).take(extra + comment), &mut io::sink())?;
        names.push(name);
    }
    Ok(names)
}

/// A reader that computes the CRC-32 of what passes through it.
struct CrcReader<R> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

fn seen(kind: &MemberKind) -> Seen<'_> {
    match kind {
        MemberKind::Dir => Seen::Dir,
        MemberKind::File { .. } => Seen::File,
        MemberKind::Symlink(_) => Seen::Symlink,
        MemberKind::Hardlink(t) => Seen::Hardlink(t),
    }
}

/// A zip: every entry's size is checked against what its header says (a zip may claim a
/// few bytes and hold gigabytes), and the whole may expand to at most `limit`.
fn unpack_zip(store: &Store, file: &Path, display: &str, limit: u64) -> Result<Vec<Member>, Error> {
    let read_err = |source| Error::Read { archive: display.into(), source };
    let zip_err = |e: zip::result::ZipError| read_err(io::Error::other(e));
    let f = fs_err::File::open(file).map_err(read_err)?;
    let mut zip = zip::ZipArchive::new(f).map_err(zip_err)?;
    let mut guard = Guard::new(display);
    // The zip crate keeps one entry per name: a name given twice is found in the central
    // directory itself, before either copy is read.
    let mut names = std::collections::HashSet::new();
    for raw in central_directory_names(file).map_err(read_err)? {
        if !names.insert(raw.clone()) && !raw.ends_with(b"/") {
            return Err(guard.refuse(&String::from_utf8_lossy(&raw), "in the archive twice").into());
        }
    }
    // The zip reader must have read the same central directory.
    let theirs: std::collections::HashSet<Vec<u8>> =
        (0..zip.len()).filter_map(|i| zip.by_index_raw(i).ok().map(|e| e.name_raw().to_vec())).collect();
    if theirs != names {
        return Err(read_err(io::Error::new(
            io::ErrorKind::InvalidData,
            "its central directory does not say the same thing to every reader (a forged end record?)",
        )));
    }
    let mut members = Vec::new();
    let mut expanded = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(zip_err)?;
        let raw = entry.name_raw().to_vec();
        let Some(path) = guard.name(&raw)? else {
            continue;
        };
        let claimed = entry.size();
        expanded = expanded.saturating_add(claimed);
        if expanded > limit {
            return Err(Error::TooLarge(TooLarge { what: display.into(), limit }));
        }
        let unix = entry.unix_mode();
        let entry_crc = entry.crc32();
        let is_link = unix.is_some_and(|m| m & 0o170000 == 0o120000);
        // At most what the header claims, and one byte more to see whether there is more.
        let mut bounded = (&mut entry).take(claimed.saturating_add(1));
        let kind = if path.ends_with('/') || raw.ends_with(b"/") {
            MemberKind::Dir
        } else if is_link {
            let mut target = String::new();
            (&mut bounded).take(PATH_MAX as u64 + 1).read_to_string(&mut target).map_err(read_err)?;
            if target.contains('\0') || target.len() > PATH_MAX {
                return Err(guard.refuse(&path, "a symlink with a NUL byte or an overlong target").into());
            }
            MemberKind::Symlink(target)
        } else {
            let crc = entry_crc;
            let mut checked = CrcReader { inner: &mut bounded, crc: crc32fast::Hasher::new() };
            let (digest, size) = store.put_reader(&mut checked).map_err(read_err)?;
            if size != claimed {
                return Err(guard
                    .refuse(&path, format!("{size} bytes or more where its header says {claimed}"))
                    .into());
            }
            // The header's size may lie low and the reader stop there: the CRC tells.
            if checked.crc.finalize() != crc {
                return Err(guard
                    .refuse(
                        &path,
                        "content that does not match the CRC-32 its header gives (a size or content that lies)",
                    )
                    .into());
            }
            MemberKind::File { digest, size }
        };
        let is_dir = matches!(kind, MemberKind::Dir) || entry.is_dir();
        let kind = if is_dir { MemberKind::Dir } else { kind };
        guard.add(&path, seen(&kind))?;
        let default = if is_dir { 0o755 } else { 0o644 };
        members.push(Member::new(path, kind, unix.map_or(default, |m| m & 0o7777)));
    }
    if members.is_empty() {
        return Err(Error::Empty(display.into()));
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_cleaned_and_escapes_refused() {
        assert_eq!(super::clean("a", "./x//y/").unwrap(), Some("x/y".into()));
        assert_eq!(super::clean("a", "./").unwrap(), None);
        assert_eq!(
            super::clean("a", "x/../../y").unwrap_err().to_string(),
            "archive `a` holds `x/../../y`, which is outside the archive (`..`)"
        );
        assert!(super::clean("a", "/etc/passwd").is_err());
    }
}
