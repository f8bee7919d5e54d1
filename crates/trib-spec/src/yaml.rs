//! A YAML document as a tree of located nodes.
//!
//! Contracts are decoded by hand from this tree rather than through serde so that one
//! pass reports every problem (serde stops at the first), duplicate keys are caught, and
//! each diagnostic points at the exact key or value. The parser is `saphyr-parser`
//! (YAML 1.2, no panics); this module only builds the tree from its events.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;
use trib_core::{Diagnostic, Location};

/// Refuse inputs larger than this: contracts are small, and a huge file is a mistake.
pub const MAX_SOURCE_BYTES: usize = 4 * 1024 * 1024;
/// Bound on nodes after alias expansion ("billion laughs").
const MAX_NODES: usize = 200_000;
/// Bound on nesting depth.
const MAX_DEPTH: usize = 128;

/// A source file: its name for diagnostics and its text.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
    /// Byte offset of each char index; saphyr reports char indices.
    char_to_byte: Vec<usize>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut char_to_byte: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        char_to_byte.push(text.len());
        Self {
            name: name.into(),
            text,
            char_to_byte,
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        self.char_to_byte.get(char_index).copied().unwrap_or(self.text.len())
    }

    /// Location of a span, 1-based line and column.
    pub fn location(&self, span: NodeSpan) -> Location {
        let offset = self.byte(span.start);
        let end = self.byte(span.end).max(offset);
        Location {
            file: self.name.clone(),
            line: span.line,
            column: span.column,
            offset,
            length: end - offset,
        }
    }
}

/// Position of a node: char indices plus 1-based line and column of its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeSpan {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
}

impl From<Span> for NodeSpan {
    fn from(s: Span) -> Self {
        Self {
            start: s.start.index(),
            end: s.end.index().max(s.start.index()),
            line: s.start.line(),
            column: s.start.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `~`, `null`, or an empty value.
    Null,
    /// A scalar with its text; `quoted` tells `"1"` (a string) from `1`.
    Scalar {
        value: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: NodeSpan,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// The value under a key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What kind of node this is, in words, for messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Plain JSON form (plain scalars typed by the YAML core schema), for policies and
    /// foreign formats.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Scalar { value, quoted: true } => Value::String(value.clone()),
            NodeKind::Scalar { value, quoted: false } => core_schema_scalar(value),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match &k.kind {
                            NodeKind::Scalar { value, .. } => value.clone(),
                            _ => k.to_json().to_string(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }
}

/// Finds the node at a dotted path such as `schema.customer_id.pii`, `access.0` or
/// `retention`. In a list, a segment is an index or the `name`/`role` of an item.
pub fn locate<'n>(root: &'n Node, path: &str) -> Option<&'n Node> {
    let mut node = root;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        node = match &node.kind {
            NodeKind::Map(_) => node.get(seg)?,
            NodeKind::Seq(items) => match seg.parse::<usize>() {
                Ok(i) => items.get(i)?,
                Err(_) => items.iter().find(|item| {
                    ["name", "role", "column"]
                        .iter()
                        .any(|k| item.get(k).and_then(Node::as_str) == Some(seg))
                })?,
            },
            _ => return None,
        };
    }
    Some(node)
}

/// Types a plain scalar as the YAML 1.2 core schema does.
pub fn core_schema_scalar(value: &str) -> serde_json::Value {
    use serde_json::Value;
    match value {
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        "null" | "Null" | "NULL" | "~" | "" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = value.parse::<i64>() {
        return Value::from(i);
    }
    let looks_numeric = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == '.');
    if looks_numeric
        && let Ok(f) = value.parse::<f64>()
        && f.is_finite()
    {
        return Value::from(f);
    }
    Value::String(value.to_string())
}

/// Parses one YAML document. Structural problems (syntax, duplicate keys, aliases that
/// blow up, non-scalar keys) come back as diagnostics; only a syntax error stops parsing.
pub fn parse(source: &Source) -> Result<(Node, Vec<Diagnostic>), Box<Diagnostic>> {
    if source.text.len() > MAX_SOURCE_BYTES {
        return Err(Box::new(
            Diagnostic::error(
                "yaml::too-large",
                format!(
                    "`{}` is {} bytes; contracts may be at most {} bytes",
                    source.name,
                    source.text.len(),
                    MAX_SOURCE_BYTES
                ),
            )
            .with_help("split the file, or check that this is the file you meant"),
        ));
    }
    if let Some(pos) = source.text.find('\0') {
        let line = source.text[..pos].matches('\n').count() + 1;
        return Err(Box::new(
            Diagnostic::error(
                "yaml::binary",
                format!("`{}` is not text: it contains a NUL byte", source.name),
            )
            .with_location(Location {
                file: source.name.clone(),
                line,
                column: 1,
                offset: pos,
                length: 1,
            })
            .with_help("contracts are UTF-8 YAML text files"),
        ));
    }
    let mut builder = Builder {
        source,
        anchors: HashMap::new(),
        nodes: 0,
        warnings: Vec::new(),
    };
    let mut parser = Parser::new_from_str(&source.text);
    let mut root: Option<Node> = None;
    loop {
        let (event, span) = builder.next(&mut parser)?;
        match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                if root.is_some() {
                    return Err(Box::new(
                        Diagnostic::error("yaml::multiple-documents", "a contract file holds one YAML document")
                            .with_location(source.location(span.into()))
                            .with_help("remove the `---` separator and put each product in its own file"),
                    ));
                }
                let (event, span) = builder.next(&mut parser)?;
                root = Some(builder.node(&mut parser, event, span, 0)?);
            }
            other => {
                root = Some(builder.node(&mut parser, other, span, 0)?);
            }
        }
    }
    let root = root.unwrap_or(Node {
        kind: NodeKind::Null,
        span: NodeSpan {
            start: 0,
            end: 0,
            line: 1,
            column: 1,
        },
    });
    Ok((root, builder.warnings))
}

