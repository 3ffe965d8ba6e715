//! `assemble push`, `tags` and `ship`: images to registries and servers.

use super::args::{BuildFlags, Global, load_recipes, spinner};
use assemble::Error;
use assemble::ops::open::{is_image_on_disk, open_image};
use assemble::ops::push::{Pushed, push_image, push_recipe};
use assemble::ops::ship::{image_to_fleet, recipe_to_fleet};
use assemble::registry::push::{self, Report, Settings};
use assemble::registry::{self, auth};
use assemble::ship::{self, Load, Target};
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
    /// Push the image without its SBOMs and provenance
    #[arg(long)]
    pub no_attest: bool,
    /// Also tag each platform's manifest TAG-ARCH (2.4.1-amd64, 2.4.1-armv7), for consumers
    /// that take no image index
    #[arg(long)]
    pub platform_tags: bool,
    /// Sign the index and its attestations with this ECDSA P-256 key, as cosign verifies them
    /// (cosign's encrypted key, PKCS#8 or SEC1 PEM; its password in ASSEMBLE_SIGN_PASSWORD or
    /// COSIGN_PASSWORD)
    #[arg(long, value_name = "FILE", env = "ASSEMBLE_SIGN_KEY")]
    pub sign_key: Option<std::path::PathBuf>,
    /// Blobs uploaded at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel: usize,
}

#[derive(Args, Debug)]
pub struct TagsArgs {
    /// Recipe files or names in ./recipes/ (default: all of them)
    pub recipes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ShipArgs {
    /// The server: [USER@]HOST[:PORT] (your ssh config, agent, jump hosts and known_hosts
    /// apply); several, comma-separated; or @FILE, one server per line (`#` comments)
    pub server: String,
    /// Recipe files or names in ./recipes/ (default: all of them), or one image already
    /// written: oci:DIR[:REF] or oci-archive:FILE
    #[arg(conflicts_with = "all")]
    pub targets: Vec<String>,
    /// Every recipe in ./recipes/ (the same as naming none)
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub flags: BuildFlags,
    #[command(flatten)]
    pub server_store: ServerStore,
    /// The name an image on disk gets on the server [default: the directory's or file's name]
    #[arg(long)]
    pub name: Option<String>,
    /// Servers shipped to at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel: usize,
    /// After storing, remove from the server's store every blob no kept image refers to (kept:
    /// every tagged image and the newest --keep versions of each)
    #[arg(long)]
    pub prune: bool,
    /// Versions of each image --prune keeps (and `rollback` can go back to)
    #[arg(long, default_value_t = 3, value_name = "N", requires = "prune", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: u64,
}

/// What `ship` and `rollback` share of their options: the store on the server, the engine
/// and the platform to load.
#[derive(Args, Debug)]
pub struct ServerStore {
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
}

impl ServerStore {
    pub(super) fn options(&self) -> Result<ship::Options, Error> {
        let load_arch = self.load_arch.as_deref();
        Ok(ship::Options {
            store: self.store.clone(),
            load: self.load,
            load_arch: load_arch
                .map(|a| a.parse().map_err(|e| Error::Usage(format!("--load-arch: {e}"))))
                .transpose()?,
            ..ship::Options::default()
        })
    }
}

/// The servers `arg` names: `HOST`, `HOST1,HOST2,…`, and `@FILE` (one per line, `#` comments),
/// each once, in order.
pub(super) fn servers(arg: &str) -> Result<Vec<Target>, Error> {
    let mut names: Vec<String> = Vec::new();
    for part in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.strip_prefix('@') {
            Some(file) => {
                let text = fs_err::read_to_string(file)
                    .map_err(|e| Error::Usage(format!("cannot read the hosts file `{file}`: {e}")))?;
                names.extend(
                    text.trim_start_matches('\u{feff}')
                        .lines()
                        .map(|l| l.split('#').next().unwrap_or(""))
                        .flat_map(|l| l.split(','))
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from),
                );
            }
            None => names.push(part.to_string()),
        }
    }
    // The same server spelt twice (`WEB1`, `web1:22`) would be shipped to twice at once.
    let same = |t: &Target| (t.host.to_lowercase(), t.port.unwrap_or(22));
    let mut out: Vec<Target> = Vec::new();
    for n in names {
        let t = Target::parse(&n)?;
        if !out.iter().any(|o| same(o) == same(&t)) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(Error::Usage(format!("`{arg}` names no server")));
    }
    Ok(out)
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
    global.print(&json!(rows), || {
        recipes
            .iter()
            .map(|r| {
                let aliases: Vec<&str> = r.aliases().map(String::as_str).collect();
                let variant = r.variant.as_deref().map(|v| format!(" [{v}]")).unwrap_or_default();
                let alias_text =
                    if aliases.is_empty() { String::new() } else { format!("  (aliases: {})", aliases.join(", ")) };
                format!("{}{variant}: {}{alias_text}\n", r.name, r.explicit_tags.join(", "))
            })
            .collect()
    });
    Ok(())
}

