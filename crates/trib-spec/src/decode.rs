//! Reading typed values out of the located YAML tree while collecting every problem.

use crate::yaml::{Node, NodeKind, NodeSpan, Source};
use std::fmt;
use trib_core::diagnostic::did_you_mean;
use trib_core::{Diagnostic, Duration, Location};

/// A value with the place it was written, for diagnostics after decoding. Equality and
/// hashing ignore the place, so moving a line does not make a contract "different".
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub span: NodeSpan,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: NodeSpan) -> Self {
        Self { value, span }
    }

    /// A value made in code rather than read from a file.
    pub fn synthetic(value: T) -> Self {
        Self {
            value,
            span: NodeSpan::default(),
        }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T: std::hash::Hash> std::hash::Hash for Spanned<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

pub(crate) struct Decoder<'s> {
    pub source: &'s Source,
    pub diags: Vec<Diagnostic>,
    /// Columns declared with an error of their own; references to them are not
    /// reported again.
    pub broken_columns: Vec<String>,
}

impl<'s> Decoder<'s> {
    pub fn new(source: &'s Source) -> Self {
        Self {
            source,
            diags: Vec::new(),
            broken_columns: Vec::new(),
        }
    }

    pub fn location(&self, span: NodeSpan) -> Location {
        self.source.location(span)
    }

    pub fn error(&mut self, span: NodeSpan, code: &str, message: impl Into<String>, help: impl Into<String>) {
        let d = Diagnostic::error(code, message)
            .with_location(self.location(span))
            .with_help(help);
        self.diags.push(d);
    }

    fn wrong_kind(&mut self, node: &Node, field: &str, expected: &str, example: &str) {
        self.error(
            node.span,
            "contract::wrong-type",
            format!("`{field}` must be {expected}, found {}", node.describe()),
            format!("for example `{field}: {example}`"),
        );
    }

