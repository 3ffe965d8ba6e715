//! Layer compression whose bytes depend only on the input, never on the thread count or
//! on how the tar writer happened to chunk its writes.
//!
//! gzip: the input is cut into fixed 1 MiB blocks; each block is deflated on its own, in one
//! call (raw deflate, sync-flushed, the last one finished) and the results are concatenated
//! into one gzip member, as pigz does without its dictionary chaining. Blocks are
//! compressed in parallel batches and written in order, so memory stays bounded. Because
//! each block is compressed in a single call, the zlib-rs backend (whose output otherwise
//! depends on the sizes of the writes fed to it) gives the same bytes every time; its
//! version is pinned in Cargo.toml.
//!
//! zstd: the bundled libzstd in multi-threaded mode, whose output is the same for any
//! number of workers ≥ 1 (a golden test checks this); one worker is the minimum we use.
//!
//! The header is fixed: gzip mtime 0, no name, OS byte 255 ("unknown").

use crate::model::compression::{Algorithm, Compression};
use rayon::prelude::*;
use std::io::{self, Write};

pub const GZIP_BLOCK: usize = 1 << 20;

/// A compressing writer. Call [`Compressor::finish`] to flush the trailer.
pub enum Compressor<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(out: W, c: Compression, threads: usize) -> io::Result<Self> {
        Ok(match c.algorithm {
            Algorithm::Gzip => Compressor::Gzip(ParallelGzip::new(out, c.level as u32, threads)?),
            Algorithm::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, c.level)?;
                e.multithread(threads.max(1) as u32)?;
                e.include_checksum(false)?;
                e.include_contentsize(false)?;
                Compressor::Zstd(e)
            }
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct ParallelGzip<W: Write> {
    out: W,
    level: u32,
    /// Full blocks waiting to be compressed, plus the one being filled (last).
    pending: Vec<Vec<u8>>,
    batch: usize,
    crc: crc32fast::Hasher,
    total: u64,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
        Ok(ParallelGzip {
            out,
            level,
            pending: vec![Vec::with_capacity(GZIP_BLOCK)],
            batch: threads.max(1) * 2,
            crc: crc32fast::Hasher::new(),
            total: 0,
        })
    }

    /// Compresses every full block (all but the open one, which is last) in parallel and
    /// writes them in order.
    fn flush_full_blocks(&mut self) -> io::Result<()> {
        let full = self.pending.len() - 1;
        let level = self.level;
        let compressed: Vec<io::Result<Vec<u8>>> =
            self.pending[..full].par_iter().map(|b| deflate_block(b, level, false)).collect();
        for c in compressed {
            self.out.write_all(&c?)?;
        }
        self.pending.drain(..full);
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.flush_full_blocks()?;
        let last = self.pending.pop().expect("a block is always open");
        self.out.write_all(&deflate_block(&last, self.level, true)?)?;
        let mut out = self.out;
        out.write_all(&self.crc.finalize().to_le_bytes())?;
        out.write_all(&(self.total as u32).to_le_bytes())?;
        Ok(out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        self.crc.update(buf);
        self.total += n as u64;
        while !buf.is_empty() {
            let open = self.pending.last_mut().expect("a block is always open");
            let take = (GZIP_BLOCK - open.len()).min(buf.len());
            open.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if open.len() == GZIP_BLOCK {
                self.pending.push(Vec::with_capacity(GZIP_BLOCK));
                if self.pending.len() > self.batch {
                    self.flush_full_blocks()?;
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Raw deflate of one block: sync-flushed (byte-aligned, not final) or finished.
fn deflate_block(input: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    use flate2::{Compress, FlushCompress, Status};
    let mut c = Compress::new(flate2::Compression::new(level), false);
    let mut out = Vec::with_capacity(input.len() + input.len() / 8 + 1024);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    loop {
        let consumed = c.total_in() as usize;
        let status = c.compress_vec(&input[consumed..], &mut out, flush).map_err(io::Error::other)?;
        let done = c.total_in() as usize == input.len();
        match status {
            Status::StreamEnd => break,
            _ if done && !last && out.len() < out.capacity() => break,
            _ => out.reserve(64 * 1024),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        let mut x: u32 = 1;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                if i % 3 == 0 { (x >> 24) as u8 } else { b"assemble "[i % 9] }
            })
            .collect()
    }

    fn compress(data: &[u8], c: Compression, threads: usize, chunk: usize) -> Vec<u8> {
        let mut w = Compressor::new(Vec::new(), c, threads).unwrap();
        for part in data.chunks(chunk) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn gzip_is_independent_of_threads_and_write_sizes_and_round_trips() {
        let data = sample(3 * GZIP_BLOCK + 12345);
        let a = compress(&data, Compression::GZIP_DEFAULT, 1, 512);
        let b = compress(&data, Compression::GZIP_DEFAULT, 4, 65536);
        assert_eq!(a, b);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&a[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        for n in [0, 1, GZIP_BLOCK, 2 * GZIP_BLOCK] {
            let d = sample(n);
            let z = compress(&d, Compression::GZIP_DEFAULT, 3, 4096);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&z[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, d, "size {n}");
        }
    }

    #[test]
    fn zstd_is_independent_of_threads_and_write_sizes() {
        let data = sample(5 * GZIP_BLOCK);
        let a = compress(&data, Compression::ZSTD_DEFAULT, 1, 512);
        let b = compress(&data, Compression::ZSTD_DEFAULT, 4, 65536);
        assert_eq!(a, b);
        assert_eq!(zstd::decode_all(&a[..]).unwrap(), data);
    }
}
