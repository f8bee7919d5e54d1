//! [`Contract`] → canonical YAML in Tributary's own format, and the small YAML writer
//! behind it (also used for ODCS documents).
//!
//! ```text
//!   Contract ──contract_fields──► Yaml (values + flow/block layout) ──emit──► text
//!   serde_json::Value ──Yaml::from_json──┘
//! ```
//!
//! The writer is ours rather than a serializer's because the output must read back as
//! exactly the same contract through our own parser: every string that a YAML reader
//! could take for something else (`yes`, `1.0`, `null`, `a: b`, `#x`, `'x'`) is quoted,
//! and the layout follows the examples in the docs (one column per line).
//!
//! `parse_contract(render_contract(c)) == c` for every valid contract.

use crate::model::*;
use serde_json::Value;

/// Flow collections longer than this fall back to block layout, so lines stay readable.
const MAX_FLOW_WIDTH: usize = 120;

/// Renders a contract as canonical YAML: fields in the documented order, defaults and
/// empty fields left out (except the fields every contract shows).
pub fn render_contract(c: &Contract) -> String {
    let fields = contract_fields(c)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    emit(&Yaml::Map(fields, Layout::Block))
}

/// A YAML value with a layout preference.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Yaml {
    Str(String),
    /// A number, written exactly as this text.
    Num(String),
    Bool(bool),
    Null,
    Seq(Vec<Yaml>, Layout),
    Map(Vec<(String, Yaml)>, Layout),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    Block,
    /// `[a, b]` / `{ a: b }` on one line when it fits in [`MAX_FLOW_WIDTH`].
    Flow,
}

