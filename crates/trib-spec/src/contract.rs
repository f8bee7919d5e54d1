//! YAML contract → [`Contract`], reporting every problem of one file in one pass.

use crate::decode::{Decoder, MapReader, Spanned};
use crate::model::*;
use crate::types::DataType;
use crate::yaml::{self, Node, NodeKind, NodeSpan};
use trib_core::Diagnostics;

/// A parsed contract file: the source, its tree, and the contract if it is valid.
#[derive(Debug, Clone)]
pub struct ContractFile {
    pub source: yaml::Source,
    pub root: Option<Node>,
    pub contract: Option<Contract>,
    pub diagnostics: Diagnostics,
}

/// Parses and validates one contract. Never panics, whatever the input.
pub fn parse_contract(source: yaml::Source) -> ContractFile {
    let mut diagnostics = Diagnostics::new();
    let (root, structural) = match yaml::parse(&source) {
        Ok(r) => r,
        Err(d) => {
            diagnostics.push(*d);
            return ContractFile {
                source,
                root: None,
                contract: None,
                diagnostics,
            };
        }
    };
    diagnostics.extend(structural);
    let mut dec = Decoder::new(&source);
    let contract = decode_contract(&mut dec, &root);
    if let Some(c) = &contract {
        check_columns(&mut dec, c);
    }
    diagnostics.extend(dec.diags);
    let contract = if diagnostics.has_errors() { None } else { contract };
    ContractFile {
        source,
        root: Some(root),
        contract,
        diagnostics,
    }
}

const EXAMPLE_PRODUCT: &str = "orders.orders_raw";

fn decode_contract(dec: &mut Decoder<'_>, root: &Node) -> Option<Contract> {
    if root.is_null() {
        dec.error(
            root.span,
            "contract::empty-file",
            "the contract file is empty",
            "start with `product: <domain>.<name>`, `version: 1.0.0`, `owner: <team>` and a `schema`; `trib init` writes examples",
        );
        return None;
    }
    let mut m = dec.map(root, "", "product: orders.orders_raw")?;

    let product = m.require(dec, "product", EXAMPLE_PRODUCT).and_then(|n| {
        let s = dec.string(n, "product", EXAMPLE_PRODUCT)?;
        match s.value.parse::<ProductName>() {
            Ok(p) => Some(Spanned::new(p, s.span)),
            Err(e) => {
                dec.error(s.span, "contract::bad-product", e.to_string(), ProductNameError::HINT);
                None
            }
        }
    });
    if let (Some(n), Some(p)) = (m.get("domain"), &product)
        && let Some(d) = dec.string(n, "domain", "orders")
        && d.value != p.domain()
    {
        dec.error(
            d.span,
            "contract::domain-mismatch",
            format!("`domain: {}` does not match the product address `{}`", d.value, p.value),
            format!(
                "the domain is the part before the dot; write `domain: {}` or drop the field",
                p.domain()
            ),
        );
    }
    let version = m.require(dec, "version", "1.0.0").and_then(|n| {
        let s = dec.string(n, "version", "1.0.0")?;
        match semver::Version::parse(s.value.trim()) {
            Ok(v) => Some(Spanned::new(v, s.span)),
            Err(e) => {
                dec.error(
                    s.span,
                    "contract::bad-version",
                    format!("`version: {}` is not a semantic version: {e}", s.value),
                    "write MAJOR.MINOR.PATCH, for example `version: 1.2.0`; quote it if YAML reads it as a number",
                );
                None
            }
        }
    });
    let owner = m
        .require(dec, "owner", "orders-data-team")
        .and_then(|n| dec.string(n, "owner", "orders-data-team"));
    let contact = m.get("contact").map(|n| decode_contact(dec, n)).unwrap_or_default();
    let description = m
        .get("description")
        .and_then(|n| dec.string(n, "description", "what one row means"))
        .map(|s| s.value);
    let status = match m.get("status") {
        Some(n) => dec.choice(n, "status", Status::ALL),
        None => Some(Status::Draft),
    };
    let layer = m
        .require(dec, "layer", "bronze")
        .and_then(|n| dec.choice(n, "layer", Layer::ALL));
    let tags = m
        .get("tags")
        .map(|n| dec.string_list(n, "tags", "[orders, core]"))
        .unwrap_or_default();
    let source_node = m.require(dec, "source", "{ kind: http }");
    let source = source_node.and_then(|n| decode_source(dec, n, layer));
    let key = m
        .get("key")
        .map(|n| dec.string_list(n, "key", "[order_id]"))
        .unwrap_or_default();
    let sequence_by = m
        .get("sequence_by")
        .and_then(|n| dec.string(n, "sequence_by", "updated_at"));
    let event_time = m
        .get("event_time")
        .and_then(|n| dec.string(n, "event_time", "occurred_at"));
    let event_id = m.get("event_id").and_then(|n| dec.string(n, "event_id", "event_id"));
    let watermark = m.get("watermark").and_then(|n| decode_watermark(dec, n));
    let partition_by = m
        .get("partition_by")
        .map(|n| {
            dec.string_list(n, "partition_by", "[day(occurred_at)]")
                .into_iter()
                .filter_map(|s| decode_partition(dec, s))
                .collect()
        })
        .unwrap_or_default();
    let cluster_by = m
        .get("cluster_by")
        .map(|n| dec.string_list(n, "cluster_by", "[customer_id]"))
        .unwrap_or_default();
    let schema = m
        .require(dec, "schema", "[{ name: id, type: string }]")
        .map(|n| decode_schema(dec, n))
        .unwrap_or_default();
    let sla = m.get("sla").map(|n| decode_sla(dec, n)).unwrap_or_default();
    let access = m.get("access").map(|n| decode_access(dec, n)).unwrap_or_default();
    let quality = m.get("quality").map(|n| decode_quality(dec, n)).unwrap_or_default();
    let retention = m
        .get("retention")
        .and_then(|n| dec.duration(n, "retention", "7y"))
        .map(|d| d.value);
    let tiers = m.get("tiers").map(|n| decode_tiers(dec, n)).unwrap_or_default();
    m.finish(dec);

    if let (Some(Source::Model(model)), Some(Layer::Bronze)) = (&source, layer) {
        dec.error(
            model.transform.span,
            "contract::bronze-model",
            "a bronze product is fed by a stream, not computed from inputs",
            "set `layer: silver` (or gold), or give `source` a stream `kind`",
        );
    }
    if let Some(Layer::View) = layer
        && let Some(Source::Model(model)) = &source
        && model.materialized != Materialization::View
    {
        dec.error(
            model.transform.span,
            "contract::view-materialized",
            format!(
                "a `view` product is not stored, but it is materialized as `{}`",
                model.materialized
            ),
            "remove `materialized`, or choose another layer",
        );
    }
    if let (Some(Source::Model(model)), Some(w)) = (&source, &watermark) {
        let streaming = matches!(model.materialized, Materialization::Append | Materialization::Merge);
        let windowed = matches!(
            model.materialized,
            Materialization::Incremental | Materialization::FullRefresh
        );
        if windowed && w.late == LatePolicy::DeadLetter {
            dec.error(
                source_node.map_or(root.span, |n| n.span),
                "contract::late-policy",
                format!(
                    "a `{}` model recomputes windows from its whole inputs, so it cannot dead-letter late events",
                    model.materialized
                ),
                "set `late: dead_letter` on the stream product the events arrive in, and `late: reaggregate` here",
            );
        }
        if streaming && w.late == LatePolicy::Reaggregate {
            dec.error(
                source_node.map_or(root.span, |n| n.span),
                "contract::late-policy",
                format!("a `{}` model has no windows to re-aggregate", model.materialized),
                "use `late: merge` (keep late events) or `late: dead_letter`",
            );
        }
    }
    if let Some(Source::Model(model)) = &source
        && model.materialized == Materialization::Merge
        && key.is_empty()
    {
        dec.error(
            source_node.map_or(root.span, |n| n.span),
            "contract::merge-without-key",
            "`materialized: merge` upserts by key, but the contract has no `key`",
            "add `key: [id_column]`, or use `materialized: append`",
        );
    }

    Some(Contract {
        product: product?,
        version: version?,
        owner: owner?.value,
        contact,
        description,
        status: status?,
        layer: layer?,
        tags: tags.into_iter().map(|t| t.value).collect(),
        source: source?,
        key,
        sequence_by,
        event_time,
        event_id,
        watermark,
        partition_by,
        cluster_by,
        schema,
        sla,
        access,
        quality,
        retention,
        tiers,
    })
}

