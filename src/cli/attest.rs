//! `assemble sbom` and `assemble provenance`: an image's attestations, printed exactly as
//! they are attached (their sha256 is the digest the lock records), built from the cache
//! when nothing changed.

use super::args::{BuildFlags, Global, load_recipes, spinner};
use assemble::Error;
use assemble::model::platform::Arch;
use assemble::ops::build;
use clap::Args;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON
    Spdx,
    /// CycloneDX 1.6 JSON
    Cyclonedx,
}

#[derive(Args, Debug)]
pub struct SbomArgs {
    /// The recipe (a file, or a name in ./recipes/)
    pub recipe: String,
    #[arg(long, value_enum, default_value = "spdx")]
    pub format: SbomFormat,
    /// The platform (needed when the recipe builds more than one)
    #[arg(long)]
    pub arch: Option<String>,
    /// Fail if the lock does not cover the recipe as it is now; never write it
    #[arg(long)]
    pub locked: bool,
}

#[derive(Args, Debug)]
pub struct ProvenanceArgs {
    /// The recipe (a file, or a name in ./recipes/)
    pub recipe: String,
    /// Fail if the lock does not cover the recipe as it is now; never write it
    #[arg(long)]
    pub locked: bool,
}

fn built(global: &Global, recipe: &str, arch: Vec<String>, locked: bool) -> Result<build::Built, Error> {
    let recipes = load_recipes(global, &[recipe.to_string()])?;
    let [r] = recipes.as_slice() else {
        let tags: Vec<String> = recipes.iter().map(|r| r.tags.first().cloned().unwrap_or_default()).collect();
        return Err(Error::Usage(format!(
            "`{recipe}` makes {} images (tags {}); attestations are per image: give the recipe file of one variant",
            recipes.len(),
            tags.join(", ")
        )));
    };
    let session = global.session()?;
    let opts = global.build_options(&BuildFlags { arch, locked, no_attest: false })?;
    let pb = spinner(global, format!("building {}", r.name));
    let built = build::build(&session, r, &opts)?;
    pb.finish_and_clear();
    Ok(built)
}

pub fn sbom(global: &Global, args: SbomArgs) -> Result<(), Error> {
    let b = built(global, &args.recipe, args.arch.clone().into_iter().collect(), args.locked)?;
    let archs: Vec<Arch> = b.attestations.sboms.iter().map(|(a, _, _)| *a).collect();
    let arch = match (&args.arch, archs.as_slice()) {
        (Some(a), _) => a.parse::<Arch>().map_err(Error::Usage)?,
        (None, [one]) => *one,
        (None, _) => {
            let names: Vec<&str> = archs.iter().map(|a| a.name()).collect();
            return Err(Error::Usage(format!(
                "the image has {} platforms ({}); choose one with --arch",
                names.len(),
                names.join(", ")
            )));
        }
    };
    let (spdx, cdx) =
        b.attestations.sbom(arch).ok_or_else(|| Error::Usage(format!("the image has no {arch} platform")))?;
    let doc = match args.format {
        SbomFormat::Spdx => spdx,
        SbomFormat::Cyclonedx => cdx,
    };
    super::args::out(&doc.bytes);
    Ok(())
}

pub fn provenance(global: &Global, args: ProvenanceArgs) -> Result<(), Error> {
    let b = built(global, &args.recipe, Vec::new(), args.locked)?;
    super::args::out(&b.attestations.provenance.bytes);
    Ok(())
}