pub fn push(global: &Global, args: PushArgs) -> Result<(), Error> {
    let reg = registry::Options {
        insecure: args.insecure,
        creds: args.creds.as_deref().map(auth::parse_creds).transpose().map_err(registry::Error::from)?,
    };
    let settings =
        Settings { parallel: args.parallel.max(1), platform_tags: args.platform_tags, ..Settings::default() };
    let session = global.session()?;
    let rt = registry::runtime()?;
    let mut reports = Vec::new();
    if args.targets.len() == 1 && is_image_on_disk(&args.targets[0]) {
        let to = args
            .to
            .as_deref()
            .ok_or_else(|| Error::Usage("pushing an image on disk needs --to REGISTRY/REPOSITORY[:TAG]".into()))?;
        let image = open_image(&session, &args.targets[0])?;
        let pb = spinner(global, format!("pushing {to}"));
        let pushed = push_image(&session, &rt, &image, to, args.allow_secrets, &reg, &settings)?;
        pb.finish_and_clear();
        reports.push(report_json(None, &pushed));
    } else {
        if args.targets.iter().any(|t| is_image_on_disk(t)) {
            return Err(Error::Usage("push takes recipes, or one image on disk with --to".into()));
        }
        let opts =
            global.build_options(&BuildFlags { arch: Vec::new(), locked: args.locked, no_attest: args.no_attest })?;
        let password = std::env::var("ASSEMBLE_SIGN_PASSWORD").or_else(|_| std::env::var("COSIGN_PASSWORD")).ok();
        let signer =
            args.sign_key.as_deref().map(|k| assemble::sign::Signer::load(k, password.as_deref())).transpose()?;
        for r in &load_recipes(global, &args.targets)? {
            let pb = spinner(global, String::new());
            let step = |m: &str| pb.set_message(m.to_string());
            let pushed = push_recipe(
                &session,
                &rt,
                r,
                args.to.as_deref(),
                args.allow_secrets,
                &opts,
                &reg,
                &settings,
                signer.as_ref(),
                &step,
            )?;
            pb.finish_and_clear();
            reports.push(report_json(Some(&r.name), &pushed));
        }
    }
    global.print(&json!(reports), || {
        reports
            .iter()
            .map(|r| format!("{} {}\n", r["reference"].as_str().unwrap_or(""), r["digest"].as_str().unwrap_or("")))
            .collect()
    });
    Ok(())
}

