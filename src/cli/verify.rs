use super::{Global, load_recipes};
use assemble::diff;
use assemble::source::{apk, deb, image};
use assemble::{Error, build, lock, recipe, verify};
use clap::Args;
use serde_json::json;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Recipe files or names in ./recipes/ (default: all of them)
    #[arg(conflicts_with = "all")]
    pub recipes: Vec<String>,
    /// Every recipe in ./recipes/ (the same as naming none)
    #[arg(long)]
    pub all: bool,
    /// Compare with this image (oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE or
    /// docker://REGISTRY/REPOSITORY[:TAG|@DIGEST]) instead of the lock
    #[arg(long, value_name = "IMAGE")]
    pub against: Option<String>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The first image (oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE or
    /// docker://REGISTRY/REPOSITORY[:TAG|@DIGEST])
    pub a: String,
    /// The second image
    pub b: String,
}

#[derive(Args, Debug)]
pub struct OutdatedArgs {
    /// Recipe files or names in ./recipes/ (default: all of them)
    #[arg(conflicts_with = "all")]
    pub recipes: Vec<String>,
    /// Every recipe in ./recipes/ (the same as naming none)
    #[arg(long)]
    pub all: bool,
}

fn print_findings(global: &Global, findings: &[diff::Finding]) {
    if global.json {
        println!("{}", serde_json::to_string_pretty(&findings).expect("json"));
    } else {
        for f in findings {
            print!("{}", f.render());
        }
    }
}

/// Exit status 1 (through an error) when anything differs.
pub fn verify(global: &Global, args: VerifyArgs) -> Result<(), Error> {
    let recipes = load_recipes(global, &args.recipes)?;
    let against = args.against.as_deref().map(|a| super::open_image(global, a)).transpose()?;
    let store = global.store()?;
    let opts = super::build::options(global, Vec::new(), true)?;
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for r in &recipes {
        let outcome = verify::verify(r, &store, &opts, against.as_ref())?;
        if outcome.findings.is_empty() {
            tracing::info!("verified {}: {}", outcome.recipe, outcome.built);
        } else {
            failed.push(outcome.recipe.clone());
        }
        if !global.json {
            print_findings(global, &outcome.findings);
        }
        report.push(json!({"recipe": outcome.recipe, "digest": outcome.built.to_string(), "identical": outcome.findings.is_empty(), "differences": outcome.findings}));
    }
    if global.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        let what = if against.is_some() { "the image it was compared with" } else { "its lock" };
        Err(Error::Differs(format!(
            "{} does not reproduce {what}",
            failed.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
        )))
    }
}

pub fn diff(global: &Global, args: DiffArgs) -> Result<(), Error> {
    let (a, b) = (super::open_image(global, &args.a)?, super::open_image(global, &args.b)?);
    let findings = diff::images(&a, &b)?;
    print_findings(global, &findings);
    if findings.is_empty() {
        tracing::info!("identical: {}", a.digest().map(|d| d.to_string()).unwrap_or_default());
        Ok(())
    } else {
        Err(Error::Differs(format!("the images differ in {} place(s)", findings.len())))
    }
}

pub fn outdated(global: &Global, args: OutdatedArgs) -> Result<(), Error> {
    let recipes = load_recipes(global, &args.recipes)?;
    let store = global.store()?;
    let mut rows = Vec::new();
    let mut moved = Vec::new();
    for r in &recipes {
        let (deb_spec, apk_spec) = match r.base.packages() {
            Some(recipe::Packages::Debian(spec)) => (Some(spec), None),
            Some(recipe::Packages::Alpine(spec)) => (None, Some(spec)),
            None => (None, None),
        };
        let image = match &r.base {
            recipe::Base::Image(b) if b.recipe.is_none() => Some(b),
            _ => None,
        };
        if deb_spec.is_none() && apk_spec.is_none() && image.is_none() {
            continue;
        }
        let Some(l) = lock::read(&r.lock_path).map_err(|e| Error::from(build::Error::from(e)))? else {
            return Err(Error::Usage(format!("`{}` has no lock yet: build it first", r.name)));
        };
        if let Some(spec) = deb_spec {
            let archs: Vec<assemble::model::platform::Arch> = r.archs.clone();
            let archive =
                deb::open(&store, spec, &archs, &r.loc.to_string()).map_err(|e| Error::from(build::Error::from(e)))?;
            for n in deb::newer(&archive, &l.packages) {
                rows.push((r.name.clone(), n));
            }
        }
        if let Some(spec) = apk_spec {
            let releases = store.root().join("releases");
            let newer = apk::newer(spec, &l.apk_packages, &r.dir, &releases)
                .map_err(|e| Error::from(build::Error::Alpine(e)))?;
            rows.extend(newer.into_iter().map(|n| (r.name.clone(), n)));
        }
        // An image base: whether its reference names another image than the lock pins.
        if let Some(b) = image
            && let Some(pinned) = l.base_image.as_ref().filter(|p| p.reference == b.reference)
        {
            let now = image::current_digest(&b.reference).map_err(|e| Error::from(build::Error::from(e)))?;
            if now != pinned.digest {
                moved.push((r.name.clone(), b.reference.clone(), pinned.digest, now));
            }
        }
    }
    if global.json {
        let mut v: Vec<_> = rows.iter().map(|(r, n)| json!({"recipe": r, "package": n})).collect();
        v.extend(moved.iter().map(|(r, reference, locked, now)| {
            json!({"recipe": r, "base_image": {"reference": reference, "locked": locked.to_string(), "available": now.to_string()}})
        }));
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        for (r, n) in &rows {
            println!("{r} {} {}: {} → {} ({})", n.name, n.arch, n.locked, n.available, n.suite);
        }
        for (r, reference, locked, now) in &moved {
            println!("{r} base {reference}: {locked} → {now}");
        }
        if rows.is_empty() && moved.is_empty() {
            tracing::info!("every locked package is the archive's current version, every image base its tag's");
        }
    }
    Ok(())
}