impl Yaml {
    pub(crate) fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }

    pub(crate) fn flow_map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Yaml)>) -> Self {
        Self::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect(), Layout::Flow)
    }

    pub(crate) fn block_map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Yaml)>) -> Self {
        Self::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect(), Layout::Block)
    }

    pub(crate) fn strings<S: ToString>(items: impl IntoIterator<Item = S>) -> Self {
        Self::Seq(
            items.into_iter().map(|s| Self::Str(s.to_string())).collect(),
            Layout::Flow,
        )
    }

    /// A JSON value with the default layout: mappings as blocks, lists of scalars inline.
    pub(crate) fn from_json(v: &Value) -> Self {
        match v {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => Self::Num(n.to_string()),
            Value::String(s) => Self::Str(s.clone()),
            Value::Array(items) => {
                let layout = if items.iter().all(|i| !i.is_array() && !i.is_object()) {
                    Layout::Flow
                } else {
                    Layout::Block
                };
                Self::Seq(items.iter().map(Self::from_json).collect(), layout)
            }
            Value::Object(m) => Self::Map(
                m.iter().map(|(k, v)| (k.clone(), Self::from_json(v))).collect(),
                Layout::Block,
            ),
        }
    }

    /// The JSON form, typed as a YAML reader types the emitted text.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Self::Str(s) => Value::String(s.clone()),
            Self::Num(n) => serde_json::from_str::<serde_json::Number>(n)
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(n.clone())),
            Self::Bool(b) => Value::Bool(*b),
            Self::Null => Value::Null,
            Self::Seq(items, _) => Value::Array(items.iter().map(Self::to_json).collect()),
            Self::Map(entries, _) => Value::Object(entries.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Contract → Yaml

/// The top-level fields of a contract in canonical order, each in its YAML form. ODCS
/// export reuses these values for the fields ODCS cannot express.
pub(crate) fn contract_fields(c: &Contract) -> Vec<(&'static str, Yaml)> {
    let mut f: Vec<(&'static str, Yaml)> = Vec::new();
    f.push(("product", Yaml::str(c.product.to_string())));
    f.push(("version", Yaml::str(c.version.to_string())));
    f.push(("owner", Yaml::str(&c.owner)));
    let contact: Vec<(&str, Yaml)> = [
        ("email", &c.contact.email),
        ("slack", &c.contact.slack),
        ("webhook", &c.contact.webhook),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, Yaml::str(v))))
    .collect();
    if !contact.is_empty() {
        f.push(("contact", Yaml::flow_map(contact)));
    }
    if let Some(d) = &c.description {
        f.push(("description", Yaml::str(d)));
    }
    f.push(("status", Yaml::str(c.status.as_str())));
    f.push(("layer", Yaml::str(c.layer.as_str())));
    if !c.tags.is_empty() {
        f.push(("tags", Yaml::strings(&c.tags)));
    }
    f.push(("source", source(c)));
    if !c.key.is_empty() {
        f.push(("key", Yaml::strings(&c.key)));
    }
    if let Some(s) = &c.sequence_by {
        f.push(("sequence_by", Yaml::str(&s.value)));
    }
    if let Some(e) = &c.event_time {
        f.push(("event_time", Yaml::str(&e.value)));
    }
    if let Some(e) = &c.event_id {
        f.push(("event_id", Yaml::str(&e.value)));
    }
    if let Some(w) = &c.watermark {
        let mut m = vec![("allowed_lateness", Yaml::str(w.allowed_lateness.to_string()))];
        if w.late != LatePolicy::Merge {
            m.push(("late", Yaml::str(w.late.as_str())));
        }
        f.push(("watermark", Yaml::flow_map(m)));
    }
    if !c.partition_by.is_empty() {
        f.push(("partition_by", Yaml::strings(&c.partition_by)));
    }
    if !c.cluster_by.is_empty() {
        f.push(("cluster_by", Yaml::strings(&c.cluster_by)));
    }
    f.push((
        "schema",
        Yaml::Seq(c.schema.iter().map(column).collect(), Layout::Block),
    ));
    if let Some(sla) = sla(&c.sla) {
        f.push(("sla", sla));
    }
    if !c.access.is_empty() {
        f.push(("access", Yaml::Seq(c.access.iter().map(grant).collect(), Layout::Block)));
    }
    if !c.quality.is_empty() {
        let checks = c.quality.iter().enumerate().map(|(i, q)| check(i, q)).collect();
        f.push(("quality", Yaml::Seq(checks, Layout::Block)));
    }
    if let Some(r) = c.retention {
        f.push(("retention", Yaml::str(r.to_string())));
    }
    if !c.tiers.is_empty() {
        f.push(("tiers", Yaml::Seq(c.tiers.iter().map(tier).collect(), Layout::Block)));
    }
    f
}

fn source(c: &Contract) -> Yaml {
    match &c.source {
        Source::Stream(s) => {
            let mut m = vec![("kind", Yaml::str(s.kind.as_str()))];
            let default_format = match s.kind {
                StreamKind::Cdc => StreamFormat::Debezium,
                _ => StreamFormat::Json,
            };
            if s.format != default_format {
                m.push(("format", Yaml::str(s.format.as_str())));
            }
            if let Some(t) = &s.topic {
                m.push(("topic", Yaml::str(t)));
            }
            Yaml::flow_map(m)
        }
        Source::Model(model) => {
            let mut m = vec![("inputs", Yaml::strings(&model.inputs))];
            match &model.sql {
                Some(q) => m.push(("sql", Yaml::str(q))),
                None => m.push(("transform", Yaml::str(&model.transform.value))),
            }
            let default = match c.layer {
                Layer::View => Materialization::View,
                _ => Materialization::Append,
            };
            if model.materialized != default {
                m.push(("materialized", Yaml::str(model.materialized.as_str())));
            }
            Yaml::block_map(m)
        }
    }
}

fn column(col: &Column) -> Yaml {
    let mut m = vec![
        ("name", Yaml::str(&col.name.value)),
        ("type", Yaml::str(col.data_type.to_string())),
    ];
    if col.required {
        m.push(("required", Yaml::Bool(true)));
    }
    if col.pii {
        m.push(("pii", Yaml::Bool(true)));
    }
    if let Some(c) = col.classification {
        m.push(("classification", Yaml::str(c.as_str())));
    }
    if let Some(d) = &col.description {
        m.push(("description", Yaml::str(d)));
    }
    if !col.tags.is_empty() {
        m.push(("tags", Yaml::strings(&col.tags)));
    }
    Yaml::flow_map(m)
}

