//! Command-line parsing and output. Clap types live only here; each command turns its
//! arguments into the options of an operation in `assemble::ops` and renders what it returns.

/// `println!` for results: a reader that went away (`assemble … | head`) ends the command
/// quietly, as other Unix tools do, instead of a panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::args::out(format!("{}\n", format_args!($($arg)*)))
    };
}

pub mod args;
pub mod attest;
pub mod build;
pub mod extra;
pub mod image;
pub mod progress;
pub mod publish;
pub mod rollback;

use args::Global;
use assemble::Error;
use clap::{CommandFactory, Parser, Subcommand};

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
    #[command(after_help = "Examples:
  assemble build hello                         recipes/hello.yml → oci:out/hello, every arch it names
  assemble build --all                         every recipe in ./recipes, each after the one it builds on
  assemble build web.yml --arch arm64 -o docker-archive:web.tar
  assemble build web --locked                  fail unless web.lock covers the recipe as it is
  assemble build web --var version=1.4.2       replace a variable's default")]
    Build(build::BuildArgs),
    /// Resolve and build recipes and write their lock files, without writing an image
    #[command(after_help = "Examples:
  assemble lock web                            write web.lock if the recipe needs new pins
  assemble lock --upgrade web                  resolve packages anew and print what moved")]
    Lock(build::LockArgs),
    /// Show an image's index, platforms, layers and config
    #[command(after_help = "Examples:
  assemble inspect oci:out/web
  assemble --json inspect docker://registry.example.org/team/web:1.4.2")]
    Inspect(image::InspectArgs),
    /// Rebuild from the lock in a fresh cache and compare with what the lock records
    #[command(after_help = "Examples:
  assemble verify --all                        every recipe reproduces its lock (exit 3 if not)
  assemble verify web --against docker://registry.example.org/team/web:1.4.2")]
    Verify(image::VerifyArgs),
    /// Compare two images down to the file
    #[command(after_help = "Examples:
  assemble diff oci:old oci:out/web            which layer, file and field differ (exit 3 if any)
  assemble --json diff docker-archive:a.tar oci:out/web")]
    Diff(image::DiffArgs),
    /// List locked packages for which the archive now has newer versions
    #[command(after_help = "Examples:
  assemble outdated --all                      newer Debian/Alpine packages, moved base images
  assemble --json outdated web                 for a scheduled CI job")]
    Outdated(image::OutdatedArgs),
    /// Build recipes and push them to a registry, or push an image already on disk
    #[command(after_help = "Examples:
  assemble push web --to registry.example.org/team    tags from the recipe, missing blobs only
  assemble push --locked --all --to registry.example.org/team
  assemble push oci:out/web --to registry.example.org/team/web:1.4.2")]
    Push(publish::PushArgs),
    /// Show every image a recipe describes, with its tags and aliases
    #[command(after_help = "Examples:
  assemble tags web")]
    Tags(publish::TagsArgs),
    /// Send images to a server over ssh (only the blobs it lacks) and load them there
    #[command(after_help = "Examples:
  assemble ship root@app1.example.org web      send what the server lacks, load it into its engine
  assemble ship app1:2222 web --load none      keep it in the server's store only
  assemble ship web1,web2,@more-hosts web      a fleet: built once, 4 servers at a time
  assemble ship app1 web --prune --keep 3      then remove what no kept version needs")]
    Ship(publish::ShipArgs),
    /// Make an earlier shipped version of an image current again on servers (nothing is sent)
    #[command(after_help = "Examples:
  assemble rollback app1 web                   the version shipped before the current one
  assemble rollback app1 web --list            the versions the server's store remembers
  assemble rollback web1,web2 web --to 3       that version, on each server")]
    Rollback(rollback::RollbackArgs),
    /// Show the order recipes build in (each after the recipe it builds on)
    #[command(after_help = "Examples:
  assemble graph")]
    Graph(build::GraphArgs),
    /// Build recipes and run their `tests:` against the images (chroot, qemu for other archs)
    #[command(after_help = "Examples:
  sudo assemble test web --strict              every test on every platform; none may be skipped
  assemble --json test --all")]
    Test(build::TestArgs),
    /// Write a starter recipe, every line commented, for a base of your choice
    #[command(after_help = "Examples:
  assemble init web                            web.yml on Debian packages
  assemble init tool --base scratch            your own files only; builds offline")]
    Init(build::InitArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = "Examples:
  assemble completions bash > /etc/bash_completion.d/assemble
  assemble completions zsh > \"${fpath[1]}/_assemble\"
  assemble completions fish > ~/.config/fish/completions/assemble.fish")]
    Completions(extra::CompletionsArgs),
    /// Print the man page, or write every command's page into a directory
    #[command(after_help = "Examples:
  assemble man | man -l -
  assemble man /usr/local/share/man/man1")]
    Man(extra::ManArgs),
    /// Print the JSON Schema of recipes, for editors (yaml-language-server and others)
    #[command(after_help = "Examples:
  assemble schema > recipe.schema.json         then start a recipe with the line
                                               # yaml-language-server: $schema=recipe.schema.json")]
    Schema,
    /// Print an image's SBOM (SPDX 2.3 or CycloneDX 1.6 JSON) exactly as it is attached
    #[command(after_help = "Examples:
  assemble sbom web --arch arm64 > web-arm64.spdx.json
  assemble sbom web --format cyclonedx --arch amd64 | jq '.components | length'")]
    Sbom(attest::SbomArgs),
    /// Print an image's build provenance (an in-toto statement, SLSA Provenance v1)
    #[command(after_help = "Examples:
  assemble provenance web --locked > web.provenance.json")]
    Provenance(attest::ProvenanceArgs),
}

/// Runs the command.
pub fn run(cli: Cli) -> Result<(), Error> {
    let g = &cli.global;
    match cli.command {
        Command::Build(args) => build::build(g, args),
        Command::Lock(args) => build::lock(g, args),
        Command::Inspect(args) => image::inspect(g, args),
        Command::Verify(args) => image::verify(g, args),
        Command::Init(args) => build::init(g, args),
        Command::Diff(args) => image::diff(g, args),
        Command::Outdated(args) => image::outdated(g, args),
        Command::Push(args) => publish::push(g, args),
        Command::Tags(args) => publish::tags(g, args),
        Command::Ship(args) => publish::ship(g, args),
        Command::Rollback(args) => rollback::rollback(g, args),
        Command::Graph(args) => build::graph(g, args),
        Command::Test(args) => build::test(g, args),
        Command::Completions(args) => extra::completions(args, Cli::command()),
        Command::Man(args) => extra::man(args, Cli::command()),
        Command::Schema => extra::schema(),
        Command::Sbom(args) => attest::sbom(g, args),
        Command::Provenance(args) => attest::provenance(g, args),
    }
}
