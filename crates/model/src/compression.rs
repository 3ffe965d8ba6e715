//! Layer compression: the algorithm and level a recipe asks for, and the media type a
//! layer compressed so is named by.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Gzip,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    pub algorithm: Algorithm,
    pub level: i32,
}

impl Compression {
    pub const GZIP_DEFAULT: Compression = Compression { algorithm: Algorithm::Gzip, level: 6 };
    pub const ZSTD_DEFAULT: Compression = Compression { algorithm: Algorithm::Zstd, level: 3 };
}

/// The OCI media type of a layer compressed with `c`.
pub fn media_type(c: Compression) -> &'static str {
    match c.algorithm {
        Algorithm::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Algorithm::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}