/// Percentages are written with `%` so that `99.9` cannot be read as a fraction.
pub(crate) fn percent(p: f64) -> String {
    format!("{p}%")
}

fn sla(sla: &Sla) -> Option<Yaml> {
    let mut m = Vec::new();
    if let Some(f) = sla.freshness {
        m.push(("freshness", Yaml::str(f.to_string())));
    }
    if let Some(a) = sla.availability {
        m.push(("availability", Yaml::str(percent(a))));
    }
    if let Some(c) = &sla.completeness {
        m.push((
            "completeness",
            Yaml::flow_map([
                ("within", Yaml::str(c.within.to_string())),
                ("target", Yaml::str(percent(c.target))),
            ]),
        ));
    }
    if let Some(v) = sla.validity {
        m.push(("validity", Yaml::str(percent(v))));
    }
    (!m.is_empty()).then(|| Yaml::flow_map(m))
}

fn grant(g: &AccessGrant) -> Yaml {
    let mut m = vec![
        ("role", Yaml::str(&g.role.value)),
        ("level", Yaml::str(g.level.as_str())),
    ];
    if let Some(f) = &g.row_filter {
        m.push(("row_filter", Yaml::str(&f.value)));
    }
    Yaml::flow_map(m)
}

fn bound(b: &Bound) -> Yaml {
    match b {
        Bound::Number(n) => Yaml::Num(n.to_string()),
        // Text that looks numeric is quoted by the writer, and the parser reads a quoted
        // bound as text.
        Bound::Text(t) => Yaml::Str(t.clone()),
    }
}

/// One quality item: `- <check>: <arguments>` plus `name` and `severity` when set.
fn check(index: usize, q: &QualityCheck) -> Yaml {
    let one_or_many = |cols: &[crate::decode::Spanned<String>]| match cols {
        [one] => Yaml::str(&one.value),
        many => Yaml::strings(many),
    };
    let body = match &q.kind {
        CheckKind::Unique(cols) | CheckKind::NotNull(cols) => one_or_many(cols),
        CheckKind::AcceptedValues { column, values } => {
            Yaml::flow_map([("column", Yaml::str(&column.value)), ("values", Yaml::strings(values))])
        }
        CheckKind::Range { column, min, max } => {
            let mut m = vec![("column", Yaml::str(&column.value))];
            if let Some(b) = min {
                m.push(("min", bound(b)));
            }
            if let Some(b) = max {
                m.push(("max", bound(b)));
            }
            Yaml::flow_map(m)
        }
        CheckKind::Regex { column, pattern } => {
            Yaml::flow_map([("column", Yaml::str(&column.value)), ("pattern", Yaml::str(pattern))])
        }
        CheckKind::RowCount { min, max } => {
            let mut m = Vec::new();
            if let Some(n) = min {
                m.push(("min", Yaml::Num(n.to_string())));
            }
            if let Some(n) = max {
                m.push(("max", Yaml::Num(n.to_string())));
            }
            Yaml::flow_map(m)
        }
        CheckKind::Freshness { max_age, column } => {
            let mut m = vec![("max_age", Yaml::str(max_age.to_string()))];
            if let Some(c) = column {
                m.push(("column", Yaml::str(&c.value)));
            }
            Yaml::flow_map(m)
        }
        CheckKind::Relationships { column, to, field } => Yaml::flow_map([
            ("column", Yaml::str(&column.value)),
            ("to", Yaml::str(to.to_string())),
            ("field", Yaml::str(field)),
        ]),
        CheckKind::Sql(query) => Yaml::str(&query.value),
        CheckKind::Anomaly {
            metric,
            window,
            threshold,
        } => {
            let mut m = vec![("metric", Yaml::str(metric.as_str()))];
            if let crate::AnomalyMetric::NullRate(c) = metric {
                m.push(("column", Yaml::str(&c.value)));
            }
            m.push(("window", Yaml::Num(window.to_string())));
            m.push(("threshold", Yaml::Num(threshold.to_string())));
            Yaml::flow_map(m)
        }
        CheckKind::Expect { sql, on_violation } => {
            // The parser always names expectations; a contract built in code may not.
            let name = q.name.clone().unwrap_or_else(|| format!("expectation_{}", index + 1));
            let mut m = vec![("name", Yaml::str(name)), ("sql", Yaml::str(&sql.value))];
            if *on_violation != OnViolation::Warn {
                m.push(("on_violation", Yaml::str(on_violation.as_str())));
            }
            Yaml::flow_map(m)
        }
    };
    let mut item = vec![(q.kind.name(), body)];
    // For `expect` the name lives inside the check.
    if !matches!(q.kind, CheckKind::Expect { .. })
        && let Some(n) = &q.name
    {
        item.push(("name", Yaml::str(n)));
    }
    if q.severity != CheckSeverity::Error {
        item.push(("severity", Yaml::str(q.severity.as_str())));
    }
    if q.block {
        item.push(("block", Yaml::Bool(true)));
    }
    Yaml::block_map(item)
}

