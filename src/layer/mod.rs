//! Turning a layer's file tree into a blob: deterministic tar, compressed, with the
//! diff_id (uncompressed digest) and the digest (compressed) computed in the same pass.

pub mod compress;
pub mod tar;

use crate::model::compression::Compression;
use crate::model::digest::HashWriter;
use crate::progress::{self, Phase};
use crate::tree::Tree;
use compress::Compressor;
use std::io::{self, Write};

pub use crate::model::layer::LayerInfo;

/// A reader of a layer blob's tar stream, decompressed as its media type says.
pub fn decoder(file: impl io::Read + 'static, media_type: &str) -> io::Result<Box<dyn io::Read>> {
    Ok(if media_type.ends_with("+gzip") {
        Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(file)))
    } else if media_type.ends_with("+zstd") {
        Box::new(zstd::stream::read::Decoder::new(file)?)
    } else {
        Box::new(file)
    })
}

/// Packs `tree` into `out`, returning the layer's digests and sizes.
/// With `files`, host files are read once: see [`tar::TarWriter::with_host_files`].
pub fn pack<W: Write>(
    tree: &Tree,
    epoch: u64,
    c: Compression,
    threads: usize,
    files: Option<std::sync::Arc<dyn tar::HostFiles>>,
    out: W,
) -> Result<(W, LayerInfo), tar::Error> {
    let compressed = HashWriter::new(out);
    let compressor = Compressor::new(compressed, c, threads).map_err(tar::Error::Write)?;
    let uncompressed = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, compressor));
    let mut tw = match files {
        Some(f) => tar::TarWriter::with_host_files(uncompressed, f),
        None => tar::TarWriter::new(uncompressed),
    };
    progress::expect(Phase::Pack, tree.file_bytes());
    for (path, entry) in tree.iter() {
        tw.entry(path, entry, epoch)?;
        progress::done(Phase::Pack, entry.file_size());
    }
    let uncompressed = tw.finish()?;
    let (buf, diff_id, uncompressed_size) = uncompressed.finish();
    let compressor = buf.into_inner().map_err(|e| tar::Error::Write(e.into_error()))?;
    let compressed = compressor.finish().map_err(tar::Error::Write)?;
    let (out, digest, size) = compressed.finish();
    Ok((
        out,
        LayerInfo {
            digest,
            diff_id,
            size,
            uncompressed_size,
            media_type: crate::model::compression::media_type(c).to_string(),
        },
    ))
}
