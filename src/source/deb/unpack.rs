//! Reading a `.deb`: an `ar` archive holding `debian-binary`, `control.tar.*` and
//! `data.tar.*` (gz, xz, zst or none). The data members' bytes go into the content store by
//! digest; nothing is written under a package's own paths. Member names that are absolute
//! or climb out with `..` are refused.

use crate::model::digest::Digest;
use crate::source::archive::TarKind;
use crate::store::Store;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

pub use crate::model::member::{Member, MemberKind as Kind};

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Deb {
    /// `control`, `md5sums`, `conffiles`, `postinst`, … from control.tar.
    #[serde(with = "text_or_bytes")]
    pub control: BTreeMap<String, Vec<u8>>,
    /// data.tar entries in archive order.
    pub entries: Vec<Member>,
    /// The one blob holding every regular file's bytes, one after another (a package's
    /// files are written once, not one blob each: thousands of small files cost the kernel
    /// more than their bytes cost anything else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<Digest>,
    /// Where each entry's bytes start in `pack` (0 for entries that are not files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offsets: Vec<u64>,
    /// The pack's path in the store, made once and shared by every file's content.
    #[serde(skip)]
    pack_path: std::sync::OnceLock<std::sync::Arc<std::path::Path>>,
}

impl Deb {
    /// Where the bytes of `entries[i]` are: a slice of the pack, or (a listing cached before
    /// packs) a blob of their own.
    pub fn content(&self, store: &Store, i: usize) -> Option<crate::tree::Content> {
        let Kind::File { digest, .. } = &self.entries.get(i)?.kind else { return None };
        Some(match (&self.pack, self.offsets.get(i)) {
            (Some(pack), Some(offset)) => crate::tree::Content::Slice {
                path: self.pack_path.get_or_init(|| store.blob_path(pack).into()).clone(),
                offset: *offset,
            },
            _ => crate::tree::Content::Stored(store.blob_path(digest)),
        })
    }

    /// Whether the store holds every byte the listing names.
    pub fn complete(&self, store: &Store) -> bool {
        match &self.pack {
            Some(pack) => store.has_blob(pack),
            None => self.entries.iter().all(|e| match &e.kind {
                Kind::File { digest, .. } => store.has_blob(digest),
                _ => true,
            }),
        }
    }

    /// The bytes of `entries[i]`, checked against its digest.
    pub fn bytes(&self, store: &Store, i: usize) -> io::Result<Option<Vec<u8>>> {
        let (Some(content), Kind::File { digest, size }) = (self.content(store, i), &self.entries[i].kind) else {
            return Ok(None);
        };
        crate::tree::read_content(&content, *size, digest).map(Some)
    }
}

