#![allow(clippy::disallowed_methods)]
//! The integration tests, as one binary (one link of the crate, shared fixtures): each
//! module drives the `assemble` binary against real programs and servers — a registry, an
//! sshd, skopeo, umoci, podman, dpkg-query, the machine's Debian mirror — which
//! `scripts/test` installs; a missing one fails its test, never skips it.

mod common;

mod apk_formats;
mod apk_image;
mod architecture;
mod build;
mod cli;
mod debian_archive;
mod debian_fixture;
mod debian_sources;
mod errors;
mod golden;
mod graph;
mod image_files;
mod readers;
mod recipes;
mod registry;
mod schema;
mod ship;
mod upstream;
mod verify;
