use super::Global;
use assemble::Error;
use assemble::inspect;
use clap::Args;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE or docker://REGISTRY/REPOSITORY[:TAG|@DIGEST]
    pub dest: String,
}

pub fn run(global: &Global, args: InspectArgs) -> Result<(), Error> {
    let image = super::open_image(global, &args.dest)?;
    let summary = inspect::summary(&image);
    if global.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("json"));
    } else {
        print!("{}", inspect::render(&summary));
    }
    Ok(())
}
