//! Process settings from `trib.toml`: where tables and the catalog live, which roles
//! exist, how long certification probation lasts. Settings describe the process; the data
//! itself is described by contracts (`trib-spec`).

use crate::diagnostic::{Diagnostic, Location};
use crate::duration::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const SETTINGS_FILE: &str = "trib.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub project: ProjectSettings,
    #[serde(default)]
    pub storage: StorageSettings,
    #[serde(default)]
    pub catalog: CatalogSettings,
    #[serde(default)]
    pub certification: CertificationSettings,
    #[serde(default)]
    pub policies: PolicySettings,
    #[serde(default)]
    pub kafka: KafkaSettings,
    /// Roles that contracts may grant access to.
    #[serde(default, rename = "roles")]
    pub roles: Vec<RoleSettings>,
    #[serde(default)]
    pub access: AccessSettings,
    /// Teams that own products (a contract's `owner`) and where their alerts go.
    #[serde(default, rename = "teams")]
    pub teams: Vec<TeamSettings>,
    #[serde(default)]
    pub alerts: AlertSettings,
    #[serde(default)]
    pub lineage: LineageSettings,
}

/// Where model runs send OpenLineage events (START, COMPLETE, FAIL).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineageSettings {
    /// An OpenLineage HTTP endpoint (e.g. Marquez: `http://host:5000/api/v1/lineage`).
    #[serde(default)]
    pub openlineage_url: Option<String>,
    /// A file the events are appended to, one JSON object per line (relative to the
    /// project).
    #[serde(default)]
    pub openlineage_file: Option<String>,
}

/// An owning team: the contract's `owner` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSettings {
    pub name: String,
    /// Where the team's alerts are POSTed as JSON.
    #[serde(default)]
    pub webhook: Option<String>,
    /// Environment variable holding the key that signs deliveries (HMAC-SHA256 in
    /// `X-Trib-Signature`); the key itself never goes in this file.
    #[serde(default)]
    pub secret_env: Option<String>,
}

/// How alert deliveries are retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// Attempts per delivery, the first included.
    #[serde(default = "default_alert_attempts")]
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each next one.
    #[serde(default = "default_alert_backoff_ms")]
    pub backoff_ms: u64,
    /// Per-attempt time limit.
    #[serde(default = "default_alert_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            max_attempts: default_alert_attempts(),
            backoff_ms: default_alert_backoff_ms(),
            timeout_ms: default_alert_timeout_ms(),
        }
    }
}

fn default_alert_attempts() -> u32 {
    5
}

fn default_alert_backoff_ms() -> u64 {
    500
}

fn default_alert_timeout_ms() -> u64 {
    5_000
}

/// How queries are identified, masked and bounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSettings {
    /// Roles of whoever runs the CLI on this machine. Unset means `admin`: the person
    /// at the project directory can read its files anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_roles: Option<Vec<String>>,
    /// How `pii` columns look to roles without PII clearance: `null`, or `hash` (a keyed
    /// HMAC-SHA256, so masked columns still join; the key comes from `TRIB_MASK_KEY`,
    /// else from `.trib/mask.key`, created on first use).
    #[serde(default)]
    pub pii_mask: PiiMask,
    /// Memory one query may use before it fails, in MiB.
    #[serde(default = "default_query_memory_mb")]
    pub query_memory_mb: u64,
    /// How long one query may run, in seconds.
    #[serde(default = "default_query_timeout_s")]
    pub query_timeout_s: u64,
    /// How many parts a query's scans, joins and aggregations are split into. Unset
    /// means one per core (DataFusion's default; on TPC-H with 2 cores, 4 parts were
    /// about 4% slower).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_partitions: Option<usize>,
    /// DataFusion's own options for every query (`[access.engine]`), by their names:
    /// those under `datafusion.execution.` and `datafusion.optimizer.`, for example
    /// `"datafusion.optimizer.repartition_joins" = false`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub engine: BTreeMap<String, EngineOption>,
}

/// A value of one of DataFusion's options, as TOML writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EngineOption {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl std::fmt::Display for EngineOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineOption::Bool(b) => write!(f, "{b}"),
            EngineOption::Int(n) => write!(f, "{n}"),
            EngineOption::Float(x) => write!(f, "{x}"),
            EngineOption::Text(t) => f.write_str(t),
        }
    }
}