struct Builder<'s> {
    source: &'s Source,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    warnings: Vec<Diagnostic>,
}

impl<'s> Builder<'s> {
    fn next<'i>(
        &self,
        parser: &mut Parser<'i, saphyr_parser::StrInput<'i>>,
    ) -> Result<(Event<'i>, Span), Box<Diagnostic>> {
        match parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => {
                let m = e.marker();
                let span = NodeSpan {
                    start: m.index(),
                    end: m.index() + 1,
                    line: m.line(),
                    column: m.col() + 1,
                };
                Err(Box::new(
                    Diagnostic::error("yaml::syntax", format!("invalid YAML: {}", e.info()))
                        .with_location(self.source.location(span))
                        .with_label("here")
                        .with_help("check indentation and quoting near this position; values containing `: ` or starting with a special character need quotes"),
                ))
            }
            None => Ok((Event::StreamEnd, Span::default())),
        }
    }

    fn count(&mut self, span: NodeSpan) -> Result<(), Box<Diagnostic>> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Box::new(
                Diagnostic::error(
                    "yaml::too-many-nodes",
                    format!("document expands to more than {MAX_NODES} nodes"),
                )
                .with_location(self.source.location(span))
                .with_help("aliases (`*name`) that repeat large anchors multiply the document; write it out plainly"),
            ));
        }
        Ok(())
    }

    fn node<'i>(
        &mut self,
        parser: &mut Parser<'i, saphyr_parser::StrInput<'i>>,
        event: Event<'i>,
        span: Span,
        depth: usize,
    ) -> Result<Node, Box<Diagnostic>> {
        let nspan: NodeSpan = span.into();
        if depth > MAX_DEPTH {
            return Err(Box::new(
                Diagnostic::error("yaml::too-deep", format!("nesting deeper than {MAX_DEPTH} levels"))
                    .with_location(self.source.location(nspan))
                    .with_help("contracts nest a few levels at most; check for runaway brackets"),
            ));
        }
        self.count(nspan)?;
        match event {
            Event::Scalar(value, style, anchor, _tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                let kind = if !quoted && matches!(value.as_ref(), "~" | "null" | "Null" | "NULL" | "") {
                    NodeKind::Null
                } else {
                    NodeKind::Scalar {
                        value: value.into_owned(),
                        quoted,
                    }
                };
                let node = Node { kind, span: nspan };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(n) => {
                    let mut n = n.clone();
                    let size = count_nodes(&n);
                    self.nodes += size;
                    self.count(nspan)?;
                    n.span = nspan;
                    Ok(n)
                }
                None => Err(Box::new(
                    Diagnostic::error("yaml::unknown-alias", "alias refers to an unknown anchor")
                        .with_location(self.source.location(nspan))
                        .with_help("define the anchor (`&name`) before using it (`*name`)"),
                )),
            },
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                let end;
                loop {
                    let (ev, sp) = self.next(parser)?;
                    if matches!(ev, Event::SequenceEnd) {
                        end = sp;
                        break;
                    }
                    if matches!(ev, Event::StreamEnd) {
                        end = sp;
                        break;
                    }
                    items.push(self.node(parser, ev, sp, depth + 1)?);
                }
                let node = Node {
                    kind: NodeKind::Seq(items),
                    span: NodeSpan {
                        end: end.end.index().max(nspan.start),
                        ..nspan
                    },
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<(Node, Node)> = Vec::new();
                let end;
                loop {
                    let (ev, sp) = self.next(parser)?;
                    if matches!(ev, Event::MappingEnd | Event::StreamEnd) {
                        end = sp;
                        break;
                    }
                    let key = self.node(parser, ev, sp, depth + 1)?;
                    let (ev, sp) = self.next(parser)?;
                    let value = self.node(parser, ev, sp, depth + 1)?;
                    if let NodeKind::Scalar { value: k, .. } = &key.kind {
                        if k == "<<" {
                            // YAML merge key: copy entries that are not set explicitly.
                            self.merge_into(&mut entries, &value);
                            continue;
                        }
                        if let Some((first, _)) = entries.iter().find(|(ek, _)| ek.as_str() == Some(k)) {
                            self.warnings.push(
                                Diagnostic::error(
                                    "yaml::duplicate-key",
                                    format!("key `{k}` appears twice in this mapping"),
                                )
                                .with_location(self.source.location(key.span))
                                .with_label("second occurrence")
                                .with_help(format!(
                                    "the first `{k}` is on line {}; remove one of them",
                                    first.span.line
                                )),
                            );
                            continue;
                        }
                    } else {
                        self.warnings.push(
                            Diagnostic::error(
                                "yaml::complex-key",
                                format!("mapping key is {}, not a plain name", key.describe()),
                            )
                            .with_location(self.source.location(key.span))
                            .with_help("use plain text keys"),
                        );
                        continue;
                    }
                    entries.push((key, value));
                }
                let node = Node {
                    kind: NodeKind::Map(entries),
                    span: NodeSpan {
                        end: end.end.index().max(nspan.start),
                        ..nspan
                    },
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            Event::SequenceEnd
            | Event::MappingEnd
            | Event::DocumentEnd
            | Event::DocumentStart(_)
            | Event::StreamStart
            | Event::StreamEnd
            | Event::Nothing => Ok(Node {
                kind: NodeKind::Null,
                span: nspan,
            }),
        }
    }

    fn merge_into(&mut self, entries: &mut Vec<(Node, Node)>, value: &Node) {
        let sources: Vec<&Node> = match &value.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            _ => vec![value],
        };
        for src in sources {
            if let NodeKind::Map(src_entries) = &src.kind {
                for (k, v) in src_entries {
                    if !entries.iter().any(|(ek, _)| ek.as_str() == k.as_str()) {
                        entries.push((k.clone(), v.clone()));
                    }
                }
            } else {
                self.warnings.push(
                    Diagnostic::error(
                        "yaml::bad-merge",
                        "merge key `<<` needs a mapping or a list of mappings",
                    )
                    .with_location(self.source.location(src.span)),
                );
            }
        }
    }
}

