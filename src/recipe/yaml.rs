//! A YAML document as a tree of nodes that remember where they came from.
//!
//! Recipes are decoded by hand from this tree rather than through serde, so that every
//! value — not only syntax errors — can be reported as `file:line:col` with a snippet,
//! and unknown keys can be answered with the nearest known one.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A position in a recipe file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone)]
pub enum Value {
    /// A scalar; `quoted` is true when the author quoted it (so `"0755"` stays a string).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Keys keep their own positions so errors can point at a key.
    Map(Vec<(Key, Node)>),
    Null,
}

#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Null => "nothing",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

fn pos_of(span: &Span) -> Pos {
    Pos { line: span.start.line(), col: span.start.col() + 1 }
}

/// The most nodes a recipe may expand to, aliases counted as copies: a recipe has hundreds;
/// a "billion laughs" document of a few hundred bytes would have billions.
pub const MAX_NODES: usize = 100_000;
/// The deepest nesting of lists and mappings (recipes nest a handful of levels).
pub const MAX_DEPTH: usize = 64;
/// The most bytes of text a recipe may expand to, aliases counted as their copies (the file
/// itself is at most 4 MiB).
pub const MAX_BYTES: usize = 16 << 20;

/// Parses one YAML document. Anchors and aliases are resolved by copying the anchored node,
/// within [`MAX_NODES`] and [`MAX_DEPTH`]. A NUL byte in any scalar is refused: recipe values
/// end up in tar headers, account files and command lines, where NUL ends a string early.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    for item in &mut parser {
        let (event, span) = item.map_err(|e| SyntaxError {
            pos: Pos { line: e.marker().line(), col: e.marker().col() + 1 },
            message: e.info().to_string(),
        })?;
        builder.event(event, span)?;
    }
    builder.root.ok_or(SyntaxError { pos: Pos { line: 1, col: 1 }, message: "the file is empty".into() })
}

/// What a node costs: how many nodes it holds and how many bytes of text.
#[derive(Clone, Copy, Default)]
struct Cost {
    nodes: usize,
    bytes: usize,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

enum Frame {
    Seq(Pos, usize, Vec<Node>, Cost),
    Map(Pos, usize, Vec<(Key, Node)>, Option<Key>, Cost),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes and what each costs (itself included).
    anchors: std::collections::HashMap<usize, (Node, Cost)>,
    root: Option<Node>,
    documents: usize,
    /// What has been made so far, alias copies included.
    spent: Cost,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let pos = pos_of(&span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(SyntaxError {
                        pos,
                        message: "a recipe file holds one YAML document, found a second".into(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                if text.contains('\0') {
                    return Err(SyntaxError {
                        pos,
                        message: "a NUL byte in a value: recipe values end up in file names, account files and command lines, where NUL cuts them short".into(),
                    });
                }
                let quoted = style != ScalarStyle::Plain;
                let cost = Cost { nodes: 1, bytes: text.len() };
                let value = if !quoted && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL") {
                    Value::Null
                } else {
                    Value::Scalar { text: text.into_owned(), quoted }
                };
                self.count(cost, pos)?;
                self.push(Node { value, pos }, anchor, cost)?;
            }
            Event::Alias(id) => {
                let cost = self.anchors.get(&id).ok_or(SyntaxError { pos, message: "unknown alias".into() })?.1;
                // Counted before the copy is made, so a bomb is refused before it costs memory.
                self.count(cost, pos)?;
                let node = self.anchors[&id].0.clone();
                self.push(Node { pos, ..node }, 0, cost)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Seq(pos, anchor, Vec::new(), Cost { nodes: 1, bytes: 0 }));
            }
            Event::MappingStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Map(pos, anchor, Vec::new(), None, Cost { nodes: 1, bytes: 0 }));
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(pos, anchor, items, size)) = self.stack.pop() {
                    self.push(Node { value: Value::Seq(items), pos }, anchor, size)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(pos, anchor, items, _, size)) = self.stack.pop() {
                    self.push(Node { value: Value::Map(items), pos }, anchor, size)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn count(&mut self, cost: Cost, pos: Pos) -> Result<(), SyntaxError> {
        self.spent.add(cost);
        if self.spent.nodes > MAX_NODES {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "the recipe expands to more than {MAX_NODES} values (aliases counted as the copies they make)"
                ),
            });
        }
        if self.spent.bytes > MAX_BYTES {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "the recipe expands to more than {MAX_BYTES} bytes of text (aliases counted as the copies they make)"
                ),
            });
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError { pos, message: format!("lists and mappings nest more than {MAX_DEPTH} deep") });
        }
        self.count(Cost { nodes: 1, bytes: 0 }, pos)
    }

    /// Adds a finished node (costing `cost`) to its parent.
    fn push(&mut self, node: Node, anchor: usize, cost: Cost) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), cost));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(_, _, items, total)) => {
                total.add(cost);
                items.push(node)
            }
            Some(Frame::Map(_, _, items, pending, total)) => match pending.take() {
                None => {
                    let name = match node.value {
                        Value::Scalar { text, .. } => text,
                        Value::Null => String::new(),
                        _ => {
                            return Err(SyntaxError {
                                pos: node.pos,
                                message: "mapping keys must be plain strings".into(),
                            });
                        }
                    };
                    if let Some((first, _)) = items.iter().find(|(k, _)| k.name == name) {
                        return Err(SyntaxError {
                            pos: node.pos,
                            message: format!("duplicate key `{name}` (first given at line {})", first.pos.line),
                        });
                    }
                    *pending = Some(Key { name, pos: node.pos });
                }
                Some(key) => {
                    total.add(cost);
                    items.push((key, node))
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_point_at_values_and_keys() {
        let node = parse("name: x\nconfig:\n  user: \"0755\"\n  list: [a, b]\n").unwrap();
        let Value::Map(items) = node.value else { panic!() };
        assert_eq!(items[1].0.pos, Pos { line: 2, col: 1 });
        let Value::Map(inner) = &items[1].1.value else { panic!() };
        assert_eq!(inner[0].1.pos, Pos { line: 3, col: 9 });
        assert!(matches!(&inner[0].1.value, Value::Scalar { quoted: true, .. }));
    }

    /// "Billion laughs": nine levels of ten aliases each, a few hundred bytes of YAML.
    #[test]
    fn alias_bombs_are_refused_before_they_cost_memory() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            doc.push_str(&format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
        }
        assert!(doc.len() < 1000);
        let err = parse(&doc).unwrap_err();
        assert!(err.message.contains("more than 100000 values"), "{}", err.message);
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("nest more than 64 deep"), "{}", e.message);
        let big = format!("a: &a \"{}\"\nb: [{}]\n", "x".repeat(1 << 20), vec!["*a"; 20].join(", "));
        let e = parse(&big).unwrap_err();
        assert!(e.message.contains("more than 16777216 bytes of text"), "{}", e.message);
        let very = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&very).is_err(), "the parser's own limit holds too");
        assert!(parse("a: \"x\\0y\"\n").unwrap_err().message.contains("NUL"));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.message, "duplicate key `a` (first given at line 1)");
        assert_eq!(err.pos, Pos { line: 2, col: 1 });
    }
}