fn decode_contact(dec: &mut Decoder<'_>, n: &Node) -> Contact {
    let Some(mut m) = dec.map(n, "contact", "{ email: team@example.com }") else {
        return Contact::default();
    };
    let field = |m: &mut MapReader<'_>, dec: &mut Decoder<'_>, k: &'static str, ex: &str| {
        m.get(k).and_then(|n| dec.string(n, k, ex)).map(|s| s.value)
    };
    let c = Contact {
        email: field(&mut m, dec, "email", "team@example.com"),
        slack: field(&mut m, dec, "slack", "#orders-data"),
        webhook: field(&mut m, dec, "webhook", "https://hooks.example.com/orders"),
    };
    m.finish(dec);
    c
}

fn decode_source(dec: &mut Decoder<'_>, n: &Node, layer: Option<Layer>) -> Option<Source> {
    let mut m = dec.map(n, "source", "{ kind: http }")?;
    let inputs = m.get("inputs");
    let transform = m.get("transform");
    let inline = m.get("sql");
    let materialized = m.get("materialized");
    let kind = m.get("kind");
    let format = m.get("format");
    let topic = m.get("topic");
    m.finish(dec);

    if inputs.is_some() || transform.is_some() || inline.is_some() {
        if let Some(k) = kind {
            dec.error(
                k.span,
                "contract::source-mixed",
                "`source` has both a stream `kind` and model `inputs`/`transform`",
                "a bronze product has `kind` (http, kafka, cdc, file); a model has `inputs` and `transform`",
            );
        }
        let inputs = match inputs {
            Some(i) => dec
                .string_list(i, "source.inputs", "[orders.orders_raw]")
                .into_iter()
                .filter_map(|s| decode_input(dec, s))
                .collect(),
            None => {
                dec.error(
                    n.span,
                    "contract::missing-field",
                    "`source` has a `transform` but no `inputs`",
                    "list the products the SQL reads: `inputs: [orders.orders_raw]`",
                );
                Vec::new()
            }
        };
        let (transform, sql) = match (transform, inline) {
            (Some(t), None) => (dec.string(t, "source.transform", "models/orders.sql")?, None),
            (None, Some(q)) => {
                let text = dec.string(q, "source.sql", "SELECT * FROM orders.orders_raw")?;
                let label = Spanned {
                    value: INLINE_SQL.to_string(),
                    span: text.span,
                };
                (label, Some(text.value))
            }
            (Some(t), Some(_)) => {
                dec.error(
                    t.span,
                    "contract::source-mixed",
                    "`source` has both a `transform` file and inline `sql`",
                    "keep one: `transform: models/<name>.sql`, or the query itself under `sql:`",
                );
                return None;
            }
            (None, None) => {
                dec.error(
                    n.span,
                    "contract::missing-field",
                    "`source` has `inputs` but no `transform`",
                    "add `transform: models/<name>.sql`",
                );
                return None;
            }
        };
        let default = match layer {
            Some(Layer::View) => Materialization::View,
            _ => Materialization::Append,
        };
        let materialized = match materialized {
            Some(x) => dec.choice(x, "source.materialized", Materialization::ALL)?,
            None => default,
        };
        return Some(Source::Model(ModelSource {
            inputs,
            transform,
            sql,
            materialized,
        }));
    }
    if let Some(x) = materialized {
        dec.error(
            x.span,
            "contract::source-mixed",
            "`materialized` applies to models only",
            "remove it, or add `inputs` and `transform`",
        );
    }
    let Some(kind_node) = kind else {
        dec.error(
            n.span,
            "contract::missing-field",
            "`source` needs a stream `kind` or model `inputs` and `transform`",
            "for a bronze product write `source: { kind: http }`; for a model `source: { inputs: [a.b], transform: models/x.sql }`",
        );
        return None;
    };
    let kind = dec.choice(kind_node, "source.kind", StreamKind::ALL)?;
    let format = match format {
        Some(f) => dec.choice(f, "source.format", StreamFormat::ALL)?,
        None if kind == StreamKind::Cdc => StreamFormat::Debezium,
        None => StreamFormat::Json,
    };
    let topic = topic.and_then(|t| dec.string(t, "source.topic", "orders"));
    if kind == StreamKind::Kafka && topic.is_none() {
        dec.error(
            kind_node.span,
            "contract::missing-field",
            "a Kafka source needs a `topic`",
            "add `topic: <name>` to `source`",
        );
    }
    if kind == StreamKind::Kafka && matches!(format, StreamFormat::Csv | StreamFormat::Parquet) {
        dec.error(
            kind_node.span,
            "contract::bad-format",
            format!("a Kafka source reads one JSON document per message, not `{format}`"),
            "set `format: json` (or `debezium` for change events)",
        );
    }
    if kind == StreamKind::Cdc && format != StreamFormat::Debezium {
        dec.error(
            kind_node.span,
            "contract::bad-format",
            format!("a CDC source reads Debezium change events, not `{format}`"),
            "remove `format` or set `format: debezium`",
        );
    }
    Some(Source::Stream(StreamSource {
        kind,
        format,
        topic: topic.map(|t| t.value),
    }))
}

