//! `assemble push` and `assemble tags`.

use super::{Global, load_recipes, spinner};
use assemble::registry::push::{self, Plan, Report, Settings};
use assemble::registry::{self, Reference, auth};
use assemble::{Error, build, recipe};
use clap::Args;
use serde_json::json;

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Recipe files or names in ./recipes/ (default: all of them), or one image already
    /// written: oci:DIR[:REF] or oci-archive:FILE (then --to names the full reference)
    #[arg(conflicts_with = "all")]
    pub targets: Vec<String>,
    /// Every recipe in ./recipes/ (the same as naming none)
    #[arg(long)]
    pub all: bool,
    /// REGISTRY[/NAMESPACE] for recipes (each goes to NAMESPACE/NAME); for an image on disk,
    /// REGISTRY/REPOSITORY[:TAG]. Default: the recipe's `registry`
    #[arg(long, value_name = "REF")]
    pub to: Option<String>,
    /// USER:PASSWORD for the registry (else docker's and podman's credential files)
    #[arg(long, env = "ASSEMBLE_CREDS", hide_env_values = true, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// Allow plain HTTP to a registry that is not on this machine
    #[arg(long)]
    pub insecure: bool,
    /// Push images whose configuration layer holds secrets
    #[arg(long)]
    pub allow_secrets: bool,
    /// Build from the lock only (fail if it is stale)
    #[arg(long)]
    pub locked: bool,
    /// Blobs uploaded at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel: usize,
}

#[derive(Args, Debug)]
pub struct TagsArgs {
    /// Recipe files or names in ./recipes/ (default: all of them)
    pub recipes: Vec<String>,
}

pub fn tags(global: &Global, args: TagsArgs) -> Result<(), Error> {
    let recipes = load_recipes(global, &args.recipes)?;
    let rows: Vec<_> = recipes
        .iter()
        .map(|r| {
            let overrides: serde_json::Map<String, serde_json::Value> =
                r.variables.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            json!({
                "recipe": r.name,
                "variant": r.variant,
                "tags": r.explicit_tags,
                "aliases": r.aliases().collect::<Vec<_>>(),
                "variables": overrides,
                "lock": r.lock_path.display().to_string(),
            })
        })
        .collect();
    if global.json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(());
    }
    for r in &recipes {
        let aliases: Vec<&str> = r.aliases().map(String::as_str).collect();
        let variant = r.variant.as_deref().map(|v| format!(" [{v}]")).unwrap_or_default();
        let alias_text =
            if aliases.is_empty() { String::new() } else { format!("  (aliases: {})", aliases.join(", ")) };
        println!("{}{variant}: {}{alias_text}", r.name, r.explicit_tags.join(", "));
    }
    Ok(())
}

