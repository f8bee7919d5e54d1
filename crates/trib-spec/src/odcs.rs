//! ODCS v3.1 interchange: a contract as an Open Data Contract Standard document and back.
//!
//! ```text
//!   export:  Contract ──► ODCS JSON: native fields (schema, types, keys, partitions,
//!                         checks, SLAs, roles, support) + `tributary.<field>` custom
//!                         properties for everything ODCS cannot say ──to_yaml──► text
//!
//!   import:  ODCS YAML ──yaml::parse──► located tree ──► our YAML form ──parse_contract──►
//!            Contract ──render_contract──► canonical YAML (read back to be sure)
//!                              └── a warning for every ODCS construct that is dropped
//! ```
//!
//! `tributary.*` custom properties hold fields in our own YAML form, so that a contract
//! exported and imported again is the same contract. On import they win over the native
//! ODCS fields they overlap (checks, partitions, SLA); a document written by another
//! tool is mapped from its native fields only.
//!
//! Import never fails on what it cannot map: it drops it with an `odcs::unmapped`
//! warning at its location. Approximations (types, names, defaults) are reported as
//! `odcs::converted` and `odcs::defaulted`.

use crate::decode::Spanned;
use crate::model::*;
use crate::render::{self, Layout, Yaml};
use crate::types::{DataType, StructField};
use crate::yaml::{self, Node, NodeKind, NodeSpan, Source as YamlSource};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use trib_core::diagnostic::did_you_mean;
use trib_core::{Diagnostic, Duration, Severity};

/// The ODCS version written by [`export`].
pub const API_VERSION: &str = "v3.1.0";

/// Prefix of the custom properties that carry what ODCS cannot express.
pub const CUSTOM_PREFIX: &str = "tributary.";

/// Contract fields carried as `tributary.<field>` custom properties, in their YAML form.
const CUSTOM_FIELDS: &[&str] = &[
    "layer",
    "source",
    "sequence_by",
    "event_time",
    "event_id",
    "watermark",
    "partition_by",
    "cluster_by",
    "sla",
    "quality",
    "tiers",
];

// =======================================================================================
// Export

/// The contract as an ODCS v3.1.0 document (valid against the ODCS JSON Schema).
pub fn export(c: &Contract) -> Value {
    let fields = render::contract_fields(c);
    let ours = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_json());

    let mut doc = Map::new();
    doc.insert("apiVersion".into(), json!(API_VERSION));
    doc.insert("kind".into(), json!("DataContract"));
    doc.insert("id".into(), json!(c.product.to_string()));
    doc.insert("name".into(), json!(c.product.to_string()));
    doc.insert("version".into(), json!(c.version.to_string()));
    doc.insert("status".into(), json!(c.status.as_str()));
    doc.insert("domain".into(), json!(c.domain()));
    if let Some(d) = &c.description {
        doc.insert("description".into(), json!({ "purpose": d }));
    }
    if !c.tags.is_empty() {
        doc.insert("tags".into(), json!(c.tags));
    }
    doc.insert("team".into(), json!({ "name": c.owner }));
    let support = support(&c.contact);
    if !support.is_empty() {
        doc.insert("support".into(), Value::Array(support));
    }
    doc.insert("schema".into(), json!([schema_object(c)]));
    if !c.access.is_empty() {
        doc.insert("roles".into(), c.access.iter().map(role).collect());
    }
    let sla = sla_properties(c);
    if !sla.is_empty() {
        doc.insert("slaProperties".into(), Value::Array(sla));
    }
    let custom: Vec<Value> = CUSTOM_FIELDS
        .iter()
        // ODCS has availability, latency and a completeness figure but not its window,
        // nor validity: the SLA travels in our form only when it has one of them.
        .filter(|f| **f != "sla" || c.sla.completeness.is_some() || c.sla.validity.is_some())
        .filter_map(|f| ours(f).map(|v| custom_property(f, v)))
        .collect();
    doc.insert("customProperties".into(), Value::Array(custom));
    Value::Object(doc)
}

/// An ODCS document as YAML text.
pub fn to_yaml(doc: &Value) -> String {
    render::emit(&Yaml::from_json(doc))
}

fn custom_property(field: &str, value: Value) -> Value {
    json!({ "property": format!("{CUSTOM_PREFIX}{field}"), "value": value })
}

fn support(contact: &Contact) -> Vec<Value> {
    let mut items = Vec::new();
    if let Some(email) = &contact.email {
        items.push(json!({ "channel": "email", "url": format!("mailto:{email}"), "tool": "email" }));
    }
    if let Some(slack) = &contact.slack {
        items.push(json!({ "channel": slack, "tool": "slack" }));
    }
    if let Some(hook) = &contact.webhook {
        items.push(json!({ "channel": "webhook", "url": hook, "tool": "other" }));
    }
    items
}

fn role(g: &AccessGrant) -> Value {
    let mut r = Map::new();
    r.insert("role".into(), json!(g.role.value));
    r.insert("access".into(), json!(g.level.as_str()));
    if let Some(f) = &g.row_filter {
        r.insert(
            "customProperties".into(),
            json!([custom_property("row_filter", json!(f.value))]),
        );
    }
    Value::Object(r)
}

/// `5m` → (5, "minutes"): ODCS SLAs carry a number and a unit.
fn duration_parts(d: Duration) -> (u64, &'static str) {
    let text = d.to_string();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let amount = text[..split].parse().unwrap_or(0);
    let unit = match &text[split..] {
        "s" => "seconds",
        "m" => "minutes",
        "h" => "hours",
        "d" => "days",
        "w" => "weeks",
        _ => "years",
    };
    (amount, unit)
}

fn sla_properties(c: &Contract) -> Vec<Value> {
    let mut props = Vec::new();
    if let Some(f) = c.sla.freshness {
        let (value, unit) = duration_parts(f);
        props.push(json!({ "property": "latency", "value": value, "unit": unit }));
    }
    if let Some(a) = c.sla.availability {
        props.push(json!({ "property": "availability", "value": a, "unit": "%" }));
    }
    if let Some(comp) = &c.sla.completeness {
        props.push(json!({
            "property": "completeness",
            "value": comp.target,
            "unit": "%",
            "description": format!(
                "{} of records arrive within {} of their event time",
                render::percent(comp.target),
                comp.within
            ),
        }));
    }
    if let Some(v) = c.sla.validity {
        props.push(json!({
            "property": "validity",
            "value": v,
            "unit": "%",
            "description": format!("{} of received records are accepted, not dead-lettered", render::percent(v)),
        }));
    }
    if let Some(r) = c.retention {
        let (value, unit) = duration_parts(r);
        props.push(json!({ "property": "retention", "value": value, "unit": unit }));
    }
    props
}

/// ODCS ids: letters, digits, `_` and `-`.
fn stable_id(s: &str) -> Option<Value> {
    let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then(|| json!(s))
}

fn schema_object(c: &Contract) -> Value {
    let name = c.product.name();
    let mut obj = Map::new();
    if let Some(id) = stable_id(name) {
        obj.insert("id".into(), id);
    }
    obj.insert("name".into(), json!(name));
    // The table is addressed by the product in SQL.
    obj.insert("physicalName".into(), json!(c.product.to_string()));
    let physical = if c.layer == Layer::View { "view" } else { "table" };
    obj.insert("physicalType".into(), json!(physical));
    obj.insert("logicalType".into(), json!("object"));
    let checks = NativeChecks::of(c);
    let properties: Vec<Value> = c.schema.iter().map(|col| property(c, col, &checks)).collect();
    obj.insert("properties".into(), Value::Array(properties));
    if !checks.object.is_empty() {
        obj.insert("quality".into(), Value::Array(checks.object));
    }
    Value::Object(obj)
}

fn property(c: &Contract, col: &Column, checks: &NativeChecks) -> Value {
    let name = col.name.value.as_str();
    let mut p = Map::new();
    if let Some(id) = stable_id(name) {
        p.insert("id".into(), id);
    }
    p.insert("name".into(), json!(name));
    type_fields(&mut p, &col.data_type);
    if let Some(d) = &col.description {
        p.insert("description".into(), json!(d));
    }
    if col.required {
        p.insert("required".into(), json!(true));
    }
    if let Some(i) = c.key.iter().position(|k| k.value == name) {
        p.insert("primaryKey".into(), json!(true));
        p.insert("primaryKeyPosition".into(), json!(i + 1));
    }
    if let Some(i) = c.partition_by.iter().position(|k| k.column.value == name) {
        p.insert("partitioned".into(), json!(true));
        p.insert("partitionKeyPosition".into(), json!(i + 1));
    }
    if let Some(cl) = col.classification {
        p.insert("classification".into(), json!(cl.as_str()));
    }
    if !col.tags.is_empty() {
        p.insert("tags".into(), json!(col.tags));
    }
    nested_fields(&mut p, &col.data_type);
    if let Some(rel) = checks.relationships.get(name) {
        p.insert("relationships".into(), json!(rel));
    }
    if let Some(q) = checks.by_column.get(name) {
        p.insert("quality".into(), json!(q));
    }
    if col.pii {
        p.insert("customProperties".into(), json!([custom_property("pii", json!(true))]));
    }
    Value::Object(p)
}

/// `logicalType`, the exact type text as `physicalType`, and the options that pin it.
fn type_fields(p: &mut Map<String, Value>, t: &DataType) {
    let (logical, options) = match t {
        DataType::String => ("string", None),
        DataType::Binary => ("string", Some(json!({ "format": "binary" }))),
        DataType::Bool => ("boolean", None),
        DataType::Int32 => ("integer", Some(json!({ "format": "i32" }))),
        DataType::Int64 => ("integer", Some(json!({ "format": "i64" }))),
        DataType::Float => ("number", Some(json!({ "format": "f32" }))),
        DataType::Double => ("number", Some(json!({ "format": "f64" }))),
        DataType::Decimal { .. } => ("number", None),
        DataType::Date => ("date", None),
        DataType::Timestamp => ("timestamp", Some(json!({ "timezone": true }))),
        DataType::TimestampNtz => ("timestamp", Some(json!({ "timezone": false }))),
        DataType::List(_) => ("array", None),
        DataType::Struct(_) => ("object", None),
    };
    p.insert("logicalType".into(), json!(logical));
    p.insert("physicalType".into(), json!(t.to_string()));
    if let Some(o) = options {
        p.insert("logicalTypeOptions".into(), o);
    }
}

/// The element of a list (`items`) or the fields of a struct (`properties`).
fn nested_fields(p: &mut Map<String, Value>, t: &DataType) {
    match t {
        DataType::List(inner) => {
            let mut item = Map::new();
            type_fields(&mut item, inner);
            nested_fields(&mut item, inner);
            p.insert("items".into(), Value::Object(item));
        }
        DataType::Struct(fields) => {
            let props: Vec<Value> = fields
                .iter()
                .map(|f| {
                    let mut fp = Map::new();
                    if let Some(id) = stable_id(&f.name) {
                        fp.insert("id".into(), id);
                    }
                    fp.insert("name".into(), json!(f.name));
                    type_fields(&mut fp, &f.data_type);
                    nested_fields(&mut fp, &f.data_type);
                    Value::Object(fp)
                })
                .collect();
            p.insert("properties".into(), Value::Array(props));
        }
        _ => {}
    }
}

