//! The plain types `assemble` is made of. Nothing here does I/O, and nothing here depends on
//! the rest of `assemble`: every stage of the pipeline (recipe, resolve, source, tree, layer,
//! oci, sinks, transports) depends on these, so the compiler keeps the arrows pointing one way.
//!
//! - [`digest`]: SHA-256 digests in the `sha256:<hex>` form, and hashing readers/writers.
//! - [`platform`]: target architectures as Docker, OCI, Debian and the kernel name them.
//! - [`compression`]: a layer's compression and its media type.
//! - [`archive`]: the archive formats files are extracted from.
//! - [`path`]: image paths and cleaned member names, with `PATH_MAX` and `NAME_MAX`.
//! - [`layer`]: what a packed layer is (digest, diff_id, sizes, media type).
//! - [`member`]: one member of anything unpacked (archive, package, layer).
//! - [`owner`]: users and groups named by id or name.
//! - [`reference`]: image references (`[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`) and tags.
//! - [`spec`]: package sources as a recipe gives them (Debian archives, Alpine repositories).
//! - [`text`]: URL redaction and human sizes.

pub mod archive;
pub mod compression;
pub mod digest;
pub mod layer;
pub mod member;
pub mod owner;
pub mod path;
pub mod platform;
pub mod reference;
pub mod spec;
pub mod text;
