//! Reading a `.deb`: an `ar` archive holding `debian-binary`, `control.tar.*` and
//! `data.tar.*` (gz, xz, zst or none). The data members' bytes go into the content store by
//! digest; nothing is written under a package's own paths. Member names that are absolute
//! or climb out with `..` are refused.

use crate::digest::Digest;
use crate::source::archive::TarKind;
use crate::store::Store;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    Dir,
    File { digest: Digest, size: u64 },
    Symlink(String),
    Hardlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Normalised path without a leading `/` or `./`, as the package names it.
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Deb {
    /// `control`, `md5sums`, `conffiles`, `postinst`, … from control.tar.
    #[serde(with = "text_or_bytes")]
    pub control: BTreeMap<String, Vec<u8>>,
    /// data.tar entries in archive order.
    pub entries: Vec<Entry>,
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
}

fn decompressor<'a>(name: &str, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    Ok(if name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(io::BufReader::new(r)))
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
    use crate::source::archive::{BadName, clean_name};
    clean_name(name).map_err(|b| Error::BadMember {
        deb: deb.into(),
        member: name.into(),
        why: match b {
            BadName::Absolute => "an absolute path",
            BadName::Climbs => "outside the package root (`..`)",
        },
    })
}

/// Reads the package at `file` (named `display` in messages), streaming each member once.
pub fn read(store: &Store, file: &Path, display: &str) -> Result<Deb, Error> {
    let rerr = |source| Error::Read { deb: display.into(), source };
    let fmt = |why: &str| Error::Format { deb: display.into(), why: why.into() };
    let mut f = io::BufReader::new(std::fs::File::open(file).map_err(rerr)?);
    let mut magic = [0u8; 8];
    f.read_exact(&mut magic).map_err(rerr)?;
    if &magic != b"!<arch>\n" {
        return Err(fmt("no `!<arch>` header"));
    }
    let mut deb = Deb::default();
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
        if name.starts_with("control.tar") {
            saw_control = true;
            let mut tar = tar::Archive::new(decompressor(&name, &mut member).map_err(rerr)?);
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
            let mut tar = tar::Archive::new(decompressor(&name, &mut member).map_err(rerr)?);
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
                    TarKind::File => {
                        let (digest, size) = store.put_reader(&mut e).map_err(rerr)?;
                        Kind::File { digest, size }
                    }
                    TarKind::Skip => continue,
                };
                deb.entries.push(Entry { path, kind, mode, uid, gid, mtime });
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
}
