//! `assemble build`, `lock`, `graph` and `test`.

use super::args::{BuildFlags, Global, Recipes, load_levels, load_recipes, spinner};
use assemble::Error;
use assemble::model::platform::Arch;
use assemble::ops::build::{self, Options};
use assemble::ops::{Session, test as imagetest};
use assemble::sink::{self, Dest};
use clap::Args;
use serde_json::json;
use std::sync::Mutex;

#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub recipes: Recipes,
    #[command(flatten)]
    pub flags: BuildFlags,
    /// Destination: oci:DIR (default oci:out/NAME), oci-archive:FILE or docker-archive:FILE
    #[arg(short, long, value_name = "DEST")]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct LockArgs {
    #[command(flatten)]
    pub recipes: Recipes,
    /// Resolve packages anew, to the archive's current versions, and show what moved
    #[arg(long)]
    pub upgrade: bool,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    /// Recipe files or names in ./recipes/ (default: all of them)
    pub recipes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The image's name; the recipe is written to NAME.yml in the current directory
    pub name: String,
    /// What it builds on
    #[arg(long, value_enum, default_value = "debian")]
    pub base: InitBase,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum InitBase {
    Scratch,
    Debian,
    Alpine,
    Image,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    #[command(flatten)]
    pub recipes: Recipes,
    #[command(flatten)]
    pub flags: BuildFlags,
    /// A test that cannot run here (no root for chroot, no qemu) fails instead of being skipped
    #[arg(long)]
    pub strict: bool,
}

/// Builds the recipes level by level (the recipes of one level at the same time) and writes
/// each image to its destination.
pub fn build(global: &Global, args: BuildArgs) -> Result<(), Error> {
    let levels = load_levels(global, &args.recipes.recipes)?;
    let recipes: Vec<&assemble::recipe::Recipe> = levels.iter().flatten().collect();
    // Before anything is built: every variable that has no default is given.
    for r in &recipes {
        assemble::plan::require_variables(r).map_err(build::Error::from)?;
    }
    let dest = args.output.as_deref().map(Dest::parse).transpose()?;
    if dest.is_some() && recipes.iter().any(|r| r.name != recipes[0].name) {
        return Err(Error::Usage("--output takes one recipe; name it".into()));
    }
    let mut opts = global.build_options(&args.flags)?;
    let mut archs = opts.archs.clone().unwrap_or_default();
    if matches!(dest, Some(Dest::DockerArchive(_))) {
        if archs.len() > 1 {
            return Err(Error::Usage("a docker archive holds one platform: give one --arch".into()));
        }
        if archs.is_empty() {
            archs.push(
                Arch::host().ok_or_else(|| Error::Usage("cannot tell the host's architecture: give --arch".into()))?,
            );
        }
        opts.archs = Some(archs.clone());
    }
    let session = global.session()?;
    // One image: an archive's indexes are needed once, so each architecture's is let go as
    // soon as it is resolved (several recipes share them instead).
    if recipes.len() == 1 {
        session.archives.release_after_use();
    }
    // Images of one recipe share a destination (`out/NAME`): one writer at a time.
    let writing = Mutex::new(());
    let mut results = Vec::new();
    for level in levels {
        let done: Vec<Result<serde_json::Value, Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = level
                .iter()
                .map(|r| s.spawn(|| build_one(global, &session, &opts, r, dest.as_ref(), &archs, &writing)))
                .collect();
            handles.into_iter().map(|h| h.join().expect("a build thread panicked")).collect()
        });
        for d in done {
            results.push(d?);
        }
    }
    global.print(&json!(results), || {
        results
            .iter()
            .map(|r| format!("{} {}\n", r["recipe"].as_str().unwrap_or(""), r["digest"].as_str().unwrap_or("")))
            .collect()
    });
    Ok(())
}