/// `orders.orders_raw` or `orders.orders_raw@v1`.
pub(crate) fn parse_input_ref(text: &str) -> Result<InputRef, String> {
    let (name, major) = match text.split_once('@') {
        Some((n, v)) => {
            let digits = v.strip_prefix('v').unwrap_or(v);
            let major = digits
                .parse::<u64>()
                .map_err(|_| format!("`@{v}` is not a major version"))?;
            (n, Some(major))
        }
        None => (text, None),
    };
    let product = name.trim().parse::<ProductName>().map_err(|e| e.to_string())?;
    Ok(InputRef { product, major })
}

fn decode_input(dec: &mut Decoder<'_>, s: Spanned<String>) -> Option<Spanned<InputRef>> {
    match parse_input_ref(&s.value) {
        Ok(r) => Some(Spanned::new(r, s.span)),
        Err(e) => {
            dec.error(
                s.span,
                "contract::bad-input",
                format!("input `{}`: {e}", s.value),
                "name inputs by product address, optionally with a major version: `orders.orders_raw@v1`",
            );
            None
        }
    }
}

fn decode_watermark(dec: &mut Decoder<'_>, n: &Node) -> Option<Watermark> {
    let mut m = dec.map(n, "watermark", "{ allowed_lateness: 5m }")?;
    let lateness = m
        .require(dec, "allowed_lateness", "5m")
        .and_then(|n| dec.duration(n, "allowed_lateness", "5m"));
    let late = match m.get("late") {
        Some(l) => dec.choice(l, "watermark.late", LatePolicy::ALL),
        None => Some(LatePolicy::Merge),
    };
    m.finish(dec);
    Some(Watermark {
        allowed_lateness: lateness?.value,
        late: late?,
    })
}

