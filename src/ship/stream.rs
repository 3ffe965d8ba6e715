//! The tar stream ship sends to the server: blobs, the new `index.json`, the load plan, and
//! an `end` marker; gzipped in a way that costs nothing for layers (see [`Stream`]).

use std::io::Write;

fn header(path: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).expect("a short path");
    h.set_size(size);
    // Owner-only on the server too: a configuration layer may hold secrets.
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h
}

/// Blobs larger than this are sent as they are (layers are compressed already); smaller
/// ones, and every tar header, go through gzip when the server has it.
const STORED_ABOVE: u64 = 64 << 10;

/// The tar stream ship sends, ending with an `end` entry the server checks for. With `gzip`,
/// it is a series of gzip members: tar headers, padding and small blobs compressed (a tar
/// header is 512 bytes, mostly zeros), big blobs in stored (uncompressed) members, so a
/// configuration-only change costs little more than its bytes and a big layer costs no CPU.
pub(super) struct Stream<W: Write> {
    pub(super) out: W,
    pub(super) gzip: bool,
    /// Compressible bytes not yet written.
    pub(super) pending: Vec<u8>,
}

impl<W: Write> Stream<W> {
    pub(super) fn small(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(header(path, bytes.len() as u64).as_bytes());
        self.pending.extend_from_slice(bytes);
        self.pad(bytes.len() as u64);
        if !self.gzip {
            self.flush_pending()?;
        }
        Ok(())
    }

    pub(super) fn file(&mut self, path: &str, size: u64, mut f: impl std::io::Read) -> std::io::Result<()> {
        if size <= STORED_ABOVE {
            let mut bytes = Vec::with_capacity(size as usize);
            f.read_to_end(&mut bytes)?;
            return self.small(path, &bytes);
        }
        self.pending.extend_from_slice(header(path, size).as_bytes());
        self.flush_pending()?;
        let copied = if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(&mut self.out, flate2::Compression::none());
            let n = std::io::copy(&mut f, &mut gz)?;
            gz.finish()?;
            n
        } else {
            std::io::copy(&mut f, &mut self.out)?
        };
        if copied != size {
            return Err(std::io::Error::other(format!("{path} changed size while it was sent")));
        }
        self.pad(size);
        Ok(())
    }

    fn pad(&mut self, size: u64) {
        let rest = (512 - size % 512) % 512;
        self.pending.resize(self.pending.len() + rest as usize, 0);
    }

    fn flush_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(&mut self.out, flate2::Compression::best());
            gz.write_all(&self.pending)?;
            gz.finish()?;
        } else {
            self.out.write_all(&self.pending)?;
        }
        self.pending.clear();
        Ok(())
    }

    /// The `end` marker and tar's two zero blocks.
    pub(super) fn finish(mut self) -> std::io::Result<()> {
        self.small("end", b"")?;
        self.pending.resize(self.pending.len() + 1024, 0);
        self.flush_pending()?;
        self.out.flush()
    }
}

/// Counts blob bytes as they go, for the progress line.
pub(super) struct Counting<'a, W: Write> {
    pub(super) inner: W,
    pub(super) sent: u64,
    pub(super) total: u64,
    pub(super) progress: &'a mut dyn FnMut(u64, u64),
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sent += n as u64;
        (self.progress)(self.sent.min(self.total), self.total);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
