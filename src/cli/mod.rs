//! Command-line parsing and output. Clap types live only here; each command turns its
//! arguments into the options of an operation in `assemble::ops` and renders what it returns.

pub mod args;
pub mod build;
pub mod image;
pub mod publish;

use args::Global;
use assemble::Error;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "assemble",
    version,
    about = "Build reproducible multi-arch OCI images from a recipe, without a Dockerfile or a daemon"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build recipes into images
    Build(build::BuildArgs),
    /// Resolve and build recipes and write their lock files, without writing an image
    Lock(build::LockArgs),
    /// Show an image's index, platforms, layers and config
    Inspect(image::InspectArgs),
    /// Rebuild from the lock in a fresh cache and compare with what the lock records
    Verify(image::VerifyArgs),
    /// Compare two images down to the file
    Diff(image::DiffArgs),
    /// List locked packages for which the archive now has newer versions
    Outdated(image::OutdatedArgs),
    /// Build recipes and push them to a registry, or push an image already on disk
    Push(publish::PushArgs),
    /// Show every image a recipe describes, with its tags and aliases
    Tags(publish::TagsArgs),
    /// Send images to a server over ssh (only the blobs it lacks) and load them there
    Ship(publish::ShipArgs),
    /// Show the order recipes build in (each after the recipe it builds on)
    Graph(build::GraphArgs),
    /// Build recipes and run their `tests:` against the images (chroot, qemu for other archs)
    Test(build::TestArgs),
}

/// Runs the command.
pub fn run(cli: Cli) -> Result<(), Error> {
    let g = &cli.global;
    match cli.command {
        Command::Build(args) => build::build(g, args),
        Command::Lock(args) => build::lock(g, args),
        Command::Inspect(args) => image::inspect(g, args),
        Command::Verify(args) => image::verify(g, args),
        Command::Diff(args) => image::diff(g, args),
        Command::Outdated(args) => image::outdated(g, args),
        Command::Push(args) => publish::push(g, args),
        Command::Tags(args) => publish::tags(g, args),
        Command::Ship(args) => publish::ship(g, args),
        Command::Graph(args) => build::graph(g, args),
        Command::Test(args) => build::test(g, args),
    }
}