fn decode_partition(dec: &mut Decoder<'_>, s: Spanned<String>) -> Option<Partition> {
    let text = s.value.trim();
    if let Some(open) = text.find('(') {
        let func = text[..open].trim().to_ascii_lowercase();
        let Some(inner) = text[open + 1..].strip_suffix(')') else {
            dec.error(
                s.span,
                "contract::bad-partition",
                format!("partition `{text}` is missing `)`"),
                "write `day(column)`",
            );
            return None;
        };
        let names: Vec<&str> = PartitionTransform::ALL
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| *n != "identity")
            .collect();
        let Some((_, transform)) = PartitionTransform::ALL
            .iter()
            .find(|(n, _)| *n == func && *n != "identity")
        else {
            let hint = match trib_core::diagnostic::did_you_mean(&func, names.iter().copied()) {
                Some(x) => format!("did you mean `{x}({})`? transforms: {}", inner.trim(), names.join(", ")),
                None => format!("partition transforms are {}", names.join(", ")),
            };
            dec.error(
                s.span,
                "contract::bad-partition",
                format!("unknown partition transform `{func}`"),
                hint,
            );
            return None;
        };
        return Some(Partition {
            transform: *transform,
            column: Spanned::new(inner.trim().to_string(), s.span),
        });
    }
    Some(Partition {
        transform: PartitionTransform::Identity,
        column: Spanned::new(text.to_string(), s.span),
    })
}

fn decode_schema(dec: &mut Decoder<'_>, n: &Node) -> Vec<Column> {
    let Some(items) = dec.seq(n, "schema", "[{ name: id, type: string }]", false) else {
        return Vec::new();
    };
    if items.is_empty() {
        dec.error(
            n.span,
            "contract::empty-schema",
            "`schema` has no columns",
            "list at least one column: `- { name: id, type: string, required: true }`",
        );
    }
    let mut columns: Vec<Column> = Vec::new();
    for item in items {
        let Some(mut m) = dec.map(item, "schema[]", "{ name: id, type: string }") else {
            continue;
        };
        let name = m.require(dec, "name", "id").and_then(|n| dec.string(n, "name", "id"));
        let data_type = m.require(dec, "type", "string").and_then(|n| decode_type(dec, n));
        let required = m.get("required").and_then(|n| dec.bool(n, "required")).unwrap_or(false);
        let pii = m.get("pii").and_then(|n| dec.bool(n, "pii")).unwrap_or(false);
        let classification = m
            .get("classification")
            .and_then(|n| dec.choice(n, "classification", Classification::ALL));
        let description = m
            .get("description")
            .and_then(|n| dec.string(n, "description", "what it means"))
            .map(|s| s.value);
        let tags = m
            .get("tags")
            .map(|n| dec.string_list(n, "tags", "[finance]"))
            .unwrap_or_default();
        m.finish(dec);
        let (Some(name), Some(data_type)) = (name, data_type) else {
            if let Some(name) = item.get("name").and_then(Node::as_str) {
                dec.broken_columns.push(name.to_string());
            }
            continue;
        };
        if !valid_column_name(&name.value) {
            dec.error(
                name.span,
                "contract::bad-column-name",
                format!("column name `{}` is not a plain identifier", name.value),
                "use letters, digits and `_`, starting with a letter or `_`, so SQL can name it without quotes",
            );
            continue;
        }
        if let Some(first) = columns.iter().find(|c| c.name.value.eq_ignore_ascii_case(&name.value)) {
            dec.error(
                name.span,
                "contract::duplicate-column",
                format!("column `{}` is declared twice", name.value),
                format!(
                    "the first declaration is on line {}; column names are case-insensitive in SQL",
                    first.name.span.line
                ),
            );
            continue;
        }
        columns.push(Column {
            name,
            data_type,
            required,
            pii,
            classification,
            description,
            tags: tags.into_iter().map(|t| t.value).collect(),
        });
    }
    columns
}

fn valid_column_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn decode_type(dec: &mut Decoder<'_>, n: &Node) -> Option<Spanned<DataType>> {
    let s = dec.string(n, "type", "string")?;
    match DataType::parse(&s.value) {
        Ok(t) => Some(Spanned::new(t, s.span)),
        Err(e) => {
            let mut span = s.span;
            // Point into the type string when it is written on one line without escapes.
            let loc = dec.location(s.span);
            let raw = dec
                .source
                .text
                .get(loc.offset..loc.offset + loc.length)
                .unwrap_or_default();
            let quote = match n.kind {
                NodeKind::Scalar { quoted: false, .. } => Some(0),
                NodeKind::Scalar { quoted: true, .. } if raw.len() == s.value.len() + 2 => Some(1),
                _ => None,
            };
            if let Some(quote) = quote
                && !s.value.contains('\n')
            {
                let chars = quote + s.value[..e.offset.min(s.value.len())].chars().count();
                span = NodeSpan {
                    start: span.start + chars,
                    end: span.start + chars + 1,
                    line: span.line,
                    column: span.column + chars,
                };
            }
            dec.error(
                span,
                "contract::bad-type",
                format!("column type `{}`: {}", s.value, e.message),
                e.hint,
            );
            None
        }
    }
}

fn decode_sla(dec: &mut Decoder<'_>, n: &Node) -> Sla {
    let Some(mut m) = dec.map(n, "sla", "{ freshness: 5m }") else {
        return Sla::default();
    };
    let freshness = m
        .get("freshness")
        .and_then(|n| dec.duration(n, "freshness", "5m"))
        .map(|d| d.value);
    let availability = m.get("availability").and_then(|n| dec.percent(n, "availability"));
    let completeness = m.get("completeness").and_then(|n| {
        let mut c = dec.map(n, "completeness", "{ within: 5m, target: 99.5% }")?;
        let within = c
            .require(dec, "within", "5m")
            .and_then(|n| dec.duration(n, "within", "5m"));
        let target = c.require(dec, "target", "99.5%").and_then(|n| dec.percent(n, "target"));
        c.finish(dec);
        Some(Completeness {
            within: within?.value,
            target: target?,
        })
    });
    let validity = m.get("validity").and_then(|n| dec.percent(n, "validity"));
    m.finish(dec);
    Sla {
        freshness,
        availability,
        completeness,
        validity,
    }
}