    /// Opens a mapping; reports an error and returns `None` if `node` is not one.
    pub fn map<'n>(&mut self, node: &'n Node, field: &str, example: &str) -> Option<MapReader<'n>> {
        match &node.kind {
            NodeKind::Map(entries) => Some(MapReader {
                node,
                entries,
                known: Vec::new(),
                context: field.to_string(),
            }),
            _ => {
                self.wrong_kind(node, field, "a mapping", example);
                None
            }
        }
    }

    /// Items of a list; a single scalar counts as a list of one when `allow_single`.
    pub fn seq<'n>(&mut self, node: &'n Node, field: &str, example: &str, allow_single: bool) -> Option<Vec<&'n Node>> {
        match &node.kind {
            NodeKind::Seq(items) => Some(items.iter().collect()),
            NodeKind::Scalar { .. } if allow_single => Some(vec![node]),
            NodeKind::Null => Some(Vec::new()),
            _ => {
                self.wrong_kind(node, field, "a list", example);
                None
            }
        }
    }

    pub fn string(&mut self, node: &Node, field: &str, example: &str) -> Option<Spanned<String>> {
        match &node.kind {
            NodeKind::Scalar { value, .. } if !value.trim().is_empty() => Some(Spanned::new(value.clone(), node.span)),
            NodeKind::Scalar { .. } | NodeKind::Null => {
                self.error(
                    node.span,
                    "contract::empty",
                    format!("`{field}` is empty"),
                    format!("give it a value, for example `{field}: {example}`"),
                );
                None
            }
            _ => {
                self.wrong_kind(node, field, "text", example);
                None
            }
        }
    }

    pub fn string_list(&mut self, node: &Node, field: &str, example: &str) -> Vec<Spanned<String>> {
        let Some(items) = self.seq(node, field, example, true) else {
            return Vec::new();
        };
        items
            .into_iter()
            .filter_map(|n| self.string(n, field, example))
            .collect()
    }

    pub fn bool(&mut self, node: &Node, field: &str) -> Option<bool> {
        match node.as_str() {
            Some("true" | "True" | "TRUE" | "yes") => Some(true),
            Some("false" | "False" | "FALSE" | "no") => Some(false),
            _ => {
                self.error(
                    node.span,
                    "contract::wrong-type",
                    format!("`{field}` must be `true` or `false`, found {}", show(node)),
                    format!("for example `{field}: true`"),
                );
                None
            }
        }
    }

    pub fn u64(&mut self, node: &Node, field: &str, example: &str) -> Option<u64> {
        match node.as_str().map(|s| s.trim().replace('_', "").parse::<u64>()) {
            Some(Ok(n)) => Some(n),
            _ => {
                self.error(
                    node.span,
                    "contract::wrong-type",
                    format!("`{field}` must be a whole number, found {}", show(node)),
                    format!("for example `{field}: {example}`"),
                );
                None
            }
        }
    }

    pub fn duration(&mut self, node: &Node, field: &str, example: &str) -> Option<Spanned<Duration>> {
        let text = node.as_str();
        match text.map(Duration::parse) {
            Some(Ok(d)) => Some(Spanned::new(d, node.span)),
            Some(Err(e)) => {
                self.error(
                    node.span,
                    "contract::bad-duration",
                    format!("`{field}`: {e}"),
                    format!(
                        "{}; for example `{field}: {example}`",
                        trib_core::duration::DurationError::HINT
                    ),
                );
                None
            }
            None => {
                self.wrong_kind(node, field, "a duration", example);
                None
            }
        }
    }

    /// A percentage written `99.9%`, `99.9` or `0.999`? No: fractions are ambiguous, so
    /// values are read as percent (0 to 100).
    pub fn percent(&mut self, node: &Node, field: &str) -> Option<f64> {
        let text = node.as_str().map(|s| s.trim().trim_end_matches('%').trim().to_string());
        match text.as_deref().map(str::parse::<f64>) {
            Some(Ok(p)) if (0.0..=100.0).contains(&p) => Some(p),
            _ => {
                self.error(
                    node.span,
                    "contract::bad-percent",
                    format!(
                        "`{field}` must be a percentage between 0% and 100%, found {}",
                        show(node)
                    ),
                    format!("for example `{field}: 99.9%`"),
                );
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub fn choice<T: Copy>(&mut self, node: &Node, field: &str, options: &[(&'static str, T)]) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let Some(text) = node.as_str() else {
            self.wrong_kind(
                node,
                field,
                &format!("one of {}", names.join(", ")),
                names.first().copied().unwrap_or(""),
            );
            return None;
        };
        if let Some((_, v)) = options.iter().find(|(n, _)| n.eq_ignore_ascii_case(text.trim())) {
            return Some(*v);
        }
        let help = match did_you_mean(text, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? `{field}` is one of: {}", names.join(", ")),
            None => format!("`{field}` is one of: {}", names.join(", ")),
        };
        self.error(
            node.span,
            "contract::unknown-value",
            format!("`{field}` has unknown value `{text}`"),
            help,
        );
        None
    }
}

/// Reads fields of one mapping; remembers which were asked for so that [`finish`]
/// reports the rest as unknown.
///
/// [`finish`]: MapReader::finish
pub(crate) struct MapReader<'n> {
    pub node: &'n Node,
    entries: &'n [(Node, Node)],
    known: Vec<&'static str>,
    context: String,
}

impl<'n> MapReader<'n> {
    /// The value of `key`, if present and not null.
    pub fn get(&mut self, key: &'static str) -> Option<&'n Node> {
        self.known.push(key);
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// Like [`get`](Self::get), but reports a missing field.
    pub fn require(&mut self, dec: &mut Decoder<'_>, key: &'static str, example: &str) -> Option<&'n Node> {
        let v = self.get(key);
        if v.is_none() {
            let context = if self.context.is_empty() {
                "the contract".to_string()
            } else {
                format!("`{}`", self.context)
            };
            dec.error(
                self.node.span,
                "contract::missing-field",
                format!("{context} is missing required field `{key}`"),
                format!("add `{key}: {example}`"),
            );
        }
        v
    }

    /// Reports keys that no `get` asked for, suggesting the closest known one.
    pub fn finish(self, dec: &mut Decoder<'_>) {
        for (k, _) in self.entries {
            let Some(name) = k.as_str() else { continue };
            if self.known.contains(&name) {
                continue;
            }
            let where_ = if self.context.is_empty() {
                "in the contract".to_string()
            } else {
                format!("in `{}`", self.context)
            };
            let help = match did_you_mean(name, self.known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("known fields here: {}", self.known.join(", ")),
            };
            dec.error(
                k.span,
                "contract::unknown-field",
                format!("unknown field `{name}` {where_}"),
                help,
            );
        }
    }
}

fn show(node: &Node) -> String {
    match &node.kind {
        NodeKind::Scalar { value, .. } => format!("`{value}`"),
        _ => node.describe().to_string(),
    }
}
