//! The validated data product contract: what a product is, independent of YAML.

use crate::decode::Spanned;
use crate::types::DataType;
use std::fmt;
use std::str::FromStr;
use trib_core::Duration;

/// The address of a product: `<domain>.<name>`, lowercase words joined by `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductName {
    domain: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductNameError {
    #[error("product address `{0}` must be `<domain>.<name>`")]
    Shape(String),
    #[error("`{part}` in product address `{text}` must be lowercase letters, digits and `_`, starting with a letter")]
    Part { text: String, part: String },
}

impl ProductNameError {
    pub const HINT: &'static str =
        "write the address as `<domain>.<name>` in snake_case, for example `orders.orders_raw`";
}

fn valid_part(p: &str) -> bool {
    p.starts_with(|c: char| c.is_ascii_lowercase())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl ProductName {
    pub fn new(domain: &str, name: &str) -> Result<Self, ProductNameError> {
        format!("{domain}.{name}").parse()
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromStr for ProductName {
    type Err = ProductNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((domain, name)) = s.split_once('.') else {
            return Err(ProductNameError::Shape(s.to_string()));
        };
        if name.contains('.') {
            return Err(ProductNameError::Shape(s.to_string()));
        }
        for part in [domain, name] {
            if !valid_part(part) {
                return Err(ProductNameError::Part {
                    text: s.to_string(),
                    part: part.to_string(),
                });
            }
        }
        Ok(Self {
            domain: domain.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for ProductName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.domain, self.name)
    }
}

/// An input of a model: a product, optionally pinned to a major version (`orders.raw@v1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InputRef {
    pub product: ProductName,
    pub major: Option<u64>,
}

impl fmt::Display for InputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.major {
            Some(m) => write!(f, "{}@v{m}", self.product),
            None => write!(f, "{}", self.product),
        }
    }
}

macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [(&'static str, $name)] = &[$(($text, $name::$variant)),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// Lifecycle of a product version.
    Status { Draft => "draft", Active => "active", Deprecated => "deprecated", Retired => "retired" }
);
word_enum!(
    /// Medallion layer.
    Layer { Bronze => "bronze", Silver => "silver", Gold => "gold", View => "view" }
);
word_enum!(
    /// How events reach a bronze product.
    StreamKind { Http => "http", Kafka => "kafka", Cdc => "cdc", File => "file" }
);
word_enum!(
    /// Wire format of incoming records.
    StreamFormat { Json => "json", Csv => "csv", Parquet => "parquet", Debezium => "debezium" }
);
word_enum!(
    /// How a model writes its output (dbt's `materialized`).
    Materialization { Append => "append", Merge => "merge", Incremental => "incremental", FullRefresh => "full_refresh", View => "view" }
);
word_enum!(
    /// What happens to events older than the watermark.
    LatePolicy { Merge => "merge", Reaggregate => "reaggregate", DeadLetter => "dead_letter" }
);
word_enum!(
    /// Partition transform over a column.
    PartitionTransform { Identity => "identity", Year => "year", Month => "month", Day => "day", Hour => "hour" }
);
word_enum!(
    /// Sensitivity of a column, lowest first.
    Classification { Public => "public", Internal => "internal", Confidential => "confidential", Restricted => "restricted" }
);
word_enum!(
    AccessLevel { Read => "read", Write => "write", Admin => "admin" }
);
word_enum!(
    CheckSeverity { Warn => "warn", Error => "error" }
);
word_enum!(
    /// What an `expect` does with rows that violate it.
    OnViolation { Warn => "warn", Drop => "drop", Fail => "fail", Quarantine => "quarantine" }
);

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Events arrive from outside: a bronze product.
    Stream(StreamSource),
    /// Computed from other products by SQL.
    Model(ModelSource),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamSource {
    pub kind: StreamKind,
    pub format: StreamFormat,
    /// Kafka (or CDC over Kafka) topic.
    pub topic: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSource {
    pub inputs: Vec<Spanned<InputRef>>,
    /// Path of the SQL file, relative to the project directory; [`INLINE_SQL`] when the
    /// query is written in the contract (`sql`).
    pub transform: Spanned<String>,
    /// The query, when the contract holds it (`source.sql`) rather than a file.
    pub sql: Option<String>,
    pub materialized: Materialization,
}

/// The `transform` of a model whose SQL is in its contract.
pub const INLINE_SQL: &str = "inline sql";

impl ModelSource {
    /// The model's SQL: inline, or read from its file under the project directory `dir`.
    pub fn read_sql(&self, dir: &std::path::Path) -> std::io::Result<String> {
        match &self.sql {
            Some(q) => Ok(q.clone()),
            None => std::fs::read_to_string(dir.join(&self.transform.value)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    pub allowed_lateness: Duration,
    pub late: LatePolicy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub transform: PartitionTransform,
    pub column: Spanned<String>,
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.transform {
            PartitionTransform::Identity => write!(f, "{}", self.column),
            t => write!(f, "{t}({})", self.column),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: Spanned<String>,
    pub data_type: Spanned<DataType>,
    pub required: bool,
    pub pii: bool,
    pub classification: Option<Classification>,
    pub description: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completeness {
    pub within: Duration,
    /// Percent of records that arrive within `within` of their event time.
    pub target: f64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sla {
    pub freshness: Option<Duration>,
    /// Percent of serving requests that succeed.
    pub availability: Option<f64>,
    pub completeness: Option<Completeness>,
    /// Percent of received records accepted rather than dead-lettered.
    pub validity: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessGrant {
    pub role: Spanned<String>,
    pub level: AccessLevel,
    /// SQL predicate limiting the rows this role sees.
    pub row_filter: Option<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct QualityCheck {
    pub kind: CheckKind,
    pub severity: CheckSeverity,
    /// An error-severity failure on a model run stops the run's commit.
    pub block: bool,
    /// Optional display name; `expect` checks always have one.
    pub name: Option<String>,
    pub span: crate::yaml::NodeSpan,
}

/// Like [`Spanned`], equality ignores where the check was written.
impl PartialEq for QualityCheck {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.severity == other.severity
            && self.block == other.block
            && self.name == other.name
    }
}

/// A bound of a range check, compared with the column's own type.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Number(f64),
    Text(String),
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Number(n) => write!(f, "{n}"),
            Bound::Text(t) => write!(f, "'{}'", t.replace('\'', "''")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    Unique(Vec<Spanned<String>>),
    NotNull(Vec<Spanned<String>>),
    AcceptedValues {
        column: Spanned<String>,
        values: Vec<String>,
    },
    Range {
        column: Spanned<String>,
        min: Option<Bound>,
        max: Option<Bound>,
    },
    Regex {
        column: Spanned<String>,
        pattern: String,
    },
    RowCount {
        min: Option<u64>,
        max: Option<u64>,
    },
    Freshness {
        max_age: Duration,
        column: Option<Spanned<String>>,
    },
    Relationships {
        column: Spanned<String>,
        to: Spanned<ProductName>,
        field: String,
    },
    Expect {
        sql: Spanned<String>,
        on_violation: OnViolation,
    },
    /// A query over `this` (the product) that returns the failing rows.
    Sql(Spanned<String>),
    /// A measure of each batch (or run) compared with its own trailing history.
    Anomaly {
        metric: AnomalyMetric,
        /// How many past measurements the value is compared with.
        window: u32,
        /// Robust z-score above which the value is an anomaly.
        threshold: f64,
    },
}

/// What an anomaly check measures.
#[derive(Debug, Clone, PartialEq)]
pub enum AnomalyMetric {
    /// Rows per batch (or added since the last run).
    RowCount,
    /// Share of NULLs in a column.
    NullRate(Spanned<String>),
}

impl AnomalyMetric {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RowCount => "row_count",
            Self::NullRate(_) => "null_rate",
        }
    }
}

impl CheckKind {
    pub const NAMES: &'static [&'static str] = &[
        "unique",
        "not_null",
        "accepted_values",
        "range",
        "regex",
        "row_count",
        "freshness",
        "relationships",
        "expect",
        "sql",
        "anomaly",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Self::Unique(_) => "unique",
            Self::NotNull(_) => "not_null",
            Self::AcceptedValues { .. } => "accepted_values",
            Self::Range { .. } => "range",
            Self::Regex { .. } => "regex",
            Self::RowCount { .. } => "row_count",
            Self::Freshness { .. } => "freshness",
            Self::Relationships { .. } => "relationships",
            Self::Expect { .. } => "expect",
            Self::Sql(_) => "sql",
            Self::Anomaly { .. } => "anomaly",
        }
    }

    /// Columns the check reads, for existence checks.
    pub fn columns(&self) -> Vec<&Spanned<String>> {
        match self {
            Self::Unique(c) | Self::NotNull(c) => c.iter().collect(),
            Self::AcceptedValues { column, .. } | Self::Range { column, .. } | Self::Regex { column, .. } => {
                vec![column]
            }
            Self::Relationships { column, .. } => vec![column],
            Self::Freshness { column, .. } => column.iter().collect(),
            Self::Anomaly {
                metric: AnomalyMetric::NullRate(c),
                ..
            } => vec![c],
            Self::RowCount { .. } | Self::Expect { .. } | Self::Sql(_) | Self::Anomaly { .. } => Vec::new(),
        }
    }
}

/// One retention tier: data at `resolution` (None = every event) kept for `retention`.
#[derive(Debug, Clone)]
pub struct Tier {
    /// `None` for `raw`: the product itself, at full resolution.
    pub resolution: Option<Duration>,
    pub retention: Duration,
    /// The product holding this tier, when the team wrote it; otherwise Tributary
    /// generates `<product>_<resolution>` ([`crate::tiers`]).
    pub product: Option<Spanned<ProductName>>,
    /// Columns a generated tier groups by (default: the key, else the string columns).
    pub group_by: Vec<Spanned<String>>,
    pub span: crate::yaml::NodeSpan,
}

/// Like [`Spanned`], a tier equals another written elsewhere in the file.
impl PartialEq for Tier {
    fn eq(&self, other: &Self) -> bool {
        self.resolution == other.resolution
            && self.retention == other.retention
            && self.product == other.product
            && self.group_by == other.group_by
    }
}

/// Where the owning team is reached.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contact {
    pub email: Option<String>,
    pub slack: Option<String>,
    pub webhook: Option<String>,
}

/// A validated data product contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    pub product: Spanned<ProductName>,
    pub version: Spanned<semver::Version>,
    pub owner: String,
    pub contact: Contact,
    pub description: Option<String>,
    pub status: Status,
    pub layer: Layer,
    pub tags: Vec<String>,
    pub source: Source,
    pub key: Vec<Spanned<String>>,
    pub sequence_by: Option<Spanned<String>>,
    pub event_time: Option<Spanned<String>>,
    /// A column the producer sets once per event: repeats of an id within the watermark
    /// horizon are duplicates, dropped by models reading the product's changes.
    pub event_id: Option<Spanned<String>>,
    pub watermark: Option<Watermark>,
    pub partition_by: Vec<Partition>,
    pub cluster_by: Vec<Spanned<String>>,
    pub schema: Vec<Column>,
    pub sla: Sla,
    pub access: Vec<AccessGrant>,
    pub quality: Vec<QualityCheck>,
    pub retention: Option<Duration>,
    pub tiers: Vec<Tier>,
}

impl Contract {
    pub fn domain(&self) -> &str {
        self.product.domain()
    }

    pub fn major(&self) -> u64 {
        self.version.major
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.schema.iter().find(|c| c.name.value == name)
    }

    pub fn inputs(&self) -> &[Spanned<InputRef>] {
        match &self.source {
            Source::Model(m) => &m.inputs,
            Source::Stream(_) => &[],
        }
    }

    /// The Arrow schema of the product's table.
    pub fn arrow_schema(&self) -> arrow_schema::Schema {
        arrow_schema::Schema::new(
            self.schema
                .iter()
                .map(|c| arrow_schema::Field::new(c.name.value.as_str(), c.data_type.to_arrow(), !c.required))
                .collect::<Vec<_>>(),
        )
    }

    pub fn pii_columns(&self) -> impl Iterator<Item = &Column> {
        self.schema.iter().filter(|c| c.pii)
    }

    /// Whether the product is fed by Debezium change events (`kind: cdc`, or a Kafka
    /// topic of them): its bronze rows then carry each change's operation and origin.
    pub fn is_cdc(&self) -> bool {
        matches!(&self.source, Source::Stream(s) if s.kind == StreamKind::Cdc || s.format == StreamFormat::Debezium)
    }

    /// The Arrow schema of the rows stored in the product's data table: the contract's
    /// columns, then [`cdc_columns`] for CDC products. Derived partition columns are
    /// added by the table itself.
    pub fn data_schema(&self) -> arrow_schema::Schema {
        let schema = self.arrow_schema();
        if !self.is_cdc() {
            return schema;
        }
        let fields = schema.fields().iter().map(|f| f.as_ref().clone()).chain(cdc_columns());
        arrow_schema::Schema::new(fields.collect::<Vec<_>>())
    }
}

/// Schema of every product's dead-letter table: records rejected on the way in, with
/// where they came from, why, and the raw payload.
pub fn dead_letter_schema() -> arrow_schema::Schema {
    use arrow_schema::{DataType as A, Field, TimeUnit};
    arrow_schema::Schema::new(vec![
        Field::new(
            "received_at",
            A::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("source", A::Utf8, false),
        Field::new("batch_id", A::Utf8, false),
        Field::new("position", A::Int64, false),
        Field::new("reason", A::Utf8, false),
        Field::new("field", A::Utf8, true),
        Field::new("message", A::Utf8, false),
        Field::new("raw", A::Utf8, false),
    ])
}

/// System columns of a CDC product's bronze table, after the contract's columns: the
/// operation (`c`, `u`, `d`, `r`), when the source database made the change, the
/// position in its log (PostgreSQL LSN, MySQL binlog position), and the connector's
/// whole `source` block as compact JSON. Silver applies deletes and orders changes by them.
pub fn cdc_columns() -> Vec<arrow_schema::Field> {
    use arrow_schema::{DataType as A, Field, TimeUnit};
    vec![
        Field::new("_op", A::Utf8, false),
        Field::new(
            "_source_ts",
            A::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("_lsn", A::Int64, true),
        Field::new("_source", A::Utf8, true),
    ]
}
