//! `{name}` interpolation in recipe strings (URLs, paths, tags, labels, env values).
//! `{{` and `}}` stand for literal braces. Template *files* use Jinja syntax instead
//! (see `template.rs`), because configuration files are full of single braces.

use std::collections::BTreeMap;

/// Variables every recipe has, set per architecture when the build is planned.
pub const BUILTIN: &[&str] = &["name", "arch", "arch_uname", "os", "variant"];

/// Replaces every `{var}`; an unknown name is an error naming it.
pub fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        let after = &rest[i + 1..];
        if after.as_bytes().first() == Some(&c) {
            out.push(c as char);
            rest = &after[1..];
            continue;
        }
        if c == b'}' {
            return Err("unmatched `}` (write `}}` for a literal brace)".into());
        }
        let end = after.find('}').ok_or("unclosed `{` (write `{{` for a literal brace)")?;
        let name = after[..end].trim();
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => return Err(format!("unknown variable `{name}`")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The variable names a string refers to (for validation before any arch is known).
pub fn check(text: &str, known: &dyn Fn(&str) -> bool) -> Result<(), String> {
    let mut probe = BTreeMap::new();
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('{') {
            rest = stripped;
            continue;
        }
        if let Some(end) = after.find('}') {
            let name = after[..end].trim();
            if known(name) {
                probe.insert(name.to_string(), String::new());
            }
            rest = &after[end + 1..];
        } else {
            break;
        }
    }
    interpolate(text, &probe).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_and_escapes() {
        let vars = BTreeMap::from([("v".to_string(), "1.2".to_string())]);
        assert_eq!(interpolate("t-{v}-{{x}}", &vars).unwrap(), "t-1.2-{x}");
        assert_eq!(interpolate("{ w }", &vars).unwrap_err(), "unknown variable `w`");
        assert!(interpolate("{v", &vars).is_err());
    }
}
