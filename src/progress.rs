//! Progress of long work — downloads, packing layers, checking images read back — told as
//! tracing events a front end may draw (the CLI draws bytes done of the total and the rate
//! on a terminal, and nothing on a pipe). Nobody listening costs a disabled callsite.

/// The target every progress event has; log output leaves it out.
pub const TARGET: &str = "assemble::progress";

/// What kind of work the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Bytes downloaded (packages, pinned files, index files).
    Download,
    /// Bytes of file content written into layers.
    Pack,
    /// Bytes of image blobs read back and checked.
    Check,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Download => "downloading",
            Phase::Pack => "packing",
            Phase::Check => "checking",
        }
    }
}

/// `bytes` more of work are ahead in `phase`.
pub fn expect(phase: Phase, bytes: u64) {
    tracing::trace!(target: TARGET, phase = phase.name(), total = bytes);
}

/// `bytes` of work in `phase` are done.
pub fn done(phase: Phase, bytes: u64) {
    tracing::trace!(target: TARGET, phase = phase.name(), done = bytes);
}