fn tier(t: &Tier) -> Yaml {
    let resolution = t.resolution.map_or_else(|| "raw".to_string(), |d| d.to_string());
    let mut m = vec![
        ("resolution", Yaml::str(resolution)),
        ("retention", Yaml::str(t.retention.to_string())),
    ];
    if let Some(p) = &t.product {
        m.push(("product", Yaml::str(p.value.to_string())));
    }
    if !t.group_by.is_empty() {
        m.push(("group_by", Yaml::strings(&t.group_by)));
    }
    Yaml::flow_map(m)
}

// ---------------------------------------------------------------------------------------
// Yaml → text

/// Writes a YAML document. Block mappings and lists are indented by two spaces; flow
/// collections that do not fit on a line are written as blocks instead.
pub(crate) fn emit(doc: &Yaml) -> String {
    let mut out = String::new();
    match doc {
        Yaml::Map(entries, _) if !entries.is_empty() => block_map(&mut out, entries, 0),
        Yaml::Seq(items, _) if !items.is_empty() => block_seq(&mut out, items, 0),
        other => {
            out.push_str(&flow(other));
            out.push('\n');
        }
    }
    out
}

/// Whether `v` is written as a block at this indentation.
fn as_block(v: &Yaml, indent: usize) -> bool {
    match v {
        Yaml::Map(e, layout) if !e.is_empty() => *layout == Layout::Block || !fits(v, indent),
        Yaml::Seq(i, layout) if !i.is_empty() => *layout == Layout::Block || !fits(v, indent),
        _ => false,
    }
}

/// A flow collection fits when it stays on one short line; a multi-line string inside
/// reads better as a block literal.
fn fits(v: &Yaml, indent: usize) -> bool {
    fn has_multiline(v: &Yaml) -> bool {
        match v {
            Yaml::Str(s) => s.contains('\n'),
            Yaml::Seq(items, _) => items.iter().any(has_multiline),
            Yaml::Map(e, _) => e.iter().any(|(_, v)| has_multiline(v)),
            _ => false,
        }
    }
    indent + flow(v).len() <= MAX_FLOW_WIDTH && !has_multiline(v)
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn block_map(out: &mut String, entries: &[(String, Yaml)], indent: usize) {
    for (k, v) in entries {
        pad(out, indent);
        entry(out, k, v, indent);
    }
}

/// `key: value` where the key is already indented; nested blocks go two spaces deeper.
fn entry(out: &mut String, key: &str, v: &Yaml, indent: usize) {
    out.push_str(&scalar(key, false));
    out.push(':');
    match v {
        Yaml::Map(e, _) if as_block(v, indent) => {
            out.push('\n');
            block_map(out, e, indent + 2);
        }
        Yaml::Seq(items, _) if as_block(v, indent) => {
            out.push('\n');
            block_seq(out, items, indent + 2);
        }
        Yaml::Str(s) if literal_ok(s) => {
            out.push(' ');
            literal(out, s, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&block_scalar(other));
            out.push('\n');
        }
    }
}

fn block_seq(out: &mut String, items: &[Yaml], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        match item {
            Yaml::Map(e, _) if as_block(item, indent + 2) => {
                // The first entry shares the dash's line.
                out.push(' ');
                let (k, v) = &e[0];
                entry(out, k, v, indent + 2);
                block_map(out, &e[1..], indent + 2);
            }
            Yaml::Seq(inner, _) if as_block(item, indent + 2) => {
                out.push('\n');
                block_seq(out, inner, indent + 2);
            }
            Yaml::Str(s) if literal_ok(s) => {
                out.push(' ');
                literal(out, s, indent + 2);
            }
            other => {
                out.push(' ');
                out.push_str(&block_scalar(other));
                out.push('\n');
            }
        }
    }
}

