//! `assemble lock --upgrade` for pinned downloads that say where their releases are announced
//! (`releases:`): the newest release's file is downloaded for every architecture (hashed as it
//! arrives), and the recipe file is rewritten in place — the version variable's value, each
//! architecture's sha256, and a URL that names the version literally — so that the build that
//! follows pins them in the lock. The rewrite touches those strings only: comments, order and
//! formatting stay as the author wrote them.

use crate::model::digest::Digest;
use crate::model::platform::Arch;
use crate::recipe::{FileSource, Recipe, vars};
use crate::resolve::outdated;
use crate::source::fetch;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Resolve(#[from] crate::resolve::Error),
    #[error(transparent)]
    Fetch(#[from] fetch::Error),
    #[error("cannot upgrade `{variable}` in `{path}`: {message}")]
    Edit { path: std::path::PathBuf, variable: String, message: String },
    #[error("cannot rewrite `{path}`")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One version variable moved, and what its downloads now are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub variable: String,
    pub from: String,
    pub to: String,
    /// Each architecture's new download and its sha256.
    pub downloads: Vec<(Arch, String, Digest)>,
}

/// Moves every tracked download of `recipe` whose feed has a newer release to it, rewriting
/// the recipe file; returns what moved (nothing: the file is untouched).
pub fn upgrade_downloads(recipe: &Recipe, store: &Store) -> Result<Vec<Moved>, Error> {
    let mut moved = Vec::new();
    let mut text =
        fs_err::read_to_string(&recipe.path).map_err(|source| Error::Io { path: recipe.path.clone(), source })?;
    for (releases, newest) in outdated::newer_downloads(recipe)? {
        let var = releases.version.clone();
        let edit = |message: String| Error::Edit { path: recipe.path.clone(), variable: var.clone(), message };
        let old = recipe.variables.get(&var).cloned().unwrap_or_default();
        // What to download (URL, origin), and per download its architecture and the digest
        // it replaces; URLs that name the version themselves, as written, and their new text.
        let (mut wanted, mut replacing, mut replace) = (Vec::new(), Vec::new(), Vec::new());
        for f in outdated::tracked(recipe).filter(|f| f.releases.as_ref().is_some_and(|r| r.version == var)) {
            let FileSource::Url { url, sha256 } = &f.source else { continue };
            for &arch in &recipe.archs {
                let (Some(template), Some(sha)) = (url.get(arch), sha256.get(arch)) else { continue };
                let before = recipe.variables_for(arch);
                let mut after = before.clone();
                after.insert(var.clone(), newest.clone());
                let old_url = vars::interpolate(template, &before).map_err(&edit)?;
                let mut new_url = vars::interpolate(template, &after).map_err(&edit)?;
                if new_url == old_url {
                    // The URL names the version itself (in the recipe or a variable's default).
                    new_url = old_url.replace(&old, &newest);
                    if new_url == old_url {
                        return Err(edit(format!("the {arch} download `{old_url}` does not name version {old}")));
                    }
                    replace.push((old_url, new_url.clone()));
                }
                wanted.push((new_url, format!("{} ({arch})", f.loc)));
                replacing.push((arch, *sha));
            }
        }
        let digests = fetch::fetch_unpinned(store, &wanted)?;
        let mut downloads = Vec::new();
        for (((arch, old_sha), (url, _)), digest) in replacing.iter().zip(&wanted).zip(&digests) {
            replace.push((old_sha.hex(), digest.hex()));
            downloads.push((*arch, url.clone(), *digest));
        }
        text = set_variable(&text, &var, &old, &newest).ok_or_else(|| {
            edit(format!("no line `{var}: {old}` to change (the version must be the variable's default in the recipe)"))
        })?;
        for (from, to) in &replace {
            if !text.contains(from.as_str()) {
                return Err(edit(format!(
                    "`{from}` is not written in the recipe (given with --var?), so it cannot be changed"
                )));
            }
            text = text.replace(from.as_str(), to);
        }
        moved.push(Moved { variable: var.clone(), from: old, to: newest, downloads });
    }
    if !moved.is_empty() {
        let dir = recipe.path.parent().unwrap_or(std::path::Path::new("."));
        let io = |source| Error::Io { path: recipe.path.clone(), source };
        let mut tmp = tempfile::Builder::new().prefix(".upgrade-").suffix(".yml").tempfile_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
        check_rewrite(recipe, tmp.path(), &moved)?;
        let mode = fs_err::metadata(&recipe.path).map_err(io)?.permissions();
        tmp.as_file().set_permissions(mode).map_err(io)?;
        tmp.persist(&recipe.path).map_err(|e| io(e.error))?;
    }
    Ok(moved)
}

/// The rewritten recipe (at `path`), read as a build reads it, must give each moved variable
/// its new value and each download its new URL and digest; else nothing is written.
fn check_rewrite(recipe: &Recipe, path: &std::path::Path, moved: &[Moved]) -> Result<(), Error> {
    let wrong = |message: String| Error::Edit {
        path: recipe.path.clone(),
        variable: moved.iter().map(|m| m.variable.as_str()).collect::<Vec<_>>().join(", "),
        message: format!("{message}; the recipe was not changed"),
    };
    let units = crate::recipe::load_all_with(path, &recipe.given_variables)
        .map_err(|e| wrong(format!("the rewritten recipe does not read: {e}")))?;
    let Some(after) = units.iter().find(|u| u.variant == recipe.variant) else {
        return Err(wrong("the rewritten recipe lost this image".into()));
    };
    for m in moved {
        if after.variables.get(&m.variable) != Some(&m.to) {
            return Err(wrong(format!("`{}` does not read as {} after the rewrite", m.variable, m.to)));
        }
    }
    let mut wanted: Vec<(Arch, String, Digest)> = moved.iter().flat_map(|m| m.downloads.iter().cloned()).collect();
    for f in outdated::tracked(after)
        .filter(|f| moved.iter().any(|m| f.releases.as_ref().is_some_and(|r| r.version == m.variable)))
    {
        let FileSource::Url { url, sha256 } = &f.source else { continue };
        for &arch in &after.archs {
            let (Some(template), Some(sha)) = (url.get(arch), sha256.get(arch)) else { continue };
            let u = vars::interpolate(template, &after.variables_for(arch)).map_err(&wrong)?;
            match wanted.iter().position(|(a, wu, wd)| *a == arch && *wu == u && wd == sha) {
                Some(i) => {
                    wanted.remove(i);
                }
                None => return Err(wrong(format!("the {arch} download reads as `{u}` {sha} after the rewrite"))),
            }
        }
    }
    Ok(())
}

/// `text` with the value of `VAR: OLD` in the top-level `variables:` mapping (block style,
/// quoted or not, a comment after it kept; or one flow-style line) changed to `new`; `None`
/// without such an entry.
fn set_variable(text: &str, var: &str, old: &str, new: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut done = false;
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let top_level = !line.starts_with([' ', '\t', '#', '\n', '\r']);
        if top_level {
            inside = false;
        }
        if let Some(rest) = line.strip_prefix("variables:").filter(|_| top_level) {
            let flow = rest.trim_start();
            if flow.starts_with('{') && !done {
                // `variables: {a: 1, VAR: OLD}`
                for quote in ["", "\"", "'"] {
                    for sep in ["{", ", ", ","] {
                        let from = format!("{sep}{var}: {quote}{old}{quote}");
                        if let Some(i) = line.find(&from) {
                            let to = format!("{sep}{var}: {quote}{new}{quote}");
                            out.push_str(&line[..i]);
                            out.push_str(&to);
                            out.push_str(&line[i + from.len()..]);
                            done = true;
                            break;
                        }
                    }
                    if done {
                        break;
                    }
                }
                if done {
                    continue;
                }
            }
            inside = true;
            out.push_str(line);
            continue;
        }
        let trimmed = line.trim_start();
        if inside
            && !done
            && let Some(rest) = trimmed.strip_prefix(var).and_then(|r| r.trim_start().strip_prefix(':'))
        {
            let value = rest.split(" #").next().unwrap_or(rest).trim().trim_matches(['"', '\'']);
            if value == old {
                let at = line.len() - rest.len();
                out.push_str(&line[..at]);
                out.push_str(&rest.replacen(old, new, 1));
                done = true;
                continue;
            }
        }
        out.push_str(line);
    }
    done.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_variable_s_value_changes() {
        let text = "variables:\n  tool_version: \"1.9.0\"   # pinned\n  other: 1.9.0\n";
        let got = set_variable(text, "tool_version", "1.9.0", "1.10.0").unwrap();
        assert_eq!(got, "variables:\n  tool_version: \"1.10.0\"   # pinned\n  other: 1.9.0\n");
        assert_eq!(set_variable(text, "tool_version", "2.0", "3.0"), None);
        assert_eq!(set_variable(text, "tool", "1.9.0", "3.0"), None, "a longer name is another variable");
        // Only the top-level `variables:` mapping: a `version` under `metadata` stays.
        let text = "metadata: {version: \"1.0.0\"}\nlabels:\n  version: 1.0.0\nvariables:\n  version: 1.0.0\n";
        let got = set_variable(text, "version", "1.0.0", "1.2.0").unwrap();
        assert_eq!(got, "metadata: {version: \"1.0.0\"}\nlabels:\n  version: 1.0.0\nvariables:\n  version: 1.2.0\n");
        let flow = "variables: {name: x, version: \"1.0.0\"}\n";
        assert_eq!(
            set_variable(flow, "version", "1.0.0", "1.2.0").unwrap(),
            "variables: {name: x, version: \"1.2.0\"}\n"
        );
    }
}
