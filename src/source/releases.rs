//! Where new versions of a pinned download are announced: a GitHub-releases-style JSON API
//! (`{api}/repos/OWNER/REPO/releases`: every release that is neither a draft nor a
//! pre-release and has an asset of each pattern's name) or a page that names them (every
//! version the pattern matches, for each architecture's pattern). Versions are ordered as
//! semver orders them (numeric parts numerically, a pre-release before its release); a version
//! with letters in it is a pre-release and is never offered.

use crate::model::text::redact;
use crate::recipe::ReleaseFeed;
use crate::source::fetch;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// The largest answer taken from a releases API or a listing page.
const MAX_FEED: u64 = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fetch(#[from] fetch::Error),
    #[error("{feed}: {message}")]
    Feed { feed: String, message: String },
}

/// Every released version `feed` offers for all of `patterns` (`{version}` where it goes).
pub fn versions(feed: &ReleaseFeed, patterns: &[&str], origin: &str) -> Result<Vec<String>, Error> {
    let shown = redact(&feed.to_string());
    let bad = |message: String| Error::Feed { feed: shown.clone(), message };
    let url = match feed {
        ReleaseFeed::Github { .. } => format!("{feed}?per_page=100"),
        ReleaseFeed::Listing(url) => url.clone(),
    };
    let body = fetch::get_bounded(&url, origin, MAX_FEED)?;
    let mut found: Vec<String> = match feed {
        ReleaseFeed::Github { .. } => {
            let v: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("the answer is not JSON: {e}")))?;
            let releases = v.as_array().ok_or_else(|| bad("the answer is not a list of releases".into()))?;
            releases
                .iter()
                .filter(|r| r["draft"] != true && r["prerelease"] != true)
                .filter_map(|r| {
                    let tag = r["tag_name"].as_str()?;
                    let version = tag.strip_prefix('v').unwrap_or(tag);
                    let assets: BTreeSet<&str> =
                        r["assets"].as_array()?.iter().filter_map(|a| a["name"].as_str()).collect();
                    patterns
                        .iter()
                        .all(|p| assets.contains(p.replace("{version}", version).as_str()))
                        .then(|| version.to_string())
                })
                .collect()
        }
        ReleaseFeed::Listing(_) => {
            let text = String::from_utf8_lossy(&body);
            let mut sets = patterns.iter().map(|p| matches(&text, p));
            let first = sets.next().unwrap_or_default();
            sets.fold(first, |acc, s| acc.intersection(&s).cloned().collect()).into_iter().collect()
        }
    };
    found.retain(|v| is_release(v));
    found.sort_by(|a, b| compare(a, b));
    found.dedup();
    Ok(found)
}

/// The longest version taken from a listing.
const MAX_VERSION: usize = 64;

/// The versions `pattern` (`PREFIX{version}SUFFIX`, PREFIX not empty) matches in `text`.
pub fn matches(text: &str, pattern: &str) -> BTreeSet<String> {
    let (prefix, suffix) = pattern.split_once("{version}").unwrap_or((pattern, ""));
    let mut out = BTreeSet::new();
    let version_char = |c: char| c.is_ascii_alphanumeric() || "._+-~".contains(c);
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        // A version is short: a long run of version characters is not looked into further
        // (a page of `tool_1111…` must not cost quadratic time).
        // Only the first MAX_VERSION + 1 characters are looked at (version characters are ASCII,
        // so a run cut at MAX_VERSION ends on a character boundary).
        let run = rest
            .char_indices()
            .take(MAX_VERSION + 1)
            .find(|&(_, c)| !version_char(c))
            .map_or(rest.len(), |(i, _)| i)
            .min(MAX_VERSION);
        // The longest version that the suffix follows and that ends in a digit or letter.
        let found = (1..=run)
            .rev()
            .find(|&n| rest[n..].starts_with(suffix) && rest[..n].ends_with(|c: char| c.is_ascii_alphanumeric()));
        if let Some(n) = found {
            out.insert(rest[..n].to_string());
        }
    }
    out
}

/// A release: digits and dots, nothing that marks a pre-release.
pub fn is_release(v: &str) -> bool {
    !v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit()) && v.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Semver's order for versions like `1.10.2`: numeric parts numerically, then a version with a
/// pre-release part (`-rc1`) before the same one without.
pub fn compare(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (Vec<u64>, Option<String>) {
        let (core, pre) = match v.split_once(['-', '+', '~']) {
            Some((c, p)) => (c, Some(p.to_string())),
            None => (v, None),
        };
        (core.split('.').map(|p| p.parse().unwrap_or(0)).collect(), pre)
    };
    let (ca, pa) = split(a);
    let (cb, pb) = split(b);
    let width = ca.len().max(cb.len());
    let pad = |mut c: Vec<u64>| {
        c.resize(width, 0);
        c
    };
    pad(ca).cmp(&pad(cb)).then_with(|| match (pa, pb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listing page of one version character repeated (256 KiB of `v` for the pattern
    /// `v{version}.tar`): every position starts a match, and each used to scan the whole rest
    /// of the page (3·10^10 steps); now each looks at most MAX_VERSION + 1 characters ahead.
    #[test]
    fn a_page_of_one_version_character_is_read_in_linear_time() {
        assert!(matches(&"v".repeat(256 << 10), "v{version}.tar").is_empty());
        let page = format!("{}v1.2.3.tar", "v".repeat(1000));
        assert!(matches(&page, "v{version}.tar").contains("1.2.3"), "a version after the run is still found");
    }

    #[test]
    fn versions_order_as_semver_orders_them() {
        let mut v = vec!["1.9.0", "1.10.0", "1.2", "1.10.0-rc1", "0.99.12"];
        v.sort_by(|a, b| compare(a, b));
        assert_eq!(v, ["0.99.12", "1.2", "1.9.0", "1.10.0-rc1", "1.10.0"]);
        assert!(is_release("1.90.6") && !is_release("2.0.0-rc1") && !is_release("v1") && !is_release(""));
    }

    #[test]
    fn a_listing_names_versions_between_the_pattern_s_parts() {
        let page = r#"<a href="tool_1.9.0_amd64.tgz">x</a> <a href="tool_1.10.0_amd64.tgz">
            tool_1.10.0_arm64.tgz tool_2.0.0-rc1_amd64.tgz tool_.tgz tool-4.4.tar.gz"#;
        let got: Vec<String> = matches(page, "tool_{version}_amd64.tgz").into_iter().collect();
        assert_eq!(got, ["1.10.0", "1.9.0", "2.0.0-rc1"]);
        let dotted: Vec<String> = matches(page, "tool-{version}.tar.gz").into_iter().collect();
        assert_eq!(dotted, ["4.4"], "a suffix that starts with a dot is not taken into the version");
    }
}