pub fn run(global: &Global, args: PushArgs) -> Result<(), Error> {
    let opts = registry::Options {
        insecure: args.insecure,
        creds: args.creds.as_deref().map(auth::parse_creds).transpose().map_err(registry::Error::from)?,
    };
    let settings = Settings { parallel: args.parallel.max(1), ..Settings::default() };
    let store = global.store()?;
    let rt = registry::runtime()?;
    let mut reports = Vec::new();
    if args.targets.len() == 1 && super::is_image_on_disk(&args.targets[0]) {
        let to = args
            .to
            .as_deref()
            .ok_or_else(|| Error::Usage("pushing an image on disk needs --to REGISTRY/REPOSITORY[:TAG]".into()))?;
        reports.push(push_on_disk(global, &store, &rt, &args.targets[0], to, &opts, &settings, args.allow_secrets)?);
    } else {
        if args.targets.iter().any(|t| super::is_image_on_disk(t)) {
            return Err(Error::Usage("push takes recipes, or one image on disk with --to".into()));
        }
        for r in &load_recipes(global, &args.targets)? {
            reports.push(push_recipe(global, &store, &rt, r, &args, &opts, &settings)?);
        }
    }
    if global.json {
        println!("{}", serde_json::to_string_pretty(&reports).expect("json"));
    } else {
        for r in &reports {
            println!("{} {}", r["reference"].as_str().unwrap_or(""), r["digest"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// Where a recipe's image goes: `--to REGISTRY[/NAMESPACE]` or the recipe's `registry`.
fn target(r: &recipe::Recipe, to: Option<&str>) -> Result<Reference, Error> {
    let base = to.or(r.registry.as_deref()).ok_or_else(|| {
        Error::Usage(format!(
            "`{}` names no registry: give --to REGISTRY[/NAMESPACE] or set `registry:` in the recipe",
            r.name
        ))
    })?;
    let (registry, namespace) = match base.split_once('/') {
        Some((reg, ns)) => (reg, ns.trim_end_matches('/')),
        None => (base, ""),
    };
    if !assemble::model::reference::is_registry_host(registry) {
        return Err(Error::Usage(format!(
            "`{base}` does not start with a registry host (such as ghcr.io or 127.0.0.1:5000)"
        )));
    }
    let repo = if namespace.is_empty() { r.name.clone() } else { format!("{namespace}/{}", r.name) };
    Reference::parse(&format!("{registry}/{repo}")).map_err(Error::Usage)
}

fn push_recipe(
    global: &Global,
    store: &assemble::store::Store,
    rt: &tokio::runtime::Runtime,
    r: &recipe::Recipe,
    args: &PushArgs,
    opts: &registry::Options,
    settings: &Settings,
) -> Result<serde_json::Value, Error> {
    if !r.config.secrets.is_empty() && !args.allow_secrets {
        let paths: Vec<&str> = r.config.secrets.iter().map(|s| s.to.as_str()).collect();
        return Err(Error::Usage(format!(
            "`{}` holds secrets in its configuration layer ({}); a registry would publish them. Push anyway with --allow-secrets, or ship it with `assemble ship`",
            r.name,
            paths.join(", ")
        )));
    }
    let target = target(r, args.to.as_deref())?;
    let client = registry::Client::new(&target.registry, &target.repository, opts)?;
    let bopts = super::build::options(global, Vec::new(), args.locked)?;
    // A fleet of runners shares work through the registry: when the lock says what this
    // recipe gives and the registry already has it, only the tags are written.
    if let Some(index) = build::locked_index(r, store, &bopts)? {
        let present = rt.block_on(registry::pull::has_manifest(&client, &target.repository, &index))?;
        if present {
            rt.block_on(push::tag_existing(&client, &target.repository, &index, &r.tags))?;
            tracing::info!(
                "{target} already holds {index} (the lock's image): tagged {} without building",
                r.tags.join(", ")
            );
            return Ok(
                json!({"recipe": r.name, "reference": target.to_string(), "digest": index.to_string(), "tags": r.tags, "built": false, "blobs": [], "bytes_uploaded": 0}),
            );
        }
    }
    let pb = spinner(global, format!("building {}", r.name));
    let built = build::build(r, store, &bopts)?;
    pb.set_message(format!("pushing {target}"));
    let plan = Plan::of_image(&built.image, store, &target.repository, &r.tags);
    let report = rt.block_on(push::push(&client, store, &plan, settings))?;
    pb.finish_and_clear();
    log_report(&report);
    let mut v = serde_json::to_value(&report).expect("json");
    v["recipe"] = json!(r.name);
    v["built"] = json!(true);
    Ok(v)
}

#[allow(clippy::too_many_arguments)]
fn push_on_disk(
    global: &Global,
    store: &assemble::store::Store,
    rt: &tokio::runtime::Runtime,
    source: &str,
    to: &str,
    opts: &registry::Options,
    settings: &Settings,
    allow_secrets: bool,
) -> Result<serde_json::Value, Error> {
    let target = Reference::parse(to).map_err(Error::Usage)?;
    let image = super::open_image(global, source)?;
    let mut plan = Plan::of_stored(&image, &target.repository)?;
    let names = image.tags.clone();
    let private: Vec<_> =
        image.platforms.iter().flat_map(|p| &p.layers).filter(|l| l.private).map(|l| l.digest).collect();
    if !private.is_empty() && !allow_secrets {
        let list: Vec<String> = private.iter().map(|d| d.to_string()).collect();
        return Err(Error::Usage(format!(
            "{source} has layers written readable by their owner only, as assemble writes layers holding secrets ({}); push anyway with --allow-secrets",
            list.join(", ")
        )));
    }
    plan.tags = match &target.tag {
        Some(t) => vec![t.clone()],
        None if !names.is_empty() => names,
        None => return Err(Error::Usage(format!("{source} names no tag for this image: give one in --to REF:TAG"))),
    };
    let client = registry::Client::new(&target.registry, &target.repository, opts)?;
    let pb = spinner(global, format!("pushing {target}"));
    let report = rt.block_on(push::push(&client, store, &plan, settings))?;
    pb.finish_and_clear();
    log_report(&report);
    Ok(serde_json::to_value(&report).expect("json"))
}

fn log_report(r: &Report) {
    let count = |a: push::Action| r.blobs.iter().filter(|b| b.action == a).count();
    tracing::info!(
        "pushed {} {} (tags: {}): {} blob(s) uploaded ({}), {} already there, {} mounted",
        r.reference,
        r.digest,
        r.tags.join(", "),
        count(push::Action::Pushed),
        assemble::model::text::human(r.bytes_uploaded),
        count(push::Action::Skipped),
        count(push::Action::Mounted)
    );
}
