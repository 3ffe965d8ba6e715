//! apk's version order: `1.2.3` numbers, an optional letter (`1.2a`), suffixes
//! (`_alpha`, `_beta`, `_pre`, `_rc` sort before the plain version; `_cvs`, `_svn`, `_git`,
//! `_hg`, `_p` after), then `-rN`. Numbers compare as integers, except that a component
//! after the first with a leading zero compares as a decimal fraction (`1.01` < `1.1`).

use std::cmp::Ordering;

const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
/// Where "no suffix" sits among them.
const PLAIN: i32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    numbers: Vec<String>,
    /// A letter after the last number, with the digits that may follow it (`0.99f7`).
    letter: Option<(u8, u64)>,
    suffixes: Vec<(i32, u64)>,
    revision: u64,
    text: String,
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let (main, revision) = match s.rsplit_once("-r") {
            Some((m, r)) if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) => (m, r.parse().ok()?),
            _ => (s, 0),
        };
        let mut parts = main.split('_');
        let head = parts.next()?;
        let mut numbers = Vec::new();
        let mut letter = None;
        for (i, comp) in head.split('.').enumerate() {
            let digits: String = comp.chars().take_while(|c| c.is_ascii_digit()).collect();
            if digits.is_empty() {
                return None;
            }
            let rest = &comp[digits.len()..];
            if !rest.is_empty() {
                // Only the last component may carry a letter (and digits after it).
                let l = rest.as_bytes()[0];
                let tail = &rest[1..];
                if !l.is_ascii_lowercase()
                    || i + 1 != head.split('.').count()
                    || !tail.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                letter = Some((l, if tail.is_empty() { 0 } else { tail.parse().ok()? }));
            }
            numbers.push(digits);
        }
        let mut suffixes = Vec::new();
        for p in parts {
            let name: String = p.chars().take_while(|c| c.is_ascii_lowercase()).collect();
            let kind = SUFFIXES.iter().position(|s| *s == name)? as i32;
            let kind = if kind < PLAIN { kind } else { kind + 1 };
            let n = &p[name.len()..];
            let n = if n.is_empty() { 0 } else { n.parse().ok()? };
            suffixes.push((kind, n));
        }
        Some(Version { numbers, letter, suffixes, revision, text: s.to_string() })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn compare_component(i: usize, a: &str, b: &str) -> Ordering {
    if i > 0 && (a.starts_with('0') || b.starts_with('0')) {
        let (a, b) = (a.trim_end_matches('0'), b.trim_end_matches('0'));
        return a.cmp(b);
    }
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        for (i, (a, b)) in self.numbers.iter().zip(&other.numbers).enumerate() {
            let c = compare_component(i, a, b);
            if c != Ordering::Equal {
                return c;
            }
        }
        self.numbers
            .len()
            .cmp(&other.numbers.len())
            .then_with(|| self.letter.cmp(&other.letter))
            .then_with(|| {
                let n = self.suffixes.len().max(other.suffixes.len());
                for i in 0..n {
                    let a = self.suffixes.get(i).copied().unwrap_or((PLAIN, 0));
                    let b = other.suffixes.get(i).copied().unwrap_or((PLAIN, 0));
                    let c = a.cmp(&b);
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                Ordering::Equal
            })
            .then_with(|| self.revision.cmp(&other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apk_order() {
        let ordered = [
            "1.0_alpha",
            "1.0_alpha2",
            "1.0_beta",
            "1.0_pre1",
            "1.0_rc1",
            "1.0_rc2",
            "1.0",
            "1.0-r1",
            "1.0-r10",
            "1.0_cvs",
            "1.0_git20220101",
            "1.0_p1",
            "1.0_p2",
            "1.0a",
            "1.0b",
            "1.0b2",
            "1.0.1",
            "1.01.0",
            "1.1",
            "1.2_rc1",
            "1.2",
            "1.10",
            "2",
            "2.0.0_alpha1",
            "10",
        ];
        for w in ordered.windows(2) {
            let (a, b) = (Version::parse(w[0]).unwrap(), Version::parse(w[1]).unwrap());
            assert!(a < b, "{} < {}", w[0], w[1]);
            assert!(b > a);
        }
        assert_eq!(Version::parse("1.2.3-r4").unwrap().cmp(&Version::parse("1.2.3-r4").unwrap()), Ordering::Equal);
        assert!(Version::parse("1.2_bogus").is_none());
        assert!(Version::parse("abc").is_none());
    }
}