/// The prefixes of the DataFusion options `[access.engine]` may set: how queries are
/// planned and run, not what they may read.
pub const ENGINE_OPTION_PREFIXES: [&str; 2] = ["datafusion.execution.", "datafusion.optimizer."];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PiiMask {
    #[default]
    Null,
    Hash,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            local_roles: None,
            pii_mask: PiiMask::Null,
            query_memory_mb: default_query_memory_mb(),
            query_timeout_s: default_query_timeout_s(),
            query_partitions: None,
            engine: BTreeMap::new(),
        }
    }
}

fn default_query_memory_mb() -> u64 {
    2048
}

impl AccessSettings {
    /// The number of parts a query is split into: `query_partitions`, else the
    /// machine's cores.
    pub fn partitions(&self) -> usize {
        self.query_partitions
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    }
}

fn default_query_timeout_s() -> u64 {
    300
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSettings {
    pub name: String,
    /// Directory holding `products/<domain>/*.yaml`.
    #[serde(default = "default_products_dir")]
    pub products: String,
    /// Directory holding SQL models referenced by `source.transform`.
    #[serde(default = "default_models_dir")]
    pub models: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// A local directory (relative to the project) or an `s3://bucket/prefix` URL.
    #[serde(default = "default_storage_root")]
    pub root: String,
    /// The endpoint of an S3-compatible store (MinIO, SeaweedFS, R2, Ceph), such as
    /// `http://127.0.0.1:8333`. Unset means AWS itself, or `AWS_ENDPOINT_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The bucket's region. Unset means `AWS_REGION`, else `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Whether a plain `http://` endpoint may be used (local and test stores only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_http: bool,
    /// Memory a merge into a table may use, in MiB; past it, operators that can spill
    /// to disk do (under the system's temporary directory). Unset means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_memory_mb: Option<u64>,
    // Credentials are deliberately not settings: they come from the standard AWS
    // variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …), never from a file in git.
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    /// `sqlite://PATH` (default) or `postgres://…`.
    pub url: String,
    /// How long an old major version is still served once a newer major is applied:
    /// its deprecation date, announced to its consumers.
    #[serde(default = "default_deprecation_period")]
    pub deprecation_period: Duration,
}

fn default_deprecation_period() -> Duration {
    Duration::from_secs(90 * 86_400)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificationSettings {
    /// How long every SLO must hold before a product is certified.
    pub probation: Duration,
    /// The rolling window over which error budgets are counted.
    #[serde(default = "default_budget_window")]
    pub budget_window: Duration,
    /// Percent of measurements in which freshness must hold (the contract gives the age).
    #[serde(default = "default_objective")]
    pub freshness_objective: f64,
    /// Percent of error-severity check runs that must pass.
    #[serde(default = "default_objective")]
    pub checks_objective: f64,
    /// How often `trib serve` measures SLOs and steps certification.
    #[serde(default = "default_evaluate_every")]
    pub evaluate_every: Duration,
    /// How often `trib serve` runs the checks over whole products (new rows are
    /// checked as they arrive).
    #[serde(default = "default_scheduled_checks_every")]
    pub scheduled_checks_every: Duration,
    /// A model is certified only while every product it reads is certified.
    #[serde(default)]
    pub require_certified_inputs: bool,
}

fn default_scheduled_checks_every() -> Duration {
    Duration::from_secs(3_600)
}

fn default_budget_window() -> Duration {
    Duration::from_secs(28 * 86_400)
}

fn default_objective() -> f64 {
    99.0
}

fn default_evaluate_every() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    pub dir: String,
}

/// Where products with a Kafka source (`source: { kind: kafka, topic: … }`) are consumed
/// from. Without `brokers`, such products take events over HTTP only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port[,host:port…]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    /// Consumer group shared by every `trib serve` of the project: the brokers spread
    /// a topic's partitions over them. Unset means `trib-<project name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// A batch is committed once it holds this many records ...
    #[serde(default = "default_kafka_batch_records")]
    pub batch_records: usize,
    /// ... or once its first record has waited this long, in milliseconds.
    #[serde(default = "default_kafka_batch_wait_ms")]
    pub batch_wait_ms: u64,
    /// Further librdkafka consumer properties (`security.protocol`, `sasl.mechanisms`,
    /// …), passed as they are. Secrets belong in `TRIB_KAFKA_PROPERTY_*` variables.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub properties: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: None,
            group_id: None,
            batch_records: default_kafka_batch_records(),
            batch_wait_ms: default_kafka_batch_wait_ms(),
            properties: std::collections::BTreeMap::new(),
        }
    }
}