/// A value on a block line: strings may use the characters only flow context reserves.
fn block_scalar(v: &Yaml) -> String {
    match v {
        Yaml::Str(s) => scalar(s, false),
        other => flow(other),
    }
}

fn flow(v: &Yaml) -> String {
    match v {
        Yaml::Str(s) => scalar(s, true),
        Yaml::Num(n) => n.clone(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => "null".to_string(),
        Yaml::Seq(items, _) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        Yaml::Map(entries, _) if entries.is_empty() => "{}".to_string(),
        Yaml::Map(entries, _) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(k, true), flow(v)))
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
    }
}

/// Characters YAML allows unescaped in a document.
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && c != '\u{feff}'
}

/// Plain (unquoted) only when no YAML reader could take the text for anything but this
/// string: no indicators, no `: ` or ` #`, and nothing a YAML 1.1 or 1.2 reader resolves
/// to a bool, null or number.
fn plain_ok(s: &str, in_flow: bool) -> bool {
    const YAML11_WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_alphanumeric() || matches!(first, '_' | '/' | '(')) || s.ends_with(char::is_whitespace) {
        return false;
    }
    if s.chars()
        .any(|c| !printable(c) || c.is_control() || matches!(c, ':' | '#' | '\'' | '"' | '\\' | '`'))
    {
        return false;
    }
    if in_flow && s.contains([',', '[', ']', '{', '}']) {
        return false;
    }
    if !crate::yaml::core_schema_scalar(s).is_string() || YAML11_WORDS.contains(&s) {
        return false;
    }
    // Numbers in any spelling a reader might accept: `1e3`, `inf`, `1_000`, `0x1f`; and
    // dates, which YAML 1.1 readers turn into timestamps: `2024-01-31`.
    let lower = s.to_ascii_lowercase();
    let date_like = s.len() >= 8
        && s.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && s.as_bytes()[4] == b'-'
        && s[5..].starts_with(|c: char| c.is_ascii_digit());
    if s.parse::<f64>().is_ok()
        || s.replace('_', "").parse::<f64>().is_ok()
        || (first.is_ascii_digit() && ["0x", "0o", "0b"].iter().any(|p| lower.starts_with(p)))
        || date_like
    {
        return false;
    }
    true
}

/// A scalar as YAML text: plain when safe, else single-quoted, else double-quoted with
/// escapes (the only form that can hold line breaks and control characters exactly).
pub(crate) fn scalar(s: &str, in_flow: bool) -> String {
    if plain_ok(s, in_flow) {
        return s.to_string();
    }
    if s.chars().all(|c| printable(c) && !c.is_control()) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) && !c.is_control() => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A multi-line string reads best as a literal block (`|`), when it can be written as
