use super::{Global, load_recipes, spinner};
use assemble::Error;
use assemble::build::{self, Options};
use assemble::model::platform::Arch;
use assemble::sink::{self, Dest};
use clap::Args;
use serde_json::json;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Recipe files or names in ./recipes/ (default: all of them)
    #[arg(conflicts_with = "all")]
    pub recipes: Vec<String>,
    /// Every recipe in ./recipes/ (the same as naming none)
    #[arg(long)]
    pub all: bool,
    /// Build only these architectures (comma-separated, e.g. amd64,arm64)
    #[arg(long, value_delimiter = ',')]
    pub arch: Vec<String>,
    /// Destination: oci:DIR (default oci:out/NAME), oci-archive:FILE or docker-archive:FILE
    #[arg(short, long, value_name = "DEST")]
    pub output: Option<String>,
    /// Fail if the lock file does not cover the recipe as it is now; never write it
    #[arg(long)]
    pub locked: bool,
}

#[derive(Args, Debug)]
pub struct LockArgs {
    /// Recipe files or names in ./recipes/ (default: all of them)
    #[arg(conflicts_with = "all")]
    pub recipes: Vec<String>,
    /// Every recipe in ./recipes/ (the same as naming none)
    #[arg(long)]
    pub all: bool,
    /// Resolve packages anew, to the archive's current versions, and show what moved
    #[arg(long)]
    pub upgrade: bool,
}

pub fn options(global: &Global, archs: Vec<Arch>, locked: bool) -> Result<Options, Error> {
    let source_date_epoch =
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.is_empty() => Some(
                v.parse::<u64>().ok().filter(|e| *e <= assemble::recipe::MAX_EPOCH).ok_or_else(|| {
                    Error::Usage(format!(
                        "SOURCE_DATE_EPOCH must be a whole number of seconds up to {} (the end of the year 9999), found `{v}`",
                        assemble::recipe::MAX_EPOCH
                    ))
                })?,
            ),
            _ => None,
        };
    Ok(Options {
        archs: (!archs.is_empty()).then_some(archs),
        locked,
        threads: global.threads(),
        source_date_epoch,
        write_lock: true,
        compare_outputs: true,
        upgrade: false,
        children: Vec::new(),
        context: global.context.clone(),
    })
}

pub fn parse_archs(list: &[String]) -> Result<Vec<Arch>, Error> {
    list.iter().map(|a| a.parse::<Arch>().map_err(|e| Error::Usage(format!("--arch: {e}")))).collect()
}

