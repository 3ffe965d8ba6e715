//! Layer compression whose bytes depend only on the input, never on the thread count or
//! on how the tar writer happened to chunk its writes.
//!
//! gzip: the input is cut into fixed 1 MiB blocks; each block is deflated on its own, in one
//! call (raw deflate, sync-flushed, the last one finished) and the results are concatenated
//! into one gzip member, as pigz does without its dictionary chaining. Full blocks are
//! compressed on the pool while the writer fills the next ones, and written in order; a few
//! per thread are in flight at most, so memory stays bounded. Because
//! each block is compressed in a single call, the zlib-rs backend (whose output otherwise
//! depends on the sizes of the writes fed to it) gives the same bytes every time; its
//! version is pinned in Cargo.toml.
//!
//! zstd: the bundled libzstd in multi-threaded mode, whose output is the same for any
//! number of workers ≥ 1 (a golden test checks this); one worker is the minimum we use.
//!
//! The header is fixed: gzip mtime 0, no name, OS byte 255 ("unknown").

use crate::model::compression::{Algorithm, Compression};
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
    /// The block being filled.
    open: Vec<u8>,
    /// Full blocks handed to the pool, by sequence number, and their compressed bytes.
    shared: std::sync::Arc<Blocks>,
    /// Sequence numbers given out, and written out (blocks are written in order).
    sent: u64,
    written: u64,
    /// Blocks given out and not yet written, at most.
    limit: u64,
    crc: crc32fast::Hasher,
    total: u64,
}

/// Full blocks waiting for a compressor, and compressed ones waiting to be written.
#[derive(Default)]
struct Blocks {
    state: std::sync::Mutex<BlockState>,
    compressed: std::sync::Condvar,
}

#[derive(Default)]
struct BlockState {
    waiting: std::collections::VecDeque<(u64, Vec<u8>)>,
    done: std::collections::BTreeMap<u64, io::Result<Vec<u8>>>,
}

impl Blocks {
    fn lock(&self) -> std::sync::MutexGuard<'_, BlockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Compresses the oldest waiting block, if any block is still waiting; says whether one was.
    fn compress_one(&self, level: u32) -> bool {
        let Some((seq, block)) = self.lock().waiting.pop_front() else { return false };
        let compressed = deflate_block(&block, level, false);
        drop(block);
        self.lock().done.insert(seq, compressed);
        self.compressed.notify_all();
        true
    }
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
        Ok(ParallelGzip {
            out,
            level,
            open: Vec::with_capacity(GZIP_BLOCK),
            shared: Default::default(),
            sent: 0,
            written: 0,
            limit: threads.max(1) as u64 * 2,
            crc: crc32fast::Hasher::new(),
            total: 0,
        })
    }

    /// Hands the full open block to the pool and goes on filling the next one while it is
    /// compressed: the writer (the tar stream, its hashes) and the compressors run at once.
    /// Past [`Self::limit`] blocks in flight, the oldest is written first.
    fn send_open_block(&mut self) -> io::Result<()> {
        let block = std::mem::replace(&mut self.open, Vec::with_capacity(GZIP_BLOCK));
        self.shared.lock().waiting.push_back((self.sent, block));
        self.sent += 1;
        let (shared, level) = (self.shared.clone(), self.level);
        rayon::spawn(move || {
            shared.compress_one(level);
        });
        while self.sent - self.written > self.limit {
            self.write_oldest()?;
        }
        Ok(())
    }

    /// Writes the oldest block given out, compressing waiting blocks on this thread rather
    /// than waiting idle while the pool is busy (with another layer, say).
    fn write_oldest(&mut self) -> io::Result<()> {
        let seq = self.written;
        let compressed = loop {
            let mut state = self.shared.lock();
            if let Some(c) = state.done.remove(&seq) {
                break c;
            }
            if state.waiting.is_empty() {
                // Being compressed on another thread: wait for it.
                drop(self.shared.compressed.wait(state).unwrap_or_else(|e| e.into_inner()));
            } else {
                drop(state);
                self.shared.compress_one(self.level);
            }
        };
        self.out.write_all(&compressed?)?;
        self.written += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        while self.written < self.sent {
            self.write_oldest()?;
        }
        self.out.write_all(&deflate_block(&self.open, self.level, true)?)?;
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
            let take = (GZIP_BLOCK - self.open.len()).min(buf.len());
            self.open.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.open.len() == GZIP_BLOCK {
                self.send_open_block()?;
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
