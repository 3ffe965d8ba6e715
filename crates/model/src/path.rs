//! Paths inside an image, and the names archive and package members are given: cleaned,
//! bounded, and ordered so that a directory always comes before what it holds.

use std::cmp::Ordering;
use std::fmt;

/// The longest path in an image, `/` included (Linux's `PATH_MAX` less its NUL).
pub const PATH_MAX: usize = 4095;
/// The longest name of one path component (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// A path inside the image, stored without the leading `/`, ordered component by
/// component so a directory always sorts before everything inside it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImagePath(String);

impl ImagePath {
    /// Normalises `/a//b/./c/` to `a/b/c`; `..` is refused (returns None), as is the root,
    /// a NUL byte, and a path longer than `PATH_MAX` or with a component longer than
    /// `NAME_MAX` (see [`PATH_MAX`]).
    pub fn new(path: &str) -> Option<ImagePath> {
        if path.contains('\0') {
            return None;
        }
        let mut parts = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => return None,
                c if c.len() > NAME_MAX => return None,
                c => parts.push(c),
            }
        }
        if parts.is_empty() {
            return None;
        }
        let joined = parts.join("/");
        (joined.len() < PATH_MAX).then_some(ImagePath(joined))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parent(&self) -> Option<ImagePath> {
        self.0.rsplit_once('/').map(|(p, _)| ImagePath(p.to_string()))
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    pub fn join(&self, rel: &str) -> Option<ImagePath> {
        ImagePath::new(&format!("{}/{rel}", self.0))
    }

    pub fn ancestors(&self) -> impl Iterator<Item = ImagePath> + '_ {
        self.0.match_indices('/').map(|(i, _)| ImagePath(self.0[..i].to_string()))
    }
}

impl Ord for ImagePath {
    /// Component by component, computed without splitting: byte order with `/` ranked below
    /// every other byte gives the same result, since no component contains `/`. (This is a
    /// hot path: every tree and view operation compares paths.)
    fn cmp(&self, other: &Self) -> Ordering {
        let rank = |b: u8| if b == b'/' { 0u16 } else { u16::from(b) + 1 };
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        let n = a.len().min(b.len());
        // Paths share long prefixes (`usr/lib/x86_64-linux-gnu/…`): skip 16 bytes at a time.
        let mut i = 0;
        while i + 16 <= n && a[i..i + 16] == b[i..i + 16] {
            i += 16;
        }
        while i < n && a[i] == b[i] {
            i += 1;
        }
        match i < n {
            true => rank(a[i]).cmp(&rank(b[i])),
            false => a.len().cmp(&b.len()),
        }
    }
}

impl PartialOrd for ImagePath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl fmt::Debug for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a member name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadName {
    Absolute,
    Climbs,
    Nul,
    TooLong,
}

/// Normalises an archive or package member name (`./a//b` → `a/b`); `None` for the root.
/// Absolute names, `..` components, NUL bytes and names longer than [`PATH_MAX`] (or with a
/// component longer than [`NAME_MAX`]) are refused.
pub fn clean_name(name: &str) -> Result<Option<String>, BadName> {
    if name.starts_with('/') {
        return Err(BadName::Absolute);
    }
    if name.contains('\0') {
        return Err(BadName::Nul);
    }
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(BadName::Climbs),
            c if c.len() > NAME_MAX => return Err(BadName::TooLong),
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if joined.len() + 1 > PATH_MAX {
        return Err(BadName::TooLong);
    }
    Ok((!parts.is_empty()).then_some(joined))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ImagePath {
        ImagePath::new(s).unwrap()
    }

    proptest::proptest! {
        /// The fast comparison agrees with comparing the components one by one.
        #[test]
        fn order_is_component_wise(a in "[a-c./-]{0,8}", b in "[a-c./-]{0,8}") {
            if let (Some(x), Some(y)) = (ImagePath::new(&format!("/{a}")), ImagePath::new(&format!("/{b}"))) {
                proptest::prop_assert_eq!(x.cmp(&y), x.as_str().split('/').cmp(y.as_str().split('/')));
            }
        }
    }

    #[test]
    fn parents_sort_before_children() {
        let mut v = [p("a-b"), p("a/b"), p("a"), p("a/b/c"), p("a.b")];
        v.sort();
        let s: Vec<&str> = v.iter().map(|x| x.as_str()).collect();
        assert_eq!(s, ["a", "a/b", "a/b/c", "a-b", "a.b"]);
        assert!(ImagePath::new("/a/../b").is_none());
        assert_eq!(p("//a/./b/").as_str(), "a/b");
    }
}
