//! The merged file system of an image's layers, read from the top layer down and only as far
//! as a question needs: what is at a path (following symlinks inside the image's root), and
//! what a directory holds. A layer is asked for ([`Merged::load`]) only when every layer above
//! it left the answer open.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The most symlinks followed while resolving one path (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINKS: usize = 40;

/// What one member of a layer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File {
        size: u64,
    },
    Symlink(String),
    /// A hard link to another member of the same layer (cleaned path).
    Hardlink(String),
    /// A device, FIFO or socket: never taken.
    Special,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// A directory the layer does not list itself, implied by what it holds below it: its
    /// metadata is a lower layer's real entry where there is one.
    pub implied: bool,
}

/// The most bytes of names (members, and the directories they imply) one layer may hold.
pub const MAX_NAME_BYTES: usize = 128 << 20;

/// A directory implied by what lies below it.
pub fn implied_dir() -> Node {
    Node { kind: NodeKind::Dir, mode: 0o755, uid: 0, gid: 0, implied: true }
}

/// One layer's listing: its members (cleaned paths, root excluded), the paths its whiteouts
/// hide and the directories it marks opaque.
#[derive(Debug, Default)]
pub struct LayerIndex {
    pub entries: BTreeMap<String, Node>,
    pub whiteouts: BTreeSet<String>,
    pub opaque: BTreeSet<String>,
    /// Bytes of names held (see [`MAX_NAME_BYTES`]).
    pub name_bytes: usize,
}

impl LayerIndex {
    /// Adds a member, with the directories above it that the layer does not list itself
    /// (so that a path with content in this layer is never looked for below it); `false`
    /// once the layer's names pass [`MAX_NAME_BYTES`].
    pub fn add(&mut self, path: String, node: Node) -> bool {
        self.imply_parents(&path);
        self.name_bytes += path.len();
        match self.entries.get(&path) {
            // A real entry replaces an implied one; an implied one never replaces anything.
            Some(old) if node.implied && !old.implied => {}
            _ => {
                self.entries.insert(path, node);
            }
        }
        self.name_bytes <= MAX_NAME_BYTES
    }

    /// A whiteout of `path` (hiding it below this layer).
    pub fn whiteout(&mut self, path: String) -> bool {
        self.imply_parents(&path);
        self.name_bytes += path.len();
        self.whiteouts.insert(path);
        self.name_bytes <= MAX_NAME_BYTES
    }

    /// Implied directory entries for the parents of `path`, deepest first, stopping at the
    /// first one there already (its parents are there too).
    fn imply_parents(&mut self, path: &str) {
        let mut end = path.len();
        while let Some(i) = path[..end].rfind('/') {
            let parent = &path[..i];
            if self.entries.contains_key(parent) {
                break;
            }
            self.name_bytes += parent.len();
            self.entries.insert(parent.to_string(), implied_dir());
            end = i;
        }
    }

    /// Whether this layer hides `path` of the layers below it: a whiteout of it or of a
    /// directory above it, an opaque directory above it, or something other than a
    /// directory in place of a directory above it.
    pub fn hides(&self, path: &str) -> bool {
        if self.whiteouts.contains(path) {
            return true;
        }
        path.match_indices('/').any(|(i, _)| {
            let above = &path[..i];
            self.whiteouts.contains(above)
                || self.opaque.contains(above)
                || self.entries.get(above).is_some_and(|n| n.kind != NodeKind::Dir)
        })
    }
}

/// Why a path cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    #[error("`/{0}` is not in the image")]
    NotFound(String),
    #[error("`/{0}` is not a directory, so `/{1}` cannot be below it")]
    NotADir(String, String),
    #[error("more than {MAX_SYMLINKS} symlinks were followed resolving `/{0}` (a symlink loop?)")]
    Loop(String),
    #[error("`{0}` names the image's root; name a file or directory in it")]
    Root(String),
}

/// The layers read so far, top first, and how to read the next one down.
pub struct Merged<E, F: FnMut(usize) -> Result<LayerIndex, E>> {
    /// Layers read so far: `layers[0]` is the top layer.
    pub layers: Vec<LayerIndex>,
    total: usize,
    load: F,
}

