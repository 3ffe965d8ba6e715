//! deb822 control data (Packages, Release, dpkg's status): paragraphs of `Field: value`
//! lines, continuation lines starting with a space or tab, paragraphs separated by blank
//! lines. Field names compare case-insensitively, as dpkg does.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    /// Fields in file order, values with continuation lines joined by `\n`.
    pub fields: Vec<(String, String)>,
}

impl Paragraph {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The paragraph as control text, fields in their order (no trailing blank line).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.fields {
            out.push_str(k);
            out.push(':');
            let mut lines = v.split('\n');
            let first = lines.next().unwrap_or("");
            if !first.is_empty() {
                out.push(' ');
                out.push_str(first);
            }
            out.push('\n');
            for l in lines {
                out.push(' ');
                out.push_str(if l.is_empty() { "." } else { l });
                out.push('\n');
            }
        }
        out
    }
}

/// Parses every paragraph; malformed lines are skipped, as apt does for unknown junk.
pub fn parse(text: &str) -> Vec<Paragraph> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.fields.last_mut() {
                let l = line[1..].trim_end();
                v.push('\n');
                v.push_str(if l == "." { "" } else { l });
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.fields.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    out
}

/// The paragraphs of `text` as borrowed `(field, value)` pairs, for large indexes where most
/// fields are never read: nothing is copied. A value with continuation lines is the raw span
/// (newlines and leading blanks kept), which suits fields made of comma-separated lists.
pub fn borrowed(text: &str) -> impl Iterator<Item = Vec<(&str, &str)>> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let mut fields: Vec<(&str, &str)> = Vec::with_capacity(24);
        while !rest.is_empty() {
            let (line, next) = rest.split_once('\n').unwrap_or((rest, ""));
            if line.trim().is_empty() {
                rest = next;
                if fields.is_empty() {
                    continue;
                }
                return Some(fields);
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = fields.last_mut() {
                    if v.is_empty() {
                        *v = line.trim();
                    } else {
                        // Extend the value's span over this continuation line.
                        let start = v.as_ptr() as usize - text.as_ptr() as usize;
                        let end = line.as_ptr() as usize - text.as_ptr() as usize + line.trim_end().len();
                        *v = &text[start..end];
                    }
                }
            } else if !line.starts_with('#')
                && let Some((k, v)) = line.split_once(':')
            {
                fields.push((k.trim(), v.trim()));
            }
            rest = next;
        }
        (!fields.is_empty()).then_some(fields)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn paragraphs_and_continuations() {
        let p = super::parse("Package: a\nDescription: short\n long\n .\n more\n\n\nPackage: b\n");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].get("description"), Some("short\nlong\n\nmore"));
        assert_eq!(p[0].render(), "Package: a\nDescription: short\n long\n .\n more\n");
        assert_eq!(p[1].get("Package"), Some("b"));
    }

    #[test]
    fn borrowed_paragraphs_keep_spans() {
        let text = "Package: a\nDepends: x,\n y (>= 1)\nDescription: d\n\n\n# note\nPackage: b\nEmpty:\n more\n";
        let p: Vec<_> = super::borrowed(text).collect();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0], [("Package", "a"), ("Depends", "x,\n y (>= 1)"), ("Description", "d")]);
        assert_eq!(p[1], [("Package", "b"), ("Empty", "more")]);
    }
}