impl KafkaSettings {
    /// The consumer group of a project.
    pub fn group(&self, project: &str) -> String {
        self.group_id.clone().unwrap_or_else(|| format!("trib-{project}"))
    }
}

fn default_kafka_batch_records() -> usize {
    10_000
}

fn default_kafka_batch_wait_ms() -> u64 {
    1_000
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSettings {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Whether members may see columns tagged `pii` unmasked.
    #[serde(default)]
    pub pii: bool,
    /// Highest classification level the role may see (`public`, `internal`,
    /// `confidential`, `restricted`).
    #[serde(default)]
    pub clearance: Option<String>,
    /// Members read every product in full, may act as another role and read the audit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
}

fn default_products_dir() -> String {
    "products".into()
}

fn default_models_dir() -> String {
    "models".into()
}

fn default_storage_root() -> String {
    ".trib/lake".into()
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            root: default_storage_root(),
            endpoint: None,
            region: None,
            allow_http: false,
            merge_memory_mb: None,
        }
    }
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://.trib/catalog.db".into(),
            deprecation_period: default_deprecation_period(),
        }
    }
}

impl Default for CertificationSettings {
    fn default() -> Self {
        Self {
            probation: Duration::from_secs(7 * 86_400),
            budget_window: default_budget_window(),
            freshness_objective: default_objective(),
            checks_objective: default_objective(),
            evaluate_every: default_evaluate_every(),
            scheduled_checks_every: default_scheduled_checks_every(),
            require_certified_inputs: false,
        }
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self { dir: "policies".into() }
    }
}

impl Settings {
    /// Settings of a project named `name` with every default.
    pub fn with_name(name: impl Into<String>) -> Self {
        Self {
            project: ProjectSettings {
                name: name.into(),
                products: default_products_dir(),
                models: default_models_dir(),
            },
            storage: StorageSettings::default(),
            catalog: CatalogSettings::default(),
            certification: CertificationSettings::default(),
            policies: PolicySettings::default(),
            kafka: KafkaSettings::default(),
            roles: Vec::new(),
            access: AccessSettings::default(),
            teams: Vec::new(),
            alerts: AlertSettings::default(),
            lineage: LineageSettings::default(),
        }
    }

    /// Parses settings text; `file` names the source in diagnostics.
    pub fn parse(text: &str, file: &str) -> Result<Self, Box<Diagnostic>> {
        toml::from_str(text).map_err(|e| {
            let location = e.span().map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                Location {
                    file: file.to_string(),
                    line,
                    column,
                    offset: span.start,
                    length: span.end.saturating_sub(span.start),
                }
            });
            Box::new(
                Diagnostic::error("settings::invalid", e.message().to_string())
                    .with_maybe_location(location)
                    .with_help("see the settings reference in README.md; `trib init` writes a complete example"),
            )
        })
    }

    /// Reads `trib.toml` from a project directory.
    pub fn load(project_dir: &Path) -> Result<Self, Box<Diagnostic>> {
        let path = project_dir.join(SETTINGS_FILE);
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Box::new(
                Diagnostic::error("settings::unreadable", format!("cannot read `{file}`: {e}"))
                    .with_help("run `trib init` to create a project, or pass `--project DIR`"),
            )
        })?;
        Self::parse(&text, &file)
    }

    /// Applies `TRIB_*` overrides from the environment (or any list of variables):
    /// `TRIB_PROJECT_NAME`, `TRIB_STORAGE_ROOT`, `TRIB_STORAGE_ENDPOINT`,
    /// `TRIB_STORAGE_REGION`, `TRIB_STORAGE_ALLOW_HTTP`, `TRIB_CATALOG_URL`,
    /// `TRIB_CERTIFICATION_PROBATION`, `TRIB_POLICIES_DIR`, `TRIB_KAFKA_BROKERS`,
    /// `TRIB_KAFKA_GROUP_ID`, `TRIB_KAFKA_PROPERTY_<NAME>`. An empty endpoint or region
    /// unsets it.
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, Box<Diagnostic>> {
        for (key, value) in vars {
            match key.as_str() {
                "TRIB_PROJECT_NAME" => self.project.name = value,
                "TRIB_STORAGE_ROOT" => self.storage.root = value,
                "TRIB_STORAGE_ENDPOINT" => self.storage.endpoint = Some(value).filter(|v| !v.is_empty()),
                "TRIB_STORAGE_REGION" => self.storage.region = Some(value).filter(|v| !v.is_empty()),
                "TRIB_STORAGE_ALLOW_HTTP" => {
                    self.storage.allow_http = parse_bool(&value).ok_or_else(|| {
                        Box::new(
                            Diagnostic::error(
                                "settings::invalid",
                                format!("`TRIB_STORAGE_ALLOW_HTTP`: expected a boolean, found `{value}`"),
                            )
                            .with_help("use `true` or `false`"),
                        )
                    })?;
                }
                "TRIB_CATALOG_URL" => self.catalog.url = value,
                "TRIB_POLICIES_DIR" => self.policies.dir = value,
                "TRIB_KAFKA_BROKERS" => self.kafka.brokers = Some(value).filter(|v| !v.is_empty()),
                "TRIB_KAFKA_GROUP_ID" => self.kafka.group_id = Some(value).filter(|v| !v.is_empty()),
                _ if key.starts_with("TRIB_KAFKA_PROPERTY_") => {
                    // `TRIB_KAFKA_PROPERTY_SASL_PASSWORD` sets `sasl.password`.
                    let name = key["TRIB_KAFKA_PROPERTY_".len()..]
                        .to_ascii_lowercase()
                        .replace('_', ".");
                    self.kafka.properties.insert(name, value);
                }
                "TRIB_CERTIFICATION_PROBATION" => {
                    self.certification.probation = Duration::parse(&value).map_err(|e| {
                        Box::new(
                            Diagnostic::error("settings::invalid", format!("`TRIB_CERTIFICATION_PROBATION`: {e}"))
                                .with_help(crate::duration::DurationError::HINT),
                        )
                    })?;
                }
                _ => {}
            }
        }
        Ok(self)
    }

    pub fn role(&self, name: &str) -> Option<&RoleSettings> {
        self.roles.iter().find(|r| r.name == name)
    }
}