impl<E, F: FnMut(usize) -> Result<LayerIndex, E>> Merged<E, F> {
    /// An image of `total` layers; `load(i)` reads the `i`-th from the top.
    pub fn new(total: usize, load: F) -> Self {
        Merged { layers: Vec::new(), total, load }
    }

    /// Layer `i` from the top, read if it has not been; `None` below the bottom layer.
    fn layer(&mut self, i: usize) -> Result<Option<&LayerIndex>, E> {
        while self.layers.len() <= i && self.layers.len() < self.total {
            let next = (self.load)(self.layers.len())?;
            self.layers.push(next);
        }
        Ok(self.layers.get(i))
    }

    /// The entry at `path` as a container sees it (no symlink followed), and the topmost
    /// layer (from the top) that has it. A directory a layer only implies takes the metadata
    /// of a real directory below it, where one shows through.
    pub fn lookup(&mut self, path: &str) -> Result<Option<(usize, Node)>, E> {
        self.find(path, true)
    }

    /// [`Merged::lookup`]; with `metadata` false an implied directory is enough (a directory
    /// passed through on the way to a path needs no mode, and no layer is read for one).
    fn find(&mut self, path: &str, metadata: bool) -> Result<Option<(usize, Node)>, E> {
        let mut i = 0;
        let mut found: Option<(usize, Node)> = None;
        while let Some(l) = self.layer(i)? {
            match (l.entries.get(path), &found) {
                (Some(n), None) if !n.implied || !metadata => return Ok(Some((i, n.clone()))),
                (Some(n), None) => found = Some((i, n.clone())),
                (Some(n), Some((top, implied))) if !n.implied => {
                    let node =
                        if n.kind == NodeKind::Dir { Node { implied: false, ..n.clone() } } else { implied.clone() };
                    return Ok(Some((*top, node)));
                }
                _ => {}
            }
            if l.hides(path) || (found.is_some() && l.opaque.contains(path)) {
                return Ok(found);
            }
            i += 1;
        }
        Ok(found)
    }