fn decode_access(dec: &mut Decoder<'_>, n: &Node) -> Vec<AccessGrant> {
    let Some(items) = dec.seq(n, "access", "[{ role: analysts, level: read }]", false) else {
        return Vec::new();
    };
    let mut grants = Vec::new();
    for item in items {
        let Some(mut m) = dec.map(item, "access[]", "{ role: analysts, level: read }") else {
            continue;
        };
        let role = m
            .require(dec, "role", "analysts")
            .and_then(|n| dec.string(n, "role", "analysts"));
        let level = match m.get("level") {
            Some(l) => dec.choice(l, "level", AccessLevel::ALL),
            None => Some(AccessLevel::Read),
        };
        let row_filter = m
            .get("row_filter")
            .and_then(|n| dec.string(n, "row_filter", "region = 'EU'"));
        m.finish(dec);
        if let (Some(role), Some(level)) = (role, level) {
            grants.push(AccessGrant {
                role,
                level,
                row_filter,
            });
        }
    }
    grants
}

fn decode_quality(dec: &mut Decoder<'_>, n: &Node) -> Vec<QualityCheck> {
    let Some(items) = dec.seq(n, "quality", "[{ not_null: [id] }]", false) else {
        return Vec::new();
    };
    let mut checks = Vec::new();
    for item in items {
        if let Some(c) = decode_check(dec, item) {
            checks.push(c);
        }
    }
    checks
}

