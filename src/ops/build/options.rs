//! How a build is asked for, and what it gives.

use crate::model::platform::Arch;
use crate::oci::Image;
use crate::recipe::Recipe;
use crate::resolve::lock::Lock;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Options {
    /// Build only these architectures (each must be in the recipe). `None`: all of them.
    pub archs: Option<Vec<Arch>>,
    /// Fail instead of changing the lock.
    pub locked: bool,
    /// Worker threads for packing and compression; output never depends on it.
    pub threads: usize,
    /// `SOURCE_DATE_EPOCH`, which overrides the recipe's `epoch`.
    pub source_date_epoch: Option<u64>,
    /// Write the lock file after a build of every architecture (not with `locked`).
    pub write_lock: bool,
    /// With `locked`: also fail when the image differs from the digests the lock records.
    /// `verify` turns this off to report the differences itself.
    pub compare_outputs: bool,
    /// Resolve packages anew even when the lock covers the recipe (`lock --upgrade`).
    pub upgrade: bool,
    /// The recipes being built on this one's image (`base: {recipe}`), to name a cycle.
    pub children: Vec<PathBuf>,
    /// `--context DIR`: the directory local files must be inside, for every recipe
    /// (otherwise the recipe's `context:`, else its own directory).
    pub context: Option<PathBuf>,
    /// Carry the attestations (SBOMs, provenance) with the image as referrers, so sinks write
    /// them and push sends them (`--no-attest` turns it off; the lock records them either way).
    pub attach: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            archs: None,
            locked: false,
            threads: default_threads(),
            source_date_epoch: None,
            write_lock: true,
            compare_outputs: true,
            upgrade: false,
            children: Vec::new(),
            context: None,
            attach: true,
        }
    }
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug)]
pub struct Built {
    pub image: Image,
    /// The image's SBOMs and provenance (see [`crate::ops::attest`]).
    pub attestations: crate::ops::attest::Attestations,
    pub lock: Lock,
    pub lock_path: PathBuf,
    pub lock_written: bool,
    /// Layers compressed by this build, and layers taken from the cache.
    pub packed: usize,
    pub reused: usize,
}

pub fn epoch_of(recipe: &Recipe, opts: &Options) -> u64 {
    opts.source_date_epoch.or(recipe.epoch).unwrap_or(0)
}
