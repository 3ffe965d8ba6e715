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
}

/// The recipe's `base: {alpine: …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlpineSpec {
    /// `(tag, location)`: a URL or a local directory holding `<arch>/APKINDEX.tar.gz`.
    pub repositories: Vec<(Option<String>, String)>,
    pub keys: Vec<PathBuf>,
    pub packages: Vec<String>,
}
