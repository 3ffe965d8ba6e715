//! The shape of the code, checked: arrows between source files point one way (no file-level
//! import cycle inside `src/`, `super::` read as Rust reads it, test modules aside), no source
//! file is over 800 lines and no function over 150, and the CLI stays free of the library's
//! internals (docs/architecture.md says why).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.insert(p.clone(), std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

/// The text without comments, string literals and `#[cfg(test)]` items (their `super::`
/// names the module they are in, not the file's parent).
fn code(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if src[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if src[i..].starts_with("/*") {
            i += src[i..].find("*/").map_or(b.len() - i, |e| e + 2);
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if src[i..].starts_with("#[cfg(test)]") {
            // Skip the attribute and the item it marks, braces balanced.
            let open = src[i..].find('{').map_or(b.len(), |o| i + o);
            let mut depth = 0;
            let mut j = open;
            while j < b.len() {
                match b[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
        } else {
            let c = src[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The module path of a file: `src/a/b.rs` → [a, b]; `src/a/mod.rs` → [a].
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The file of the longest prefix of `segs` that is a module.
fn file_for(root: &Path, files: &BTreeMap<PathBuf, String>, segs: &[String]) -> Option<PathBuf> {
    (1..=segs.len()).rev().find_map(|k| {
        let base = segs[..k].iter().fold(root.to_path_buf(), |p, s| p.join(s));
        [base.with_extension("rs"), base.join("mod.rs")].into_iter().find(|c| files.contains_key(c))
    })
}

/// Every path a `use` names, with `{…}` groups expanded.
fn expand(prefix: &[String], tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open].split("::").filter(|s| !s.is_empty()).map(String::from).collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let (mut parts, mut depth, mut cur) = (Vec::new(), 0, String::new());
        for ch in inner.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if ch == ',' && depth == 0 {
                parts.push(std::mem::take(&mut cur));
            } else {
                cur.push(ch);
            }
        }
        parts.push(cur);
        let base: Vec<String> = prefix.iter().cloned().chain(head).collect();
        return parts.iter().filter(|p| !p.trim().is_empty()).flat_map(|p| expand(&base, p)).collect();
    }
    let tree = tree.split(" as ").next().unwrap_or(tree);
    vec![
        prefix
            .iter()
            .cloned()
            .chain(tree.split("::").map(|s| s.trim().to_string()))
            .filter(|s| s != "self" && !s.is_empty())
            .collect(),
    ]
}

/// File-level import edges among the crate's sources.
fn edges(root: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let files = sources(root);
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = BTreeMap::new();
    for (file, src) in &files {
        let src = code(src);
        let me = module_of(root, file);
        let kids: BTreeSet<String> = src
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let l = l.strip_prefix("pub(crate) ").or_else(|| l.strip_prefix("pub ")).unwrap_or(l);
                l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')).map(|n| n.trim().to_string())
            })
            .collect();
        let mut paths: Vec<Vec<String>> = Vec::new();
        for stmt in src.split(';') {
            let Some(rest) = stmt.trim().strip_prefix("pub use ").or_else(|| stmt.trim().strip_prefix("use ")) else {
                continue;
            };
            let first = rest.split("::").next().unwrap_or("").trim();
            if ["crate", "super", "self"].contains(&first) || kids.contains(first) {
                paths.extend(expand(&[], rest));
            }
        }
        // Paths written in place (`crate::a::b`, `super::c`, `kid::f`).
        for (i, _) in src.match_indices("::") {
            let start = src[..i].rfind(|c: char| !(ident(c) || c == ':')).map_or(0, |s| s + 1);
            let end = src[i..].find(|c: char| !(ident(c) || c == ':')).map_or(src.len(), |e| i + e);
            let p: Vec<String> = src[start..end].split("::").filter(|s| !s.is_empty()).map(String::from).collect();
            if p.first().is_some_and(|f| f == "crate" || f == "super" || kids.contains(f)) {
                paths.push(p);
            }
        }
        let mut to = BTreeSet::new();
        for p in paths {
            let segs: Vec<String> = match p.first().map(String::as_str) {
                Some("crate") => p[1..].to_vec(),
                Some("super") => {
                    let ups = p.iter().take_while(|s| *s == "super").count();
                    me[..me.len().saturating_sub(ups)].iter().cloned().chain(p[ups..].iter().cloned()).collect()
                }
                Some("self") => me.iter().cloned().chain(p[1..].iter().cloned()).collect(),
                _ => me.iter().cloned().chain(p.iter().cloned()).collect(),
            };
            if let Some(t) = file_for(root, &files, &segs).filter(|t| t != file) {
                to.insert(t);
            }
        }
        out.insert(file.clone(), to);
    }
    out
}

/// Strongly connected components of more than one file.
fn cycles(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    // Files that reach each other, found by reachability (small graphs: a few hundred files).
    let reach = |from: &PathBuf| -> BTreeSet<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(f) = stack.pop() {
            for t in edges.get(&f).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    stack.push(t.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&PathBuf, BTreeSet<PathBuf>> = edges.keys().map(|f| (f, reach(f))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for f in edges.keys() {
        if done.contains(f) || !reached[f].contains(f) {
            continue;
        }
        let comp: Vec<PathBuf> =
            edges.keys().filter(|g| reached[f].contains(*g) && reached[*g].contains(f)).cloned().collect();
        done.extend(comp.iter().cloned());
        out.push(comp);
    }
    out
}

#[test]
fn source_files_import_each_other_one_way() {
    let root = common_root().join("src");
    let found = cycles(&edges(&root));
    let shown: Vec<String> = found
        .iter()
        .map(|c| c.iter().map(|f| f.strip_prefix(&root).unwrap().display().to_string()).collect::<Vec<_>>().join(" "))
        .collect();
    assert!(shown.is_empty(), "file-level import cycles:\n{}", shown.join("\n"));
    let model = common_root().join("crates/model/src");
    assert!(cycles(&edges(&model)).is_empty(), "the model crate has an import cycle");
}

/// The checker finds a cycle where there is one (a child that names its parent's item while
/// the parent names the child's), and none in a test module's `super::`.
#[test]
fn the_cycle_checker_sees_parent_and_child_cycles() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub mod b;\npub struct T;\npub fn f() { b::g() }\n").unwrap();
    std::fs::write(src.join("a/b.rs"), "use super::T;\npub fn g() {}\n#[cfg(test)]\nmod tests { use super::*; }\n")
        .unwrap();
    assert_eq!(cycles(&edges(&src)).len(), 1);
    std::fs::write(src.join("a/b.rs"), "pub fn g() {}\n#[cfg(test)]\nmod tests { use super::*; }\n").unwrap();
    assert!(cycles(&edges(&src)).is_empty());
}

#[test]
fn no_file_over_800_lines_and_no_function_over_150() {
    let mut long_files = Vec::new();
    let mut long_fns = Vec::new();
    for dir in ["src", "crates/model/src"] {
        for (file, src) in sources(&common_root().join(dir)) {
            let name = file.strip_prefix(common_root()).unwrap().display().to_string();
            let lines: Vec<&str> = src.lines().collect();
            if lines.len() > 800 {
                long_files.push(format!("{name}: {} lines", lines.len()));
            }
            let mut i = 0;
            while i < lines.len() {
                let l = lines[i];
                let indent = l.len() - l.trim_start().len();
                let t = l.trim_start();
                let t = t
                    .strip_prefix("pub(crate) ")
                    .or_else(|| t.strip_prefix("pub(super) "))
                    .or_else(|| t.strip_prefix("pub "))
                    .unwrap_or(t);
                let t = t.strip_prefix("async ").unwrap_or(t);
                if t.starts_with("fn ") && !l.trim_end().ends_with(';') {
                    let end = (i + 1..lines.len())
                        .find(|&j| {
                            lines[j].starts_with(&format!("{}}}", " ".repeat(indent)))
                                && lines[j].len() - lines[j].trim_start().len() == indent
                        })
                        .unwrap_or(lines.len());
                    if end - i + 1 > 150 {
                        long_fns.push(format!("{name}:{}: {} lines", i + 1, end - i + 1));
                    }
                    i = end;
                }
                i += 1;
            }
        }
    }
    assert!(long_files.is_empty(), "source files over 800 lines:\n{}", long_files.join("\n"));
    assert!(long_fns.is_empty(), "functions over 150 lines:\n{}", long_fns.join("\n"));
}

fn common_root() -> PathBuf {
    crate::common::repo()
}