/// Control files in the cached listing as JSON strings when they are UTF-8 (they nearly
/// always are; a list of numbers per byte made reading a warm cache slow), else as bytes.
mod text_or_bytes {
    use std::collections::BTreeMap;

    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(untagged)]
    enum Member<'a> {
        Text(std::borrow::Cow<'a, str>),
        Bytes(Vec<u8>),
    }

    pub fn serialize<S: serde::Serializer>(m: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(m.len()))?;
        for (k, v) in m {
            match std::str::from_utf8(v) {
                Ok(t) => map.serialize_entry(k, &Member::Text(t.into()))?,
                Err(_) => map.serialize_entry(k, &Member::Bytes(v.clone()))?,
            }
        }
        map.end()
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let m: BTreeMap<String, Member<'de>> = serde::Deserialize::deserialize(d)?;
        Ok(m.into_iter()
            .map(|(k, v)| {
                let bytes = match v {
                    Member::Text(t) => t.into_owned().into_bytes(),
                    Member::Bytes(b) => b,
                };
                (k, bytes)
            })
            .collect())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{deb}` is not a Debian package: {why}")]
    Format { deb: String, why: String },
    #[error("`{deb}` holds `{member}`, which is {why}")]
    BadMember { deb: String, member: String, why: &'static str },
    #[error("cannot read `{deb}`")]
    Read {
        deb: String,
        #[source]
        source: io::Error,
    },
    #[error("package {0}")]
    Refused(#[from] crate::source::archive::Refused),
    #[error("package {0}")]
    TooLarge(crate::source::archive::TooLarge),
}

fn decompressor<'a>(name: &str, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    Ok(if name.ends_with(".xz") {
        Box::new(crate::source::archive::xz_of_checked(io::BufReader::new(r))?)
    } else if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(r)))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(r)?)
    } else if name.ends_with(".tar") {
        Box::new(r)
    } else {
        return Err(io::Error::other(format!("unsupported member compression `{name}`")));
    })
}

fn clean(deb: &str, name: &str) -> Result<Option<String>, Error> {
    use crate::model::path::{BadName, clean_name};
    clean_name(name).map_err(|b| Error::BadMember {
        deb: deb.into(),
        member: name.escape_debug().to_string(),
        why: match b {
            BadName::Absolute => "an absolute path",
            BadName::Climbs => "outside the package root (`..`)",
            BadName::Nul => "a name with a NUL byte in it",
            BadName::TooLong => "a path longer than PATH_MAX or with a component longer than NAME_MAX",
        },
    })
}

/// Control files are read into memory: they are small, and so is what they may expand to.
const CONTROL_LIMIT: u64 = 64 << 20;

/// Reads the package at `file` (named `display` in messages), streaming each member once;
/// its data may expand to at most `limit` bytes.
pub fn read(store: &Store, file: &Path, display: &str, limit: u64) -> Result<Deb, Error> {
    use crate::source::archive::{Guard, Seen, TooLarge, too_large};
    let rerr = |source: io::Error| match too_large(&source) {
        Some(t) => Error::TooLarge(TooLarge { what: t.what.clone(), limit: t.limit }),
        None => Error::Read { deb: display.into(), source },
    };
    let mut guard = Guard::new(display);
    let fmt = |why: &str| Error::Format { deb: display.into(), why: why.into() };
    let mut f = io::BufReader::new(fs_err::File::open(file).map_err(rerr)?);
    let mut magic = [0u8; 8];
    f.read_exact(&mut magic).map_err(rerr)?;
    if &magic != b"!<arch>\n" {
        return Err(fmt("no `!<arch>` header"));
    }
    let mut deb = Deb::default();
    // Every file's bytes, one after another, hashed whole as they are written.
    let mut pack = crate::model::digest::HashWriter::new(io::BufWriter::new(store.temp().map_err(rerr)?));
    let mut offsets = Vec::new();
    let (mut saw_control, mut saw_data) = (false, false);
    loop {
        let mut header = [0u8; 60];
        match f.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(rerr(e)),
        }
        if &header[58..60] != b"`\n" {
            return Err(fmt("corrupt ar member header"));
        }
        let name = String::from_utf8_lossy(&header[..16]).trim().trim_end_matches('/').to_string();
        let size: u64 =
            String::from_utf8_lossy(&header[48..58]).trim().parse().map_err(|_| fmt("bad ar member size"))?;
        let mut member = (&mut f).take(size);
        if (name.starts_with("control.tar") && saw_control) || (name.starts_with("data.tar") && saw_data) {
            return Err(fmt(&format!("a second `{name}` member (a package has one control and one data member)")));
        }
        if name.starts_with("control.tar") {
            saw_control = true;
            let control = decompressor(&name, &mut member).map_err(rerr)?;
            let mut tar = tar::Archive::new(guard.bounded(control, CONTROL_LIMIT));
            for e in tar.entries().map_err(rerr)? {
                let mut e = e.map_err(rerr)?;
                let p = e.path().map_err(rerr)?.to_string_lossy().trim_start_matches("./").to_string();
                if e.header().entry_type().is_file() && !p.is_empty() {
                    let mut buf = Vec::new();
                    e.read_to_end(&mut buf).map_err(rerr)?;
                    deb.control.insert(p, buf);
                }
            }
        } else if name.starts_with("data.tar") {
            saw_data = true;
            let data = decompressor(&name, &mut member).map_err(rerr)?;
            let mut tar = tar::Archive::new(guard.bounded(data, limit));
            for e in tar.entries().map_err(rerr)? {
                let mut e = e.map_err(rerr)?;
                let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let Some(path) = clean(display, &raw)? else { continue };
                let h = e.header();
                let (mode, uid, gid, mtime) = (
                    h.mode().map_err(rerr)? & 0o7777,
                    h.uid().map_err(rerr)? as u32,
                    h.gid().map_err(rerr)? as u32,
                    h.mtime().map_err(rerr)?,
                );
                let bad = |why| Error::BadMember { deb: display.into(), member: raw.clone(), why };
                let kind = match crate::source::archive::tar_kind(&e).map_err(bad)? {
                    TarKind::Dir => Kind::Dir,
                    TarKind::Symlink(target) => Kind::Symlink(target),
                    TarKind::Hardlink(target) => {
                        Kind::Hardlink(clean(display, &target)?.ok_or_else(|| fmt("hard link to the root"))?)
                    }
                    TarKind::File => Kind::File { digest: Digest::of(b""), size: 0 },
                    TarKind::Skip => continue,
                };
                guard.add(
                    &path,
                    match &kind {
                        Kind::Dir => Seen::Dir,
                        Kind::File { .. } => Seen::File,
                        Kind::Symlink(_) => Seen::Symlink,
                        Kind::Hardlink(t) => Seen::Hardlink(t),
                    },
                )?;
                let offset = pack.hasher.len();
                let kind = match kind {
                    Kind::File { .. } => {
                        let mut one = crate::model::digest::HashReader::new(&mut e);
                        io::copy(&mut one, &mut pack).map_err(rerr)?;
                        let (digest, size) = one.hasher.finish();
                        Kind::File { digest, size }
                    }
                    other => other,
                };
                offsets.push(offset);
                deb.entries.push(Member { path, kind, mode, uid, gid, mtime });
            }
        }
        // Skip what is left of the member and its padding byte.
        io::copy(&mut member, &mut io::sink()).map_err(rerr)?;
        if size % 2 == 1 {
            let mut pad = [0u8; 1];
            let _ = f.read(&mut pad).map_err(rerr)?;
        }
    }
    if !saw_control || !saw_data {
        return Err(fmt("missing control.tar or data.tar member"));
    }
    let (buffered, digest, _) = pack.finish();
    let tmp = buffered.into_inner().map_err(|e| rerr(e.into_error()))?;
    if !store.has_blob(&digest) {
        store.commit(tmp, &digest, false).map_err(rerr)?;
    }
    deb.pack = Some(digest);
    deb.offsets = offsets;
    Ok(deb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_files_round_trip_as_text_or_bytes() {
        let mut deb = Deb::default();
        deb.control.insert("md5sums".into(), b"d41d8cd98f00b204e9800998ecf8427e  usr/x\n".to_vec());
        deb.control.insert("postinst".into(), vec![0xff, 0x00, b'a']);
        let json = serde_json::to_string(&deb).unwrap();
        assert!(json.contains(r#""md5sums":"d41d8cd98f00b204e9800998ecf8427e  usr/x\n""#), "{json}");
        assert!(json.contains(r#""postinst":[255,0,97]"#), "{json}");
        let back: Deb = serde_json::from_str(&json).unwrap();
        assert_eq!(back.control, deb.control);
        // Listings cached before control files went as text still read.
        let old: Deb = serde_json::from_str(r#"{"control":{"conffiles":[47,101]},"entries":[]}"#).unwrap();
        assert_eq!(old.control["conffiles"], b"/e");
    }

    /// A tar of `(name, data, typeflag, link)` members, written with the `tar` crate.
    fn tar_of(members: &[(&str, Vec<u8>, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, kind, link) in members {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// An `ar` archive holding a `.deb`'s members (data gzipped).
    fn deb_of(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let control = tar_of(&[("./control", b"Package: p\n".to_vec(), tar::EntryType::Regular, "")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(data).unwrap();
        let data = gz.finish().unwrap();
        let mut out = b"!<arch>\n".to_vec();
        for (name, body) in [("debian-binary", b"2.0\n".to_vec()), ("control.tar", control), ("data.tar.gz", data)] {
            out.extend_from_slice(
                format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", 0, 0, 0, 100644, body.len()).as_bytes(),
            );
            out.extend_from_slice(&body);
            if body.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    /// A package whose data expands past the limit stops there (a bomb), and hard links that
    /// go through the package's own symlinks or name nothing earlier are refused.
    #[test]
    fn deb_bombs_and_bad_hard_links_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("cache")).unwrap();
        let write = |name: &str, bytes: Vec<u8>| {
            let p = t.path().join(name);
            fs_err::write(&p, bytes).unwrap();
            p
        };
        let bomb = write("bomb.deb", deb_of(&tar_of(&[("./zeros", vec![0; 8 << 20], tar::EntryType::Regular, "")])));
        let err = read(&store, &bomb, "bomb.deb", 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `bomb.deb` expands to more than 1048576 bytes; if it really is that large, raise `unpack_limit` in the recipe"
        );
        assert!(read(&store, &bomb, "bomb.deb", 16 << 20).is_ok());
        let through = write(
            "through.deb",
            deb_of(&tar_of(&[
                ("./real/", vec![], tar::EntryType::Directory, ""),
                ("./real/f", b"x".to_vec(), tar::EntryType::Regular, ""),
                ("./s", vec![], tar::EntryType::Symlink, "real"),
                ("./h", vec![], tar::EntryType::Link, "./s/f"),
            ])),
        );
        let err = read(&store, &through, "through.deb", 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `through.deb` holds `h`, which is a hard link to `s/f`, which goes through the symlink `s`"
        );
        // A second data member would be read against a fresh limit (and add files twice).
        let mut twice = deb_of(&tar_of(&[("./a", b"a".to_vec(), tar::EntryType::Regular, "")]));
        let more = deb_of(&tar_of(&[("./b", b"b".to_vec(), tar::EntryType::Regular, "")]));
        let data_at = more.windows(11).position(|w| w == b"data.tar.gz").unwrap();
        twice.extend_from_slice(&more[data_at..]);
        let twice = write("twice.deb", twice);
        let err = read(&store, &twice, "twice.deb", 1 << 20).unwrap_err();
        assert!(err.to_string().contains("a second `data.tar.gz` member"), "{err}");
        let dangling = write("dangling.deb", deb_of(&tar_of(&[("./h", vec![], tar::EntryType::Link, "./gone")])));
        let err = read(&store, &dangling, "dangling.deb", 1 << 20).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("which is a hard link to `gone`, which is not a regular file earlier in the archive"),
            "{err}"
        );
    }
}