fn decode_check(dec: &mut Decoder<'_>, item: &Node) -> Option<QualityCheck> {
    let NodeKind::Map(entries) = &item.kind else {
        dec.error(
            item.span,
            "contract::bad-check",
            format!(
                "a quality check is a mapping like `- not_null: [id]`, found {}",
                item.describe()
            ),
            format!("checks are: {}", CheckKind::NAMES.join(", ")),
        );
        return None;
    };
    let kinds: Vec<&(Node, Node)> = entries
        .iter()
        .filter(|(k, _)| k.as_str().is_some_and(|k| CheckKind::NAMES.contains(&k)))
        .collect();
    let mut m = dec.map(item, "quality[]", "{ not_null: [id] }")?;
    let severity = match m.get("severity") {
        Some(s) => dec.choice(s, "severity", CheckSeverity::ALL),
        None => Some(CheckSeverity::Error),
    };
    let name = m
        .get("name")
        .and_then(|n| dec.string(n, "name", "positive_amount"))
        .map(|s| s.value);
    let block = m.get("block").and_then(|n| dec.bool(n, "block")).unwrap_or(false);
    let _ = m.get("description");
    for k in CheckKind::NAMES {
        let _ = m.get(k);
    }
    m.finish(dec);
    let [(key, value)] = kinds.as_slice() else {
        let help = format!(
            "each list item holds one check, one of: {}",
            CheckKind::NAMES.join(", ")
        );
        if kinds.is_empty() {
            // Unknown keys were already reported with a suggestion; add this only for an
            // item that holds nothing else.
            if entries
                .iter()
                .all(|(k, _)| matches!(k.as_str(), Some("severity" | "name" | "description")))
            {
                dec.error(item.span, "contract::bad-check", "this quality item has no check", help);
            }
        } else {
            dec.error(
                item.span,
                "contract::bad-check",
                "this quality item holds more than one check",
                help,
            );
        }
        return None;
    };
    let kind_name = key.as_str().unwrap_or_default();
    let col = |dec: &mut Decoder<'_>, m: &mut MapReader<'_>, field: &'static str| {
        m.require(dec, field, "status")
            .and_then(|n| dec.string(n, field, "status"))
    };
    let kind = match kind_name {
        "unique" => CheckKind::Unique(dec.string_list(value, "unique", "[order_id]")),
        "not_null" => CheckKind::NotNull(dec.string_list(value, "not_null", "[order_id, customer_id]")),
        "accepted_values" => {
            let mut m = dec.map(value, "accepted_values", "{ column: status, values: [a, b] }")?;
            let column = col(dec, &mut m, "column");
            let values = m
                .require(dec, "values", "[placed, shipped]")
                .map(|n| dec.string_list(n, "values", "[placed, shipped]"));
            m.finish(dec);
            CheckKind::AcceptedValues {
                column: column?,
                values: values?.into_iter().map(|v| v.value).collect(),
            }
        }
        "range" => {
            let mut m = dec.map(value, "range", "{ column: amount, min: 0 }")?;
            let column = col(dec, &mut m, "column");
            let bound = |n: &Node| {
                let s = n.as_str()?;
                Some(match s.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() && !matches!(n.kind, NodeKind::Scalar { quoted: true, .. }) => {
                        Bound::Number(x)
                    }
                    _ => Bound::Text(s.to_string()),
                })
            };
            let min = m.get("min").and_then(bound);
            let max = m.get("max").and_then(bound);
            m.finish(dec);
            if min.is_none() && max.is_none() {
                dec.error(
                    value.span,
                    "contract::bad-check",
                    "`range` needs `min`, `max` or both",
                    "for example `range: { column: amount, min: 0 }`",
                );
            }
            CheckKind::Range {
                column: column?,
                min,
                max,
            }
        }
        "regex" => {
            let mut m = dec.map(value, "regex", "{ column: email, pattern: '^.+@.+$' }")?;
            let column = col(dec, &mut m, "column");
            let pattern = m
                .require(dec, "pattern", "'^[A-Z]{2}$'")
                .and_then(|n| dec.string(n, "pattern", "'^[A-Z]{2}$'"));
            m.finish(dec);
            let pattern = pattern?;
            if let Err(e) = regex::Regex::new(&pattern.value) {
                dec.error(
                    pattern.span,
                    "contract::bad-regex",
                    format!("invalid regular expression: {}", first_line(&e.to_string())),
                    "use Rust/RE2 regex syntax; quote the pattern in single quotes in YAML",
                );
                return None;
            }
            CheckKind::Regex {
                column: column?,
                pattern: pattern.value,
            }
        }
        "row_count" => {
            let mut m = dec.map(value, "row_count", "{ min: 1 }")?;
            let min = m.get("min").and_then(|n| dec.u64(n, "min", "1"));
            let max = m.get("max").and_then(|n| dec.u64(n, "max", "1000000"));
            m.finish(dec);
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                dec.error(
                    value.span,
                    "contract::bad-check",
                    format!("`row_count` min {a} is above max {b}"),
                    "swap the bounds",
                );
            }
            CheckKind::RowCount { min, max }
        }
        "freshness" => {
            let mut m = dec.map(value, "freshness", "{ max_age: 1h }")?;
            let max_age = m
                .require(dec, "max_age", "1h")
                .and_then(|n| dec.duration(n, "max_age", "1h"));
            let column = m.get("column").and_then(|n| dec.string(n, "column", "occurred_at"));
            m.finish(dec);
            CheckKind::Freshness {
                max_age: max_age?.value,
                column,
            }
        }
        "relationships" => {
            let mut m = dec.map(
                value,
                "relationships",
                "{ column: customer_id, to: crm.customers, field: customer_id }",
            )?;
            let column = col(dec, &mut m, "column");
            let to = m
                .require(dec, "to", "crm.customers")
                .and_then(|n| dec.string(n, "to", "crm.customers"))
                .and_then(|s| match s.value.parse::<ProductName>() {
                    Ok(p) => Some(Spanned::new(p, s.span)),
                    Err(e) => {
                        dec.error(s.span, "contract::bad-product", e.to_string(), ProductNameError::HINT);
                        None
                    }
                });
            let field = m
                .require(dec, "field", "customer_id")
                .and_then(|n| dec.string(n, "field", "customer_id"));
            m.finish(dec);
            CheckKind::Relationships {
                column: column?,
                to: to?,
                field: field?.value,
            }
        }
        "expect" => {
            let mut m = dec.map(value, "expect", "{ name: positive_amount, sql: \"amount >= 0\" }")?;
            let ename = m
                .require(dec, "name", "positive_amount")
                .and_then(|n| dec.string(n, "name", "positive_amount"));
            let sql = m
                .require(dec, "sql", "\"amount >= 0\"")
                .and_then(|n| dec.string(n, "sql", "\"amount >= 0\""));
            let on_violation = match m.get("on_violation") {
                Some(n) => dec.choice(n, "on_violation", OnViolation::ALL),
                None => Some(OnViolation::Warn),
            };
            m.finish(dec);
            let sql = sql?;
            if let Err(e) = crate::sql::parse_expr(&sql.value) {
                dec.error(
                    sql.span,
                    "contract::bad-sql",
                    format!("`expect` SQL does not parse: {e}"),
                    "write a boolean SQL expression that holds for good rows, e.g. `amount >= 0`",
                );
                return None;
            }
            return Some(QualityCheck {
                kind: CheckKind::Expect {
                    sql,
                    on_violation: on_violation?,
                },
                severity: severity?,
                block,
                name: Some(ename?.value),
                span: item.span,
            });
        }
        "sql" => {
            let query = dec.string(value, "sql", "\"SELECT * FROM this WHERE amount < 0\"")?;
            if let Err(e) = crate::sql::parse_model(&query.value) {
                dec.error(
                    query.span,
                    "contract::bad-sql",
                    format!("`sql` check does not parse: {e}"),
                    "write one SELECT over `this` (the product) that returns the failing rows",
                );
                return None;
            }
            CheckKind::Sql(query)
        }
        "anomaly" => {
            let mut m = dec.map(value, "anomaly", "{ metric: row_count }")?;
            let metric = m
                .require(dec, "metric", "row_count")
                .and_then(|n| dec.choice(n, "metric", &[("row_count", 0u8), ("null_rate", 1u8)]));
            let column = m.get("column").and_then(|n| dec.string(n, "column", "email"));
            let window = m.get("window").and_then(|n| dec.u64(n, "window", "20"));
            let threshold = m
                .get("threshold")
                .and_then(|n| n.as_str())
                .map(|t| (t, t.trim().parse::<f64>()));
            m.finish(dec);
            let threshold = match threshold {
                None => 3.5,
                Some((_, Ok(t))) if t.is_finite() && t > 0.0 => t,
                Some((t, _)) => {
                    dec.error(
                        value.span,
                        "contract::bad-check",
                        format!("`anomaly` threshold `{t}` is not a positive number"),
                        "a robust z-score such as 3.5 (higher alerts less)",
                    );
                    return None;
                }
            };
            let window = window.unwrap_or(20);
            if window < 3 {
                dec.error(
                    value.span,
                    "contract::bad-check",
                    format!("`anomaly` window {window} is too short to learn from"),
                    "compare with at least 3 past measurements, e.g. `window: 20`",
                );
                return None;
            }
            let metric = match (metric?, column) {
                (0, None) => AnomalyMetric::RowCount,
                (1, Some(c)) => AnomalyMetric::NullRate(c),
                (_, None) => {
                    dec.error(
                        value.span,
                        "contract::bad-check",
                        "`anomaly` on `null_rate` needs the `column` to watch",
                        "for example `anomaly: { metric: null_rate, column: email }`",
                    );
                    return None;
                }
                (_, Some(c)) => {
                    dec.error(
                        c.span,
                        "contract::bad-check",
                        "`anomaly` on `row_count` takes no `column`",
                        "remove `column`, or use `metric: null_rate`",
                    );
                    return None;
                }
            };
            CheckKind::Anomaly {
                metric,
                window: u32::try_from(window).unwrap_or(u32::MAX),
                threshold,
            }
        }
        _ => return None,
    };
    Some(QualityCheck {
        kind,
        severity: severity?,
        block,
        name,
        span: item.span,
    })
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

