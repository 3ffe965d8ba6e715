//! One member of something unpacked — a tar or zip archive, a `.deb`'s data, an `.apk`'s
//! data, an image layer: its cleaned path, what it is, and its metadata. Every reader makes
//! these, and the layer tree is built from them by one conversion.

use crate::digest::Digest;

/// What a member is. A file's bytes are in the content store under `digest`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MemberKind {
    Dir,
    File {
        digest: Digest,
        size: u64,
    },
    Symlink(String),
    /// A hard link to another member, by its cleaned path.
    Hardlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Cleaned relative path (`a/b/c`, see [`crate::path::clean_name`]).
    pub path: String,
    pub kind: MemberKind,
    /// Permission bits, setuid, setgid and sticky included.
    pub mode: u32,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub mtime: u64,
}

impl Member {
    /// A member with owner root and no time (archives, whose owners and times the recipe sets).
    pub fn new(path: String, kind: MemberKind, mode: u32) -> Member {
        Member { path, kind, mode, uid: 0, gid: 0, mtime: 0 }
    }
}