/// Builds one recipe's image and writes it to `dest` (default `oci:out/NAME`).
fn build_one(
    global: &Global,
    session: &Session,
    opts: &Options,
    r: &assemble::recipe::Recipe,
    dest: Option<&Dest>,
    archs: &[Arch],
    writing: &Mutex<()>,
) -> Result<serde_json::Value, Error> {
    let pb = spinner(global, format!("building {}", r.name));
    let built = build::build(session, r, opts)?;
    let dest = dest.cloned().unwrap_or_else(|| Dest::default_for(&r.name));
    pb.set_message(format!("writing {dest}"));
    {
        let _one = writing.lock().unwrap_or_else(|e| e.into_inner());
        let started = std::time::Instant::now();
        sink::write(&built.image, &dest, archs.first().copied().filter(|_| archs.len() == 1), Some(&session.store))?;
        tracing::debug!("`{}`: written to {dest} in {:.2?}", r.name, started.elapsed());
    }
    pb.finish_and_clear();
    // A docker archive holds no index: what docker and podman show is the image ID, the
    // config's digest, so that is the digest given for it.
    let (digest, what) = match (&dest, built.image.platforms.as_slice()) {
        (Dest::DockerArchive(_), [one]) => (one.config.digest, " (image ID)"),
        _ => (built.image.index.digest, ""),
    };
    tracing::info!(
        "built {} {digest}{what} → {dest} ({} platform(s); {} layer(s) packed, {} from cache{})",
        r.name,
        built.image.platforms.len(),
        built.packed,
        built.reused,
        if built.lock_written { format!("; wrote {}", built.lock_path.display()) } else { String::new() }
    );
    Ok(json!({
        "recipe": r.name,
        "digest": digest.to_string(),
        "index": built.image.index.digest.to_string(),
        "destination": dest.to_string(),
        "tags": built.image.tags,
        "provenance": built.attestations.provenance.digest.to_string(),
        "platforms": built.image.platforms.iter().map(|p| json!({
            "platform": p.arch.name(),
            "manifest": p.manifest.digest.to_string(),
            "config": p.config.digest.to_string(),
            "spdx": built.attestations.sbom(p.arch).map(|(s, _)| s.digest.to_string()),
            "cyclonedx": built.attestations.sbom(p.arch).map(|(_, c)| c.digest.to_string()),
            "layers": p.layers.iter().map(|l| json!({"name": l.name, "digest": l.info.digest.to_string(), "diff_id": l.info.diff_id.to_string(), "size": l.info.size})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "packed": built.packed,
        "reused": built.reused,
        "lock": built.lock_path.display().to_string(),
    }))
}

/// `assemble graph`: the levels recipes build in.
pub fn graph(global: &Global, args: GraphArgs) -> Result<(), Error> {
    let levels = load_levels(global, &args.recipes)?;
    let rows: Vec<serde_json::Value> = levels
        .iter()
        .enumerate()
        .flat_map(|(i, level)| {
            level.iter().map(move |r| {
                let base = assemble::recipe::graph::parent(r)
                    .and_then(|p| p.file_stem())
                    .map(|s| s.to_string_lossy().into_owned());
                json!({"level": i + 1, "recipe": r.name, "variant": r.variant, "base": base})
            })
        })
        .collect();
    global.print(&json!(rows), || {
        rows.iter()
            .map(|row| {
                let variant = row["variant"].as_str().map(|v| format!(" [{v}]")).unwrap_or_default();
                let on = row["base"].as_str().map(|b| format!("  (on {b})")).unwrap_or_default();
                format!("{}. {}{variant}{on}\n", row["level"], row["recipe"].as_str().unwrap_or(""))
            })
            .collect()
    });
    Ok(())
}

/// `assemble test`: builds each recipe (from the cache when nothing changed) and runs its
/// `tests:` on each platform.
pub fn test(global: &Global, args: TestArgs) -> Result<(), Error> {
    use imagetest::Status;
    let recipes = load_recipes(global, &args.recipes.recipes)?;
    let session = global.session()?;
    let opts = global.build_options(&args.flags)?;
    let archs = opts.archs.clone().unwrap_or_default();
    // Built one after the other (recipe bases first), then tested several at a time.
    let mut built = Vec::new();
    for r in recipes.iter().filter(|r| !r.tests.is_empty()) {
        let pb = spinner(global, format!("building {}", r.name));
        let b = build::build(&session, r, &opts)?;
        if b.lock_written {
            tracing::info!("{}: wrote {} (what the build pinned changed)", r.name, b.lock_path.display());
        }
        built.push((r, b));
        pb.finish_and_clear();
    }
    for r in recipes.iter().filter(|r| r.tests.is_empty()) {
        tracing::info!("{}: no tests", r.name);
    }
    let jobs: Vec<imagetest::Job<'_>> =
        built.iter().map(|(r, b)| imagetest::Job { label: unit_label(r), image: &b.image, tests: &r.tests }).collect();
    let pb = spinner(global, format!("testing {} image(s)", jobs.len()));
    let results = imagetest::run_all(&jobs, &archs, &session.store.tmp_dir(), opts.threads);
    pb.finish_and_clear();
    let mut rows = Vec::new();
    let (mut failed, mut not_run) = (0, 0);
    for ((r, _), outcomes) in built.iter().zip(results) {
        for o in outcomes? {
            match o.status {
                Status::Failed => failed += 1,
                Status::NotRun => not_run += 1,
                Status::Passed => {}
            }
            if !global.json {
                let word = match o.status {
                    Status::Passed => "pass   ",
                    Status::Failed => "FAIL   ",
                    Status::NotRun => "not run",
                };
                outln!("{word} {} [{}] {}: {}", r.name, o.arch, o.test, o.detail);
            }
            rows.push(json!({"recipe": r.name, "variant": r.variant, "arch": o.arch, "test": o.test, "status": o.status, "detail": o.detail}));
        }
    }
    if global.json {
        outln!("{}", serde_json::to_string_pretty(&rows).expect("json"));
    }
    let total = rows.len();
    tracing::info!("{total} test(s): {} passed, {failed} failed, {not_run} not run", total - failed - not_run);
    if failed > 0 || (args.strict && not_run > 0) {
        return Err(Error::TestsFailed(format!(
            "{failed} test(s) failed{}",
            if not_run > 0 { format!(", {not_run} could not run") } else { String::new() }
        )));
    }
    Ok(())
}

/// A recipe as `test` names it: with its variant when it has one.
fn unit_label(r: &assemble::recipe::Recipe) -> String {
    match &r.variant {
        Some(v) => format!("{} (variant {v})", r.name),
        None => r.name.clone(),
    }
}

/// `assemble init`: a starter recipe in the current directory.
pub fn init(global: &Global, args: InitArgs) -> Result<(), Error> {
    use assemble::ops::init::{self, Starter};
    let base = match args.base {
        InitBase::Scratch => Starter::Scratch,
        InitBase::Debian => Starter::Debian,
        InitBase::Alpine => Starter::Alpine,
        InitBase::Image => Starter::Image,
    };
    let path = init::write(std::path::Path::new(""), &args.name, base)?;
    let shown = path.display().to_string();
    global.print(&json!({"recipe": shown}), || format!("wrote {shown}\n"));
    Ok(())
}

/// `assemble lock`: builds each recipe and writes its lock; with `--upgrade`, resolves anew
/// and prints what moved.
pub fn lock(global: &Global, args: LockArgs) -> Result<(), Error> {
    let mut recipes = load_recipes(global, &args.recipes.recipes)?;
    let session = global.session()?;
    // Downloads that say where their releases are announced move first: the recipe files
    // are rewritten, then read again.
    let mut upgraded: Vec<serde_json::Value> = Vec::new();
    if args.upgrade {
        let mut seen = std::collections::BTreeSet::new();
        for r in &recipes {
            if !seen.insert(r.path.clone()) {
                continue;
            }
            let moved = assemble::ops::upgrade::upgrade_downloads(r, &session.store)?;
            for m in moved {
                if !global.json {
                    outln!("{} {}: {} → {}", r.name, m.variable, m.from, m.to);
                }
                upgraded.push(json!({"recipe": r.name, "variable": m.variable, "from": m.from, "to": m.to,
                    "downloads": m.downloads.iter().map(|(a, u, d)| json!({"arch": a.name(), "url": assemble::model::text::redact(u), "sha256": d.to_string()})).collect::<Vec<_>>()}));
            }
        }
        if !upgraded.is_empty() {
            recipes = load_recipes(global, &args.recipes.recipes)?;
        }
    }
    let opts = Options {
        upgrade: args.upgrade,
        ..global.build_options(&BuildFlags { arch: Vec::new(), locked: false, no_attest: false })?
    };
    let mut rows = Vec::new();
    for r in &recipes {
        let before = assemble::resolve::lock::read(&r.lock_path).ok().flatten();
        let built = build::build(&session, r, &opts)?;
        let moved = if args.upgrade {
            let old = before.as_ref().map(|l| l.debian_pins()).unwrap_or_default();
            let mut moved = assemble::source::deb::pin_changes(&old, &built.lock.debian_pins());
            moved.extend(assemble::resolve::lock::moved_images(before.as_ref(), &built.lock));
            moved
        } else {
            Vec::new()
        };
        let state = if built.lock_written { "wrote" } else { "unchanged" };
        tracing::info!("{state} {}", built.lock_path.display());
        if !global.json {
            for line in &moved {
                outln!("{} {line}", r.name);
            }
            outln!("{} {}", built.lock_path.display(), built.image.index.digest);
        }
        let downloads: Vec<&serde_json::Value> = upgraded.iter().filter(|u| u["recipe"] == r.name.as_str()).collect();
        rows.push(json!({"recipe": r.name, "lock": built.lock_path.display().to_string(), "written": built.lock_written, "digest": built.image.index.digest.to_string(), "moved": moved, "downloads": downloads}));
    }
    if global.json {
        outln!("{}", serde_json::to_string_pretty(&rows).expect("json"));
    }
    Ok(())
}
