//! Packing: every distinct layer of every architecture (layers equal across architectures
//! are packed once), in parallel, each reused from the layer cache when its key is known.
//! Host files are read once: one the stat cache vouches for is not hashed again, one the
//! plan left unhashed is hashed as it is packed, and what was learned completes the keys.

use crate::layer::{self, LayerInfo};
use crate::model::compression::Compression;
use crate::model::digest::Digest;
use crate::model::path::ImagePath;
use crate::model::platform::Arch;
use crate::ops::build::error::{Error, Result};
use crate::plan::ArchTrees;
use crate::plan::layer_key;
use crate::store::Store;
use crate::tree::{Content, Entry, Kind, Tree};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// What packing made of the trees.
pub struct Packed {
    /// Each architecture's layer keys, in the order of its trees.
    pub keys: Vec<Vec<Digest>>,
    /// Every layer by key, and whether this build packed it (else the cache had it).
    pub by_key: BTreeMap<Digest, (LayerInfo, bool)>,
    pub packed: usize,
    pub reused: usize,
    /// Content digests of files the plan left unhashed, by identity.
    pub learned: BTreeMap<Digest, Digest>,
}

/// Packs every distinct layer of `per_arch` into the store (or finds it in the layer cache),
/// and puts what was learned of deferred host files into the trees and their keys.
pub fn pack(store: &Store, per_arch: &mut [ArchTrees], epoch: u64, compression: Compression) -> Result<Packed> {
    let mut jobs: BTreeMap<Digest, (String, Arch, &Tree)> = BTreeMap::new();
    let mut keys: Vec<Vec<Digest>> = Vec::new();
    for (arch, trees, _) in per_arch.iter() {
        let mut k = Vec::new();
        for (name, tree) in trees {
            let key = layer_key(tree, epoch, compression);
            jobs.entry(key).or_insert((name.clone(), *arch, tree));
            k.push(key);
        }
        keys.push(k);
    }
    let files = Arc::new(BuildFiles { store: store.clone(), learned: Default::default() });
    let packed: Vec<(Digest, LayerInfo, bool)> = jobs
        .par_iter()
        .map(|(key, (name, arch, tree))| {
            if let Some(info) = store.layer(key) {
                return Ok((*key, info, false));
            }
            let tmp = store.temp()?;
            let threads = rayon::current_num_threads();
            let (tmp, info) = layer::pack(tree, epoch, compression, threads, Some(files.clone()), tmp)
                .map_err(|source| Error::Pack { layer: name.clone(), arch: *arch, source })?;
            tmp.as_file().sync_data()?;
            store.commit(tmp, &info.digest, tree.has_secrets())?;
            // A key made with identities standing in for digests is recorded once they are known.
            if !files.stood_in(tree) {
                store.put_layer(key, &info)?;
            }
            tracing::debug!("packed layer `{name}` ({arch}): {} ({} bytes)", info.digest, info.size);
            Ok((*key, info, true))
        })
        .collect::<Result<_>>()?;
    drop(jobs);
    let mut by_key: BTreeMap<Digest, (LayerInfo, bool)> = packed.into_iter().map(|(k, i, p)| (k, (i, p))).collect();
    let packed_count = by_key.values().filter(|(_, p)| *p).count();
    let reused_count = by_key.len() - packed_count;
    let learned = std::mem::take(&mut *files.learned.lock().unwrap_or_else(|e| e.into_inner()));
    if !learned.is_empty() {
        for ((_, trees, _), keys) in per_arch.iter_mut().zip(&mut keys) {
            for ((_, tree), key) in trees.iter_mut().zip(keys.iter_mut()) {
                if learn_digests(tree, &learned) {
                    let info = by_key[key].clone();
                    *key = layer_key(tree, epoch, compression);
                    // Architectures sharing the layer share the key: recorded once.
                    if !by_key.contains_key(key) {
                        store.put_layer(key, &info.0)?;
                        by_key.insert(*key, info);
                    }
                }
            }
        }
    }
    Ok(Packed { keys, by_key, packed: packed_count, reused: reused_count, learned })
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
