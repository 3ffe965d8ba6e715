//! A command's session: the cache, the Debian archives its recipes have open, and the images
//! built so far (a recipe base is built once per command, not once for every recipe on it).

use crate::model::platform::Arch;
use crate::oci::Image;
use crate::ops::build::options::Options;
use crate::recipe::Recipe;
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// What decides a build's image: the store, the recipe (file and image), the architectures
/// and the options that change resolution.
pub type BuiltKey = (PathBuf, PathBuf, PathBuf, Vec<Arch>, bool, bool, Option<u64>);

pub fn built_key(recipe: &Recipe, store: &Store, archs: &[Arch], opts: &Options) -> BuiltKey {
    let path = recipe.path.canonicalize().unwrap_or_else(|_| recipe.path.clone());
    let lock = recipe.lock_path.file_name().map(PathBuf::from).unwrap_or_default();
    (store.root().to_path_buf(), path, lock, archs.to_vec(), opts.locked, opts.upgrade, opts.source_date_epoch)
}

pub struct Session {
    pub store: Store,
    /// The Debian archives the command's recipes hold open, read once for all of them (a
    /// command that builds one recipe lets each architecture's go once it is resolved).
    pub archives: crate::source::deb::Archives,
    built: Mutex<BTreeMap<BuiltKey, Image>>,
}

impl Session {
    pub fn new(store: Store) -> Session {
        Session { store, archives: Default::default(), built: Mutex::new(BTreeMap::new()) }
    }

    /// An image this session built for `key`.
    pub fn built(&self, key: &BuiltKey) -> Option<Image> {
        self.built.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    /// Keeps an image this session built, for recipes built on it.
    pub fn remember(&self, key: BuiltKey, image: &Image) {
        self.built.lock().unwrap_or_else(|e| e.into_inner()).insert(key, image.clone());
    }
}
