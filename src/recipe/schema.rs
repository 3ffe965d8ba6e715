//! The recipe as typed values. Everything here is already validated for shape; checks that
//! need the file system or other layers happen when the build is planned.

use super::diag::Loc;
pub use crate::model::archive::ArchiveKind;
pub use crate::model::compression::{Algorithm, Compression};
use crate::model::digest::Digest;
pub use crate::model::owner::IdRef;
use crate::model::platform::Arch;
pub use crate::model::spec::{AlpineSpec, DebianSpec};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Recipe {
    /// The recipe file as the user named it.
    pub path: PathBuf,
    /// Relative paths in the recipe are relative to this directory.
    pub dir: PathBuf,
    /// `context:` — the directory local files must be inside (default: `dir`), as the
    /// recipe gives it, relative to `dir`.
    pub context: Option<(PathBuf, Loc)>,
    pub name: String,
    pub archs: Vec<Arch>,
    /// Every tag of this image: its own, then the aliases that name it.
    pub tags: Vec<String>,
    /// The tags the recipe gives this image (with the variant's suffix), without aliases.
    pub explicit_tags: Vec<String>,
    /// The variant this image is, if any.
    pub variant: Option<String>,
    /// The variant's tag suffix (empty for the recipe's plain images).
    pub suffix: String,
    /// Where `push` sends it when no `--to` is given: `REGISTRY[/NAMESPACE]`.
    pub registry: Option<String>,
    /// This image's lock file.
    pub lock_path: PathBuf,
    pub variables: BTreeMap<String, String>,
    /// The `--var` values it was read with; a recipe it builds on is read with them too.
    pub given_variables: BTreeMap<String, String>,
    /// Variables declared without a default (`~`) that no `--var` gave: reading works
    /// (`graph`, `tags`), building stops and names them.
    pub unset_variables: Vec<(String, Loc)>,
    /// Where each package name is given (base and layers), for errors found when resolving.
    pub package_locs: BTreeMap<String, Loc>,
    /// Where each Debian suite is named.
    pub suite_locs: BTreeMap<String, Loc>,
    /// Timestamp for every file and for `created`; `SOURCE_DATE_EPOCH` overrides it.
    pub epoch: Option<u64>,
    pub compression: Compression,
    /// `unpack_limit:` — the most bytes one archive or package may expand to.
    pub unpack_limit: u64,
    /// `org.opencontainers.image.*` annotations (from `metadata`) plus free `annotations`.
    pub annotations: BTreeMap<String, String>,
    pub base: Base,
    pub layers: Vec<LayerSpec>,
    pub config: ConfigSpec,
    /// Checks `assemble test` runs against the built image.
    pub tests: Vec<TestSpec>,
    pub loc: Loc,
}

/// One image test from the recipe's `tests:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSpec {
    /// As given, or made from the check (`exists /etc/passwd`).
    pub name: String,
    pub check: Check,
    /// The platforms it applies to (empty: all of the image's).
    pub archs: Vec<Arch>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The path exists, with the kind, mode, owner, group and content given.
    Exists {
        path: String,
        kind: Option<String>,
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
        contains: Option<String>,
    },
    Absent {
        path: String,
    },
    /// The configured user is not root.
    NonRoot,
    /// The platform's layers, compressed, take at most this many bytes.
    MaxSize {
        bytes: u64,
    },
    /// A command in the image (chroot, or qemu-user for other architectures).
    Run {
        argv: Vec<String>,
        exit: i32,
        output: Option<String>,
    },
}

impl Recipe {
    /// The variables a string of this recipe is interpolated with for `arch`: the recipe's
    /// own and the built-ins (`name`, `arch`, `arch_uname`, `os`, `variant`).
    pub fn variables_for(&self, arch: Arch) -> BTreeMap<String, String> {
        let mut vars = self.variables.clone();
        vars.insert("name".into(), self.name.clone());
        vars.insert("arch".into(), arch.name().into());
        vars.insert("arch_uname".into(), arch.uname().into());
        vars.insert("os".into(), "linux".into());
        vars.insert("variant".into(), arch.variant().unwrap_or("").into());
        vars
    }

    /// The tags given to this image as aliases of semver tags (see `recipe::units`).
    pub fn aliases(&self) -> impl Iterator<Item = &String> {
        self.tags.iter().filter(|t| !self.explicit_tags.contains(t))
    }
}

#[derive(Debug, Clone)]
pub enum Base {
    Scratch,
    Debian(DebianSpec),
    Alpine(AlpineSpec),
    /// An image from a registry, its layers reused as they are.
    Image(ImageBase),
}

#[derive(Debug, Clone)]
pub struct ImageBase {
    /// `REGISTRY/REPOSITORY[:TAG][@DIGEST]`, variables already interpolated.
    pub reference: String,
    /// Where packages of application layers come from (its own `packages` list is empty).
    pub packages: Option<Box<Base>>,
    pub loc: Loc,
    /// `base: {recipe: NAME}`: the recipe file whose image this one builds on (the
    /// reference is then `recipe:NAME`).
    pub recipe: Option<std::path::PathBuf>,
}

