//! The store's `index.json`, and what it remembers of earlier ships. Beside an image's tags
//! (`NAME:TAG` entries, which engines and skopeo read), every ship adds an untagged history
//! entry for the index it sent: `dev.assemble.shipped: NAME`, `dev.assemble.version: N` (one
//! more than that name's newest) and `dev.assemble.tags: T1,T2`. A rollback makes an earlier
//! one current again from these; a prune keeps every tagged image, the newest `keep` versions
//! of each name and the attestations of what it keeps, and the server then removes every blob
//! nothing kept refers to.

use super::error::{Error, Result};
use crate::oci::referrer::{INDEX_ANNOTATION, relist};
use crate::oci::{Doc, MEDIA_INDEX, REF_NAME, Referrer};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The image name a history entry is of.
pub const SHIPPED: &str = "dev.assemble.shipped";
/// Its version number among that name's ships (1, 2, …).
pub const VERSION: &str = "dev.assemble.version";
/// The tags it was shipped with, comma-separated.
pub const TAGS: &str = "dev.assemble.tags";

/// One shipped version of an image, as the store remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    pub name: String,
    pub version: u64,
    pub digest: String,
    pub tags: Vec<String>,
    /// Its tags point at it now.
    pub current: bool,
}

/// What a ship (or a rollback) changes in the store's listing.
pub struct Update<'a> {
    /// `NAME:TAG` for each tag, pointed at `index`.
    pub names: &'a [String],
    pub index: &'a Doc,
    pub referrers: &'a [Referrer],
    /// Record `index` as the newest version of this name, shipped with these tags (not for a
    /// rollback, which makes an older one current).
    pub record: Option<(&'a str, &'a [String])>,
    /// Keep only this many versions of each name (a prune).
    pub keep: Option<usize>,
}

/// The store's listing, parsed; an error names what is wrong with it.
pub fn entries(host: &str, current: &[u8]) -> Result<(Value, Vec<Value>)> {
    let v: Value = serde_json::from_slice(current).map_err(|e| Error::Protocol {
        host: host.into(),
        message: format!("the store's index.json is not JSON ({e}); repair or move it"),
    })?;
    if !v.is_object() {
        return Err(Error::Protocol {
            host: host.into(),
            message: "the store's index.json is not a JSON object; repair or move it".into(),
        });
    }
    let list = v["manifests"].as_array().cloned().unwrap_or_default();
    Ok((v, list))
}

/// The store's `index.json` after `u`.
pub fn merged_index(host: &str, current: &[u8], u: &Update<'_>) -> Result<Vec<u8>> {
    let (mut v, list) = entries(host, current)?;
    let old = list.clone();
    let mut kept = relist(list, u.names, u.index, u.referrers);
    let index_digest = u.index.digest.to_string();
    if let Some((name, tags)) = u.record {
        let newest = history(&kept).filter(|(n, _, _)| *n == name).map(|(_, v, _)| v).max().unwrap_or(0);
        let next = newest.checked_add(1).ok_or_else(|| Error::Protocol {
            host: host.into(),
            message: format!("the store's history of `{name}` is at version {newest}, the last there can be; repair or move its index.json"),
        })?;
        kept.retain(|m| !(shipped_name(m) == Some(name) && m["digest"] == index_digest.as_str()));
        let mut d = u.index.descriptor();
        d["annotations"] = json!({SHIPPED: name, VERSION: next.to_string(), TAGS: tags.join(",")});
        kept.push(d);
    }
    let tagged: BTreeSet<String> = kept
        .iter()
        .filter(|m| m["annotations"][REF_NAME].is_string())
        .filter_map(|m| m["digest"].as_str().map(String::from))
        .collect();
    if let Some(keep) = u.keep {
        let mut newest: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (name, version, _) in history(&kept) {
            newest.entry(name.to_string()).or_default().push(version);
        }
        for versions in newest.values_mut() {
            versions.sort_unstable_by(|a, b| b.cmp(a));
            versions.truncate(keep);
        }
        kept.retain(|m| match (shipped_name(m), version_of(m)) {
            (Some(name), Some(version)) => {
                newest.get(name).is_some_and(|v| v.contains(&version))
                    || m["digest"].as_str().is_some_and(|d| tagged.contains(d))
            }
            _ => true,
        });
    }
    // An attestation stays listed while the image it is about does.
    let live: BTreeSet<String> = tagged.into_iter().chain(history(&kept).map(|(_, _, d)| d.to_string())).collect();
    fn about(m: &Value) -> Option<&str> {
        m["annotations"][INDEX_ANNOTATION].as_str().filter(|_| m["artifactType"].is_string())
    }
    for m in old {
        if about(&m).is_some_and(|i| live.contains(i)) && !kept.iter().any(|k| k["digest"] == m["digest"]) {
            kept.push(m);
        }
    }
    kept.retain(|m| about(m).is_none_or(|i| live.contains(i)));
    v["schemaVersion"] = json!(2);
    v["mediaType"] = json!(MEDIA_INDEX);
    v["manifests"] = Value::Array(kept);
    Ok(serde_json::to_vec(&v).expect("json"))
}

