//! Debian version ordering (Policy §5.6.12): `[epoch:]upstream[-revision]`, compared part by
//! part; within a part, non-digit runs compare with `~` before everything (even the end),
//! then the end, then letters, then other characters; digit runs compare as numbers.

use std::cmp::Ordering;
use std::fmt;

/// A version's parts, as ranges of its text (see [`Version`]).
struct Parts<'s> {
    text: &'s str,
    epoch: u64,
    upstream: (u32, u32),
    revision: (u32, u32),
}

/// Equality is Debian's: `0:1.0` equals `1.0`, `1.01` equals `1.1`.
#[derive(Clone, Debug)]
pub struct Version {
    pub epoch: u64,
    /// The version as written, once: upstream and revision are ranges of it (an index holds
    /// tens of thousands of versions, so one allocation each, not three).
    text: Box<str>,
    upstream: (u32, u32),
    revision: (u32, u32),
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let p = Version::parts(s)?;
        Some(Version { epoch: p.epoch, upstream: p.upstream, revision: p.revision, text: p.text.into() })
    }

    /// Whether `s` parses as a version (nothing is allocated).
    pub fn valid(s: &str) -> bool {
        Version::parts(s).is_some()
    }

    /// `s` trimmed, its epoch, and where its upstream part and revision are in it.
    fn parts(s: &str) -> Option<Parts<'_>> {
        let s = s.trim();
        if s.is_empty() || s.contains(char::is_whitespace) {
            return None;
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((e, r)) => (e.parse().ok()?, r),
            None => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return None;
        }
        // Both parts are slices of `s`, except an absent revision (empty, at the end).
        let at = |part: &str| {
            if part.is_empty() {
                return (s.len() as u32, s.len() as u32);
            }
            let start = part.as_ptr() as usize - s.as_ptr() as usize;
            (start as u32, (start + part.len()) as u32)
        };
        if s.len() > u32::MAX as usize {
            return None;
        }
        Some(Parts { text: s, epoch, upstream: at(upstream), revision: at(revision) })
    }

    /// The upstream part (`1.2.3` of `1:1.2.3-4`).
    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.0 as usize..self.upstream.1 as usize]
    }

    /// The Debian revision (`4` of `1:1.2.3-4`; empty without one).
    pub fn revision(&self) -> &str {
        &self.text[self.revision.0 as usize..self.revision.1 as usize]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn order(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Compares two upstream or revision strings.
pub fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefix.
        loop {
            let ca = a.get(i).copied().filter(|c| !c.is_ascii_digit());
            let cb = b.get(j).copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            i += usize::from(ca.is_some());
            j += usize::from(cb.is_some());
        }
        // Digit run, as a number (leading zeros ignored).
        let start_a = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let start_b = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let na = std::str::from_utf8(&a[start_a..i]).unwrap_or("").trim_start_matches('0');
        let nb = std::str::from_utf8(&b[start_b..j]).unwrap_or("").trim_start_matches('0');
        let c = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream(), other.upstream()))
            .then_with(|| compare_part(self.revision(), other.revision()))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn policy_examples_in_order() {
        let ordered = [
            "1.0~rc1",
            "1.0",
            "1.0-1",
            "1.0-1ubuntu1",
            "1.0a",
            "1.0+b1",
            "1.00.1",
            "1.1~~",
            "1.1~",
            "1.1",
            "1.1.0",
            "1:0.1",
        ];
        for w in ordered.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(v("1.01").cmp(&v("1.1")), Ordering::Equal);
        assert!(v("2.36-9+deb12u4") > v("2.36-9"));
        assert!(v("7.88.1-10+deb12u5") < v("7.88.1-10+deb12u12"));
        assert!(v("0:1.0") == v("1.0"));
    }

    #[test]
    fn parts_are_ranges_of_the_text() {
        let x = v("1:2.3-4-5");
        assert_eq!((x.epoch, x.upstream(), x.revision(), x.as_str()), (1, "2.3-4", "5", "1:2.3-4-5"));
        let y = v("7.0");
        assert_eq!((y.upstream(), y.revision()), ("7.0", ""));
        assert_eq!(v(" 2:1 ").as_str(), "2:1");
    }
}
