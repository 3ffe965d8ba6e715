//! The archive formats a download or local file can be extracted from.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    TarGz,
    TarXz,
    TarZst,
    Zip,
}

impl ArchiveKind {
    pub fn from_name(name: &str) -> Option<ArchiveKind> {
        let n = name.to_ascii_lowercase();
        let kind = if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
            ArchiveKind::TarGz
        } else if n.ends_with(".tar.xz") || n.ends_with(".txz") {
            ArchiveKind::TarXz
        } else if n.ends_with(".tar.zst") || n.ends_with(".tzst") {
            ArchiveKind::TarZst
        } else if n.ends_with(".tar") {
            ArchiveKind::Tar
        } else if n.ends_with(".zip") {
            ArchiveKind::Zip
        } else {
            return None;
        };
        Some(kind)
    }

    pub fn parse(s: &str) -> Option<ArchiveKind> {
        Some(match s {
            "tar" => ArchiveKind::Tar,
            "tar.gz" | "tgz" => ArchiveKind::TarGz,
            "tar.xz" | "txz" => ArchiveKind::TarXz,
            "tar.zst" | "tzst" => ArchiveKind::TarZst,
            "zip" => ArchiveKind::Zip,
            _ => return None,
        })
    }
}

/// What one archive or package may expand to unless the recipe says otherwise
/// (`unpack_limit`).
pub const DEFAULT_UNPACK_LIMIT: u64 = 4 << 30;
