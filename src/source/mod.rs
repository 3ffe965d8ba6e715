//! Where layer content comes from besides the recipe's own directory: pinned downloads
//! (`fetch`) and the archives they often are (`archive`), Debian packages (`deb`) and Alpine
//! packages (`apk`), and registry images as bases (`image`).

pub mod apk;
pub mod archive;
pub mod deb;
pub mod fetch;
pub mod image;