/// What `push --json` reports of one image.
fn report_json(recipe: Option<&str>, pushed: &Pushed) -> serde_json::Value {
    let Some(report) = &pushed.report else {
        return json!({"recipe": recipe, "reference": pushed.reference.to_string(), "digest": pushed.digest.to_string(), "tags": pushed.tags, "built": false, "blobs": [], "bytes_uploaded": 0});
    };
    log_report(report);
    let mut v = serde_json::to_value(report).expect("json");
    if let Some(name) = recipe {
        v["recipe"] = json!(name);
        v["built"] = json!(true);
    }
    v
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

pub fn ship(global: &Global, args: ShipArgs) -> Result<(), Error> {
    let fleet = servers(&args.server)?;
    let opts = ship::Options { prune: args.prune.then_some(args.keep as usize), ..args.server_store.options()? };
    let session = global.session()?;
    let at_once = args.parallel.max(1);
    let mut shipped: Vec<(String, assemble::ops::ship::Shipped)> = Vec::new();
    let mut build_failed: Vec<String> = Vec::new();
    // One byte bar per server, on the terminal only.
    let bars = |what: &str| -> Vec<indicatif::ProgressBar> {
        fleet.iter().map(|s| progress(global, format!("shipping {what} to {s}"))).collect()
    };
    let report = |bars: &[indicatif::ProgressBar]| {
        let bars = bars.to_vec();
        let fleet = fleet.clone();
        move |server: &Target, sent: u64, total: u64| {
            if let Some(i) = fleet.iter().position(|s| s == server) {
                bars[i].set_length(total);
                bars[i].set_position(sent);
            }
        }
    };
    if args.targets.len() == 1 && is_image_on_disk(&args.targets[0]) {
        let image = open_image(&session, &args.targets[0])?;
        let b = bars(&args.targets[0]);
        let results = image_to_fleet(&fleet, &image, args.name.as_deref(), &opts, at_once, &report(&b))?;
        b.iter().for_each(indicatif::ProgressBar::finish_and_clear);
        shipped.extend(results.into_iter().map(|s| (args.targets[0].clone(), s)));
    } else {
        if args.targets.iter().any(|t| is_image_on_disk(t)) {
            return Err(Error::Usage("ship takes recipes, or one image on disk".into()));
        }
        let bopts = global.build_options(&args.flags)?;
        let recipes = load_recipes(global, &args.targets)?;
        for r in &recipes {
            let b = bars(&r.name);
            let results = recipe_to_fleet(&session, &fleet, r, &bopts, &opts, at_once, &report(&b));
            b.iter().for_each(indicatif::ProgressBar::finish_and_clear);
            match results {
                Ok(results) => shipped.extend(results.into_iter().map(|s| (r.name.clone(), s))),
                // One recipe that does not build: the others still ship, and what shipped is
                // reported; the command then fails, naming it.
                Err(e) if recipes.len() > 1 => {
                    super::progress::suspend(|| eprint!("{}", crate::render_error(&e)));
                    build_failed.push(r.name.clone());
                }
                Err(e) => return Err(e),
            }
        }
    }
    // One result per server and image: the report, or the error (also on stderr).
    let mut failed: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    let mut lines = String::new();
    for (image, s) in shipped {
        match s.result {
            Ok(r) => {
                let r = logged(r);
                lines.push_str(&format!(
                    "{} {}:{} {}\n",
                    r.host,
                    r.image,
                    r.tags.first().map_or("", String::as_str),
                    r.digest
                ));
                rows.push(serde_json::to_value(&r).expect("json"));
            }
            Err(e) => {
                let host = s.server.to_string();
                if !global.json {
                    super::progress::suspend(|| eprint!("{host}: {}", crate::render_error(&e)));
                }
                lines.push_str(&format!("{host} {image} failed\n"));
                rows.push(json!({"host": host, "image": image, "error": e.to_string(), "hint": e.hint(), "exit": e.exit() as u8}));
                if !failed.contains(&host) {
                    failed.push(host);
                }
            }
        }
    }
    for name in &build_failed {
        rows.push(json!({"image": name, "error": "it did not build (the error is above)"}));
    }
    global.print(&serde_json::Value::Array(rows), || lines);
    let mut why = Vec::new();
    if !failed.is_empty() {
        why.push(format!("ship failed for {} of {} server(s): {}", failed.len(), fleet.len(), failed.join(", ")));
    }
    if !build_failed.is_empty() {
        why.push(format!("{} did not build", build_failed.join(", ")));
    }
    if why.is_empty() {
        return Ok(());
    }
    Err(Error::Some(why.join("; ")))
}

/// Bytes sent of the total, on a terminal only.
fn progress(_global: &Global, message: String) -> indicatif::ProgressBar {
    let b = super::progress::add(indicatif::ProgressBar::new(0));
    b.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bytes}/{total_bytes} {bytes_per_sec}").expect("template"),
    );
    b.set_message(message);
    b
}

fn logged(report: ship::Report) -> ship::Report {
    let mut loaded = match &report.loaded {
        Some(l) if l.already => format!("; {} had {} already", l.engine, l.platform),
        Some(l) => format!("; loaded {} into {}", l.platform, l.engine),
        None => String::new(),
    };
    if let Some(p) = report.pruned {
        loaded.push_str(&format!("; pruned {} blob(s) ({})", p.blobs, assemble::model::text::human(p.bytes)));
    }
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
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_come_from_lists_and_hosts_files_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts");
        fs_err::write(&file, "\u{feff}# web tier\nweb1\nWEB1:22, web2  # same line\n\ndb1:2222\n").unwrap();
        let got = servers(&format!("web3,@{},web2", file.display())).unwrap();
        let names: Vec<String> = got.iter().map(|t| t.to_string()).collect();
        assert_eq!(names, ["web3", "web1", "web2", "db1:2222"]);
        assert!(servers(" , ").is_err());
    }
}
