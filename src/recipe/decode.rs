//! Small typed readers over the YAML node tree. Each returns a [`Diagnostic`] that points at
//! the node it could not accept.

use super::diag::{Diagnostic, Loc, Source, nearest};
use super::shape::Section;
use super::yaml::{Key, Node, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub type Result<T> = std::result::Result<T, Diagnostic>;

#[derive(Clone)]
pub struct Ctx {
    pub file: Arc<Source>,
}

impl Ctx {
    pub fn loc(&self, node: &Node) -> Loc {
        Loc { file: self.file.clone(), pos: node.pos }
    }

    pub fn key_loc(&self, key: &Key) -> Loc {
        Loc { file: self.file.clone(), pos: key.pos }
    }

    pub fn err(&self, node: &Node, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.loc(node), message)
    }

    /// Reads a mapping of the given [`Section`]: every key must be one of its fields; an
    /// unknown key is an error that suggests the nearest known one.
    pub fn map<'a>(&self, node: &'a Node, section: &'static Section) -> Result<Fields<'a>> {
        let what = section.what;
        let Value::Map(items) = &node.value else {
            return Err(self.err(node, format!("{what} must be a mapping, found {}", node.kind())));
        };
        for (key, _) in items {
            if section.field(&key.name).is_none() {
                let mut d = Diagnostic::new(self.key_loc(key), format!("unknown field `{}` in {what}", key.name));
                d = match nearest(&key.name, section.names()) {
                    Some(near) => d.with_hint(format!("did you mean `{near}`?")),
                    None => d.with_hint(format!("expected one of: {}", section.names().collect::<Vec<_>>().join(", "))),
                };
                return Err(d);
            }
        }
        Ok(Fields { node, items, section, ctx: self.clone() })
    }

    pub fn str(&self, node: &Node, what: &str) -> Result<String> {
        match &node.value {
            Value::Scalar { text, .. } => Ok(text.clone()),
            _ => Err(self.err(node, format!("{what} must be a string, found {}", node.kind()))),
        }
    }

    pub fn bool(&self, node: &Node, what: &str) -> Result<bool> {
        match &node.value {
            Value::Scalar { text, quoted: false } if text == "true" => Ok(true),
            Value::Scalar { text, quoted: false } if text == "false" => Ok(false),
            _ => Err(self.err(node, format!("{what} must be `true` or `false`"))),
        }
    }

    pub fn uint(&self, node: &Node, what: &str) -> Result<u64> {
        match &node.value {
            Value::Scalar { text, .. } => {
                text.parse().map_err(|_| self.err(node, format!("{what} must be a whole number, found `{text}`")))
            }
            _ => Err(self.err(node, format!("{what} must be a whole number, found {}", node.kind()))),
        }
    }

    /// A list of nodes; a single scalar is taken as a list of one.
    pub fn seq<'a>(&self, node: &'a Node, what: &str) -> Result<Vec<&'a Node>> {
        match &node.value {
            Value::Seq(items) => Ok(items.iter().collect()),
            Value::Scalar { .. } => Ok(vec![node]),
            Value::Null => Ok(Vec::new()),
            Value::Map(_) => Err(self.err(node, format!("{what} must be a list, found a mapping"))),
        }
    }

    /// An argv — `entrypoint`, `cmd`, a healthcheck's `test`, a test's `run` — is a list, one
    /// item per argument. A string is refused, not taken as one argument: `python3 app.py`
    /// as a one-element argv names a program that cannot exist, and the image never starts.
    pub fn argv<'a>(&self, node: &'a Node, what: &str) -> Result<Vec<&'a Node>> {
        if let Value::Scalar { text, .. } = &node.value {
            let words: Vec<String> = text
                .split_whitespace()
                .map(|w| {
                    let plain = w.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=+@%".contains(c));
                    if plain { w.to_string() } else { format!("{w:?}") }
                })
                .collect();
            return Err(self
                .err(node, format!("{what} must be a list, one item per argument, not a string"))
                .with_hint(format!(
                    "write `[{}]`; a string would be one argument, a program of that name",
                    words.join(", ")
                )));
        }
        self.seq(node, what)
    }

    pub fn strings(&self, node: &Node, what: &str) -> Result<Vec<String>> {
        self.seq(node, what)?.into_iter().map(|n| self.str(n, &format!("each item of {what}"))).collect()
    }

    /// A mapping of string keys to string values, in key order.
    pub fn string_map(&self, node: &Node, what: &str) -> Result<BTreeMap<String, (String, Loc)>> {
        let Value::Map(items) = &node.value else {
            if matches!(node.value, Value::Null) {
                return Ok(BTreeMap::new());
            }
            return Err(self.err(node, format!("{what} must be a mapping, found {}", node.kind())));
        };
        items
            .iter()
            .map(|(k, v)| Ok((k.name.clone(), (self.str(v, &format!("`{}` in {what}", k.name))?, self.loc(v)))))
            .collect()
    }
}

/// The fields of one mapping, already checked against the known keys.
pub struct Fields<'a> {
    pub node: &'a Node,
    items: &'a [(Key, Node)],
    section: &'static Section,
    ctx: Ctx,
}

impl<'a> Fields<'a> {
    pub fn get(&self, name: &str) -> Option<&'a Node> {
        debug_assert!(self.section.field(name).is_some(), "`{name}` is not a field of {}", self.section.id);
        self.items.iter().find(|(k, v)| k.name == name && !matches!(v.value, Value::Null)).map(|(_, v)| v)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn required(&self, name: &str) -> Result<&'a Node> {
        self.get(name).ok_or_else(|| self.ctx.err(self.node, format!("{} needs a `{name}` field", self.section.what)))
    }

    pub fn str(&self, name: &str) -> Result<Option<String>> {
        self.get(name).map(|n| self.ctx.str(n, &format!("`{name}`"))).transpose()
    }

    pub fn entries(&self) -> impl Iterator<Item = &'a (Key, Node)> {
        self.items.iter()
    }
}
