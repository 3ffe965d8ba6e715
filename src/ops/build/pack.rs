//! Packing: platform after platform (only one platform's trees are held at a time), every
//! distinct layer (layers equal across platforms are packed once), each reused from the
//! layer cache when its key is known.
//! Host files are read once: one the stat cache vouches for is not hashed again, one the
//! plan left unhashed is hashed as it is packed, and what was learned completes the keys.

use crate::layer::{self, LayerInfo};
use crate::model::compression::Compression;
use crate::model::digest::Digest;
use crate::model::path::ImagePath;
use crate::model::platform::Arch;
use crate::oci::RunConfig;
use crate::ops::build::error::{Error, Result};
use crate::plan::layer_key;
use crate::store::Store;
use crate::tree::{Content, Entry, Kind, Tree};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One platform once its layers are packed: what the image needs of its trees, which are
/// dropped before the next platform's are made.
pub struct PackedPlatform {
    pub arch: Arch,
    pub run: RunConfig,
    /// Each layer's name, key and whether it holds secrets, in order.
    pub layers: Vec<(String, Digest, bool)>,
}

/// What packing made of every platform's trees.
pub struct Packed {
    /// Every layer by key, and whether this build packed it (else the cache had it).
    pub by_key: BTreeMap<Digest, (LayerInfo, bool)>,
    pub packed: usize,
    pub reused: usize,
    /// Content digests of files the plan left unhashed, by identity.
    pub learned: BTreeMap<Digest, Digest>,
}

/// Packs platform after platform: each one's distinct layers go into the store (or are found
/// in the layer cache; a layer equal to an earlier platform's is packed once), and what was
/// learned of deferred host files is put into its trees and their keys.
pub struct Packing<'a> {
    store: &'a Store,
    epoch: u64,
    compression: Compression,
    files: Arc<BuildFiles>,
    by_key: BTreeMap<Digest, (LayerInfo, bool)>,
    /// Layers packed, and found in the layer cache (a learned key is not one more layer).
    packed: usize,
    reused: usize,
}

impl<'a> Packing<'a> {
    pub fn new(store: &'a Store, epoch: u64, compression: Compression) -> Self {
        let files = Arc::new(BuildFiles { store: store.clone(), learned: Default::default() });
        Packing { store, epoch, compression, files, by_key: BTreeMap::new(), packed: 0, reused: 0 }
    }

    /// Packs one platform's layers; its trees can be dropped once this returns.
    pub fn platform(&mut self, arch: Arch, trees: &mut [(String, Tree)], run: RunConfig) -> Result<PackedPlatform> {
        let (epoch, compression) = (self.epoch, self.compression);
        // A deferred host file an earlier platform packed is known by now.
        let mut keys: Vec<Digest> = trees.iter().map(|(_, tree)| layer_key(tree, epoch, compression)).collect();
        self.learn(trees, &mut keys)?;
        let mut jobs: BTreeMap<Digest, (&str, &Tree)> = BTreeMap::new();
        for ((name, tree), key) in trees.iter().zip(&keys) {
            if !self.by_key.contains_key(key) {
                jobs.entry(*key).or_insert((name, tree));
            }
        }
        // Largest first, and never more layers at once than threads: a thread waiting on its
        // layer's compressed blocks would otherwise steal and start another layer, each
        // holding its blocks in flight.
        let mut jobs: Vec<(&Digest, &(&str, &Tree))> = jobs.iter().collect();
        jobs.sort_by_key(|(_, (_, tree))| std::cmp::Reverse(tree.file_bytes()));
        for wave in jobs.chunks(rayon::current_num_threads().max(1)) {
            let done: Vec<(Digest, LayerInfo, bool)> = wave
                .par_iter()
                .map(|(key, (name, tree))| self.pack_one(key, name, arch, tree))
                .collect::<Result<_>>()?;
            for (key, info, packed) in done {
                *(if packed { &mut self.packed } else { &mut self.reused }) += 1;
                self.by_key.insert(key, (info, packed));
            }
        }
        self.learn(trees, &mut keys)?;
        let layers =
            trees.iter().zip(keys).map(|((name, tree), key)| (name.clone(), key, tree.has_secrets())).collect();
        Ok(PackedPlatform { arch, run, layers })
    }