/// Checks in ODCS's own vocabulary, for tools that read ODCS. The exact definitions
/// travel in `tributary.quality`.
#[derive(Default)]
struct NativeChecks {
    object: Vec<Value>,
    by_column: HashMap<String, Vec<Value>>,
    relationships: HashMap<String, Vec<Value>>,
}

/// A SQL identifier, quoted unless it is plain lowercase (SQL folds unquoted names).
fn sql_ident(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl NativeChecks {
    fn of(c: &Contract) -> Self {
        let table = c.product.to_string();
        let mut out = Self::default();
        for q in &c.quality {
            let item = |dimension: Option<&str>, description: Option<String>, body: Value| {
                let mut m = Map::new();
                if let Some(n) = &q.name {
                    m.insert("name".into(), json!(n));
                }
                if let Some(d) = description {
                    m.insert("description".into(), json!(d));
                }
                if let Value::Object(b) = body {
                    m.extend(b);
                }
                if let Some(d) = dimension {
                    m.insert("dimension".into(), json!(d));
                }
                let severity = match q.severity {
                    CheckSeverity::Error => "error",
                    CheckSeverity::Warn => "warning",
                };
                m.insert("severity".into(), json!(severity));
                Value::Object(m)
            };
            // A query counting the rows that fail; the check wants zero of them.
            let failing = |filter: String| json!({ "type": "sql", "query": format!("SELECT COUNT(*) FROM {table} WHERE {filter}"), "mustBe": 0 });
            match &q.kind {
                CheckKind::NotNull(cols) => {
                    for col in cols {
                        let body = json!({ "type": "library", "metric": "nullValues", "mustBe": 0 });
                        out.column(col, item(Some("completeness"), None, body));
                    }
                }
                CheckKind::Unique(cols) => match cols.as_slice() {
                    [] => {}
                    [col] => {
                        let body = json!({ "type": "library", "metric": "duplicateValues", "mustBe": 0 });
                        out.column(col, item(Some("uniqueness"), None, body));
                    }
                    cols => {
                        let list: Vec<String> = cols.iter().map(|c| sql_ident(c)).collect();
                        let list = list.join(", ");
                        let query = format!(
                            "SELECT COUNT(*) FROM (SELECT {list} FROM {table} GROUP BY {list} HAVING COUNT(*) > 1) AS duplicates"
                        );
                        let description = format!("({list}) is unique");
                        let body = json!({ "type": "sql", "query": query, "mustBe": 0 });
                        out.object.push(item(Some("uniqueness"), Some(description), body));
                    }
                },
                CheckKind::AcceptedValues { column, values } => {
                    let body = json!({
                        "type": "library",
                        "metric": "invalidValues",
                        "arguments": { "validValues": values },
                        "mustBe": 0,
                    });
                    out.column(column, item(Some("conformity"), None, body));
                }
                CheckKind::Range { column, min, max } => {
                    let c = sql_ident(column);
                    let mut outside = Vec::new();
                    if let Some(b) = min {
                        outside.push(format!("{c} < {b}"));
                    }
                    if let Some(b) = max {
                        outside.push(format!("{c} > {b}"));
                    }
                    let within = match (min, max) {
                        (Some(a), Some(b)) => format!("between {a} and {b}"),
                        (Some(a), None) => format!("at least {a}"),
                        (None, Some(b)) => format!("at most {b}"),
                        (None, None) => "any value".to_string(),
                    };
                    if !outside.is_empty() {
                        let description = format!("`{}` is {within}", column.value);
                        out.column(
                            column,
                            item(Some("accuracy"), Some(description), failing(outside.join(" OR "))),
                        );
                    }
                }
                CheckKind::Regex { column, pattern } => {
                    let filter = format!("NOT regexp_like({}, {})", sql_ident(column), sql_text(pattern));
                    let description = format!("`{}` matches `{pattern}`", column.value);
                    out.column(column, item(Some("conformity"), Some(description), failing(filter)));
                }
                CheckKind::RowCount { min, max } => {
                    let operator = match (min, max) {
                        (Some(a), Some(b)) if a == b => json!({ "mustBe": a }),
                        (Some(a), Some(b)) => json!({ "mustBeBetween": [a, b] }),
                        (Some(a), None) => json!({ "mustBeGreaterOrEqualTo": a }),
                        (None, Some(b)) => json!({ "mustBeLessOrEqualTo": b }),
                        (None, None) => json!({ "mustBeGreaterOrEqualTo": 0 }),
                    };
                    let mut body = json!({ "type": "library", "metric": "rowCount" });
                    if let (Value::Object(b), Value::Object(o)) = (&mut body, operator) {
                        b.extend(o);
                    }
                    out.object.push(item(Some("completeness"), None, body));
                }
                CheckKind::Freshness { max_age, column } => {
                    let description = format!("the newest data is at most {max_age} old");
                    let body = match column {
                        Some(col) => json!({
                            "type": "sql",
                            "query": format!(
                                "SELECT COUNT(*) FROM (SELECT MAX({c}) AS latest FROM {table}) AS newest WHERE latest IS NULL OR latest < NOW() - INTERVAL '{s} seconds'",
                                c = sql_ident(col),
                                s = max_age.as_secs()
                            ),
                            "mustBe": 0,
                        }),
                        None => json!({ "type": "text" }),
                    };
                    out.object.push(item(Some("timeliness"), Some(description), body));
                }
                CheckKind::Relationships { column, to, field } => {
                    // A fully qualified ODCS reference into the referenced product's export.
                    if stable_id(field).is_some() {
                        let reference = format!("{to}.odcs.yaml#/schema/{}/properties/{field}", to.name());
                        out.relationships
                            .entry(column.value.clone())
                            .or_default()
                            .push(json!({ "type": "foreignKey", "to": reference }));
                    }
                }
                CheckKind::Sql(query) => {
                    let body = json!({ "type": "sql", "query": format!("WITH this AS (SELECT * FROM {table}) SELECT COUNT(*) FROM ({}) AS failing", query.value), "mustBe": 0 });
                    out.object.push(item(None, None, body));
                }
                CheckKind::Anomaly {
                    metric,
                    window,
                    threshold,
                } => {
                    let description = format!(
                        "{} within {threshold} robust deviations of the last {window} measurements",
                        metric.as_str()
                    );
                    let body = json!({ "type": "custom", "engine": "tributary", "implementation": { "anomaly": metric.as_str(), "window": window, "threshold": threshold } });
                    match metric {
                        crate::AnomalyMetric::NullRate(c) => {
                            out.column(c, item(Some("accuracy"), Some(description), body))
                        }
                        crate::AnomalyMetric::RowCount => {
                            out.object.push(item(Some("completeness"), Some(description), body))
                        }
                    }
                }
                CheckKind::Expect { sql, .. } => {
                    let description = format!("every row satisfies `{}`", sql.value);
                    out.object
                        .push(item(None, Some(description), failing(format!("NOT ({})", sql.value))));
                }
            }
        }
        out
    }

    fn column(&mut self, col: &Spanned<String>, check: Value) {
        self.by_column.entry(col.value.clone()).or_default().push(check);
    }
}

// =======================================================================================
// Import

/// The result of importing an ODCS document.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The contract in our format: canonical when `contract` is set, otherwise the draft
    /// that failed validation, for the user to fix.
    pub yaml: String,
    pub contract: Option<Contract>,
    /// What was dropped or approximated, located in the ODCS file. When `contract` is
    /// `None` this also holds the validation errors.
    pub warnings: Vec<Diagnostic>,
}

/// Reads an ODCS v3 document into a contract. Fails only when the input is not YAML or
/// not an ODCS data contract; everything it cannot map becomes a warning.
pub fn import(source: &YamlSource) -> Result<Imported, Box<Diagnostic>> {
    let (root, structural) = yaml::parse(source)?;
    let mut imp = Importer::new(source);
    for mut d in structural {
        // Duplicate keys and the like: the first value was kept; worth a look, not a stop.
        d.severity = Severity::Warning;
        imp.extra.push(d);
    }
    imp.check_document(&root)?;
    let draft = imp.draft(&root);
    imp.finish(draft)
}

/// Hints for constructs that have no place in a contract, by key.
fn unmapped_hint(key: &str) -> &'static str {
    match key {
        "servers" => "storage and Kafka connections are settings (`trib.toml` or `TRIB_*`), not contract fields",
        "price" => "Tributary contracts carry no pricing; keep it in your marketplace or catalog",
        "authoritativeDefinitions" => "link definitions from the description, or keep them in your catalog",
        "relationships" => {
            "add a `relationships` check naming the referenced product, e.g. `relationships: { column: customer_id, to: crm.customers, field: customer_id }`"
        }
        "businessName" | "dataGranularityDescription" => "put it into the `description` if readers need it",
        "examples" => "examples are not kept; mention typical values in the column `description`",
        "transformSourceObjects" | "transformLogic" | "transformDescription" => {
            "lineage comes from the product's model: `source: { inputs: [...], transform: models/x.sql }`"
        }
        "criticalDataElement" => "mark critical columns with a tag, e.g. `tags: [cde]`, and a policy",
        "encryptedName" => "encryption is a storage concern; mask the column with `pii: true` and access rules",
        "members" => "Tributary records the owning team (`owner`) only; keep people in your directory",
        "firstLevelApprovers" | "secondLevelApprovers" => "approval workflows are outside the contract",
        "schedule" | "scheduler" => "Tributary runs checks on every update of the product",
        "customProperties" => "keep what matters in `tags` or the `description`",
        "tenant" => "a Tributary project belongs to one tenant; nothing to set",
        "contractCreatedTs" => "git history records when the contract was created",
        "physicalName" => "the column or table is imported under its logical `name`",
        _ => "Tributary has no field for it, so it is not part of the imported contract",
    }
}

/// Top-level ODCS keys and what reads them.
const KNOWN_TOP: &[&str] = &[
    "apiVersion",
    "kind",
    "id",
    "name",
    "version",
    "status",
    "domain",
    "dataProduct",
    "description",
    "tags",
    "team",
    "support",
    "schema",
    "roles",
    "slaProperties",
    "customProperties",
    "servers",
];
const KNOWN_OBJECT: &[&str] = &[
    "id",
    "name",
    "physicalType",
    "physicalName",
    "logicalType",
    "description",
    "tags",
    "properties",
    "quality",
];
const KNOWN_PROPERTY: &[&str] = &[
    "id",
    "name",
    "logicalType",
    "physicalType",
    "logicalTypeOptions",
    "description",
    "required",
    "unique",
    "primaryKey",
    "primaryKeyPosition",
    "partitioned",
    "partitionKeyPosition",
    "classification",
    "tags",
    "quality",
    "customProperties",
    "relationships",
    "physicalName",
    "items",
    "properties",
];
/// Nested properties become struct fields and list items: a name and a type.
const KNOWN_NESTED: &[&str] = &[
    "id",
    "name",
    "logicalType",
    "physicalType",
    "logicalTypeOptions",
    "items",
    "properties",
];
const OPERATORS: &[&str] = &[
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
];
const KNOWN_CHECK: &[&str] = &[
    "id",
    "name",
    "type",
    "metric",
    "rule",
    "arguments",
    "severity",
    "dimension",
    "unit",
    "query",
    "engine",
    "implementation",
];

