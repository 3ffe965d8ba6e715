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
    /// With --against docker://…: require the image's signature and signed attestations (as
    /// `push --sign-key` and cosign write them) by this public key (a `PUBLIC KEY` PEM), and
    /// the attestations identical to the rebuild's
    #[arg(long, value_name = "FILE", requires = "against")]
    pub key: Option<std::path::PathBuf>,
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
    let opts = global.build_options(&super::args::BuildFlags { arch: Vec::new(), locked: true, no_attest: false })?;
    let verifier = verify::Verifier::new(&session.store)?;
    let key = args.key.as_deref().map(assemble::sign::PublicKey::load).transpose()?;
    let reference = match (&key, args.against.as_deref().and_then(|a| a.strip_prefix("docker://"))) {
        (None, _) => None,
        (Some(_), Some(r)) => Some(assemble::registry::Reference::parse(r).map_err(Error::Usage)?),
        (Some(_), None) => {
            return Err(Error::Usage(
                "--key checks signatures in a registry: give --against docker://REGISTRY/REPOSITORY[:TAG|@DIGEST]"
                    .into(),
            ));
        }
    };
    let signed = key.as_ref().zip(reference.as_ref()).map(|(key, reference)| verify::Signed { reference, key });
    let (mut failed, mut changed) = (Vec::new(), Vec::new());
    let mut report = Vec::new();
    for r in &recipes {
        let outcome = verifier.verify(r, &session.store, &opts, against.as_ref(), signed.as_ref())?;
        if outcome.findings.is_empty() {
            if !global.json {
                outln!("verified {}: {}", outcome.recipe, outcome.built);
            }
        } else if let Some(format) = outcome.older_format.filter(|_| !outcome.inputs_changed) {
            changed.push(format!(
                "`{}`'s lock was written in assemble's image format {format} and this assemble writes format {} (docs/recipe.md, \"Image format\")",
                outcome.recipe,
                verify::IMAGE_FORMAT
            ));
        } else if outcome.inputs_changed {
            changed.push(match outcome.changed_sources.as_slice() {
                [] => format!(
                    "`{}` changed since its lock was written (a local file, template, variable or the recipe)",
                    outcome.recipe
                ),
                what => format!("`{}` changed since its lock was written: {}", outcome.recipe, what.join(", ")),
            });
        } else {
            failed.push(format!("`{}`", outcome.recipe));
        }
        if !global.json {
            print_findings(global, &outcome.findings);
        }
        report.push(json!({"recipe": outcome.recipe, "digest": outcome.built.to_string(), "identical": outcome.findings.is_empty(), "inputs_changed": outcome.inputs_changed, "changed_sources": outcome.changed_sources, "older_format": outcome.older_format, "differences": outcome.findings}));
    }
    if global.json {
        outln!("{}", serde_json::to_string_pretty(&report).expect("json"));
    }
    let mut verdicts = Vec::new();
    for c in changed {
        verdicts.push(format!(
            "{c}; the differences are that change, not a build that fails to reproduce; build to update the lock"
        ));
    }
    if !failed.is_empty() {
        let what = if against.is_some() {
            "the image it was compared with"
        } else {
            "its lock: the same inputs gave other bytes"
        };
        verdicts.push(format!("{} does not reproduce {what}", failed.join(", ")));
    }
    if verdicts.is_empty() {
        return Ok(());
    }
    Err(Error::Differs(verdicts.join("\nerror: ")))
}

pub fn diff(global: &Global, args: DiffArgs) -> Result<(), Error> {
    let session = global.session()?;
    let (a, b) = (open_image(&session, &args.a)?, open_image(&session, &args.b)?);
    let findings = diff::images(&a, &b)?;
    print_findings(global, &findings);
    if findings.is_empty() {
        if !global.json {
            outln!("identical: {}", a.digest().map(|d| d.to_string()).unwrap_or_default());
        }
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
    v.extend(found.downloads.iter().map(|d| {
        json!({"recipe": d.recipe, "download": {"variable": d.variable, "locked": d.locked, "available": d.available, "feed": d.feed}})
    }));
    v.extend(found.bases.iter().map(|m| {
        let key = if m.files { "from_image" } else { "base_image" };
        json!({"recipe": m.recipe, key: {"reference": m.reference, "locked": m.locked.to_string(), "available": m.now.to_string()}})
    }));
    global.print(&json!(v), || {
        let mut out: String = found
            .packages
            .iter()
            .map(|(r, n)| format!("{r} {} {}: {} → {} ({})\n", n.name, n.arch, n.locked, n.available, n.suite))
            .collect();
        out.extend(
            found
                .downloads
                .iter()
                .map(|d| format!("{} {}: {} → {} ({})\n", d.recipe, d.variable, d.locked, d.available, d.feed)),
        );
        out.extend(found.bases.iter().map(|m| {
            let role = if m.files { "files from" } else { "base" };
            format!("{} {role} {}: {} → {}\n", m.recipe, m.reference, m.locked, m.now)
        }));
        out
    });
    if !global.json && found.packages.is_empty() && found.bases.is_empty() && found.downloads.is_empty() {
        outln!(
            "up to date: every locked package is the archive's current version, every image its tag's, every tracked download its newest release"
        );
    }
    Ok(())
}