    /// Puts the digests learned so far in place of the identities deferred files stood in by,
    /// and re-keys each tree that changed; a packed layer is recorded under its new key too.
    fn learn(&mut self, trees: &mut [(String, Tree)], keys: &mut [Digest]) -> Result<()> {
        let learned = self.files.learned.lock().unwrap_or_else(|e| e.into_inner());
        for ((_, tree), key) in trees.iter_mut().zip(keys.iter_mut()) {
            if learned.is_empty() || !learn_digests(tree, &learned) {
                continue;
            }
            let packed = self.by_key.get(key).cloned();
            *key = layer_key(tree, self.epoch, self.compression);
            // Platforms sharing the layer share the key: recorded once.
            if let Some(info) = packed
                && !self.by_key.contains_key(key)
            {
                self.store.put_layer(key, &info.0)?;
                self.by_key.insert(*key, info);
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Packed {
        let (packed, reused) = (self.packed, self.reused);
        let learned = std::mem::take(&mut *self.files.learned.lock().unwrap_or_else(|e| e.into_inner()));
        Packed { by_key: self.by_key, packed, reused, learned }
    }

    /// The layer `key` from the layer cache, or packed into the store now (and whether it was).
    fn pack_one(&self, key: &Digest, name: &str, arch: Arch, tree: &Tree) -> Result<(Digest, LayerInfo, bool)> {
        let store = self.store;
        if let Some(info) = store.layer(key) {
            return Ok((*key, info, false));
        }
        let tmp = store.temp()?;
        let threads = rayon::current_num_threads();
        let files: Arc<dyn layer::tar::HostFiles> = self.files.clone();
        let (tmp, info) = layer::pack(tree, self.epoch, self.compression, threads, Some(files), tmp)
            .map_err(|source| Error::Pack { layer: name.to_string(), arch, source })?;
        tmp.as_file().sync_data()?;
        store.commit(tmp, &info.digest, tree.has_secrets())?;
        // A key made with identities standing in for digests is recorded once they are known.
        if !self.files.stood_in(tree) {
            store.put_layer(key, &info)?;
        }
        tracing::debug!("packed layer `{name}` ({arch}): {} ({} bytes)", info.digest, info.size);
        Ok((*key, info, true))
    }
}

/// What the build knows of host files (the stat cache) and learns while packing.
struct BuildFiles {
    store: Store,
    /// Content digests of files left unhashed by the plan, by identity.
    learned: std::sync::Mutex<BTreeMap<Digest, Digest>>,
}

impl BuildFiles {
    /// Whether an identity stands in for a digest in `tree` (learned once it is packed).
    fn stood_in(&self, tree: &Tree) -> bool {
        let learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        tree.iter().any(|(_, e)| matches!(&e.kind, Kind::File { content: Content::Host(_), digest, .. } if learned.contains_key(digest)))
    }
}

impl layer::tar::HostFiles for BuildFiles {
    fn known(&self, path: &Path) -> Option<Digest> {
        self.store.known_digest(path)
    }

    fn identity(&self, path: &Path) -> Option<Digest> {
        self.store.identity(path).ok().map(|id| id.digest)
    }

    fn hashed_unchanged(&self, path: &Path, file: &std::fs::File) -> bool {
        self.store.hashed_unchanged(path, file)
    }

    fn learned(&self, path: &Path, identity: Digest, digest: Digest) {
        // Remembering is best effort: the digest serves this build either way.
        if let Err(e) = self.store.remember(path, &identity, &digest) {
            tracing::debug!("cannot remember the digest of {}: {e}", path.display());
        }
        self.learned.lock().unwrap_or_else(|e| e.into_inner()).insert(identity, digest);
    }
}

/// Puts learned content digests in place of the identities deferred files stood in by;
/// says whether the tree had any.
fn learn_digests(tree: &mut Tree, learned: &BTreeMap<Digest, Digest>) -> bool {
    let deferred: Vec<(ImagePath, Digest)> = tree
        .iter()
        .filter_map(|(p, e)| match &e.kind {
            Kind::File { content: Content::Host(_), digest, .. } => learned.get(digest).map(|d| (p.clone(), *d)),
            _ => None,
        })
        .collect();
    for (p, d) in &deferred {
        if let Some(Entry { kind: Kind::File { digest, .. }, .. }) = tree.get_mut(p) {
            *digest = *d;
        }
    }
    !deferred.is_empty()
}