/// A trimmed, non-empty scalar, for names and words.
fn text(node: Option<&Node>) -> Option<&str> {
    node.and_then(Node::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// A scalar that is not blank, exactly as written, for values a round trip must keep.
fn raw(node: Option<&Node>) -> Option<&str> {
    node.and_then(Node::as_str).filter(|s| !s.trim().is_empty())
}

fn items(node: Option<&Node>) -> &[Node] {
    match node.map(|n| &n.kind) {
        Some(NodeKind::Seq(items)) => items,
        _ => &[],
    }
}

fn entries(node: &Node) -> &[(Node, Node)] {
    match &node.kind {
        NodeKind::Map(e) => e,
        _ => &[],
    }
}

fn flag(node: Option<&Node>) -> Option<bool> {
    match node.map(Node::to_json) {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn number(node: Option<&Node>) -> Option<f64> {
    match node.map(Node::to_json) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok().filter(|x: &f64| x.is_finite()),
        _ => None,
    }
}

fn strings(node: Option<&Node>) -> Vec<String> {
    items(node)
        .iter()
        .filter_map(|n| raw(Some(n)))
        .map(str::to_string)
        .collect()
}

/// Whether a value says anything: `false`, `-1` positions, `null` and empty lists are
/// ODCS defaults, and dropping them loses nothing.
fn meaningful(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Null => false,
        NodeKind::Seq(items) => !items.is_empty(),
        NodeKind::Map(e) => !e.is_empty(),
        NodeKind::Scalar { value, .. } => !matches!(value.trim(), "" | "false" | "-1"),
    }
}

/// `Air_Quality` → `air_quality`, `AnObject` → `an_object`, `my-domain` → `my_domain`.
fn snake_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && i > 0 && !out.ends_with('_') {
                let prev = chars[i - 1];
                let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
                if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                    out.push('_');
                }
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_string();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("n_{out}")
    } else {
        out
    }
}

/// A column or struct field name SQL can use unquoted: `unit price` → `unit_price`.
fn identifier(s: &str) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// Makes `name` distinct from `taken` (case-insensitively, as SQL compares names).
fn distinct(name: String, taken: &[String]) -> String {
    let clash = |n: &str| taken.iter().any(|t| t.eq_ignore_ascii_case(n));
    if !clash(&name) {
        return name;
    }
    (2..).map(|i| format!("{name}_{i}")).find(|n| !clash(n)).unwrap_or(name)
}

/// Where a field of the draft came from, to point errors at the ODCS file.
#[derive(Clone)]
struct Origin {
    span: NodeSpan,
    what: String,
}

/// A warning, grouped with the other occurrences of the same construct.
struct Grouped {
    key: String,
    diagnostic: Diagnostic,
    count: usize,
}

struct Importer<'s> {
    source: &'s YamlSource,
    grouped: Vec<Grouped>,
    /// Diagnostics that are not grouped (YAML structure).
    extra: Vec<Diagnostic>,
}

/// One imported column and what the native ODCS fields say about it.
struct ImportedColumn<'n> {
    name: String,
    data_type: DataType,
    node: &'n Node,
}

