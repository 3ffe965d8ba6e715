//! The argument groups commands share, and the helpers every command uses to load recipes,
//! make a session and print results.

use assemble::Error;
use assemble::model::platform::Arch;
use assemble::ops::Session;
use assemble::ops::build::Options;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Cache directory [default: $XDG_CACHE_HOME/assemble or ~/.cache/assemble]
    #[arg(long, global = true, env = "ASSEMBLE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// More log output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print results on stdout as JSON
    #[arg(long, global = true)]
    pub json: bool,
    /// Worker threads [default: the number of CPUs]; the output never depends on it
    #[arg(short = 'j', long, global = true, env = "ASSEMBLE_JOBS", value_name = "N")]
    pub jobs: Option<usize>,
    /// The build context: the directory local files must be inside, for every recipe
    /// [default: the recipe's `context:`, else the recipe's own directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub context: Option<PathBuf>,
    /// Set a recipe variable, replacing its default in every recipe that declares it
    #[arg(long = "var", global = true, value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("expected NAME=VALUE, found `{s}`"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!("`{name}` is not a variable name (letters, digits, `_`, `-`)"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// The recipes a command works on.
#[derive(Args, Debug, Clone)]
pub struct Recipes {
    /// Recipe files or names in ./recipes/ (default: all of them)
    #[arg(conflicts_with = "all")]
    pub recipes: Vec<String>,
    /// Every recipe in ./recipes/ (the same as naming none)
    #[arg(long)]
    pub all: bool,
}

/// How recipes are built: which architectures, and whether the lock must cover them.
#[derive(Args, Debug, Clone)]
pub struct BuildFlags {
    /// Build only these architectures (comma-separated, e.g. amd64,arm64)
    #[arg(long, value_delimiter = ',')]
    pub arch: Vec<String>,
    /// Fail if the lock file does not cover the recipe as it is now; never write it
    #[arg(long)]
    pub locked: bool,
    /// Leave the SBOMs and the provenance out of what is written, pushed or shipped (the lock
    /// records them either way)
    #[arg(long)]
    pub no_attest: bool,
}

impl Global {
    pub fn session(&self) -> Result<Session, Error> {
        let dir = self.cache_dir.clone().unwrap_or_else(assemble::store::default_dir);
        let store =
            assemble::store::Store::open(&dir).map_err(|source| assemble::Error::Cache { path: dir, source })?;
        Ok(Session::new(store))
    }

    pub fn threads(&self) -> usize {
        self.jobs.filter(|j| *j > 0).unwrap_or_else(assemble::ops::build::default_threads)
    }

    /// The build options these flags ask for (`SOURCE_DATE_EPOCH` from the environment).
    pub fn build_options(&self, flags: &BuildFlags) -> Result<Options, Error> {
        let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
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
        let archs = parse_archs(&flags.arch)?;
        Ok(Options {
            archs: (!archs.is_empty()).then_some(archs),
            locked: flags.locked,
            threads: self.threads(),
            source_date_epoch,
            context: self.context.clone(),
            attach: !flags.no_attest,
            ..Options::default()
        })
    }

    /// Results on stdout: `value` as pretty JSON under `--json`, else `text`.
    pub fn print(&self, value: &serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            outln!("{}", serde_json::to_string_pretty(value).expect("json"));
        } else {
            out(text());
        }
    }
}

pub fn parse_archs(list: &[String]) -> Result<Vec<Arch>, Error> {
    list.iter().map(|a| a.parse::<Arch>().map_err(|e| Error::Usage(format!("--arch: {e}")))).collect()
}

/// Recipe files for the names or paths given; none means every recipe in `./recipes/`.
pub fn recipe_paths(args: &[String]) -> Result<Vec<PathBuf>, Error> {
    if !args.is_empty() {
        return args.iter().map(|a| assemble::recipe::find(a).map_err(Into::into)).collect();
    }
    let mut found: Vec<PathBuf> = fs_err::read_dir("recipes")
        .map_err(|_| Error::Usage("no recipe given and no `recipes/` directory here".into()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(Error::Usage("no recipe given and `recipes/` holds none".into()));
    }
    Ok(found)
}

/// Every image of the recipes named (or of all in `./recipes/`), each after the recipe it
/// builds on.
pub fn load_recipes(global: &Global, args: &[String]) -> Result<Vec<assemble::recipe::Recipe>, Error> {
    Ok(load_levels(global, args)?.into_iter().flatten().collect())
}

/// The same, in levels of recipes that do not build on each other (`assemble graph`).
pub fn load_levels(global: &Global, args: &[String]) -> Result<Vec<Vec<assemble::recipe::Recipe>>, Error> {
    let given: std::collections::BTreeMap<String, String> = global.vars.iter().cloned().collect();
    let mut all = Vec::new();
    for p in recipe_paths(args)? {
        all.extend(assemble::recipe::load_all_with(&p, &given)?);
    }
    // A value no recipe declares is an error, not a warning: a misspelt name would build
    // the default without anyone noticing.
    if let Some(unknown) = assemble::recipe::unused_variables(&all, &given).first() {
        let names: std::collections::BTreeSet<&str> = all.iter().map(|r| r.name.as_str()).collect();
        let declared: std::collections::BTreeSet<&str> =
            all.iter().flat_map(|r| r.variables.keys().map(String::as_str)).collect();
        let near = declared
            .iter()
            .min_by_key(|d| strsim::levenshtein(unknown, d))
            .filter(|d| strsim::levenshtein(unknown, d) <= 2);
        return Err(Error::Usage(format!(
            "`--var {unknown}=…` is not used: no recipe read declares `{unknown}` in its `variables` (read: {}){}",
            names.into_iter().collect::<Vec<_>>().join(", "),
            near.map(|n| format!("; did you mean `{n}`?")).unwrap_or_default()
        )));
    }
    Ok(assemble::recipe::graph::levels(all)?)
}

/// Writes results on stdout. A closed pipe (`assemble … | head`) ends the command with
/// success, quietly; any other failure to write is an error on stderr.
pub fn out(text: impl AsRef<[u8]>) {
    use std::io::Write;
    let written = super::progress::suspend(|| {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_ref()).and_then(|()| stdout.flush())
    });
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// A spinner on the progress board (stderr, a terminal only); nothing otherwise.
pub fn spinner(_global: &Global, message: String) -> indicatif::ProgressBar {
    let pb = super::progress::add(indicatif::ProgressBar::new_spinner());
    pb.set_message(message);
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}