fn count_nodes(n: &Node) -> usize {
    1 + match &n.kind {
        NodeKind::Seq(items) => items.iter().map(count_nodes).sum(),
        NodeKind::Map(entries) => entries.iter().map(|(k, v)| count_nodes(k) + count_nodes(v)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> (Node, Vec<Diagnostic>) {
        parse(&Source::new("t.yaml", text)).expect("parses")
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let (root, warnings) = parse_ok("a: 1\nb:\n  - x\n  - \"y\"\n");
        assert!(warnings.is_empty());
        let b = root.get("b").expect("b");
        let NodeKind::Seq(items) = &b.kind else { panic!("seq") };
        assert_eq!(items[1].span.line, 4);
        assert_eq!(items[1].span.column, 5);
        assert_eq!(
            items[1].kind,
            NodeKind::Scalar {
                value: "y".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let (_, warnings) = parse_ok("a: 1\nb: 2\na: 3\n");
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].code, "yaml::duplicate-key");
        assert_eq!(warnings[0].location.as_ref().map(|l| l.line), Some(3));
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let err = parse(&Source::new("t.yaml", "a: [1, 2\nb: 3\n")).expect_err("fails");
        assert_eq!(err.code, "yaml::syntax");
        assert!(err.location.is_some());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 { "a".to_string() } else { format!("l{}", i - 1) };
            text.push_str(&format!("l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let err = parse(&Source::new("t.yaml", text)).expect_err("refused");
        assert_eq!(err.code, "yaml::too-many-nodes");
    }

    #[test]
    fn binary_and_multibyte_input() {
        assert_eq!(parse(&Source::new("t", "a: \0")).expect_err("nul").code, "yaml::binary");
        let (root, _) = parse_ok("é: ü\nb: x\n");
        let src = Source::new("t", "é: ü\nb: x\n");
        let b = root.get("b").expect("b");
        let loc = src.location(b.span);
        assert_eq!(&src.text[loc.offset..loc.offset + loc.length], "x");
    }
}
