//! `assemble inspect`, `verify`, `diff` and `outdated`: reading images and locks back.

use super::args::{Global, Recipes, load_recipes};
use assemble::Error;
use assemble::ops::diff::{self, Finding};
use assemble::ops::open::open_image;
use assemble::ops::{inspect, verify};
use clap::Args;
use serde_json::json;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE or docker://REGISTRY/REPOSITORY[:TAG|@DIGEST]
    pub dest: String,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub recipes: Recipes,
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
    #[command(flatten)]
    pub recipes: Recipes,
}

pub fn inspect(global: &Global, args: InspectArgs) -> Result<(), Error> {
    let image = open_image(&global.session()?, &args.dest)?;
    let summary = inspect::summary(&image);
    global.print(&serde_json::to_value(&summary).expect("json"), || inspect::render(&summary));
    Ok(())
}

fn print_findings(global: &Global, findings: &[Finding]) {
    global.print(&serde_json::to_value(findings).expect("json"), || findings.iter().map(Finding::render).collect());
}

/// Differences make the command fail with "differs" (exit 3).
pub fn verify(global: &Global, args: VerifyArgs) -> Result<(), Error> {
    let recipes = load_recipes(global, &args.recipes.recipes)?;
    let session = global.session()?;
    let against = args.against.as_deref().map(|a| open_image(&session, a)).transpose()?;
    let opts = global.build_options(&super::args::BuildFlags { arch: Vec::new(), locked: true })?;
    let verifier = verify::Verifier::new()?;
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for r in &recipes {
        let outcome = verifier.verify(r, &session.store, &opts, against.as_ref())?;
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
        return Ok(());
    }
    let what = if against.is_some() { "the image it was compared with" } else { "its lock" };
    Err(Error::Differs(format!(
        "{} does not reproduce {what}",
        failed.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
    )))
}

pub fn diff(global: &Global, args: DiffArgs) -> Result<(), Error> {
    let session = global.session()?;
    let (a, b) = (open_image(&session, &args.a)?, open_image(&session, &args.b)?);
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
    let recipes = load_recipes(global, &args.recipes.recipes)?;
    let session = global.session()?;
    let found =
        assemble::resolve::outdated::outdated(&recipes, &session.store).map_err(assemble::ops::build::Error::from)?;
    let mut v: Vec<_> = found.packages.iter().map(|(r, n)| json!({"recipe": r, "package": n})).collect();
    v.extend(found.bases.iter().map(|m| {
        json!({"recipe": m.recipe, "base_image": {"reference": m.reference, "locked": m.locked.to_string(), "available": m.now.to_string()}})
    }));
    global.print(&json!(v), || {
        let mut out: String = found
            .packages
            .iter()
            .map(|(r, n)| format!("{r} {} {}: {} → {} ({})\n", n.name, n.arch, n.locked, n.available, n.suite))
            .collect();
        out.extend(
            found.bases.iter().map(|m| format!("{} base {}: {} → {}\n", m.recipe, m.reference, m.locked, m.now)),
        );
        out
    });
    if !global.json && found.packages.is_empty() && found.bases.is_empty() {
        tracing::info!("every locked package is the archive's current version, every image base its tag's");
    }
    Ok(())
}