/// Booleans as environment variables spell them.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in() {
        let s = Settings::parse("[project]\nname = \"x\"\n", "trib.toml").expect("parse");
        assert_eq!(s, Settings::with_name("x"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let s = Settings::with_name("x")
            .with_env([
                ("TRIB_STORAGE_ROOT".to_string(), "s3://bucket/lake".to_string()),
                ("TRIB_CERTIFICATION_PROBATION".to_string(), "3d".to_string()),
                ("HOME".to_string(), "/root".to_string()),
            ])
            .expect("valid");
        assert_eq!(s.storage.root, "s3://bucket/lake");
        assert_eq!(s.certification.probation.as_secs(), 3 * 86_400);
        let bad = Settings::with_name("x").with_env([("TRIB_CERTIFICATION_PROBATION".to_string(), "soon".to_string())]);
        assert!(bad.is_err());
    }

    #[test]
    fn s3_storage_from_the_file_and_the_environment() {
        let text = "[project]\nname = \"x\"\n[storage]\nroot = \"s3://lake/prod\"\nendpoint = \"http://127.0.0.1:8333\"\nallow_http = true\n";
        let s = Settings::parse(text, "trib.toml").expect("parse");
        assert_eq!(s.storage.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(s.storage.region, None);
        assert!(s.storage.allow_http);
        let s = s
            .with_env([
                ("TRIB_STORAGE_REGION".to_string(), "eu-west-1".to_string()),
                ("TRIB_STORAGE_ENDPOINT".to_string(), String::new()),
                ("TRIB_STORAGE_ALLOW_HTTP".to_string(), "false".to_string()),
            ])
            .expect("valid");
        assert_eq!(s.storage.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.storage.endpoint, None);
        assert!(!s.storage.allow_http);
        let bad = Settings::with_name("x").with_env([("TRIB_STORAGE_ALLOW_HTTP".to_string(), "maybe".to_string())]);
        assert!(bad.expect_err("must fail").message.contains("TRIB_STORAGE_ALLOW_HTTP"));
        // Credentials never belong in the file.
        let creds = "[project]\nname = \"x\"\n[storage]\nroot = \"s3://b\"\naccess_key_id = \"k\"\n";
        assert!(Settings::parse(creds, "trib.toml").is_err());
    }

    #[test]
    fn unknown_field_has_location() {
        let err = Settings::parse("[project]\nname = \"x\"\nnmae = 1\n", "trib.toml").expect_err("must fail");
        let loc = err.location.expect("location");
        assert_eq!(loc.line, 3);
        assert!(err.message.contains("nmae"), "{}", err.message);
    }
}