fn decode_tiers(dec: &mut Decoder<'_>, n: &Node) -> Vec<Tier> {
    let Some(items) = dec.seq(n, "tiers", "[{ resolution: raw, retention: 7d }]", false) else {
        return Vec::new();
    };
    let mut tiers: Vec<Tier> = Vec::new();
    for item in items {
        let Some(mut m) = dec.map(item, "tiers[]", "{ resolution: 1m, retention: 90d }") else {
            continue;
        };
        let resolution = m.require(dec, "resolution", "1m").and_then(|n| match n.as_str() {
            Some("raw") => Some(None),
            _ => dec.duration(n, "resolution", "1m").map(|d| Some(d.value)),
        });
        let retention = m
            .require(dec, "retention", "90d")
            .and_then(|n| dec.duration(n, "retention", "90d"));
        let product = m.get("product").and_then(|n| {
            let s = dec.string(n, "tiers[].product", "iot.readings_1m")?;
            match s.value.parse::<ProductName>() {
                Ok(p) => Some(Spanned::new(p, s.span)),
                Err(e) => {
                    dec.error(s.span, "contract::bad-product", e.to_string(), ProductNameError::HINT);
                    None
                }
            }
        });
        let group_by = m
            .get("group_by")
            .map(|n| dec.string_list(n, "tiers[].group_by", "[device_id, site]"))
            .unwrap_or_default();
        m.finish(dec);
        let (Some(resolution), Some(retention)) = (resolution, retention) else {
            continue;
        };
        if let Some(prev) = tiers.last() {
            let coarser = match (prev.resolution, resolution) {
                (None, Some(_)) => true,
                (Some(a), Some(b)) => b > a,
                _ => false,
            };
            if !coarser || retention.value <= prev.retention {
                dec.error(
                    item.span,
                    "contract::bad-tiers",
                    "each tier must be coarser and kept longer than the one before",
                    "order tiers from `raw` up, e.g. raw for 7d, then 1m for 90d, then 1h for 7y",
                );
            }
        }
        if resolution.is_none() && (product.is_some() || !group_by.is_empty()) {
            dec.error(
                item.span,
                "contract::bad-tiers",
                "the `raw` tier is this product itself: it takes no `product` or `group_by`",
                "name products and groupings on the downsampled tiers",
            );
        }
        tiers.push(Tier {
            resolution,
            retention: retention.value,
            product,
            group_by,
            span: item.span,
        });
    }
    tiers
}

