use super::Global;
use assemble::Error;
use assemble::inspect;
use assemble::sink::Dest;
use clap::Args;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// oci:DIR[:REF], oci-archive:FILE or docker-archive:FILE
    pub dest: String,
}

pub fn run(global: &Global, args: InspectArgs) -> Result<(), Error> {
    let dest = Dest::parse(&args.dest)?;
    let summary = inspect::inspect(&dest)?;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("json"));
    } else {
        print!("{}", inspect::render(&summary));
    }
    Ok(())
}
