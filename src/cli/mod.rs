//! Command-line parsing. Clap types live only here; each command turns its arguments into
//! the library's plain option structs.

pub mod build;
pub mod inspect;
pub mod push;
pub mod ship;
pub mod verify;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Cache directory [default: $XDG_CACHE_HOME/assemble or ~/.cache/assemble]
    #[arg(long, global = true, env = "ASSEMBLE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// More log output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print results on stdout as JSON
    #[arg(long, global = true)]
    pub json: bool,
    /// Worker threads [default: the number of CPUs]; the output never depends on it
    #[arg(short = 'j', long, global = true, env = "ASSEMBLE_JOBS", value_name = "N")]
    pub jobs: Option<usize>,
    /// The build context: the directory local files must be inside, for every recipe
    /// [default: the recipe's `context:`, else the recipe's own directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub context: Option<PathBuf>,
    /// Set a recipe variable, replacing its default in every recipe that declares it
    #[arg(long = "var", global = true, value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("expected NAME=VALUE, found `{s}`"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!("`{name}` is not a variable name (letters, digits, `_`, `-`)"));
    }
    Ok((name.to_string(), value.to_string()))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build recipes into images
    Build(build::BuildArgs),
    /// Resolve and build recipes and write their lock files, without writing an image
    Lock(build::LockArgs),
    /// Show an image's index, platforms, layers and config
    Inspect(inspect::InspectArgs),
    /// Rebuild from the lock in a fresh cache and compare with what the lock records
    Verify(verify::VerifyArgs),
    /// Compare two images down to the file
    Diff(verify::DiffArgs),
    /// List locked packages for which the archive now has newer versions
    Outdated(verify::OutdatedArgs),
    /// Build recipes and push them to a registry, or push an image already on disk
    Push(push::PushArgs),
    /// Show every image a recipe describes, with its tags and aliases
    Tags(push::TagsArgs),
    /// Send images to a server over ssh (only the blobs it lacks) and load them there
    Ship(ship::ShipArgs),
    /// Show the order recipes build in (each after the recipe it builds on)
    Graph(build::GraphArgs),
    /// Build recipes and run their `tests:` against the images (chroot, qemu for other archs)
    Test(build::TestArgs),
}

impl Global {
    pub fn store(&self) -> Result<assemble::store::Store, assemble::Error> {
        let dir = self.cache_dir.clone().unwrap_or_else(assemble::store::default_dir);
        assemble::store::Store::open(&dir).map_err(|source| assemble::Error::Cache { path: dir, source })
    }

    pub fn threads(&self) -> usize {
        self.jobs.filter(|j| *j > 0).unwrap_or_else(assemble::build::default_threads)
    }
}

/// Recipe files for the names or paths given; none means every recipe in `./recipes/`.
pub fn recipe_paths(args: &[String]) -> Result<Vec<PathBuf>, assemble::Error> {
    if !args.is_empty() {
        return args.iter().map(|a| assemble::recipe::find(a).map_err(Into::into)).collect();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("recipes")
        .map_err(|_| assemble::Error::Usage("no recipe given and no `recipes/` directory here".into()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(assemble::Error::Usage("no recipe given and `recipes/` holds none".into()));
    }
    Ok(found)
}

/// Every image of the recipes named (or of all in `./recipes/`), each after the recipe it
/// builds on.
pub fn load_recipes(global: &Global, args: &[String]) -> Result<Vec<assemble::recipe::Recipe>, assemble::Error> {
    Ok(load_levels(global, args)?.into_iter().flatten().collect())
}

/// The same, in levels of recipes that do not build on each other (`assemble graph`).
pub fn load_levels(global: &Global, args: &[String]) -> Result<Vec<Vec<assemble::recipe::Recipe>>, assemble::Error> {
    let given: std::collections::BTreeMap<String, String> = global.vars.iter().cloned().collect();
    let mut all = Vec::new();
    for p in recipe_paths(args)? {
        all.extend(assemble::recipe::load_all_with(&p, &given)?);
    }
    // As docker does with an unused build argument: say so, and go on (one set of `--var`
    // may serve several recipes, built one at a time).
    for unknown in given.keys().filter(|k| !all.iter().any(|r| r.variables.contains_key(*k))) {
        let names: std::collections::BTreeSet<&str> = all.iter().map(|r| r.name.as_str()).collect();
        tracing::warn!(
            "`--var {unknown}=…` is not used: no recipe read declares `{unknown}` in its `variables` (read: {})",
            names.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(assemble::recipe::graph::levels(all)?)
}

/// A spinner on stderr when it is a terminal; nothing otherwise.
pub fn spinner(global: &Global, message: String) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if global.quiet || global.json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_message(message);
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Whether a command-line target names an image already written (not a recipe).
pub fn is_image_on_disk(t: &str) -> bool {
    t.starts_with("oci:") || t.starts_with("oci-archive:")
}

/// An image already written, opened with every blob checked: `oci:DIR[:REF]`,
/// `oci-archive:FILE`, `docker-archive:FILE`, or `docker://REGISTRY/REPO[:TAG|@DIGEST]`
/// (pulled into a layout in the cache's temporary directory first).
pub fn open_image(global: &Global, image: &str) -> Result<assemble::oci::read::Stored, assemble::Error> {
    use assemble::Error;
    use assemble::oci::read::{self, Location};
    let store = global.store()?;
    let tmp = store.root().join("tmp");
    if let Some(reference) = image.strip_prefix("docker://") {
        let r = assemble::registry::Reference::parse(reference).map_err(Error::Usage)?;
        let cache = |source| Error::Cache { path: store.root().into(), source };
        let dir = tempfile::Builder::new().prefix("pulled-").tempdir_in(&tmp).map_err(cache)?;
        let digest = assemble::registry::pull::to_layout(&store, &r, dir.path())?;
        tracing::info!("pulled {r}: {digest}");
        return Ok(read::open_pulled(dir, image)?);
    }
    let stored = match assemble::sink::Dest::parse(image)? {
        assemble::sink::Dest::Oci { dir, reference } => {
            read::open(Location::Layout { dir: &dir, reference: reference.as_deref() }, image, &tmp)?
        }
        assemble::sink::Dest::OciArchive(file) => read::open(Location::OciArchive(&file), image, &tmp)?,
        assemble::sink::Dest::DockerArchive(file) => read::open(Location::DockerArchive(&file), image, &tmp)?,
    };
    Ok(stored)
}