/// one exactly: no carriage returns or escapes needed, and a first line that does not
/// start with a space (the block's indentation is taken from it).
fn literal_ok(s: &str) -> bool {
    let body = s.trim_end_matches('\n');
    s.contains('\n')
        && !body.is_empty()
        && !body.starts_with([' ', '\t', '\n'])
        && s.chars()
            .all(|c| c == '\n' || (printable(c) && !c.is_control()) || c == '\t')
}

fn literal(out: &mut String, s: &str, indent: usize) {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    // Chomping: `|-` strips the final line break, `|` keeps one, `|+` keeps them all.
    out.push_str(match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    });
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..trailing {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{Source, parse};

    /// Emits `{ v: text }` in both layouts and reads the value back.
    fn round_trip(text: &str) {
        for layout in [Layout::Block, Layout::Flow] {
            let doc = Yaml::Map(vec![("v".into(), Yaml::str(text))], layout);
            let yaml = emit(&Yaml::block_map([("d", doc)]));
            let (root, warnings) =
                parse(&Source::new("t.yaml", yaml.as_str())).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            assert!(warnings.is_empty(), "{yaml}");
            let got = root.get("d").and_then(|d| d.get("v")).map(|n| n.to_json());
            assert_eq!(got, Some(Value::String(text.into())), "layout {layout:?}:\n{yaml}");
        }
    }

    #[test]
    fn strings_round_trip_as_strings() {
        for s in [
            "yes",
            "no",
            "on",
            "y",
            "true",
            "False",
            "null",
            "~",
            "",
            " ",
            "1.0",
            "1",
            "-1",
            "+1",
            ".5",
            "1e3",
            "1_000",
            "0x1f",
            "inf",
            ".inf",
            "NaN",
            "'x'",
            "\"x\"",
            "a: b",
            "a:b",
            "#",
            "a #b",
            "a#b",
            "- x",
            "-",
            "? x",
            "[a]",
            "{a}",
            "a, b",
            "&a",
            "*a",
            "!x",
            "|",
            ">",
            "%x",
            "@x",
            "`x`",
            "x ",
            " x",
            "a\nb",
            "a\nb\n",
            "a\n\n",
            "\n",
            "\na",
            "  a\nb",
            "a\n  b\n\n\nc",
            "tab\there",
            "cr\r\nlf",
            "nul\u{0}",
            "bell\u{7}",
            "del\u{7f}",
            "bom\u{feff}",
            "nel\u{85}",
            "ls\u{2028}",
            "é ü",
            "日本",
            "emoji 🦀",
            "decimal(18,2)",
            "struct<a: int32>",
            "amount >= 0",
            "2020-01-01",
            "2020-1-1T10:00",
            "region = 'EU'",
            "^[A-Z]{3}$",
            "99.9%",
            "2.1.0",
            "5m",
            "a\\b",
            "---",
            "...",
            "a\t",
        ] {
            round_trip(s);
        }
    }

    #[test]
    fn plain_when_safe() {
        assert_eq!(scalar("payments-data-team", true), "payments-data-team");
        assert_eq!(scalar("decimal(18,2)", false), "decimal(18,2)");
        assert_eq!(scalar("decimal(18,2)", true), "'decimal(18,2)'");
        assert_eq!(scalar("2.1.0", true), "2.1.0");
        assert_eq!(scalar("yes", true), "'yes'");
        assert_eq!(scalar("2020-01-01", false), "'2020-01-01'");
        assert_eq!(scalar("it's", true), "'it''s'");
        assert_eq!(scalar("a\nb", true), "\"a\\nb\"");
    }

    #[test]
    fn long_flow_collections_become_blocks() {
        let long = "x".repeat(130);
        let doc = Yaml::block_map([("m", Yaml::flow_map([("a", Yaml::str("b")), ("c", Yaml::str(long))]))]);
        let text = emit(&doc);
        assert!(text.starts_with("m:\n  a: b\n  c: "), "{text}");
        let doc = Yaml::block_map([("m", Yaml::flow_map([("a", Yaml::str("b"))]))]);
        assert_eq!(emit(&doc), "m: { a: b }\n");
    }
}