/// What the native `slaProperties` say: `sla` fields, and the retention with its node.
struct NativeSla<'n> {
    fields: Vec<(&'static str, Yaml)>,
    retention: Option<(Duration, &'n Node)>,
}

/// The draft contract in our YAML form, with the origin of each field.
struct Draft {
    fields: Vec<(&'static str, Yaml, Origin)>,
}

impl Draft {
    fn set(&mut self, field: &'static str, value: Yaml, origin: Origin) {
        self.fields.push((field, value, origin));
    }
}

/// The place a contract field takes in our YAML, for a stable draft.
fn field_rank(field: &str) -> usize {
    const ORDER: &[&str] = &[
        "product",
        "version",
        "owner",
        "contact",
        "description",
        "status",
        "layer",
        "tags",
        "source",
        "key",
        "sequence_by",
        "event_time",
        "event_id",
        "watermark",
        "partition_by",
        "cluster_by",
        "schema",
        "sla",
        "access",
        "quality",
        "retention",
        "tiers",
    ];
    ORDER.iter().position(|f| *f == field).unwrap_or(ORDER.len())
}

impl<'s> Importer<'s> {
    fn new(source: &'s YamlSource) -> Self {
        Self {
            source,
            grouped: Vec::new(),
            extra: Vec::new(),
        }
    }

    fn origin(&self, node: &Node, what: impl Into<String>) -> Origin {
        Origin {
            span: node.span,
            what: what.into(),
        }
    }

    /// Records a warning; repeats of `key` only raise its count.
    fn warn(&mut self, code: &str, key: String, span: NodeSpan, message: String, help: &str) {
        if let Some(g) = self.grouped.iter_mut().find(|g| g.key == key) {
            g.count += 1;
            return;
        }
        let diagnostic = Diagnostic::warning(code, message)
            .with_location(self.source.location(span))
            .with_help(help);
        self.grouped.push(Grouped {
            key,
            diagnostic,
            count: 1,
        });
    }

    fn unmapped(&mut self, path: &str, node: &Node, help: &str) {
        self.warn(
            "odcs::unmapped",
            path.to_string(),
            node.span,
            format!("ODCS `{path}` is not mapped and is left out of the contract"),
            help,
        );
    }

    fn converted(&mut self, key: String, node: &Node, message: String, help: &str) {
        self.warn("odcs::converted", key, node.span, message, help);
    }

    fn defaulted(&mut self, node: &Node, message: String, help: &str) {
        let key = format!("default:{message}");
        self.warn("odcs::defaulted", key, node.span, message, help);
    }

    /// Warns about the keys of `node` that nothing reads, unless they hold a default.
    fn unknown_keys(&mut self, node: &Node, path: &str, known: &[&str]) {
        for (k, v) in entries(node) {
            let Some(key) = k.as_str() else { continue };
            if known.contains(&key) || !meaningful(v) {
                continue;
            }
            let construct = if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            };
            self.unmapped(&construct, k, unmapped_hint(key));
        }
    }

    fn check_document(&mut self, root: &Node) -> Result<(), Box<Diagnostic>> {
        let located = |span: NodeSpan, code: &str, message: String, help: &str| {
            Box::new(
                Diagnostic::error(code, message)
                    .with_location(self.source.location(span))
                    .with_help(help),
            )
        };
        if !matches!(root.kind, NodeKind::Map(_)) {
            return Err(located(
                root.span,
                "odcs::not-a-contract",
                format!("an ODCS data contract is a mapping, found {}", root.describe()),
                "start the file with `apiVersion: v3.1.0` and `kind: DataContract`",
            ));
        }
        if let Some(n) = root.get("dataContractSpecification") {
            return Err(located(
                n.span,
                "odcs::not-a-contract",
                "this is a Data Contract Specification file, not ODCS".into(),
                "convert it first, e.g. `datacontract export --format odcs`, then import the result",
            ));
        }
        match root.get("kind") {
            Some(k) if text(Some(k)) != Some("DataContract") => {
                return Err(located(
                    k.span,
                    "odcs::not-a-contract",
                    format!("`kind: {}` is not an ODCS data contract", k.as_str().unwrap_or("")),
                    "ODCS data contracts have `kind: DataContract`",
                ));
            }
            _ => {}
        }
        match root.get("apiVersion") {
            Some(v) if !text(Some(v)).is_some_and(|t| t.starts_with("v3.")) => {
                self.converted(
                    "apiVersion".into(),
                    v,
                    format!(
                        "ODCS `apiVersion: {}` is read as v3; fields of other versions may be missed",
                        v.as_str().unwrap_or("")
                    ),
                    "upgrade the document to ODCS v3.1.0",
                );
            }
            Some(_) => {}
            None => self.defaulted(
                root,
                "the document has no `apiVersion`; it is read as ODCS v3.1.0".into(),
                "add `apiVersion: v3.1.0`",
            ),
        }
        Ok(())
    }

    /// Builds the draft contract, in our YAML form, from the ODCS tree.
    fn draft(&mut self, root: &Node) -> Draft {
        let mut d = Draft { fields: Vec::new() };
        self.unknown_keys(root, "", KNOWN_TOP);
        let custom = self.custom_properties(root);
        let from_custom = |field: &str| custom.get(field);

        let objects = items(root.get("schema"));
        let object = objects.first();
        if let [first, second, rest @ ..] = objects {
            let name = |o: &Node| format!("`{}`", text(o.get("name")).unwrap_or("(unnamed)"));
            let mut others: Vec<String> = std::iter::once(second).chain(rest).take(5).map(name).collect();
            if rest.len() > 4 {
                others.push(format!("and {} more", rest.len() - 4));
            }
            self.warn(
                "odcs::unmapped",
                "schema[1..]".into(),
                second.span,
                format!(
                    "only the first schema object {} is imported; {} is left out",
                    name(first),
                    others.join(", ")
                ),
                "a product is one table: split the document into one ODCS file per schema object and import each",
            );
        }
        if let Some(o) = object {
            self.unknown_keys(o, "schema[]", KNOWN_OBJECT);
        }

        let product = self.product(root, object);
        // Exports name the table after the product; other names are not kept.
        if let Some(o) = object
            && let Some(p) = text(o.get("physicalName"))
            && Some(p) != text(o.get("name"))
            && p != product.to_string()
            && kafka_server(root).is_none()
        {
            self.unmapped(
                "schema[].physicalName",
                o.get("physicalName").unwrap_or(o),
                unmapped_hint("physicalName"),
            );
        }
        d.set(
            "product",
            Yaml::str(product.to_string()),
            self.origin(root, "the ODCS document"),
        );
        let (version, vnode) = self.version(root);
        d.set("version", Yaml::str(version), self.origin(vnode, "`version`"));
        let owner = self.owner(root);
        d.set(
            "owner",
            Yaml::str(owner),
            self.origin(root.get("team").unwrap_or(root), "`team`"),
        );
        if let Some(contact) = self.contact(root) {
            d.set(
                "contact",
                contact,
                self.origin(root.get("support").unwrap_or(root), "`support`"),
            );
        }
        if let Some(desc) = self.description(root, object) {
            d.set(
                "description",
                Yaml::str(desc),
                self.origin(root.get("description").unwrap_or(root), "`description`"),
            );
        }
        let status = self.status(root);
        d.set(
            "status",
            Yaml::str(status.as_str()),
            self.origin(root.get("status").unwrap_or(root), "`status`"),
        );

        let mut tags = strings(root.get("tags"));
        for t in object.map(|o| strings(o.get("tags"))).unwrap_or_default() {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        if !tags.is_empty() {
            d.set(
                "tags",
                Yaml::strings(tags),
                self.origin(root.get("tags").unwrap_or(root), "`tags`"),
            );
        }

        match from_custom("layer") {
            Some((v, o)) => d.set("layer", Yaml::from_json(v), o.clone()),
            None => d.set(
                "layer",
                Yaml::str(Layer::Bronze.as_str()),
                self.origin(root, "the ODCS document"),
            ),
        }
        match from_custom("source") {
            Some((v, o)) => d.set("source", Yaml::from_json(v), o.clone()),
            None => {
                let (source, origin) = self.stream_source(root, object);
                d.set("source", source, origin);
            }
        }
        self.servers(root);

        let columns = self.columns(object);
        let schema_origin = self.origin(object.unwrap_or(root), "`schema`");
        if columns.is_empty() {
            self.defaulted(
                object.unwrap_or(root),
                "the ODCS document has no schema properties; the contract gets one placeholder column `value`".into(),
                "replace the placeholder with the product's columns",
            );
            let placeholder = Yaml::flow_map([("name", Yaml::str("value")), ("type", Yaml::str("string"))]);
            d.set(
                "schema",
                Yaml::Seq(vec![placeholder], Layout::Block),
                schema_origin.clone(),
            );
        } else {
            let cols = columns.iter().map(|c| self.column_yaml(c)).collect();
            d.set("schema", Yaml::Seq(cols, Layout::Block), schema_origin.clone());
        }

        let key = self.positioned(&columns, "primaryKey", "primaryKeyPosition", "key", |t| {
            !(t.is_nested() || matches!(t, DataType::Float | DataType::Double))
        });
        if !key.is_empty() {
            d.set("key", Yaml::strings(key), schema_origin.clone());
        }
        for field in ["sequence_by", "event_time", "event_id", "watermark"] {
            if let Some((v, o)) = from_custom(field) {
                d.set(field, Yaml::from_json(v), o.clone());
            }
        }
        match from_custom("partition_by") {
            Some((v, o)) => d.set("partition_by", Yaml::from_json(v), o.clone()),
            None => {
                let parts = self.positioned(&columns, "partitioned", "partitionKeyPosition", "partition", |t| {
                    !(t.is_nested() || matches!(t, DataType::Float | DataType::Double | DataType::Binary))
                });
                if !parts.is_empty() {
                    d.set("partition_by", Yaml::strings(parts), schema_origin.clone());
                }
            }
        }
        if let Some((v, o)) = from_custom("cluster_by") {
            d.set("cluster_by", Yaml::from_json(v), o.clone());
        }

        let NativeSla { fields: sla, retention } = self.sla(root, from_custom("sla").is_some());
        match from_custom("sla") {
            Some((v, o)) => d.set("sla", Yaml::from_json(v), o.clone()),
            None if !sla.is_empty() => {
                d.set(
                    "sla",
                    Yaml::flow_map(sla),
                    self.origin(root.get("slaProperties").unwrap_or(root), "`slaProperties`"),
                );
            }
            None => {}
        }
        let access = self.access(root);
        if !access.is_empty() {
            d.set(
                "access",
                Yaml::Seq(access, Layout::Block),
                self.origin(root.get("roles").unwrap_or(root), "`roles`"),
            );
        }
        match from_custom("quality") {
            Some((v, o)) => d.set("quality", Yaml::from_json(v), o.clone()),
            None => {
                let checks = self.checks(object, &columns);
                if !checks.is_empty() {
                    d.set("quality", Yaml::Seq(checks, Layout::Block), schema_origin.clone());
                }
            }
        }
        if let Some((r, node)) = retention {
            d.set(
                "retention",
                Yaml::str(r.to_string()),
                self.origin(node, "`slaProperties` retention"),
            );
        }
        if let Some((v, o)) = from_custom("tiers") {
            d.set("tiers", Yaml::from_json(v), o.clone());
        }
        d.fields.sort_by_key(|(f, _, _)| field_rank(f));
        d
    }

    /// The `tributary.*` custom properties, by field; other custom properties are warned.
    fn custom_properties(&mut self, root: &Node) -> HashMap<String, (Value, Origin)> {
        let mut ours = HashMap::new();
        for item in items(root.get("customProperties")) {
            let Some(name) = text(item.get("property")) else {
                continue;
            };
            let Some(field) = name.strip_prefix(CUSTOM_PREFIX) else {
                self.unmapped(
                    &format!("customProperties[{name}]"),
                    item,
                    unmapped_hint("customProperties"),
                );
                continue;
            };
            if !CUSTOM_FIELDS.contains(&field) {
                let help = match did_you_mean(field, CUSTOM_FIELDS.iter().copied()) {
                    Some(s) => format!("did you mean `{CUSTOM_PREFIX}{s}`?"),
                    None => format!("known fields are {}", CUSTOM_FIELDS.join(", ")),
                };
                self.warn(
                    "odcs::unmapped",
                    format!("custom:{name}"),
                    item.span,
                    format!("unknown custom property `{name}` is left out"),
                    &help,
                );
                continue;
            }
            let value = item.get("value").map(Node::to_json).unwrap_or(Value::Null);
            let origin = self.origin(item.get("value").unwrap_or(item), format!("custom property `{name}`"));
            ours.insert(field.to_string(), (value, origin));
        }
        ours
    }

    fn product(&mut self, root: &Node, object: Option<&Node>) -> ProductName {
        let domain = match text(root.get("domain")).map(snake_case).filter(|s| !s.is_empty()) {
            Some(d) => d,
            None => {
                self.defaulted(
                    root.get("domain").unwrap_or(root),
                    "the document has no `domain`; the product goes to domain `imported`".into(),
                    "set `domain` in the ODCS document, or change the `product` address after import",
                );
                "imported".to_string()
            }
        };
        let candidates = [
            object.and_then(|o| o.get("name")),
            root.get("name"),
            root.get("dataProduct"),
            root.get("id"),
        ];
        let name = candidates
            .into_iter()
            .filter_map(|n| text(n).map(snake_case))
            .find(|s| !s.is_empty());
        let name = match name {
            Some(n) => n,
            None => {
                self.defaulted(
                    root,
                    "the document names no schema object; the product is called `contract`".into(),
                    "name the schema object, or change the `product` address after import",
                );
                "contract".to_string()
            }
        };
        // Both parts are non-empty snake_case starting with a letter, which is what a
        // product address is made of; the fallback is a constant that is one too.
        ProductName::new(&domain, &name)
            .unwrap_or_else(|_| ProductName::new("imported", "contract").expect("a valid constant address"))
    }

    fn version<'n>(&mut self, root: &'n Node) -> (String, &'n Node) {
        let node = root.get("version").unwrap_or(root);
        let raw = text(root.get("version"));
        if let Some(v) = raw.and_then(|v| semver::Version::parse(v).ok()) {
            return (v.to_string(), node);
        }
        let message = match raw {
            Some(v) => format!("ODCS `version: {v}` is not a semantic version; the contract starts at 1.0.0"),
            None => "the document has no `version`; the contract starts at 1.0.0".to_string(),
        };
        self.defaulted(
            node,
            message,
            "contract versions are MAJOR.MINOR.PATCH, e.g. `version: 1.2.0`",
        );
        ("1.0.0".to_string(), node)
    }

    fn owner(&mut self, root: &Node) -> String {
        let team = root.get("team");
        if let Some(t) = team.filter(|t| matches!(t.kind, NodeKind::Map(_))) {
            self.unknown_keys(t, "team", &["name", "id"]);
        } else if let Some(t) = team.filter(|t| meaningful(t)) {
            self.unmapped("team", t, unmapped_hint("members"));
        }
        if let Some(name) = raw(team.and_then(|t| t.get("name"))) {
            return name.to_string();
        }
        self.defaulted(
            team.unwrap_or(root),
            "the document names no team; the owner is `unknown`".into(),
            "set `owner` to the team that answers for the product",
        );
        "unknown".to_string()
    }

    fn contact(&mut self, root: &Node) -> Option<Yaml> {
        let mut email: Option<String> = None;
        let mut slack: Option<String> = None;
        let mut webhook: Option<String> = None;
        for item in items(root.get("support")) {
            let tool = text(item.get("tool")).map(str::to_ascii_lowercase);
            let channel = raw(item.get("channel"));
            let url = raw(item.get("url"));
            let (slot, value) = match (tool.as_deref(), channel, url) {
                (_, _, Some(u)) if u.starts_with("mailto:") => (&mut email, &u["mailto:".len()..]),
                (Some("email"), Some(c), _) if c.contains('@') => (&mut email, c),
                (Some("slack"), Some(c), _) => (&mut slack, c),
                (Some("slack"), None, Some(u)) => (&mut slack, u),
                (None, Some(c), Some(u)) if c.eq_ignore_ascii_case("slack") => (&mut slack, u),
                (Some("other") | None, Some("webhook"), Some(u)) => (&mut webhook, u),
                _ => {
                    let what = tool.as_deref().or(channel).unwrap_or("channel");
                    self.unmapped(
                        &format!("support[{what}]"),
                        item,
                        "contracts keep one email, Slack channel and webhook: `contact: { email: ..., slack: ... }`",
                    );
                    continue;
                }
            };
            if slot.is_some() {
                self.unmapped(
                    &format!("support[{}]", tool.as_deref().unwrap_or("channel")),
                    item,
                    "contracts keep one contact per kind; the first one is kept",
                );
                continue;
            }
            *slot = Some(value.to_string());
            self.unknown_keys(item, "support[]", &["id", "channel", "url", "tool"]);
        }
        let m: Vec<(&str, Yaml)> = [("email", email), ("slack", slack), ("webhook", webhook)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, Yaml::str(v))))
            .collect();
        (!m.is_empty()).then(|| Yaml::flow_map(m))
    }

    fn description(&mut self, root: &Node, object: Option<&Node>) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        match root.get("description") {
            Some(n) if matches!(n.kind, NodeKind::Map(_)) => {
                self.unknown_keys(n, "description", &["purpose", "usage", "limitations"]);
                if let Some(p) = text(n.get("purpose")) {
                    parts.push(p.to_string());
                }
                if let Some(u) = text(n.get("usage")) {
                    parts.push(format!("Usage: {u}"));
                }
                if let Some(l) = text(n.get("limitations")) {
                    parts.push(format!("Limitations: {l}"));
                }
            }
            Some(n) => parts.extend(raw(Some(n)).map(str::to_string)),
            None => {}
        }
        if let Some(d) = object.and_then(|o| text(o.get("description")))
            && !parts.iter().any(|p| p == d)
        {
            parts.push(d.to_string());
        }
        // Keep the text exactly when it is one part, so that a round trip is lossless.
        match root
            .get("description")
            .and_then(|n| n.get("purpose"))
            .and_then(Node::as_str)
        {
            Some(p) if parts.len() == 1 && p.trim() == parts[0] && !p.trim().is_empty() => Some(p.to_string()),
            _ => (!parts.is_empty()).then(|| parts.join("\n\n")),
        }
    }

    fn status(&mut self, root: &Node) -> Status {
        let Some(node) = root.get("status") else {
            self.defaulted(
                root,
                "the document has no `status`; the contract is a draft".into(),
                "set `status` to draft, active, deprecated or retired",
            );
            return Status::Draft;
        };
        let raw = text(Some(node)).unwrap_or("").to_ascii_lowercase();
        match raw.as_str() {
            "draft" | "proposed" | "development" | "in development" | "in-development" | "dev" => Status::Draft,
            "active" | "production" | "released" => Status::Active,
            "deprecated" => Status::Deprecated,
            "retired" => Status::Retired,
            other => {
                self.converted(
                    "status".into(),
                    node,
                    format!("ODCS `status: {other}` has no equivalent; the contract is a draft"),
                    "set `status` to draft, active, deprecated or retired",
                );
                Status::Draft
            }
        }
    }

    /// A Kafka server becomes a Kafka source (its topic named by the schema object's
    /// physical name); anything else is fed over HTTP.
    fn stream_source(&mut self, root: &Node, object: Option<&Node>) -> (Yaml, Origin) {
        let Some(server) = kafka_server(root) else {
            return (
                Yaml::flow_map([("kind", Yaml::str(StreamKind::Http.as_str()))]),
                self.origin(root, "the ODCS document"),
            );
        };
        let mut m = vec![("kind", Yaml::str(StreamKind::Kafka.as_str()))];
        match text(server.get("format")).map(str::to_ascii_lowercase) {
            Some(f) if f == "json" => {}
            Some(f) if matches!(f.as_str(), "csv" | "parquet") => m.push(("format", Yaml::str(f))),
            Some(f) => {
                let node = server.get("format").unwrap_or(server);
                self.converted(
                    format!("format:{f}"),
                    node,
                    format!("Kafka format `{f}` is not supported; the source reads JSON"),
                    "Tributary decodes json, csv, parquet and debezium; produce JSON or set `source.format`",
                );
            }
            None => {}
        }
        let topic = object.and_then(|o| text(o.get("physicalName")).or_else(|| text(o.get("name"))));
        match topic {
            Some(t) => m.push(("topic", Yaml::str(t))),
            None => {
                self.defaulted(
                    server,
                    "the Kafka server names no topic; the source reads topic `events`".into(),
                    "set `source.topic` to the topic name",
                );
                m.push(("topic", Yaml::str("events")));
            }
        }
        (Yaml::flow_map(m), self.origin(server, "the Kafka server"))
    }

    fn servers(&mut self, root: &Node) {
        for server in items(root.get("servers")) {
            let name = text(server.get("server")).unwrap_or("server");
            self.warn(
                "odcs::unmapped",
                format!("servers:{name}"),
                server.span,
                format!("ODCS server `{name}` is not part of the contract"),
                unmapped_hint("servers"),
            );
        }
    }

    // -- schema -----------------------------------------------------------------------

    fn columns<'n>(&mut self, object: Option<&'n Node>) -> Vec<ImportedColumn<'n>> {
        let mut columns: Vec<ImportedColumn<'n>> = Vec::new();
        for prop in items(object.and_then(|o| o.get("properties"))) {
            let Some(raw) = text(prop.get("name")) else {
                self.unmapped(
                    "schema[].properties[] without a name",
                    prop,
                    "give each property a `name`",
                );
                continue;
            };
            self.unknown_keys(prop, "schema[].properties[]", KNOWN_PROPERTY);
            if let Some(p) = text(prop.get("physicalName"))
                && p != raw
            {
                self.unmapped(
                    "schema[].properties[].physicalName",
                    prop.get("physicalName").unwrap_or(prop),
                    unmapped_hint("physicalName"),
                );
            }
            let taken: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
            let name = distinct(identifier(raw), &taken);
            if name != raw {
                self.converted(
                    format!("name:{raw}"),
                    prop.get("name").unwrap_or(prop),
                    format!("property `{raw}` is imported as column `{name}`"),
                    "column names are letters, digits and `_`, distinct ignoring case, so SQL can name them",
                );
            }
            let data_type = self.data_type(prop, &name);
            columns.push(ImportedColumn {
                name,
                data_type,
                node: prop,
            });
        }
        columns
    }

    fn column_yaml(&mut self, col: &ImportedColumn<'_>) -> Yaml {
        let prop = col.node;
        let mut m = vec![
            ("name", Yaml::str(&col.name)),
            ("type", Yaml::str(col.data_type.to_string())),
        ];
        if flag(prop.get("required")) == Some(true) {
            m.push(("required", Yaml::Bool(true)));
        }
        let mut pii = false;
        for item in items(prop.get("customProperties")) {
            match text(item.get("property")) {
                // `pii` is how other tools (datacontract-cli) mark personal data.
                Some(p) if p == format!("{CUSTOM_PREFIX}pii") || p == "pii" => {
                    pii = flag(item.get("value")) == Some(true);
                }
                Some(p) => self.unmapped(
                    &format!("schema[].properties[].customProperties[{p}]"),
                    item,
                    unmapped_hint("customProperties"),
                ),
                None => {}
            }
        }
        if pii {
            m.push(("pii", Yaml::Bool(true)));
        }
        if let Some(node) = prop.get("classification")
            && let Some(raw) = text(Some(node))
        {
            match Classification::ALL.iter().find(|(n, _)| n.eq_ignore_ascii_case(raw)) {
                Some((n, _)) => m.push(("classification", Yaml::str(*n))),
                None => self.converted(
                    format!("classification:{raw}"),
                    node,
                    format!("classification `{raw}` has no equivalent and is left out"),
                    "classifications are public, internal, confidential and restricted",
                ),
            }
        }
        if let Some(d) = prop
            .get("description")
            .and_then(Node::as_str)
            .filter(|d| !d.trim().is_empty())
        {
            m.push(("description", Yaml::str(d)));
        }
        let tags = strings(prop.get("tags"));
        if !tags.is_empty() {
            m.push(("tags", Yaml::strings(tags)));
        }
        Yaml::flow_map(m)
    }

    /// Columns flagged by `flag_key`, ordered by `position_key` (unpositioned ones last),
    /// whose type `allowed` accepts.
    fn positioned(
        &mut self,
        columns: &[ImportedColumn<'_>],
        flag_key: &str,
        position_key: &str,
        what: &str,
        allowed: impl Fn(&DataType) -> bool,
    ) -> Vec<String> {
        let mut flagged: Vec<(i64, usize, &ImportedColumn<'_>)> = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            if flag(c.node.get(flag_key)) != Some(true) {
                continue;
            }
            let pos = number(c.node.get(position_key)).map_or(-1, |p| p as i64);
            let pos = if pos < 1 { i64::MAX } else { pos };
            if allowed(&c.data_type) {
                flagged.push((pos, i, c));
            } else {
                self.converted(
                    format!("{what}:{}", c.name),
                    c.node.get(flag_key).unwrap_or(c.node),
                    format!(
                        "column `{}` of type `{}` cannot be a {what} column and is left out of it",
                        c.name, c.data_type
                    ),
                    "keys and partitions need scalar columns that compare exactly (not float or double)",
                );
            }
        }
        flagged.sort_by_key(|(pos, i, _)| (*pos, *i));
        flagged.into_iter().map(|(_, _, c)| c.name.clone()).collect()
    }

    /// Our type for an ODCS property: its `physicalType` when we know it and it agrees
    /// with the `logicalType`, else the logical type.
    fn data_type(&mut self, prop: &Node, at: &str) -> DataType {
        let logical = text(prop.get("logicalType")).map(str::to_ascii_lowercase);
        let physical = text(prop.get("physicalType"));
        let options = prop.get("logicalTypeOptions");
        let option = |k: &str| text(options.and_then(|o| o.get(k))).map(str::to_ascii_lowercase);
        // A container word in `physicalType` says what the logical type would.
        let container = physical.map(str::to_ascii_lowercase).and_then(|p| match p.as_str() {
            "array" | "list" => Some("array".to_string()),
            "object" | "struct" | "record" | "map" | "json" | "jsonb" => Some("object".to_string()),
            _ => None,
        });
        let logical = logical.or(container.clone());

        if let Some(p) = physical
            && container.is_none()
        {
            match physical_type(p) {
                // An explicit 64-bit format widens a physical `int`.
                Some(DataType::Int32) if matches!(option("format").as_deref(), Some("i64" | "u32")) => {
                    return DataType::Int64;
                }
                Some(t) if logical.as_deref().is_none_or(|l| fits_logical(l, &t)) => return t,
                Some(t) => {
                    if !matches!(logical.as_deref(), Some("object" | "array")) {
                        let l = logical.as_deref().unwrap_or("");
                        self.converted(
                            format!("mismatch:{p}:{l}"),
                            prop,
                            format!(
                                "physicalType `{p}` ({t}) does not match logicalType `{l}`; the logical type is used"
                            ),
                            "make the two agree, or fix the column `type` after import",
                        );
                    }
                }
                // `time`, say, is reported with the logical type.
                None if logical.as_deref() == Some(p.to_ascii_lowercase().as_str()) => {}
                None => {
                    let l = logical.as_deref().unwrap_or("string");
                    self.converted(
                        format!("physical:{p}"),
                        prop.get("physicalType").unwrap_or(prop),
                        format!("physicalType `{p}` is not a type Tributary knows; the column type comes from logicalType `{l}`"),
                        "check the column `type` after import; see `types` in the contract docs",
                    );
                }
            }
        }

        match logical.as_deref() {
            Some("string") => match option("format").as_deref() {
                Some("binary" | "byte") => DataType::Binary,
                _ => DataType::String,
            },
            Some("date") => DataType::Date,
            Some("timestamp") => match flag(options.and_then(|o| o.get("timezone"))) {
                Some(false) => DataType::TimestampNtz,
                _ => DataType::Timestamp,
            },
            Some("integer") => match option("format").as_deref() {
                Some("i64" | "u32") => DataType::Int64,
                Some("u64") => DataType::Decimal {
                    precision: 20,
                    scale: 0,
                },
                Some("i128" | "u128") => DataType::Decimal {
                    precision: 38,
                    scale: 0,
                },
                _ => DataType::Int32,
            },
            Some("number") => match option("format").as_deref() {
                Some("f32") => DataType::Float,
                _ => DataType::Double,
            },
            Some("boolean") => DataType::Bool,
            Some("array") => match prop.get("items") {
                Some(item) if matches!(item.kind, NodeKind::Map(_)) => {
                    self.unknown_keys(item, "schema[].properties[].items", KNOWN_NESTED);
                    DataType::List(Box::new(self.data_type(item, at)))
                }
                _ => {
                    self.converted(
                        format!("items:{at}"),
                        prop,
                        format!("array `{at}` does not describe its `items`; it is imported as `list<string>`"),
                        "add `items: { logicalType: ... }` or fix the column `type` after import",
                    );
                    DataType::List(Box::new(DataType::String))
                }
            },
            Some("object") => {
                let props = items(prop.get("properties"));
                if props.is_empty() {
                    self.converted(
                        format!("object:{at}"),
                        prop,
                        format!("object `{at}` lists no `properties`; it is imported as a JSON `string`"),
                        "describe its fields with `properties`, or write `type: struct<...>` after import",
                    );
                    return DataType::String;
                }
                let mut fields: Vec<StructField> = Vec::new();
                for p in props {
                    let Some(raw) = text(p.get("name")) else {
                        self.unmapped(
                            "schema[].properties[].properties[] without a name",
                            p,
                            "give each property a `name`",
                        );
                        continue;
                    };
                    self.unknown_keys(p, "schema[].properties[].properties[]", KNOWN_NESTED);
                    let taken: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
                    let name = distinct(identifier(raw), &taken);
                    if name != raw {
                        self.converted(
                            format!("name:{at}.{raw}"),
                            p,
                            format!("field `{raw}` of `{at}` is imported as `{name}`"),
                            "struct field names are letters, digits and `_`",
                        );
                    }
                    let data_type = self.data_type(p, &format!("{at}.{name}"));
                    fields.push(StructField { name, data_type });
                }
                DataType::Struct(fields)
            }
            Some("time") => {
                self.converted(
                    "time".into(),
                    prop,
                    format!("`{at}` is a time of day, which Tributary has no type for; it is imported as `string`"),
                    "keep it as text (`HH:MM:SS`), or use a `timestamp`",
                );
                DataType::String
            }
            other => {
                let message = match other {
                    Some(l) => format!("logicalType `{l}` of `{at}` is unknown; it is imported as `string`"),
                    None => format!("`{at}` has no logicalType or known physicalType; it is imported as `string`"),
                };
                self.converted(
                    format!("logical:{}", other.unwrap_or("")),
                    prop,
                    message,
                    "logical types are string, date, timestamp, time, number, integer, object, array and boolean",
                );
                DataType::String
            }
        }
    }

    // -- SLA and access ---------------------------------------------------------------

    /// Native SLA properties: our `sla` fields (unless `tributary.sla` carries them) and
    /// the retention.
    fn sla<'n>(&mut self, root: &'n Node, ours: bool) -> NativeSla<'n> {
        let mut sla: Vec<(&'static str, Yaml)> = Vec::new();
        let mut retention = None;
        for item in items(root.get("slaProperties")) {
            let Some(property) = text(item.get("property")) else {
                continue;
            };
            let value = item.get("value");
            let unit = text(item.get("unit"));
            let key = property.to_ascii_lowercase();
            let target: Option<&'static str> = match key.as_str() {
                "latency" | "freshness" => Some("freshness"),
                "availability" => Some("availability"),
                "retention" => Some("retention"),
                // Carried exactly by `tributary.sla`; ODCS alone has no window for it.
                "completeness" if ours => Some("completeness"),
                "validity" if ours => Some("validity"),
                _ => None,
            };
            let Some(target) = target else {
                self.unmapped(
                    &format!("slaProperties[{property}]"),
                    item,
                    "contract SLAs are freshness, availability, completeness and retention",
                );
                continue;
            };
            // Our export explains the completeness figure in `description`.
            let known: &[&str] = if ours {
                &["id", "property", "value", "unit", "description"]
            } else {
                &["id", "property", "value", "unit"]
            };
            self.unknown_keys(item, &format!("slaProperties[{property}]"), known);
            if ours && target != "retention" {
                continue;
            }
            let taken = match target {
                "retention" => retention.is_some(),
                "availability" => sla.iter().any(|(k, _)| *k == "availability"),
                _ => sla.iter().any(|(k, _)| *k == "freshness"),
            };
            if taken {
                self.unmapped(
                    &format!("slaProperties[{property}]"),
                    item,
                    "the SLA is already set by an earlier property; a contract has one of each",
                );
                continue;
            }
            match target {
                "availability" => match value.and_then(|v| percent_value(v, unit)) {
                    Some(p) => {
                        if p <= 1.0 {
                            self.converted(
                                "availability-fraction".into(),
                                item,
                                format!("availability `{p}` is read as {p}%, not as a fraction"),
                                "write availability as a percentage, e.g. `99.9%`",
                            );
                        }
                        sla.push(("availability", Yaml::str(render::percent(p))));
                    }
                    None => self.unreadable_sla(property, item),
                },
                _ => match value.and_then(|v| sla_duration(v, unit)) {
                    Some(d) if target == "retention" => retention = Some((d, item)),
                    Some(d) => sla.push(("freshness", Yaml::str(d.to_string()))),
                    None => self.unreadable_sla(property, item),
                },
            }
        }
        NativeSla { fields: sla, retention }
    }

    fn unreadable_sla(&mut self, property: &str, item: &Node) {
        self.converted(
            format!("sla:{property}"),
            item,
            format!("SLA `{property}` has a value Tributary cannot read and is left out"),
            "durations are a whole number with a unit (s, min, h, d, w, y) or ISO 8601 like `P1D`; percentages are 0 to 100",
        );
    }

    fn access(&mut self, root: &Node) -> Vec<Yaml> {
        let mut grants = Vec::new();
        for item in items(root.get("roles")) {
            let Some(role) = raw(item.get("role")) else {
                self.unmapped("roles[] without a role", item, "name the role with `role`");
                continue;
            };
            self.unknown_keys(item, "roles[]", &["id", "role", "access", "customProperties"]);
            let level = match text(item.get("access")).map(str::to_ascii_lowercase) {
                None => AccessLevel::Read,
                Some(a) => match a.as_str() {
                    "read" | "select" | "readonly" | "read-only" => AccessLevel::Read,
                    "write" | "readwrite" | "read-write" | "insert" | "update" => AccessLevel::Write,
                    "admin" | "owner" | "all" => AccessLevel::Admin,
                    other => {
                        self.converted(
                            format!("access:{other}"),
                            item.get("access").unwrap_or(item),
                            format!("access `{other}` of role `{role}` is unknown; the role gets `read`"),
                            "access levels are read, write and admin",
                        );
                        AccessLevel::Read
                    }
                },
            };
            let mut m = vec![("role", Yaml::str(role)), ("level", Yaml::str(level.as_str()))];
            for cp in items(item.get("customProperties")) {
                match text(cp.get("property")) {
                    Some(p) if p == format!("{CUSTOM_PREFIX}row_filter") => {
                        if let Some(f) = cp.get("value").and_then(Node::as_str).filter(|f| !f.trim().is_empty()) {
                            m.push(("row_filter", Yaml::str(f)));
                        }
                    }
                    Some(p) => self.unmapped(
                        &format!("roles[].customProperties[{p}]"),
                        cp,
                        unmapped_hint("customProperties"),
                    ),
                    None => {}
                }
            }
            grants.push(Yaml::flow_map(m));
        }
        grants
    }

    // -- quality ----------------------------------------------------------------------

    /// Checks from ODCS quality rules and property constraints.
    fn checks(&mut self, object: Option<&Node>, columns: &[ImportedColumn<'_>]) -> Vec<Yaml> {
        let mut checks = Vec::new();
        let mut unique: Vec<String> = Vec::new();
        for col in columns {
            for q in items(col.node.get("quality")) {
                if let Some(c) = self.check(q, Some(col), columns, &mut unique) {
                    checks.push(c);
                }
            }
            if flag(col.node.get("unique")) == Some(true) && !unique.contains(&col.name) {
                unique.push(col.name.clone());
                checks.push(check_yaml("unique", Yaml::str(&col.name), None, CheckSeverity::Error));
            }
            checks.extend(self.constraints(col));
            for rel in items(col.node.get("relationships")) {
                self.unmapped(
                    "schema[].properties[].relationships",
                    rel,
                    unmapped_hint("relationships"),
                );
            }
        }
        if let Some(o) = object {
            for q in items(o.get("quality")) {
                if let Some(c) = self.check(q, None, columns, &mut unique) {
                    checks.push(c);
                }
            }
            for rel in items(o.get("relationships")) {
                self.unmapped("schema[].relationships", rel, unmapped_hint("relationships"));
            }
        }
        checks
    }

    /// One ODCS quality rule as a check, or a warning saying why not.
    fn check(
        &mut self,
        q: &Node,
        col: Option<&ImportedColumn<'_>>,
        columns: &[ImportedColumn<'_>],
        unique: &mut Vec<String>,
    ) -> Option<Yaml> {
        let level = if col.is_some() {
            "schema[].properties[].quality[]"
        } else {
            "schema[].quality[]"
        };
        let check = self.rule(q, level, col, columns, unique)?;
        // Only a rule that became a check has parts left to report.
        let mut known: Vec<&str> = KNOWN_CHECK.to_vec();
        known.extend(OPERATORS);
        self.unknown_keys(q, level, &known);
        Some(check)
    }

    fn rule(
        &mut self,
        q: &Node,
        level: &str,
        col: Option<&ImportedColumn<'_>>,
        columns: &[ImportedColumn<'_>],
        unique: &mut Vec<String>,
    ) -> Option<Yaml> {
        let metric = text(q.get("metric")).or_else(|| text(q.get("rule")));
        let kind = text(q.get("type")).map(str::to_ascii_lowercase).unwrap_or_else(|| {
            if metric.is_some() {
                "library".into()
            } else {
                "text".into()
            }
        });
        let name = text(q.get("name")).map(str::to_string);
        let severity = match text(q.get("severity")).map(str::to_ascii_lowercase).as_deref() {
            None | Some("error" | "critical" | "fatal" | "high") => CheckSeverity::Error,
            Some("warning" | "warn" | "info" | "low" | "medium") => CheckSeverity::Warn,
            Some(other) => {
                self.converted(
                    format!("severity:{other}"),
                    q.get("severity").unwrap_or(q),
                    format!("check severity `{other}` is read as `error`"),
                    "severities are warn and error",
                );
                CheckSeverity::Error
            }
        };
        let not_mapped = |this: &mut Self, what: String, help: &str| {
            this.warn(
                "odcs::unmapped",
                format!("{level}:{what}"),
                q.span,
                format!("ODCS `{level}` with {what} is not mapped and is left out of the contract"),
                help,
            );
            None
        };
        match kind.as_str() {
            "library" => {}
            "sql" => {
                return not_mapped(
                    self,
                    "type `sql`".into(),
                    "a query's result cannot be checked per row; rewrite it as an `expect` with a row condition, e.g. `expect: { name: positive_amount, sql: \"amount >= 0\" }`",
                );
            }
            "custom" => {
                let engine = text(q.get("engine")).unwrap_or("custom");
                return not_mapped(
                    self,
                    format!("type `custom` (engine `{engine}`)"),
                    "rewrite it with Tributary checks: not_null, unique, accepted_values, range, regex, row_count, freshness, relationships or expect",
                );
            }
            "text" => {
                return not_mapped(
                    self,
                    "type `text`".into(),
                    "a text rule is documentation only; put it in the description or turn it into a check",
                );
            }
            other => {
                return not_mapped(
                    self,
                    format!("type `{other}`"),
                    "ODCS rule types are library, sql, custom and text",
                );
            }
        }
        let Some(metric) = metric else {
            return not_mapped(self, "no `metric`".into(), "name the metric, e.g. `metric: nullValues`");
        };
        let op = Operator::of(q);
        let arguments = q.get("arguments");
        let mk = |kind: &str, body: Yaml| Some(check_yaml(kind, body, name.clone(), severity));
        match (metric, col) {
            ("rowCount", _) => match op.as_ref().and_then(Operator::count_bounds) {
                Some((min, max)) => {
                    let mut m = Vec::new();
                    if let Some(n) = min {
                        m.push(("min", Yaml::Num(n.to_string())));
                    }
                    if let Some(n) = max {
                        m.push(("max", Yaml::Num(n.to_string())));
                    }
                    mk("row_count", Yaml::flow_map(m))
                }
                None => not_mapped(
                    self,
                    "metric `rowCount` and this operator".into(),
                    "row counts map to `row_count: { min, max }`: use mustBe, mustBeGreaterThan(OrEqualTo), mustBeLessThan(OrEqualTo) or mustBeBetween with whole numbers",
                ),
            },
            (_, Some(_)) if !op.as_ref().is_some_and(Operator::is_zero) => not_mapped(
                self,
                format!("metric `{metric}` and a threshold other than zero"),
                "Tributary checks hold for every row; a tolerance like `mustBeLessThan: 5` (percent) has no equivalent",
            ),
            ("nullValues", Some(col)) => mk("not_null", Yaml::str(&col.name)),
            ("missingValues", Some(col)) if arguments.is_none() => mk("not_null", Yaml::str(&col.name)),
            ("duplicateValues", Some(col)) => {
                if unique.contains(&col.name) {
                    return None;
                }
                unique.push(col.name.clone());
                mk("unique", Yaml::str(&col.name))
            }
            ("invalidValues", Some(col)) => {
                let valid = arguments.and_then(|a| a.get("validValues"));
                let pattern = text(arguments.and_then(|a| a.get("pattern")));
                if let Some(values) = valid {
                    let values: Vec<String> = items(Some(values))
                        .iter()
                        .filter_map(|v| text(Some(v)))
                        .map(str::to_string)
                        .collect();
                    if values.is_empty() || col.data_type.is_nested() {
                        return not_mapped(
                            self,
                            "metric `invalidValues` and no usable `validValues`".into(),
                            "accepted values are non-empty texts on a scalar column",
                        );
                    }
                    mk(
                        "accepted_values",
                        Yaml::flow_map([("column", Yaml::str(&col.name)), ("values", Yaml::strings(values))]),
                    )
                } else if let Some(p) = pattern {
                    self.regex_check(q, col, p, name.clone(), severity)
                } else {
                    not_mapped(
                        self,
                        "metric `invalidValues` and no arguments".into(),
                        "give `arguments.validValues` or `arguments.pattern`",
                    )
                }
            }
            ("duplicateValues", None) => {
                let cols: Vec<String> = strings(arguments.and_then(|a| a.get("properties")))
                    .into_iter()
                    .filter_map(|p| {
                        columns
                            .iter()
                            .find(|c| c.name == identifier(&p))
                            .map(|c| c.name.clone())
                    })
                    .collect();
                if cols.is_empty() || !op.as_ref().is_some_and(Operator::is_zero) {
                    return not_mapped(
                        self,
                        "metric `duplicateValues` over no known properties".into(),
                        "uniqueness over columns maps to `unique: [a, b]` with `arguments.properties` and `mustBe: 0`",
                    );
                }
                mk("unique", Yaml::strings(cols))
            }
            (other, _) => not_mapped(
                self,
                format!("metric `{other}`"),
                "library metrics map as nullValues → not_null, duplicateValues → unique, invalidValues → accepted_values/regex, rowCount → row_count",
            ),
        }
    }

    fn regex_check(
        &mut self,
        at: &Node,
        col: &ImportedColumn<'_>,
        pattern: &str,
        name: Option<String>,
        severity: CheckSeverity,
    ) -> Option<Yaml> {
        if col.data_type != DataType::String || regex::Regex::new(pattern).is_err() {
            self.converted(
                format!("pattern:{}", col.name),
                at,
                format!(
                    "pattern `{pattern}` on `{}` is left out: it needs a string column and a valid regular expression",
                    col.name
                ),
                "patterns use Rust/RE2 regex syntax",
            );
            return None;
        }
        Some(check_yaml(
            "regex",
            Yaml::flow_map([("column", Yaml::str(&col.name)), ("pattern", Yaml::str(pattern))]),
            name,
            severity,
        ))
    }

    /// `logicalTypeOptions` constraints that are checks: `pattern`, `minimum`, `maximum`.
    fn constraints(&mut self, col: &ImportedColumn<'_>) -> Vec<Yaml> {
        let Some(options) = col.node.get("logicalTypeOptions") else {
            return Vec::new();
        };
        let mut checks = Vec::new();
        if let Some(p) = text(options.get("pattern"))
            && let Some(c) = self.regex_check(options, col, p, None, CheckSeverity::Error)
        {
            checks.push(c);
        }
        let bound = |n: Option<&Node>, t: &DataType| -> Option<Yaml> {
            let n = n?;
            match (n.to_json(), t) {
                (Value::Number(x), t) if t.is_numeric() => Some(Yaml::Num(x.to_string())),
                (Value::String(s), t) if t.is_temporal() || *t == DataType::String => Some(Yaml::str(s)),
                _ => None,
            }
        };
        let min = bound(options.get("minimum"), &col.data_type);
        let max = bound(options.get("maximum"), &col.data_type);
        for (k, b) in [("minimum", &min), ("maximum", &max)] {
            if let (Some(node), None) = (options.get(k), b) {
                self.converted(
                    format!("bound:{}", col.name),
                    node,
                    format!(
                        "`{k}` of `{}` does not fit its type `{}` and is left out",
                        col.name, col.data_type
                    ),
                    "numeric columns take number bounds; dates and timestamps take text bounds",
                );
            }
        }
        if min.is_some() || max.is_some() {
            let mut m = vec![("column", Yaml::str(&col.name))];
            m.extend(min.map(|b| ("min", b)));
            m.extend(max.map(|b| ("max", b)));
            checks.push(check_yaml("range", Yaml::flow_map(m), None, CheckSeverity::Error));
        }
        // What the type mapping read, and what became a check, is used; the rest is not.
        const USED: &[&str] = &["format", "timezone", "pattern", "minimum", "maximum"];
        for (k, v) in entries(options) {
            if let Some(key) = k.as_str()
                && !USED.contains(&key)
                && meaningful(v)
            {
                self.unmapped(
                    &format!("schema[].properties[].logicalTypeOptions.{key}"),
                    k,
                    "options other than format, pattern, minimum and maximum have no equivalent; add an `expect` check if it matters",
                );
            }
        }
        checks
    }

    // -- result -----------------------------------------------------------------------

    fn finish(mut self, draft: Draft) -> Result<Imported, Box<Diagnostic>> {
        let doc = Yaml::Map(
            draft
                .fields
                .iter()
                .map(|(k, v, _)| ((*k).to_string(), v.clone()))
                .collect(),
            Layout::Block,
        );
        let text = render::emit(&doc);
        let generated = YamlSource::new(format!("{} (imported)", self.source.name), text.as_str());
        let file = crate::contract::parse_contract(generated.clone());
        let mut warnings = std::mem::take(&mut self.extra);
        warnings.extend(self.grouped.into_iter().map(|g| {
            let mut d = g.diagnostic;
            if g.count > 1 {
                d.message = format!("{} ({} times; the first is shown)", d.message, g.count);
            }
            d
        }));
        let Some(contract) = file.contract else {
            // The draft does not validate: point each error at the ODCS field it came from.
            for d in file.diagnostics.iter().filter(|d| d.is_error()) {
                warnings.push(relocate(d, file.root.as_ref(), &generated, &draft, self.source));
            }
            return Ok(Imported {
                yaml: text,
                contract: None,
                warnings,
            });
        };
        let yaml = render::render_contract(&contract);
        let back = crate::contract::parse_contract(YamlSource::new(self.source.name.clone(), yaml.as_str()));
        if back.contract.as_ref() != Some(&contract) {
            return Err(Box::new(
                Diagnostic::error(
                    "odcs::internal",
                    format!(
                        "the contract imported from `{}` does not read back the same",
                        self.source.name
                    ),
                )
                .with_help("this is a bug in Tributary's ODCS import; please report it with the input file"),
            ));
        }
        Ok(Imported {
            yaml,
            contract: Some(contract),
            warnings,
        })
    }
}

fn kafka_server(root: &Node) -> Option<&Node> {
    items(root.get("servers"))
        .iter()
        .find(|s| text(s.get("type")).is_some_and(|t| t.eq_ignore_ascii_case("kafka")))
}

/// An error in the generated draft, moved to the ODCS node its field came from.
fn relocate(
    d: &Diagnostic,
    root: Option<&Node>,
    generated: &YamlSource,
    draft: &Draft,
    odcs: &YamlSource,
) -> Diagnostic {
    let field = d.location.as_ref().and_then(|loc| {
        entries(root?).iter().find_map(|(k, v)| {
            let start = generated.location(k.span).offset;
            let end = {
                let l = generated.location(v.span);
                l.offset + l.length
            };
            (start..=end).contains(&loc.offset).then(|| k.as_str()).flatten()
        })
    });
    let origin = field.and_then(|f| draft.fields.iter().find(|(k, _, _)| *k == f).map(|(_, _, o)| o));
    let mut out = d.clone();
    match origin {
        Some(o) => {
            out.message = format!("{} (imported from {})", d.message, o.what);
            out.location = Some(odcs.location(o.span));
        }
        None => out.location = None,
    }
    out
}

/// A quality item in our YAML form.
fn check_yaml(kind: &str, body: Yaml, name: Option<String>, severity: CheckSeverity) -> Yaml {
    let mut m = vec![(kind.to_string(), body)];
    if let Some(n) = name {
        m.push(("name".to_string(), Yaml::str(n)));
    }
    if severity != CheckSeverity::Error {
        m.push(("severity".to_string(), Yaml::str(severity.as_str())));
    }
    Yaml::Map(m, Layout::Block)
}

/// The comparison of an ODCS rule.
enum Operator {
    Be(f64),
    GreaterThan(f64),
    AtLeast(f64),
    LessThan(f64),
    AtMost(f64),
    Between(f64, f64),
    /// `mustNotBe`, `mustNotBeBetween` or a value that is not a number.
    Other,
}

impl Operator {
    fn of(q: &Node) -> Option<Self> {
        let num = |k: &str| number(q.get(k));
        let pair = |k: &str| match items(q.get(k)) {
            [a, b] => Some((number(Some(a))?, number(Some(b))?)),
            _ => None,
        };
        let present = OPERATORS.iter().find(|k| q.get(k).is_some())?;
        Some(match *present {
            "mustBe" => num("mustBe").map_or(Self::Other, Self::Be),
            "mustBeGreaterThan" => num(present).map_or(Self::Other, Self::GreaterThan),
            "mustBeGreaterOrEqualTo" => num(present).map_or(Self::Other, Self::AtLeast),
            "mustBeLessThan" => num(present).map_or(Self::Other, Self::LessThan),
            "mustBeLessOrEqualTo" => num(present).map_or(Self::Other, Self::AtMost),
            "mustBeBetween" => pair(present).map_or(Self::Other, |(a, b)| Self::Between(a, b)),
            _ => Self::Other,
        })
    }

    /// Whether the rule allows no failing rows at all.
    fn is_zero(&self) -> bool {
        match *self {
            Self::Be(x) | Self::AtMost(x) => x == 0.0,
            Self::LessThan(x) => x > 0.0 && x <= 1.0,
            Self::Between(a, b) => a <= 0.0 && b == 0.0,
            _ => false,
        }
    }

    /// Whole-number row count bounds.
    fn count_bounds(&self) -> Option<(Option<u64>, Option<u64>)> {
        let whole = |x: f64| (x.is_finite() && x >= 0.0 && x <= u64::MAX as f64).then_some(x as u64);
        Some(match *self {
            Self::Be(x) => (Some(whole(x)?), Some(whole(x)?)),
            Self::GreaterThan(x) => (Some(whole(x.floor() + 1.0)?), None),
            Self::AtLeast(x) => (Some(whole(x.max(0.0).ceil())?), None),
            Self::LessThan(x) => (None, Some(whole(x.ceil() - 1.0)?)),
            Self::AtMost(x) => (None, Some(whole(x.floor())?)),
            Self::Between(a, b) => (Some(whole(a.max(0.0).ceil())?), Some(whole(b.floor())?)),
            Self::Other => return None,
        })
        .filter(|(min, max)| match (min, max) {
            (Some(a), Some(b)) => a <= b,
            _ => true,
        })
    }
}

/// A percentage from an SLA value: `99.9`, `"99.9%"`, with an optional `%` unit.
fn percent_value(value: &Node, unit: Option<&str>) -> Option<f64> {
    if unit.is_some_and(|u| !matches!(u.trim(), "%" | "percent" | "pct")) {
        return None;
    }
    let p = match value.to_json() {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().trim_end_matches('%').trim().parse().ok()?,
        _ => return None,
    };
    (0.0..=100.0).contains(&p).then_some(p)
}

/// A duration from an SLA value and unit: `4` + `d`, `"24h"`, or ISO 8601 `P1Y`.
fn sla_duration(value: &Node, unit: Option<&str>) -> Option<Duration> {
    let suffix = |u: &str| -> Option<&'static str> {
        Some(match u.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => "s",
            "m" | "min" | "mins" | "minute" | "minutes" => "m",
            "h" | "hr" | "hrs" | "hour" | "hours" => "h",
            "d" | "day" | "days" => "d",
            "w" | "wk" | "week" | "weeks" => "w",
            "y" | "yr" | "yrs" | "year" | "years" => "y",
            _ => return None,
        })
    };
    let amount = |v: &Value| -> Option<u64> {
        let x = match v {
            Value::Number(n) => n.as_f64()?,
            Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        (x >= 0.0 && x.fract() == 0.0 && x <= u64::MAX as f64).then_some(x as u64)
    };
    let v = value.to_json();
    if let Some(u) = unit {
        return Duration::parse(&format!("{}{}", amount(&v)?, suffix(u)?)).ok();
    }
    let s = v.as_str()?.trim();
    if let Ok(d) = Duration::parse(s) {
        return Some(d);
    }
    // ISO 8601 with one component: P1Y, P2W, P7D, PT5M, PT30S (months are not a fixed length).
    let rest = s.strip_prefix(['P', 'p'])?;
    let (time, rest) = match rest.strip_prefix(['T', 't']) {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let split = rest.find(|c: char| !c.is_ascii_digit())?;
    let (n, u) = rest.split_at(split);
    let unit = match (time, u.to_ascii_uppercase().as_str()) {
        (false, "Y") => "y",
        (false, "W") => "w",
        (false, "D") => "d",
        (true, "H") => "h",
        (true, "M") => "m",
        (true, "S") => "s",
        _ => return None,
    };
    Duration::parse(&format!("{n}{unit}")).ok()
}

/// A physical type we know: our own spelling first, then common SQL dialect names.
fn physical_type(p: &str) -> Option<DataType> {
    if let Ok(t) = DataType::parse(p) {
        return Some(t);
    }
    let lower = p.trim().to_ascii_lowercase();
    let (base, args) = match lower.find(['(', '[']) {
        Some(i) => (lower[..i].trim(), &lower[i + 1..]),
        None => (lower.as_str(), ""),
    };
    let args: Vec<u32> = args
        .trim_end_matches([')', ']'])
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(match base {
        "varchar" | "char" | "character" | "character varying" | "nvarchar" | "nchar" | "bpchar" | "text"
        | "string" | "uuid" | "citext" | "clob" | "xml" | "json" | "jsonb" | "enum" => DataType::String,
        "smallint" | "int2" | "int16" | "tinyint" | "int1" | "int" | "int4" | "integer" | "mediumint" | "serial"
        | "serial4" | "smallserial" | "serial2" => DataType::Int32,
        "bigint" | "int8" | "serial8" | "bigserial" | "long" | "int64" => DataType::Int64,
        "real" | "float4" | "float32" | "float" => DataType::Float,
        "double" | "double precision" | "float8" | "float64" => DataType::Double,
        "decimal" | "numeric" | "number" | "dec" => match args.as_slice() {
            [p, s] if (1..=u32::from(crate::types::MAX_DECIMAL_PRECISION)).contains(p) && s <= p => DataType::Decimal {
                precision: *p as u8,
                scale: *s as u8,
            },
            [p] if (1..=u32::from(crate::types::MAX_DECIMAL_PRECISION)).contains(p) => DataType::Decimal {
                precision: *p as u8,
                scale: 0,
            },
            _ => return None,
        },
        "bool" | "boolean" => DataType::Bool,
        "date" => DataType::Date,
        "timestamp"
        | "timestamptz"
        | "timestamp_tz"
        | "timestamp_ltz"
        | "timestamp with time zone"
        | "datetimeoffset" => DataType::Timestamp,
        "timestamp without time zone" | "timestamp_ntz" | "datetime" | "datetime2" => DataType::TimestampNtz,
        "bytea" | "blob" | "binary" | "varbinary" | "bytes" => DataType::Binary,
        _ => return None,
    })
}

/// Whether a physical type is one of the values an ODCS logical type allows.
fn fits_logical(logical: &str, t: &DataType) -> bool {
    match logical {
        "string" => matches!(t, DataType::String | DataType::Binary),
        "date" | "timestamp" => t.is_temporal(),
        "integer" => matches!(
            t,
            DataType::Int32 | DataType::Int64 | DataType::Decimal { scale: 0, .. }
        ),
        "number" => t.is_numeric(),
        "boolean" => *t == DataType::Bool,
        "array" => matches!(t, DataType::List(_)),
        "object" => matches!(t, DataType::Struct(_)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case() {
        assert_eq!(snake_case("Air_Quality"), "air_quality");
        assert_eq!(snake_case("AnObject"), "an_object");
        assert_eq!(snake_case("UniqueID"), "unique_id");
        assert_eq!(snake_case("HTTPServer logs"), "http_server_logs");
        assert_eq!(snake_case("my-domain-team"), "my_domain_team");
        assert_eq!(snake_case("2024 sales"), "n_2024_sales");
        assert_eq!(identifier("unit price"), "unit_price");
        assert_eq!(identifier("1st"), "_1st");
        assert_eq!(distinct("a".into(), &["A".into(), "a_2".into()]), "a_3");
    }

    #[test]
    fn physical_types_from_dialects() {
        let t = |s: &str| physical_type(s).map(|t| t.to_string());
        assert_eq!(t("decimal(18,2)").as_deref(), Some("decimal(18,2)"));
        assert_eq!(t("NUMERIC(10)").as_deref(), Some("decimal(10,0)"));
        assert_eq!(t("numeric"), None);
        assert_eq!(t("varchar[50]").as_deref(), Some("string"));
        assert_eq!(t("VARCHAR(40)").as_deref(), Some("string"));
        assert_eq!(t("int4").as_deref(), Some("int32"));
        assert_eq!(t("bigint").as_deref(), Some("int64"));
        assert_eq!(t("float(3,2)").as_deref(), Some("float"));
        assert_eq!(t("timestamptz").as_deref(), Some("timestamp"));
        assert_eq!(t("bytea").as_deref(), Some("binary"));
        assert_eq!(t("Name"), None);
    }

    #[test]
    fn durations_from_sla_values() {
        let node = |text: &str| {
            let (root, _) = yaml::parse(&YamlSource::new("t", format!("v: {text}"))).expect("yaml");
            root.get("v").cloned().expect("v")
        };
        let d = |v: &str, u: Option<&str>| sla_duration(&node(v), u).map(|d| d.to_string());
        assert_eq!(d("4", Some("d")).as_deref(), Some("4d"));
        assert_eq!(d("3", Some("years")).as_deref(), Some("3y"));
        assert_eq!(d("5", Some("minutes")).as_deref(), Some("5m"));
        assert_eq!(d("24h", None).as_deref(), Some("24h"));
        assert_eq!(d("P1Y", None).as_deref(), Some("1y"));
        assert_eq!(d("PT30M", None).as_deref(), Some("30m"));
        assert_eq!(d("P1M", None), None);
        assert_eq!(d("500ms", None), None);
        assert_eq!(d("1.5", Some("h")), None);
    }

    #[test]
    fn row_count_operators() {
        let op = |text: &str| {
            let (root, _) = yaml::parse(&YamlSource::new("t", text)).expect("yaml");
            Operator::of(&root).and_then(|o| o.count_bounds())
        };
        assert_eq!(op("mustBeGreaterThan: 1000000"), Some((Some(1_000_001), None)));
        assert_eq!(op("mustBeGreaterOrEqualTo: 10"), Some((Some(10), None)));
        assert_eq!(op("mustBeLessThan: 10"), Some((None, Some(9))));
        assert_eq!(op("mustBeBetween: [5, 10]"), Some((Some(5), Some(10))));
        assert_eq!(op("mustBe: 3"), Some((Some(3), Some(3))));
        assert_eq!(op("mustNotBe: 3"), None);
    }
}