/// Checks that every column a contract names exists with a fitting type.
fn check_columns(dec: &mut Decoder<'_>, c: &Contract) {
    let names: Vec<&str> = c.schema.iter().map(|col| col.name.value.as_str()).collect();
    let exists = |dec: &mut Decoder<'_>, r: &Spanned<String>, field: &str| -> Option<DataType> {
        match c.column(&r.value) {
            Some(col) => Some(col.data_type.value.clone()),
            None if dec.broken_columns.contains(&r.value) => None,
            None => {
                let help = match trib_core::diagnostic::did_you_mean(&r.value, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("columns are: {}", names.join(", ")),
                };
                dec.error(
                    r.span,
                    "contract::unknown-column",
                    format!("`{field}` names column `{}`, which is not in the schema", r.value),
                    help,
                );
                None
            }
        }
    };
    for k in &c.key {
        if let Some(t) = exists(dec, k, "key")
            && (t.is_nested() || matches!(t, DataType::Float | DataType::Double))
        {
            dec.error(
                k.span,
                "contract::bad-key-type",
                format!("key column `{}` has type `{t}`, which cannot identify a row", k.value),
                "use string, integer, decimal, date or timestamp key columns",
            );
        }
    }
    if let Some(s) = &c.sequence_by
        && let Some(t) = exists(dec, s, "sequence_by")
        && !(t.is_numeric() || t.is_temporal())
    {
        dec.error(
            s.span,
            "contract::bad-sequence-type",
            format!(
                "`sequence_by` column `{}` has type `{t}`; updates are ordered by it",
                s.value
            ),
            "use a timestamp or an increasing number (e.g. an LSN or version)",
        );
    }
    if let Some(e) = &c.event_id
        && let Some(t) = exists(dec, e, "event_id")
        && (t.is_nested() || matches!(t, DataType::Float | DataType::Double))
    {
        dec.error(
            e.span,
            "contract::bad-event-id-type",
            format!(
                "`event_id` column `{}` has type `{t}`, which cannot identify an event",
                e.value
            ),
            "use a string or integer column the producer sets once per event",
        );
    }
    if let Some(e) = &c.event_time
        && let Some(t) = exists(dec, e, "event_time")
        && !t.is_temporal()
    {
        dec.error(
            e.span,
            "contract::bad-event-time-type",
            format!("`event_time` column `{}` has type `{t}`, not a time", e.value),
            "event time must be a `timestamp` or `date` column",
        );
    }
    for p in &c.partition_by {
        if let Some(t) = exists(dec, &p.column, "partition_by") {
            let ok = match p.transform {
                PartitionTransform::Identity => {
                    !t.is_nested() && !matches!(t, DataType::Float | DataType::Double | DataType::Binary)
                }
                PartitionTransform::Hour => matches!(t, DataType::Timestamp | DataType::TimestampNtz),
                _ => t.is_temporal(),
            };
            if !ok {
                dec.error(p.column.span, "contract::bad-partition", format!("cannot partition by `{p}`: column `{}` has type `{t}`", p.column.value), "day/month/year need a date or timestamp, hour a timestamp; plain partitions need a scalar, low-cardinality column");
            }
        }
    }
    for k in &c.cluster_by {
        if let Some(t) = exists(dec, k, "cluster_by")
            && t.is_nested()
        {
            dec.error(
                k.span,
                "contract::bad-cluster-type",
                format!("cannot cluster by nested column `{}`", k.value),
                "cluster by scalar columns used in filters",
            );
        }
    }
    if c.is_cdc() {
        let reserved: Vec<String> = crate::model::cdc_columns().iter().map(|f| f.name().clone()).collect();
        for col in &c.schema {
            if reserved.contains(&col.name.value) {
                dec.error(
                    col.name.span,
                    "contract::reserved-column",
                    format!(
                        "column `{}` is reserved in CDC products for change metadata",
                        col.name.value
                    ),
                    format!("rename it; CDC bronze tables add {} themselves", reserved.join(", ")),
                );
            }
        }
    }
    if c.watermark.is_some() && c.event_time.is_none() {
        dec.error(
            c.product.span,
            "contract::watermark-without-event-time",
            "the contract sets a `watermark` but no `event_time`",
            "add `event_time: <timestamp column>`",
        );
    }
    for q in &c.quality {
        for col in q.kind.columns() {
            let Some(t) = exists(dec, col, q.kind.name()) else {
                continue;
            };
            let bad = match &q.kind {
                CheckKind::Regex { .. } => (!matches!(t, DataType::String)).then_some("a string"),
                CheckKind::Range { .. } => (!t.is_orderable()).then_some("a number, date, timestamp or string"),
                CheckKind::Freshness { .. } => (!t.is_temporal()).then_some("a date or timestamp"),
                CheckKind::AcceptedValues { .. } => t.is_nested().then_some("a scalar"),
                _ => None,
            };
            if let Some(need) = bad {
                dec.error(
                    col.span,
                    "contract::bad-check-type",
                    format!(
                        "`{}` check on column `{}` of type `{t}` needs {need} column",
                        q.kind.name(),
                        col.value
                    ),
                    "check another column, or use an `expect` with SQL",
                );
            }
        }
        if let CheckKind::Expect { sql, .. } = &q.kind {
            check_sql_columns(dec, c, sql, "expect");
        }
    }
    for g in &c.access {
        if let Some(f) = &g.row_filter {
            match crate::sql::parse_expr(&f.value) {
                Ok(_) => check_sql_columns(dec, c, f, "row_filter"),
                Err(e) => dec.error(
                    f.span,
                    "contract::bad-sql",
                    format!("`row_filter` does not parse: {e}"),
                    "write a boolean SQL expression over the product's columns, e.g. `region = 'EU'`",
                ),
            }
        }
    }
    if c.pii_columns().next().is_some() && c.access.is_empty() {
        // Governance policies decide whether this is an error; the contract is valid.
    }
}

fn check_sql_columns(dec: &mut Decoder<'_>, c: &Contract, sql: &Spanned<String>, field: &str) {
    let Ok(idents) = crate::sql::expr_columns(&sql.value) else {
        return;
    };
    let names: Vec<&str> = c.schema.iter().map(|col| col.name.value.as_str()).collect();
    for ident in idents {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&ident)) && !dec.broken_columns.contains(&ident) {
            let help = match trib_core::diagnostic::did_you_mean(&ident, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("columns are: {}", names.join(", ")),
            };
            dec.error(
                sql.span,
                "contract::unknown-column",
                format!("`{field}` uses column `{ident}`, which is not in the schema"),
                help,
            );
        }
    }
}
