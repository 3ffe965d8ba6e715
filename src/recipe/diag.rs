//! Recipe diagnostics: a message tied to `file:line:col`, with the offending line and a hint.

use super::yaml::Pos;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a recipe value came from. Cheap to clone; kept on values whose problems can only
/// be found later (a missing file, a duplicate destination) so those errors still point home.
#[derive(Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<Source>,
    pub pos: Pos,
}

/// A recipe file's path (as the user named it) and text.
#[derive(PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Loc {
    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.path.display(), self.pos.line, self.pos.col)
    }
}

impl fmt::Debug for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An error in a recipe. `Display` gives the one-line form; [`Diagnostic::render`] adds the
/// source line with a caret and the hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub loc: Loc,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic { loc, message: message.into(), hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The source line under the message, with a caret under the column.
    pub fn snippet(&self) -> Option<String> {
        let line = self.loc.file.text.lines().nth(self.loc.pos.line.checked_sub(1)?)?;
        let number = self.loc.pos.line.to_string();
        let pad = " ".repeat(number.len());
        let caret = " ".repeat(self.loc.pos.col.saturating_sub(1));
        Some(format!("{pad} |\n{number} | {line}\n{pad} | {caret}^"))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// The known name closest to `unknown`, when it is close enough to be a likely typo.
pub fn nearest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}
