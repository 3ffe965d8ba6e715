//! Where a recipe's packages come from: a Debian-format archive or Alpine repositories, as
//! the recipe says it (what a source makes of it lives in `assemble::source`).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The recipe's `base: {debian: …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianSpec {
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub mirror: Option<String>,
    pub packages: Vec<String>,
    pub essential: bool,
    pub recommends: bool,
    pub keyring: Vec<PathBuf>,
    pub check_valid_until: bool,
    pub merged_usr: bool,
    /// `update-alternatives` choices: name → path, overriding the highest priority.
    pub alternatives: BTreeMap<String, String>,
    /// `mirror` per architecture where it differs (Ubuntu's ports for arm64, say).
    pub arch_mirrors: BTreeMap<crate::platform::Arch, String>,
    /// Further archives beside this one (`sources:`), each with its own key.
    pub sources: Vec<DebianSource>,
}

/// Another Debian-format archive of a recipe (`base.debian.sources[]`): a third-party
/// repository or a second distribution's archive, with apt's pin priorities.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DebianSource {
    pub mirror: String,
    pub arch_mirrors: BTreeMap<crate::platform::Arch, String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// The OpenPGP keyrings its `InRelease` must be signed by (required).
    pub keyring: Vec<PathBuf>,
    /// apt's pin priority for its packages (default 500, the main archive's).
    pub priority: i32,
    /// Packages (names, `*` wildcards) taken from this archive whatever the others offer
    /// (apt's 990 pin for them).
    pub packages: Vec<String>,
}

/// apt's default pin priority.
pub const DEFAULT_PRIORITY: i32 = 500;
/// The priority of a package pinned to one archive by name.
pub const PINNED_PRIORITY: i32 = 990;

/// The recipe's `base: {alpine: …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlpineSpec {
    /// `(tag, location)`: a URL or a local directory holding `<arch>/APKINDEX.tar.gz`.
    pub repositories: Vec<(Option<String>, String)>,
    pub keys: Vec<PathBuf>,
    pub packages: Vec<String>,
}
