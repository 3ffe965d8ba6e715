//! One record of an `APKINDEX` (or of apk's installed database): single-letter fields in
//! order, as apk writes them.

/// One APKINDEX record: every field letter with its value, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub fields: Vec<(char, String)>,
}

impl Record {
    pub fn get(&self, letter: char) -> Option<&str> {
        self.fields.iter().find(|(l, _)| *l == letter).map(|(_, v)| v.as_str())
    }

    pub fn name(&self) -> &str {
        self.get('P').unwrap_or("")
    }

    pub fn version(&self) -> &str {
        self.get('V').unwrap_or("")
    }

    /// Space-separated list fields: `D` (depends), `p` (provides), `i` (install_if), `r` (replaces).
    pub fn list(&self, letter: char) -> Vec<&str> {
        self.get(letter).map(|v| v.split_whitespace().collect()).unwrap_or_default()
    }
}
