//! `assemble ship`: recipes (built first) or an image on disk, to a server over ssh.

use super::{Global, load_recipes, spinner};
use assemble::registry::push::Plan;
use assemble::ship::{self, Image, Load, Options, Report, Target};
use assemble::{Error, build};
use clap::Args;

#[derive(Args, Debug)]
pub struct ShipArgs {
    /// The server: [USER@]HOST[:PORT]; your ssh config, agent, jump hosts and known_hosts apply
    pub server: String,
    /// Recipe files or names in ./recipes/ (default: all of them), or one image already
    /// written: oci:DIR[:REF] or oci-archive:FILE
    #[arg(conflicts_with = "all")]
    pub targets: Vec<String>,
    /// Every recipe in ./recipes/ (the same as naming none)
    #[arg(long)]
    pub all: bool,
    /// Build only these architectures (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub arch: Vec<String>,
    /// Load into this engine on the server: auto (podman, docker, containerd, else none), podman,
    /// docker, containerd, or none (the store only)
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<Load>())]
    pub load: Load,
    /// Load this platform instead of the server's own
    #[arg(long, value_name = "ARCH")]
    pub load_arch: Option<String>,
    /// The store on the server (an OCI image layout) [default: ~/.local/share/assemble/store]
    #[arg(long, value_name = "PATH")]
    pub store: Option<String>,
    /// The name an image on disk gets on the server [default: the directory's or file's name]
    #[arg(long)]
    pub name: Option<String>,
    /// Build from the lock only (fail if it is stale)
    #[arg(long)]
    pub locked: bool,
}

pub fn run(global: &Global, args: ShipArgs) -> Result<(), Error> {
    let target = Target::parse(&args.server)?;
    let opts = Options {
        store: args.store.clone(),
        load: args.load,
        load_arch: args
            .load_arch
            .as_deref()
            .map(|a| a.parse().map_err(|e| Error::Usage(format!("--load-arch: {e}"))))
            .transpose()?,
        ..Options::default()
    };
    let store = global.store()?;
    let mut reports = Vec::new();
    if args.targets.len() == 1 && super::is_image_on_disk(&args.targets[0]) {
        let source = &args.targets[0];
        let stored = super::open_image(global, source)?;
        let plan = Plan::of_stored(&stored, "")?;
        let mut tags = stored.tags.clone();
        if tags.is_empty() {
            tags.push("latest".into());
        }
        let name = match &args.name {
            Some(n) => n.clone(),
            None => default_name(source),
        };
        reports.push(send(global, &target, &Image { name: &name, tags: &tags, plan: &plan }, &opts)?);
    } else {
        if args.targets.iter().any(|t| super::is_image_on_disk(t)) {
            return Err(Error::Usage("ship takes recipes, or one image on disk".into()));
        }
        let bopts = super::build::options(global, super::build::parse_archs(&args.arch)?, args.locked)?;
        for r in &load_recipes(global, &args.targets)? {
            let pb = spinner(global, format!("building {}", r.name));
            let built = build::build(r, &store, &bopts)?;
            pb.finish_and_clear();
            let plan = Plan::of_image(&built.image, &store, &r.name, &r.tags);
            reports.push(send(global, &target, &Image { name: &r.name, tags: &r.tags, plan: &plan }, &opts)?);
        }
    }
    if global.json {
        println!("{}", serde_json::to_string_pretty(&reports).expect("json"));
    } else {
        for r in &reports {
            println!("{} {}:{} {}", r.host, r.image, r.tags.first().map_or("", String::as_str), r.digest);
        }
    }
    Ok(())
}

/// The last path component of `oci:DIR[:REF]` or `oci-archive:FILE`, as an image name.
fn default_name(source: &str) -> String {
    let path = source.split_once(':').map_or(source, |(_, p)| p);
    let path = if source.starts_with("oci:") { path.split(':').next().unwrap_or(path) } else { path };
    let stem = std::path::Path::new(path).file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect();
    if name.is_empty() { "image".into() } else { name }
}

fn send(global: &Global, target: &Target, image: &Image<'_>, opts: &Options) -> Result<Report, Error> {
    use std::io::IsTerminal;
    let bar = if global.quiet || global.json || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg} {bytes}/{total_bytes} {bytes_per_sec}").expect("template"),
        );
        b.set_message(format!("shipping {} to {target}", image.name));
        b
    };
    let report = ship::ship(target, image, opts, &mut |sent, total| {
        bar.set_length(total);
        bar.set_position(sent);
    })?;
    bar.finish_and_clear();
    let loaded = match &report.loaded {
        Some(l) => format!("; loaded {} into {}", l.platform, l.engine),
        None => String::new(),
    };
    tracing::info!(
        "shipped {} {} to {}:{}: {} blob(s) sent ({}), {} already there{loaded}",
        report.image,
        report.digest,
        report.host,
        report.store,
        report.blobs_sent,
        assemble::model::text::human(report.bytes_sent),
        report.blobs_present
    );
    Ok(report)
}
