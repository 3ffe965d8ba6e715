//! Unpacking downloaded archives (tar, tar.gz, tar.xz, tar.zst, zip) into the store.
//! Nothing is written to the host file system under an archive's own names: each member's
//! bytes go into the content store by digest, and the archive becomes a list of members
//! that the layer tree is built from. Member names that are absolute or climb out with
//! `..` are refused.

use crate::digest::Digest;
use crate::recipe::ArchiveKind;
use crate::store::Store;
use std::io::{self, Read};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MemberKind {
    Dir,
    File { digest: Digest, size: u64 },
    Symlink(String),
    Hardlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Normalised relative path (`a/b/c`).
    pub path: String,
    pub kind: MemberKind,
    pub mode: u32,
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
    let n = std::fs::File::open(file).and_then(|mut f| f.read(&mut head)).ok()?;
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

/// Why a member name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadName {
    Absolute,
    Climbs,
}

/// Normalises an archive or package member name (`./a//b` → `a/b`); `None` for the root.
/// Absolute names and `..` components are refused.
pub fn clean_name(name: &str) -> Result<Option<String>, BadName> {
    if name.starts_with('/') {
        return Err(BadName::Absolute);
    }
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(BadName::Climbs),
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn clean(archive: &str, name: &str) -> Result<Option<String>, Error> {
    clean_name(name).map_err(|b| Error::BadMember {
        archive: archive.into(),
        member: name.into(),
        why: match b {
            BadName::Absolute => "an absolute path",
            BadName::Climbs => "outside the archive (`..`)",
        },
    })
}

/// Lists the members of `file`, storing each regular file's bytes in the store.
pub fn unpack(store: &Store, file: &Path, kind: ArchiveKind, display: &str) -> Result<Vec<Member>, Error> {
    let read_err = |source| Error::Read { archive: display.into(), source };
    let f = std::fs::File::open(file).map_err(read_err)?;
    let reader: Box<dyn Read> = match kind {
        ArchiveKind::Tar => Box::new(f),
        ArchiveKind::TarGz => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(f))),
        ArchiveKind::TarXz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(io::BufReader::new(f))),
        ArchiveKind::TarZst => Box::new(zstd::stream::read::Decoder::new(f).map_err(read_err)?),
        ArchiveKind::Zip => return unpack_zip(store, file, display),
    };
    let mut archive = tar::Archive::new(reader);
    let mut members = Vec::new();
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = clean(display, &raw)? else {
            continue;
        };
        let mode = entry.header().mode().map_err(read_err)? & 0o7777;
        let bad = |why| Error::BadMember { archive: display.into(), member: raw.clone(), why };
        let kind = match tar_kind(&entry).map_err(bad)? {
            TarKind::Dir => MemberKind::Dir,
            TarKind::Symlink(target) => MemberKind::Symlink(target),
            TarKind::Hardlink(target) => {
                MemberKind::Hardlink(clean(display, &target)?.ok_or_else(|| bad("a hard link to the archive root"))?)
            }
            TarKind::File => {
                let (digest, size) = store.put_reader(&mut entry).map_err(read_err)?;
                MemberKind::File { digest, size }
            }
            TarKind::Skip => continue,
        };
        members.push(Member { path, kind, mode });
    }
    Ok(members)
}

fn unpack_zip(store: &Store, file: &Path, display: &str) -> Result<Vec<Member>, Error> {
    let read_err = |source| Error::Read { archive: display.into(), source };
    let zip_err = |e: zip::result::ZipError| read_err(io::Error::other(e));
    let f = std::fs::File::open(file).map_err(read_err)?;
    let mut zip = zip::ZipArchive::new(f).map_err(zip_err)?;
    let mut members = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(zip_err)?;
        let raw = entry.name().to_string();
        let Some(path) = clean(display, &raw)? else {
            continue;
        };
        let unix = entry.unix_mode();
        let is_link = unix.is_some_and(|m| m & 0o170000 == 0o120000);
        let kind = if entry.is_dir() {
            MemberKind::Dir
        } else if is_link {
            let mut target = String::new();
            entry.read_to_string(&mut target).map_err(read_err)?;
            MemberKind::Symlink(target)
        } else {
            let (digest, size) = store.put_reader(&mut entry).map_err(read_err)?;
            MemberKind::File { digest, size }
        };
        let default = if matches!(kind, MemberKind::Dir) { 0o755 } else { 0o644 };
        members.push(Member { path, kind, mode: unix.map_or(default, |m| m & 0o7777) });
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
