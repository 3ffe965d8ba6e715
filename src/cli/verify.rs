use super::{Global, load_recipes};
use assemble::diff;
use assemble::sink::Dest;
use assemble::source::deb;
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
    /// Compare with this image (oci:DIR, oci-archive:FILE, docker-archive:FILE) instead of the lock
    #[arg(long, value_name = "DEST")]
    pub against: Option<String>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The first image (oci:DIR[:REF], oci-archive:FILE or docker-archive:FILE)
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
    let against = args.against.as_deref().map(Dest::parse).transpose()?;
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
        Err(Error::Usage(format!(
            "{} does not reproduce {what}",
            failed.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
        )))
    }
}

pub fn diff(global: &Global, args: DiffArgs) -> Result<(), Error> {
    let (a, b) = (diff::open(&Dest::parse(&args.a)?)?, diff::open(&Dest::parse(&args.b)?)?);
    let findings = diff::images(&a, &b)?;
    print_findings(global, &findings);
    if findings.is_empty() {
        tracing::info!("identical: {}", a.summary.digest.as_deref().unwrap_or(""));
        Ok(())
    } else {
        Err(Error::Usage(format!("the images differ in {} place(s)", findings.len())))
    }
}

pub fn outdated(global: &Global, args: OutdatedArgs) -> Result<(), Error> {
    let recipes = load_recipes(global, &args.recipes)?;
    let store = global.store()?;
    let mut rows = Vec::new();
    for r in &recipes {
        let recipe::Base::Debian(spec) = &r.base else { continue };
        let Some(l) = lock::read(&r.lock_path).map_err(|e| Error::from(build::Error::from(e)))? else {
            return Err(Error::Usage(format!("`{}` has no lock yet: build it first", r.name)));
        };
        let archs: Vec<assemble::platform::Arch> = r.archs.clone();
        let archive =
            deb::open(&store, spec, &archs, &r.loc.to_string()).map_err(|e| Error::from(build::Error::from(e)))?;
        for n in deb::newer(&archive, &l.packages) {
            rows.push((r.name.clone(), n));
        }
    }
    if global.json {
        let v: Vec<_> = rows.iter().map(|(r, n)| json!({"recipe": r, "package": n})).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        for (r, n) in &rows {
            println!("{r} {} {}: {} → {} ({})", n.name, n.arch, n.locked, n.available, n.suite);
        }
        if rows.is_empty() {
            tracing::info!("every locked package is the archive's current version");
        }
    }
    Ok(())
}