/// Where a recipe's packages come from.
#[derive(Debug, Clone, Copy)]
pub enum Packages<'a> {
    Debian(&'a DebianSpec),
    Alpine(&'a AlpineSpec),
}

impl Base {
    pub fn packages(&self) -> Option<Packages<'_>> {
        match self {
            Base::Debian(s) => Some(Packages::Debian(s)),
            Base::Alpine(s) => Some(Packages::Alpine(s)),
            Base::Image(i) => i.packages.as_deref().and_then(Base::packages),
            Base::Scratch => None,
        }
    }
}

/// A value that is either the same for every architecture or given per architecture.
#[derive(Debug, Clone)]
pub enum PerArch<T> {
    All(T),
    Each(BTreeMap<Arch, T>),
}

impl<T> PerArch<T> {
    pub fn get(&self, arch: Arch) -> Option<&T> {
        match self {
            PerArch::All(v) => Some(v),
            PerArch::Each(m) => m.get(&arch),
        }
    }
}

/// One application layer, or the content part of the configuration layer.
#[derive(Debug, Clone, Default)]
pub struct Content {
    pub files: Vec<FileSpec>,
    pub trees: Vec<TreeSpec>,
    pub symlinks: Vec<SymlinkSpec>,
    pub dirs: Vec<DirSpec>,
}

#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub name: String,
    /// Distribution packages installed in this layer on top of those below.
    pub packages: Vec<String>,
    pub content: Content,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub enum FileSource {
    Local(PerArch<String>),
    Url {
        url: PerArch<String>,
        sha256: PerArch<Digest>,
    },
    /// `path` out of a registry image, as `COPY --from` takes it.
    Image(ImageFile),
}

/// A file or directory of a registry image.
#[derive(Debug, Clone)]
pub struct ImageFile {
    /// `REGISTRY/REPOSITORY[:TAG][@DIGEST]`, the recipe's variables put in.
    pub reference: String,
    /// An absolute path in the image.
    pub path: String,
    /// The platform it is taken from for every architecture (else the one being built).
    pub platform: Option<Arch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extract {
    No,
    /// Detect from the file name, then from the first bytes.
    Auto,
    As(ArchiveKind),
}

/// Where a pinned download's new versions are announced (`releases:`), for `outdated` and
/// `lock --upgrade`.
#[derive(Debug, Clone)]
pub struct Releases {
    pub feed: ReleaseFeed,
    /// The asset name (GitHub) or the text in the listing, with `{version}` where the version
    /// goes; one per architecture or one for all.
    pub pattern: PerArch<String>,
    /// The recipe variable that holds the version the recipe pins now.
    pub version: String,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseFeed {
    /// A GitHub-releases-style JSON API: `{api}/repos/{repo}/releases`.
    Github { repo: String, api: String },
    /// A page (an HTML index, a text file) that names every version.
    Listing(String),
}

impl std::fmt::Display for ReleaseFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReleaseFeed::Github { repo, api } => write!(f, "{api}/repos/{repo}/releases"),
            ReleaseFeed::Listing(url) => f.write_str(url),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FileSpec {
    /// Where new versions of a pinned download are announced.
    pub releases: Option<Releases>,
    pub source: FileSource,
    pub to: Option<String>,
    pub mode: Option<u32>,
    pub owner: Option<Owner>,
    pub extract: Extract,
    pub strip_components: u32,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct TreeSpec {
    pub path: String,
    pub to: String,
    pub owner: Option<Owner>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct SymlinkSpec {
    pub path: String,
    pub target: String,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct DirSpec {
    pub path: String,
    pub mode: Option<u32>,
    pub owner: Option<Owner>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub user: IdRef,
    pub group: Option<IdRef>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct TemplateSpec {
    pub src: String,
    pub to: String,
    pub mode: Option<u32>,
    pub owner: Option<Owner>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub enum SecretSource {
    Env(String),
    File(String),
}

#[derive(Debug, Clone)]
pub struct SecretSpec {
    pub source: SecretSource,
    pub to: String,
    pub mode: u32,
    pub owner: Option<Owner>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct UserSpec {
    pub name: String,
    pub uid: u32,
    /// Primary group; when absent a group of the user's name is used or created (gid = uid).
    pub group: Option<IdRef>,
    pub groups: Vec<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
    pub gecos: String,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval_ns: Option<u64>,
    pub timeout_ns: Option<u64>,
    pub start_period_ns: Option<u64>,
    pub start_interval_ns: Option<u64>,
    pub retries: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct ConfigSpec {
    pub content: Content,
    pub templates: Vec<TemplateSpec>,
    pub secrets: Vec<SecretSpec>,
    pub groups: Vec<GroupSpec>,
    pub users: Vec<UserSpec>,
    pub user: Option<(String, Loc)>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
}
