//! What a packed layer is: the facts manifests, configs, the cache and the lock record.

use crate::digest::Digest;

/// What a packed layer is, as recorded in manifests, configs, the cache and the lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerInfo {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub uncompressed_size: u64,
    pub media_type: String,
}