    /// Resolves `path` (absolute in the image), following symlinks on the way and at its end
    /// inside the image's root: the cleaned path it lands on, its entry and layer.
    pub fn resolve(&mut self, path: &str) -> Result<Result<(String, usize, Node), Missing>, E> {
        let mut todo: VecDeque<String> = path.split('/').map(str::to_string).collect();
        let mut at: Vec<String> = Vec::new();
        let mut found = None;
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    at.pop();
                    found = None;
                    continue;
                }
                _ => {}
            }
            let next = if at.is_empty() { c.clone() } else { format!("{}/{c}", at.join("/")) };
            let last = todo.iter().all(|c| c.is_empty() || c == ".");
            let Some((layer, node)) = self.find(&next, last)? else {
                return Ok(Err(Missing::NotFound(next)));
            };
            match &node.kind {
                NodeKind::Symlink(target) => {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return Ok(Err(Missing::Loop(path.trim_start_matches('/').to_string())));
                    }
                    if target.starts_with('/') {
                        at.clear();
                    }
                    let mut head: VecDeque<String> = target.split('/').map(str::to_string).collect();
                    head.extend(todo);
                    todo = head;
                    found = None;
                }
                NodeKind::Dir => {
                    at.push(c);
                    found = Some((layer, node));
                }
                _ if todo.iter().all(|c| c.is_empty() || c == ".") => {
                    at.push(c);
                    found = Some((layer, node));
                }
                _ => {
                    let rest = todo.iter().filter(|c| !c.is_empty()).cloned().collect::<Vec<_>>().join("/");
                    return Ok(Err(Missing::NotADir(next.clone(), format!("{next}/{rest}"))));
                }
            }
        }
        let landed = at.join("/");
        if landed.is_empty() {
            return Ok(Err(Missing::Root(path.to_string())));
        }
        match found {
            Some((layer, node)) => Ok(Ok((landed, layer, node))),
            // After `..`: a directory already passed through.
            None => Ok(self.lookup(&landed)?.map(|(l, n)| (landed.clone(), l, n)).ok_or(Missing::NotFound(landed))),
        }
    }

    /// What the directory `dir` (found in layer `top`) holds, by path relative to it, with the
    /// layer each entry comes from: every layer from `top` down contributes what no layer
    /// above it replaced or hid, until one makes `dir` opaque or hides it.
    pub fn below(&mut self, dir: &str, top: usize) -> Result<BTreeMap<String, (usize, Node)>, E> {
        let prefix = format!("{dir}/");
        let mut out: BTreeMap<String, (usize, Node)> = BTreeMap::new();
        let mut i = top;
        while self.layer(i)?.is_some() {
            let l = &self.layers[i];
            for (p, n) in l.entries.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)) {
                let rel = &p[prefix.len()..];
                // Every layer above this one may hide it, including those above `top` that
                // hold only whiteouts below `dir`.
                if self.layers[..i].iter().any(|upper| upper.hides(p)) {
                    continue;
                }
                match out.get(rel) {
                    None => {
                        out.insert(rel.to_string(), (i, n.clone()));
                    }
                    // An implied directory above takes a real one's metadata from below.
                    Some((at, above)) if above.implied && !n.implied && n.kind == NodeKind::Dir => {
                        let at = *at;
                        out.insert(rel.to_string(), (at, Node { implied: false, ..n.clone() }));
                    }
                    Some(_) => {}
                }
            }
            let stop = l.opaque.contains(dir)
                || l.hides(dir)
                || (i > top && l.entries.get(dir).is_some_and(|n| n.kind != NodeKind::Dir));
            if stop {
                break;
            }
            i += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: NodeKind) -> Node {
        Node { kind, mode: 0o644, uid: 0, gid: 0, implied: false }
    }

    fn file() -> Node {
        node(NodeKind::File { size: 1 })
    }

    /// Layers top first; each item is `path`, `.wh.`-style whiteout or `dir/.wh..wh..opq`.
    fn layers(spec: &[&[(&str, Node)]]) -> Vec<LayerIndex> {
        spec.iter()
            .map(|members| {
                let mut l = LayerIndex::default();
                for (p, n) in members.iter() {
                    let (dir, name) = p.rsplit_once('/').map_or(("", *p), |(d, n)| (d, n));
                    if name == ".wh..wh..opq" {
                        l.opaque.insert(dir.to_string());
                    } else if let Some(hidden) = name.strip_prefix(".wh.") {
                        l.whiteout(if dir.is_empty() { hidden.to_string() } else { format!("{dir}/{hidden}") });
                    } else {
                        l.add(p.to_string(), n.clone());
                    }
                }
                l
            })
            .collect()
    }

    type Counter = std::rc::Rc<std::cell::Cell<usize>>;
    type Load = Box<dyn FnMut(usize) -> Result<LayerIndex, ()>>;

    /// A merged view over `spec` that counts how many layers it read.
    fn merged(spec: Vec<LayerIndex>) -> (Merged<(), Load>, Counter) {
        let total = spec.len();
        let mut spec: Vec<Option<LayerIndex>> = spec.into_iter().map(Some).collect();
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = read.clone();
        (
            Merged::new(
                total,
                Box::new(move |i| {
                    counter.set(counter.get() + 1);
                    Ok(spec[i].take().expect("each layer is read once"))
                }),
            ),
            read,
        )
    }

    #[test]
    fn a_file_in_the_top_layer_needs_no_layer_below_it() {
        let (mut m, read) = merged(layers(&[&[("app/gatus", file())], &[("bin/sh", file())], &[("etc/x", file())]]));
        let (path, layer, _) = m.resolve("/app/gatus").unwrap().unwrap();
        assert_eq!((path.as_str(), layer, read.get()), ("app/gatus", 0, 1));
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_what_is_below() {
        let spec = || {
            layers(&[
                &[("etc/.wh.old", file()), ("opt/.wh..wh..opq", file()), ("opt/new", file())],
                &[("etc/old", file()), ("etc/kept", file()), ("opt/gone", file()), ("opt/new", node(NodeKind::Dir))],
            ])
        };
        let (mut m, _) = merged(spec());
        assert_eq!(m.resolve("/etc/old").unwrap(), Err(Missing::NotFound("etc/old".into())));
        assert!(m.resolve("/etc/kept").unwrap().is_ok());
        assert_eq!(m.resolve("/opt/gone").unwrap(), Err(Missing::NotFound("opt/gone".into())));
        let (mut m, _) = merged(spec());
        let (_, top, _) = m.resolve("/opt").unwrap().unwrap();
        let held: Vec<String> = m.below("opt", top).unwrap().into_keys().collect();
        assert_eq!(held, ["new"]);
        let (mut m, _) = merged(spec());
        let held: Vec<String> = m.below("etc", 0).unwrap().into_keys().collect();
        assert_eq!(held, ["kept"]);
    }

    #[test]
    fn a_directory_merges_its_layers_until_one_replaces_it() {
        let (mut m, read) = merged(layers(&[
            &[("srv/a", file())],
            &[("srv/b", file()), ("srv/a", node(NodeKind::Dir)), ("srv/a/under", file())],
            &[("srv", node(NodeKind::Symlink("x".into())))],
            &[("srv/never", file())],
        ]));
        let held: Vec<String> = m.below("srv", 0).unwrap().into_keys().collect();
        assert_eq!(held, ["a", "b"], "a file above hides a directory's content below it");
        assert_eq!(read.get(), 3, "the layer that replaced the directory ends the walk");
    }

    #[test]
    fn a_whiteout_above_hides_a_file_of_a_directory_taken_whole() {
        let (mut m, _) = merged(layers(&[
            &[("etc/.wh.secret", file())],
            &[("etc", node(NodeKind::Dir)), ("etc/keep", file()), ("etc/secret", file())],
        ]));
        let (at, top, _) = m.resolve("/etc").unwrap().unwrap();
        let held: Vec<String> = m.below(&at, top).unwrap().into_keys().collect();
        assert_eq!(held, ["keep"]);
    }

    #[test]
    fn a_directory_a_layer_only_implies_keeps_the_real_one_s_metadata() {
        let sticky = Node { mode: 0o1777, ..node(NodeKind::Dir) };
        let (mut m, _) =
            merged(layers(&[&[("srv/tmp/b", file())], &[("srv/tmp", sticky.clone()), ("srv/tmp/a", file())]]));
        let (_, top, got) = m.resolve("/srv/tmp").unwrap().unwrap();
        assert_eq!((top, got.mode, got.implied), (0, 0o1777, false));
        let (_, top, _) = m.resolve("/srv").unwrap().unwrap();
        let held = m.below("srv", top).unwrap();
        assert_eq!(held["tmp"].1.mode, 0o1777, "inside a directory taken whole too");
        assert_eq!(held.keys().collect::<Vec<_>>(), ["tmp", "tmp/a", "tmp/b"]);
    }

    #[test]
    fn names_past_the_budget_are_refused_not_held() {
        let mut l = LayerIndex::default();
        let deep = "d/".repeat(2000);
        let mut n = 0;
        while l.add(format!("b{n}/{deep}f"), node(NodeKind::File { size: 0 })) {
            n += 1;
        }
        assert!(n < 100, "a few thousand-level paths reach the budget: {n}");
    }

    #[test]
    fn symlinks_are_followed_inside_the_image_and_loops_end() {
        let (mut m, _) = merged(layers(&[&[
            ("bin", node(NodeKind::Symlink("usr/bin".into()))),
            ("usr/bin/tool", node(NodeKind::Symlink("../lib/tool/run".into()))),
            ("usr/lib/tool/run", file()),
            ("escape", node(NodeKind::Symlink("../../../../usr/lib/tool/run".into()))),
            ("loop", node(NodeKind::Symlink("/loop".into()))),
            ("f", file()),
        ]]));
        assert_eq!(m.resolve("/bin/tool").unwrap().unwrap().0, "usr/lib/tool/run");
        assert_eq!(m.resolve("/escape").unwrap().unwrap().0, "usr/lib/tool/run", "`..` stops at the root");
        assert_eq!(m.resolve("/loop").unwrap(), Err(Missing::Loop("loop".into())));
        assert_eq!(m.resolve("/f/x").unwrap(), Err(Missing::NotADir("f".into(), "f/x".into())));
        assert_eq!(m.resolve("/").unwrap(), Err(Missing::Root("/".into())));
    }
}