pub fn run(global: &Global, args: BuildArgs) -> Result<(), Error> {
    let levels = super::load_levels(global, &args.recipes)?;
    let recipes: Vec<&assemble::recipe::Recipe> = levels.iter().flatten().collect();
    // Before anything is built: every variable that has no default is given.
    for r in &recipes {
        build::require_variables(r)?;
    }
    let dest = args.output.as_deref().map(Dest::parse).transpose()?;
    if dest.is_some() && recipes.iter().any(|r| r.name != recipes[0].name) {
        return Err(Error::Usage("--output takes one recipe; name it".into()));
    }
    let mut archs = parse_archs(&args.arch)?;
    if matches!(dest, Some(Dest::DockerArchive(_))) {
        if archs.len() > 1 {
            return Err(Error::Usage("a docker archive holds one platform: give one --arch".into()));
        }
        if archs.is_empty() {
            archs.push(
                Arch::host().ok_or_else(|| Error::Usage("cannot tell the host's architecture: give --arch".into()))?,
            );
        }
    }
    let store = global.store()?;
    let opts = options(global, archs.clone(), args.locked)?;
    let mut results = Vec::new();
    // Level by level; the recipes of one level build at the same time.
    for level in levels {
        let done: Vec<Result<serde_json::Value, Error>> = std::thread::scope(|s| {
            let handles: Vec<_> =
                level.iter().map(|r| s.spawn(|| build_one(global, &store, &opts, r, dest.as_ref(), &archs))).collect();
            handles.into_iter().map(|h| h.join().expect("a build thread panicked")).collect()
        });
        for d in done {
            results.push(d?);
        }
    }
    if global.json {
        println!("{}", serde_json::to_string_pretty(&results).expect("json"));
    } else {
        for r in &results {
            println!("{} {}", r["recipe"].as_str().unwrap_or(""), r["digest"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// Builds one recipe's image and writes it to `dest` (default `oci:out/NAME`).
fn build_one(
    global: &Global,
    store: &assemble::store::Store,
    opts: &Options,
    r: &assemble::recipe::Recipe,
    dest: Option<&Dest>,
    archs: &[Arch],
) -> Result<serde_json::Value, Error> {
    let pb = spinner(global, format!("building {}", r.name));
    let built = build::build(r, store, opts)?;
    let dest = dest.cloned().unwrap_or_else(|| Dest::default_for(&r.name));
    pb.set_message(format!("writing {dest}"));
    {
        // Images of one recipe share a destination (`out/NAME`): one writer at a time.
        static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        sink::write(&built.image, &dest, archs.first().copied().filter(|_| archs.len() == 1))?;
    }
    pb.finish_and_clear();
    tracing::info!(
        "built {} {} → {dest} ({} platform(s); {} layer(s) packed, {} from cache{})",
        r.name,
        built.image.index.digest,
        built.image.platforms.len(),
        built.packed,
        built.reused,
        if built.lock_written { format!("; wrote {}", built.lock_path.display()) } else { String::new() }
    );
    Ok(json!({
        "recipe": r.name,
        "digest": built.image.index.digest.to_string(),
        "destination": dest.to_string(),
        "tags": built.image.tags,
        "platforms": built.image.platforms.iter().map(|p| json!({
            "platform": p.arch.name(),
            "manifest": p.manifest.digest.to_string(),
            "config": p.config.digest.to_string(),
            "layers": p.layers.iter().map(|l| json!({"name": l.name, "digest": l.info.digest.to_string(), "diffID": l.info.diff_id.to_string(), "size": l.info.size})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "packed": built.packed,
        "reused": built.reused,
        "lock": built.lock_path.display().to_string(),
    }))
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    /// Recipe files or names in ./recipes/ (default: all of them)
    pub recipes: Vec<String>,
}

/// `assemble graph`: the levels recipes build in.
pub fn graph(global: &Global, args: GraphArgs) -> Result<(), Error> {
    let levels = super::load_levels(global, &args.recipes)?;
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
    if global.json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(());
    }
    for row in &rows {
        let variant = row["variant"].as_str().map(|v| format!(" [{v}]")).unwrap_or_default();
        let on = row["base"].as_str().map(|b| format!("  (on {b})")).unwrap_or_default();
        println!("{}. {}{variant}{on}", row["level"], row["recipe"].as_str().unwrap_or(""));
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Recipe files or names in ./recipes/ (default: all of them)
    #[arg(conflicts_with = "all")]
    pub recipes: Vec<String>,
    /// Every recipe in ./recipes/ (the same as naming none)
    #[arg(long)]
    pub all: bool,
    /// Test only these architectures (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub arch: Vec<String>,
    /// A test that cannot run here (no root for chroot, no qemu) fails instead of being skipped
    #[arg(long)]
    pub strict: bool,
    /// Build from the lock only (fail if it is stale)
    #[arg(long)]
    pub locked: bool,
}

/// `assemble test`: builds each recipe (from the cache when nothing changed) and runs its
/// `tests:` on each platform.
pub fn test(global: &Global, args: TestArgs) -> Result<(), Error> {
    use assemble::imagetest::Status;
    let recipes = load_recipes(global, &args.recipes)?;
    let archs = parse_archs(&args.arch)?;
    let store = global.store()?;
    let opts = options(global, archs.clone(), args.locked)?;
    let mut rows = Vec::new();
    let (mut failed, mut not_run) = (0, 0);
    for r in &recipes {
        if r.tests.is_empty() {
            tracing::info!("{}: no tests", r.name);
            continue;
        }
        let pb = spinner(global, format!("building {}", r.name));
        let built = build::build(r, &store, &opts)?;
        pb.set_message(format!("testing {}", r.name));
        let outcomes = assemble::imagetest::run(&built.image, &r.tests, &archs, &store.root().join("tmp"))?;
        pb.finish_and_clear();
        for o in outcomes {
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
                println!("{word} {} [{}] {}: {}", r.name, o.arch, o.test, o.detail);
            }
            rows.push(json!({"recipe": r.name, "variant": r.variant, "arch": o.arch, "test": o.test, "status": o.status, "detail": o.detail}));
        }
    }
    if global.json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
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

pub fn lock(global: &Global, args: LockArgs) -> Result<(), Error> {
    let recipes = load_recipes(global, &args.recipes)?;
    let store = global.store()?;
    let opts = Options { upgrade: args.upgrade, ..options(global, Vec::new(), false)? };
    for r in &recipes {
        let before = assemble::lock::read(&r.lock_path).ok().flatten();
        let built = build::build(r, &store, &opts)?;
        if args.upgrade {
            let old = before.map(|l| l.packages).unwrap_or_default();
            for line in assemble::source::deb::pin_changes(&old, &built.lock.packages) {
                println!("{} {line}", r.name);
            }
        }
        let state = if built.lock_written { "wrote" } else { "unchanged" };
        tracing::info!("{state} {}", built.lock_path.display());
        if global.json {
            println!(
                "{}",
                json!({"recipe": r.name, "lock": built.lock_path.display().to_string(), "written": built.lock_written, "digest": built.image.index.digest.to_string()})
            );
        } else {
            println!("{} {}", built.lock_path.display(), built.image.index.digest);
        }
    }
    Ok(())
}
