//! Owners as recipes and image tests name them.

/// A user or group named by number or by name; names are resolved against the image's
/// user database when the build is planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdRef {
    Id(u32),
    Name(String),
}