fn shipped_name(m: &Value) -> Option<&str> {
    m["annotations"][SHIPPED].as_str()
}

fn version_of(m: &Value) -> Option<u64> {
    m["annotations"][VERSION].as_str()?.parse().ok()
}

/// Every history entry: name, version, index digest.
fn history(list: &[Value]) -> impl Iterator<Item = (&str, u64, &str)> {
    list.iter().filter_map(|m| Some((shipped_name(m)?, version_of(m)?, m["digest"].as_str()?)))
}

/// The versions of `name` the listing remembers, newest first.
pub fn versions(list: &[Value], name: &str) -> Vec<Version> {
    let current: BTreeSet<&str> = list
        .iter()
        .filter(|m| {
            m["annotations"][REF_NAME].as_str().is_some_and(|r| r.split_once(':').is_some_and(|(n, _)| n == name))
        })
        .filter_map(|m| m["digest"].as_str())
        .collect();
    let mut out: Vec<Version> = list
        .iter()
        .filter(|m| shipped_name(m) == Some(name))
        .filter_map(|m| {
            let digest = m["digest"].as_str()?.to_string();
            digest.parse::<crate::model::digest::Digest>().ok()?;
            // Tags as a tag may be written; a version without one cannot be made current.
            let tags: Vec<&str> = m["annotations"][TAGS].as_str().unwrap_or("").split(',').collect();
            if tags.iter().any(|t| !crate::recipe::valid_tag(t)) {
                return None;
            }
            let tags = tags.into_iter();
            Some(Version {
                name: name.into(),
                version: version_of(m)?,
                current: current.contains(digest.as_str()),
                tags: tags.map(String::from).collect(),
                digest,
            })
        })
        .collect();
    out.sort_by_key(|v| std::cmp::Reverse(v.version));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u8) -> Doc {
        Doc::new(&json!({"n": n}), MEDIA_INDEX)
    }

    fn ship(listing: &[u8], name: &str, n: u8, keep: Option<usize>) -> Vec<u8> {
        let tags = vec!["1".to_string()];
        let names = vec![format!("{name}:1")];
        let u = Update { names: &names, index: &doc(n), referrers: &[], record: Some((name, &tags)), keep };
        merged_index("h", listing, &u).unwrap()
    }

    #[test]
    fn ships_are_remembered_newest_first_and_a_prune_keeps_the_newest() {
        let mut listing = br#"{"manifests":[]}"#.to_vec();
        for n in 1..=4 {
            listing = ship(&listing, "web", n, None);
        }
        listing = ship(&listing, "db", 9, None);
        // Shipping version 2's index again makes it the newest, not a second entry.
        listing = ship(&listing, "web", 2, None);
        let (_, list) = entries("h", &listing).unwrap();
        let web: Vec<(u64, String, bool)> =
            versions(&list, "web").into_iter().map(|v| (v.version, v.digest, v.current)).collect();
        let d = |n: u8| doc(n).digest.to_string();
        assert_eq!(web, vec![(5, d(2), true), (4, d(4), false), (3, d(3), false), (1, d(1), false)]);
        let pruned = ship(&listing, "web", 5, Some(2));
        let (_, list) = entries("h", &pruned).unwrap();
        let web: Vec<u64> = versions(&list, "web").into_iter().map(|v| v.version).collect();
        assert_eq!(web, vec![6, 5], "the two newest");
        assert_eq!(versions(&list, "db").len(), 1, "another name keeps its own");
    }

    #[test]
    fn a_store_index_that_is_not_an_object_is_an_error_not_a_panic() {
        let index = doc(1);
        let u = Update { names: &["n:1".into()], index: &index, referrers: &[], record: None, keep: None };
        for bad in [&b"[]"[..], b"3", b"\"x\""] {
            let e = merged_index("h", bad, &u).unwrap_err();
            assert!(e.to_string().contains("not a JSON object"), "{e}");
        }
    }
}
