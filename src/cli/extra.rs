//! `assemble completions`, `assemble man` and `assemble schema`: what packagers, shells and
//! editors expect of a CLI, made from the same definitions as the commands and the recipe
//! reader themselves.

use assemble::Error;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write assemble.1 and one assemble-COMMAND.1 per command into this directory
    /// [default: print assemble.1 on stdout]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `shell` on stdout, for the program `cmd` describes.
pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> Result<(), Error> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "assemble", &mut script);
    super::args::out(script);
    Ok(())
}

/// Renders the man pages of the program `cmd` describes: the top one on stdout, or every
/// page into a directory.
pub fn man(args: ManArgs, cmd: clap::Command) -> Result<(), Error> {
    let render = |c: clap::Command| -> Vec<u8> {
        let mut out = Vec::new();
        clap_mangen::Man::new(c).render(&mut out).expect("rendering into memory");
        out
    };
    let Some(dir) = args.dir else {
        super::args::out(render(cmd));
        return Ok(());
    };
    let write = |name: String, bytes: Vec<u8>| -> Result<(), Error> {
        let path = dir.join(&name);
        fs_err::create_dir_all(&dir)
            .and_then(|()| fs_err::write(&path, bytes))
            .map_err(|source| Error::Write { path: path.clone(), source })?;
        outln!("{}", path.display());
        Ok(())
    };
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("assemble-{}", sub.get_name());
        write(format!("{name}.1"), render(sub.clone().name(name)))?;
    }
    write("assemble.1".into(), render(cmd))
}

/// Prints the recipes' JSON Schema, made from the sections the recipe reader checks.
pub fn schema() -> Result<(), Error> {
    let text = serde_json::to_string_pretty(&assemble::recipe::shape::json_schema()).expect("json");
    super::args::out(format!("{text}\n").into_bytes());
    Ok(())
}
