//! Where layer content comes from besides the recipe's own directory: pinned downloads
//! (`fetch`) and the archives they often are (`archive`). Package sources (Debian, Alpine)
//! and registry bases will live here too.

pub mod apk;
pub mod archive;
pub mod deb;
pub mod fetch;
