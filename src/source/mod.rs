//! Where layer content comes from besides the recipe's own directory: pinned downloads
//! (`fetch`) and the archives they often are (`archive`), Debian packages (`deb`) and Alpine
//! packages (`apk`), registry images as bases (`image`), files taken out of registry images
//! (`pick`), and where new versions of downloads are announced (`releases`).

pub mod apk;
pub mod archive;
pub mod deb;
pub mod fetch;
pub mod image;
pub mod pick;
pub mod releases;
