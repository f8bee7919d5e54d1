//! The single point every query passes: parse, refuse what is not a read, resolve
//! products, build the caller's secured views, plan, run within limits, audit.

use crate::audit::{AUDIT_TABLE, AuditEntry, Auditor};

/// The platform's own tables besides the audit, kept by trib-quality: readable by
/// admins as `_trib.<name>`.
pub const SYSTEM_TABLES: [&str; 5] = [
    "quality_results",
    "slo_measurements",
    "certifications",
    "incidents",
    "alert_deliveries",
];
use crate::dialect::QueryDialect;
use crate::grants::{ColumnAccess, Grants, ProductView};
use crate::point::PointIndex;
use crate::principal::Principal;
use crate::relations::{AsOf, Relation};
use crate::{Error, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemorySchemaProvider, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, ScalarUDF, cast, lit};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use deltalake::DeltaTable;
use deltalake::logstore::LogStore as _;
use deltalake::{ObjectStoreError, Path};
use object_store::ObjectStoreExt as _;
use sqlparser::parser::Parser;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trib_core::settings::{PiiMask, Settings};
use trib_lake::Lake;
use trib_spec::{Contract, Layer, Project, Status};

pub(crate) const METRIC_QUERIES: &str = "trib_queries_total";
const METRIC_QUERY_SECONDS: &str = "trib_query_seconds";
const METRIC_POINT_SECONDS: &str = "trib_point_read_seconds";
/// From the query text to the physical plan: parsing, access, planning, optimising.
const METRIC_PLAN_SECONDS: &str = "trib_query_planning_seconds";

/// Point-read indexes by product version; `None` marks a table too large to hold.
type PointIndexes = HashMap<(String, u64), Option<Arc<PointIndex>>>;

/// The scan of each product version's newest snapshot, with the table version it read.
type NewestScans = HashMap<(String, u64), (Option<u64>, Arc<dyn TableProvider>)>;

/// The door a query came through, recorded in the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryPath {
    Cli,
    Http,
    Postgres,
}

impl QueryPath {
    fn as_str(self) -> &'static str {
        match self {
            QueryPath::Cli => "cli",
            QueryPath::Http => "http",
            QueryPath::Postgres => "postgres",
        }
    }
}

/// The answer to a query.
/// A product version's state in the catalog, when it differs from what its contract
/// says: deprecated (with its deprecation date) or retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub status: String,
    pub sunset: Option<String>,
    pub superseded_by: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// Product versions read, as `domain.name@vN`.
    pub products: Vec<String>,
    pub rows: u64,
    /// Things the caller should know: a deprecated product, a masked column.
    pub warnings: Vec<String>,
}

/// Reads products for principals.
pub struct Gateway {
    lake: Lake,
    settings: Settings,
    contracts: BTreeMap<(String, u64), Contract>,
    grants: Grants,
    mask: Option<ScalarUDF>,
    mask_key: Option<Arc<[u8]>>,
    auditor: Arc<Auditor>,
    /// Point-read indexes, by product version; `None` for tables too large to hold.
    points: tokio::sync::Mutex<PointIndexes>,
    /// Open tables, brought up to date before each query.
    tables: tokio::sync::Mutex<HashMap<(String, u64), DeltaTable>>,
    /// The scan of each product version's newest snapshot, by the version it read: a
    /// query after no commit reuses it instead of reading the file list again.
    providers: std::sync::Mutex<NewestScans>,
    /// What every query's runtime shares: Parquet footers read once (data files never
    /// change), the object stores. Each query gets its own memory pool on top.
    runtime: Arc<RuntimeEnv>,
    /// DataFusion's options for every query, made once from the settings.
    engine: SessionConfig,
    /// Where certification is read, to warn readers of products that lost or lack it.
    certification: Option<Arc<dyn trib_core::CertificationStatus>>,
    /// Approved consumers of each product version, from the catalog: each reads it.
    consumers: std::sync::RwLock<HashMap<(String, u64), std::collections::BTreeSet<String>>>,
    lifecycle: std::sync::RwLock<HashMap<(String, u64), Lifecycle>>,
}

impl Gateway {
    pub fn new(lake: Lake, project: &Project) -> Result<Self> {
        let mask_key = match project.settings.access.pii_mask {
            PiiMask::Null => None,
            PiiMask::Hash => Some(crate::mask::load_key(&project.dir)?),
        };
        let mask = mask_key.clone().map(crate::mask::hash_udf);
        // Refused at start, not at the first query.
        let engine = engine_config(&project.settings)?;
        let contracts = project
            .contracts()
            .map(|c| ((c.product.value.to_string(), c.major()), c.clone()))
            .collect();
        Ok(Self {
            auditor: Arc::new(Auditor::new(lake.clone())),
            lake,
            settings: project.settings.clone(),
            contracts,
            grants: Grants::new(&project.settings),
            mask,
            mask_key,
            points: tokio::sync::Mutex::new(HashMap::new()),
            tables: tokio::sync::Mutex::new(HashMap::new()),
            providers: std::sync::Mutex::new(HashMap::new()),
            runtime: RuntimeEnvBuilder::new()
                .build_arc()
                .map_err(|e| Error::Internal(format!("query runtime: {e}")))?,
            engine,
            certification: None,
            consumers: std::sync::RwLock::new(HashMap::new()),
            lifecycle: std::sync::RwLock::new(HashMap::new()),
        })
    }

    /// The approved consumers of product versions, `(product, major, consumer)`, as the
    /// catalog holds them; replaces the earlier set.
    pub fn set_consumers(&self, approved: impl IntoIterator<Item = (String, u64, String)>) {
        let mut map: HashMap<(String, u64), std::collections::BTreeSet<String>> = HashMap::new();
        for (product, major, consumer) in approved {
            map.entry((product, major)).or_default().insert(consumer);
        }
        *self
            .consumers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = map;
    }

    /// Product versions the catalog deprecated or retired after their contracts were
    /// written (a newer major superseded them); replaces the earlier set.
    pub fn set_lifecycle(&self, versions: impl IntoIterator<Item = ((String, u64), Lifecycle)>) {
        *self
            .lifecycle
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = versions.into_iter().collect();
    }

    /// A product version's deprecation or retirement, as the catalog last said.
    pub fn lifecycle(&self, product: &str, major: u64) -> Option<Lifecycle> {
        self.lifecycle
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(product.to_string(), major))
            .cloned()
    }

    fn consumers_of(&self, contract: &Contract) -> std::collections::BTreeSet<String> {
        self.consumers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(contract.product.value.to_string(), contract.major()))
            .cloned()
            .unwrap_or_default()
    }

    /// Queries of products that were evaluated and are not certified carry a warning.
    pub fn with_certification(mut self, status: Arc<dyn trib_core::CertificationStatus>) -> Self {
        self.certification = Some(status);
        self
    }

    /// A product version's certification state, when it has been evaluated.
    pub fn certification(&self, product: &str, major: u64) -> Option<String> {
        self.certification.as_ref().and_then(|c| c.state(product, major))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn auditor(&self) -> &Arc<Auditor> {
        &self.auditor
    }

    /// Every product version served, newest major last within a product.
    pub fn contracts(&self) -> impl Iterator<Item = &Contract> {
        self.contracts.values()
    }

    pub fn contract(&self, product: &str, major: Option<u64>) -> Option<&Contract> {
        match major {
            Some(m) => self.contracts.get(&(product.to_string(), m)),
            None => self
                .contracts
                .range((product.to_string(), 0)..=(product.to_string(), u64::MAX))
                .next_back()
                .map(|(_, c)| c),
        }
    }

    /// What `principal` sees of a product version, or why it sees nothing.
    pub fn view(&self, principal: &Principal, contract: &Contract, columns: &[String]) -> Result<ProductView> {
        self.grants
            .view_with_consumers(principal, contract, columns, &self.consumers_of(contract))
            .ok_or_else(|| Error::Forbidden {
                principal: principal.name.clone(),
                product: contract.product.value.to_string(),
                owner: contract.owner.clone(),
            })
    }

    /// Whether `principal` may send events to the product.
    pub fn may_write(&self, principal: &Principal, contract: &Contract) -> bool {
        self.grants.may_write(principal, contract)
    }

    /// The row of a silver or gold product version whose key is `key` (one value per
    /// key column, as text), from the in-memory index, as `principal` may see it, and
    /// audited. `None` when the product is not read this way (no key, bronze, too
    /// large): then SQL reads it.
    pub async fn point(
        &self,
        principal: &Principal,
        product: &str,
        major: u64,
        key: &[String],
        path: QueryPath,
    ) -> Result<Option<QueryResult>> {
        let contract = self.contract(product, Some(major)).ok_or_else(|| {
            self.unknown(&Relation {
                product: product.to_string(),
                major: Some(major),
                as_of: None,
                reference: TableReference::bare(product),
                catalog: false,
            })
        })?;
        if contract.key.is_empty() || contract.layer == Layer::Bronze || key.len() != contract.key.len() {
            return Ok(None);
        }
        let started = Instant::now();
        let label = format!("{product}@v{major}");
        let answer: Result<Option<QueryResult>> = async {
            // Refuse before building anything.
            self.view(principal, contract, &[])?;
            let Some(index) = self.point_index(product, major).await? else {
                return Ok(None);
            };
            let columns: Vec<String> = index.schema().fields().iter().map(|f| f.name().clone()).collect();
            let view = self.view(principal, contract, &columns)?;
            let row = index.get(key, &view, self.mask_key.as_deref())?;
            let mut warnings = Vec::new();
            if view.columns.iter().any(|(_, a)| matches!(a, ColumnAccess::Masked(_))) {
                warnings.push(format!("PII columns of `{label}` are masked for `{}`", principal.name));
            }
            Ok(Some(QueryResult {
                schema: row.schema(),
                rows: row.num_rows() as u64,
                batches: vec![row],
                products: vec![label.clone()],
                warnings,
            }))
        }
        .await;
        if matches!(answer, Ok(None)) {
            return Ok(None);
        }
        let keys: Vec<String> = contract.key.iter().map(|k| k.value.clone()).collect();
        let elapsed = started.elapsed();
        let mut entry = AuditEntry {
            at: chrono::Utc::now(),
            principal: principal.name.clone(),
            roles: principal.roles.iter().cloned().collect(),
            path: path.as_str().to_string(),
            query: format!(
                "point read of `{label}` where ({}) = ({})",
                keys.join(", "),
                key.join(", ")
            ),
            products: vec![label],
            columns: Vec::new(),
            rows: 0,
            outcome: "ok".into(),
            message: None,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
        };
        match &answer {
            Ok(Some(r)) => {
                entry.rows = r.rows;
                entry.columns = r
                    .schema
                    .fields()
                    .iter()
                    .map(|f| format!("{}.{}", entry.products[0], f.name()))
                    .collect();
            }
            Ok(None) => {}
            Err(e) => {
                entry.outcome = if e.is_denied() { "denied" } else { "error" }.into();
                entry.message = Some(e.to_string());
            }
        }
        metrics::histogram!(METRIC_POINT_SECONDS).record(elapsed.as_secs_f64());
        self.auditor.record(entry);
        answer
    }

    /// The index of a product version, built on first use.
    async fn point_index(&self, product: &str, major: u64) -> Result<Option<Arc<PointIndex>>> {
        let key = (product.to_string(), major);
        if let Some(found) = self.points.lock().await.get(&key) {
            return Ok(found.clone());
        }
        let built = self.build_point_index(product, major).await?;
        self.points.lock().await.insert(key, built.clone());
        Ok(built)
    }

    async fn build_point_index(&self, product: &str, major: u64) -> Result<Option<Arc<PointIndex>>> {
        let Some(contract) = self.contract(product, Some(major)) else {
            return Ok(None);
        };
        let table = self.table(product, major).await?;
        let version = table.version().unwrap_or(0);
        let rows: u64 = table
            .snapshot()
            .map(|s| s.log_data().iter().map(|f| f.num_records().unwrap_or(0) as u64).sum())
            .unwrap_or(0);
        if rows > crate::point::MAX_ROWS as u64 {
            tracing::info!(
                product,
                major,
                rows,
                "too large to hold for point reads; they go through SQL"
            );
            return Ok(None);
        }
        let label = format!("{product}@v{major}");
        let batches = trib_lake::query_table(&table, &label, "SELECT * FROM t").await?;
        let schema = batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| Arc::new(datafusion::arrow::datatypes::Schema::empty()));
        let batch = datafusion::arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| Error::Internal(format!("point index of `{label}`: {e}")))?;
        let key: Vec<String> = contract.key.iter().map(|k| k.value.clone()).collect();
        let started = Instant::now();
        let index = PointIndex::build(version, batch, &key)?;
        tracing::debug!(
            product,
            major,
            version,
            rows = index.rows(),
            ms = started.elapsed().as_millis() as u64,
            "point index built"
        );
        Ok(Some(Arc::new(index)))
    }

    /// Rebuilds the point indexes whose tables have a new version; returns how many.
    pub async fn refresh_points(&self) -> Result<usize> {
        let held: Vec<((String, u64), u64)> = self
            .points
            .lock()
            .await
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|i| (k.clone(), i.version)))
            .collect();
        let mut refreshed = 0;
        for ((product, major), version) in held {
            let table = self.table(&product, major).await?;
            if table.version().unwrap_or(0) == version {
                continue;
            }
            let built = self.build_point_index(&product, major).await?;
            self.points.lock().await.insert((product, major), built);
            refreshed += 1;
        }
        Ok(refreshed)
    }

    /// Runs one read-only query as `principal` and audits it, answered or not.
    pub async fn query(&self, principal: &Principal, sql: &str, path: QueryPath) -> Result<QueryResult> {
        let started = Instant::now();
        let mut entry = AuditEntry {
            at: chrono::Utc::now(),
            principal: principal.name.clone(),
            roles: principal.roles.iter().cloned().collect(),
            path: path.as_str().to_string(),
            query: sql.to_string(),
            products: Vec::new(),
            columns: Vec::new(),
            rows: 0,
            outcome: "ok".into(),
            message: None,
            duration_ms: 0.0,
        };
        let result = self.run(principal, sql, &mut entry).await;
        let elapsed = started.elapsed();
        entry.duration_ms = elapsed.as_secs_f64() * 1000.0;
        match &result {
            Ok(r) => entry.rows = r.rows,
            Err(e) => {
                entry.outcome = if e.is_denied() { "denied" } else { "error" }.into();
                entry.message = Some(e.to_string());
            }
        }
        metrics::histogram!(METRIC_QUERY_SECONDS, "path" => path.as_str()).record(elapsed.as_secs_f64());
        self.auditor.record(entry);
        result
    }

    async fn run(&self, principal: &Principal, sql: &str, entry: &mut AuditEntry) -> Result<QueryResult> {
        let started = Instant::now();
        let mut statements = Parser::new(&QueryDialect)
            .with_recursion_limit(64)
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_statements())
            .map_err(|e| Error::Syntax {
                message: e.to_string().trim_start_matches("sql parser error: ").to_string(),
                hint: "products are named `domain.name`; quote names with `\"`; strings with `'`",
            })?;
        if statements.len() != 1 {
            return Err(Error::NotReadOnly {
                statement: format!("{} statements", statements.len()),
                hint: "send one query at a time",
            });
        }
        let mut statement = statements.remove(0);
        if crate::relations::explained(&statement).is_some() && !principal.explains {
            return Err(Error::NotPermitted {
                principal: principal.name.clone(),
                action: "explain a query".into(),
                hint: "a plan shows the row filters and masks of the views under it, so EXPLAIN is for admins (also acting as a role: `--as ROLE`)",
            });
        }
        let catalog = crate::catalog::mentions(&statement);
        if catalog {
            crate::catalog::rewrite(&mut statement);
        }
        let relations = crate::relations::resolve(&mut statement)?;
        let ctes = crate::shared::ctes(&statement);
        let parsed = started.elapsed();

        let mut warnings = Vec::new();
        let ctx = if relations.iter().any(|r| r.catalog) {
            if relations.iter().any(|r| !r.catalog) {
                return Err(Error::Refused {
                    what: "reading the system catalogs and products in one query".into(),
                    hint: "query the catalog (what is there) and the products (the data) separately".into(),
                });
            }
            self.catalog_session(principal)?
        } else {
            let ctx = self.session(false)?;
            for r in &relations {
                let (label, provider) = self.secured(&ctx, principal, r, &mut warnings).await?;
                entry.products.push(label);
                register(&ctx, &r.reference, provider)?;
            }
            ctx
        };

        let secured = started.elapsed();
        let state = ctx.state();
        let plan = state
            .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(statement)))
            .await
            .map_err(plan_error)?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| Error::NotReadOnly {
                statement: e.to_string(),
                hint: "query products with SELECT",
            })?;
        // A CTE named twice is computed once (`shared.rs`).
        let (plan, shared) = crate::shared::share(plan, &ctes, &state).map_err(plan_error)?;
        // Optimised once: the audit's columns and the physical plan come from the same plan.
        let logical = started.elapsed();
        let optimized = state.optimize(&plan).map_err(plan_error)?;
        let optimised = started.elapsed();
        scanned_columns(&optimized, &mut entry.columns);
        let schema: SchemaRef = Arc::new(optimized.schema().as_arrow().clone());
        let seconds = self.settings.access.query_timeout_s;
        let mut planned = optimised;
        let run = async {
            let physical = state.query_planner().create_physical_plan(&optimized, &state).await?;
            planned = started.elapsed();
            datafusion::physical_plan::collect(physical, ctx.task_ctx()).await
        };
        let ran = tokio::time::timeout(Duration::from_secs(seconds), run).await;
        // A shared CTE's columns are those its plan reads (`scanned_columns` leaves out
        // the CTE's own scans), listed whether or not it ran.
        for s in &shared {
            scanned_columns(s.read(), &mut entry.columns);
        }
        let batches = match ran {
            Err(_) => return Err(Error::Timeout { seconds }),
            Ok(Err(e)) => return Err(self.execution_error(principal, e)),
            Ok(Ok(b)) => b,
        };
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let done = started.elapsed();
        metrics::histogram!(METRIC_PLAN_SECONDS).record(planned.as_secs_f64());
        let us = |d: Duration| d.as_micros() as u64;
        tracing::debug!(
            parse_us = us(parsed),
            secure_us = us(secured - parsed),
            plan_us = us(logical - secured),
            optimise_us = us(optimised - logical),
            physical_us = us(planned - optimised),
            execute_us = us(done - planned),
            rows,
            "query phases"
        );
        Ok(QueryResult {
            schema,
            batches,
            products: entry.products.clone(),
            rows,
            warnings,
        })
    }

    /// The catalog as `principal` sees it: products it may read, as empty tables with
    /// the columns it sees, in `information_schema` and `pg_catalog`.
    fn catalog_session(&self, principal: &Principal) -> Result<SessionContext> {
        let ctx = self.session(true)?;
        let mut entries = Vec::new();
        for c in self.contracts.values() {
            let fields = c.data_schema();
            let names: Vec<String> = fields.fields().iter().map(|f| f.name().clone()).collect();
            let Some(view) = self
                .grants
                .view_with_consumers(principal, c, &names, &self.consumers_of(c))
            else {
                continue;
            };
            let product = c.product.value.to_string();
            let newest = self.contract(&product, None).map(Contract::major) == Some(c.major());
            let table = if newest {
                c.product.value.name().to_string()
            } else {
                format!("{}@v{}", c.product.value.name(), c.major())
            };
            entries.push(crate::catalog::Entry::new(
                c.product.value.domain().to_string(),
                table,
                c.owner.clone(),
                &fields,
                &view.columns,
                self.mask.is_some(),
            ));
        }
        crate::catalog::register(&ctx, &entries)?;
        Ok(ctx)
    }

    /// A session that knows nothing but what is registered into it: no files, no
    /// `information_schema` (unless it is the catalog's), its own memory pool.
    fn session(&self, information_schema: bool) -> Result<SessionContext> {
        let limit =
            usize::try_from(self.settings.access.query_memory_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        let runtime = RuntimeEnvBuilder::from_runtime_env(&self.runtime)
            .with_memory_limit(limit, 1.0)
            .build_arc()
            .map_err(|e| Error::Internal(format!("query runtime: {e}")))?;
        let config = self.engine.clone().with_information_schema(information_schema);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        let ctx = SessionContext::new_with_state(state);
        trib_engine::functions::register(&ctx);
        Ok(ctx)
    }

    /// The product version a relation names, as the principal may see it.
    async fn secured(
        &self,
        ctx: &SessionContext,
        principal: &Principal,
        r: &Relation,
        warnings: &mut Vec<String>,
    ) -> Result<(String, Arc<dyn TableProvider>)> {
        if r.product == format!("_trib.{AUDIT_TABLE}") {
            return self.audit_table(ctx, principal).await;
        }
        if let Some(name) = r.product.strip_prefix("_trib.")
            && SYSTEM_TABLES.contains(&name)
        {
            return self.system_table(ctx, principal, name).await;
        }
        let contract = self.contract(&r.product, r.major).ok_or_else(|| self.unknown(r))?;
        let major = contract.major();
        let mut label = format!("{}@v{major}", r.product);
        // Refuse before touching the table: a stranger learns nothing about its history.
        self.view(principal, contract, &[])?;
        let lifecycle = self.lifecycle(&r.product, major);
        let newest = self.contract(&r.product, None).map_or(major, Contract::major);
        let successor = lifecycle
            .as_ref()
            .and_then(|l| l.superseded_by)
            .unwrap_or(newest)
            .max(newest);
        let move_to = if successor > major {
            format!("read `{}@v{successor}`", r.product)
        } else {
            "ask its owners what replaces it".to_string()
        };
        if contract.status == Status::Retired || lifecycle.as_ref().is_some_and(|l| l.status == "retired") {
            return Err(Error::Retired {
                product: r.product.clone(),
                major,
                since: lifecycle
                    .as_ref()
                    .and_then(|l| l.sunset.as_ref())
                    .map(|d| format!(" (its deprecation date was {d})"))
                    .unwrap_or_default(),
                hint: move_to,
            });
        }
        let deprecated = lifecycle.as_ref().filter(|l| l.status == "deprecated");
        if contract.status == Status::Deprecated || deprecated.is_some() {
            let until = deprecated
                .and_then(|l| l.sunset.as_ref())
                .map(|d| format!(" and served until {d}"))
                .unwrap_or_default();
            warnings.push(format!(
                "`{label}` is deprecated{until}; {move_to} before it is retired"
            ));
        }
        if let Some(state) = self.certification(&r.product, major).filter(|s| s != "certified") {
            warnings.push(format!(
                "`{label}` is not certified ({state}): it does not meet its SLOs yet or any more; `trib slo {}` says why",
                r.product
            ));
        }
        let mut table = self.table(&r.product, major).await?;
        if let Some(at) = r.as_of {
            label.push_str(&format!("@{at}"));
            let travelled = match at {
                AsOf::Version(v) => table.load_version(v).await,
                AsOf::Timestamp(t) => table.load_with_datetime(t).await,
            };
            let hint = "`trib show PRODUCT` lists the table's versions; a time before the first commit has no data";
            travelled.map_err(|e| Error::TimeTravel {
                product: r.product.clone(),
                at: at.to_string(),
                message: e.to_string(),
                hint,
            })?;
            // delta-rs answers a time before the first commit with the first version;
            // that is data the table did not hold yet.
            if let AsOf::Timestamp(t) = at
                && let Ok(snapshot) = table.snapshot()
                && let Some(committed) = snapshot.version_timestamp(snapshot.version())
                && committed > t.timestamp_millis()
            {
                return Err(Error::TimeTravel {
                    product: r.product.clone(),
                    at: at.to_string(),
                    message: "the table's first commit is later".into(),
                    hint,
                });
            }
        }
        let columns: Vec<String> = table
            .snapshot()
            .map_err(|e| Error::Internal(format!("snapshot of `{label}`: {e}")))?
            .schema()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        let view = self.view(principal, contract, &columns)?;
        if view.columns.iter().any(|(_, a)| matches!(a, ColumnAccess::Masked(_))) {
            warnings.push(format!("PII columns of `{label}` are masked for `{}`", principal.name));
        }
        let provider = match r.as_of {
            Some(_) => scan(ctx, &table, &label).await?,
            None => {
                self.newest_scan(ctx, (r.product.clone(), major), &table, &label)
                    .await?
            }
        };
        let plan = self.secure_plan(ctx, &label, provider, &view)?;
        Ok((label, Arc::new(ViewTable::new(plan, None))))
    }

    /// The Delta scan under the view's row filter and column masks: the rewrite every
    /// query path shares.
    fn secure_plan(
        &self,
        ctx: &SessionContext,
        label: &str,
        provider: Arc<dyn TableProvider>,
        view: &ProductView,
    ) -> Result<LogicalPlan> {
        let scan = TableReference::bare(label);
        let mut builder =
            LogicalPlanBuilder::scan(scan.clone(), provider_as_source(provider), None).map_err(internal(label))?;
        if let Some(filter) = &view.row_filter {
            let predicate = ctx.parse_sql_expr(filter, builder.schema()).map_err(internal(label))?;
            builder = builder.filter(predicate).map_err(internal(label))?;
        }
        if !view.is_full() {
            let schema = builder.schema().clone();
            let mut exprs: Vec<Expr> = Vec::new();
            for (name, access) in &view.columns {
                let column = Expr::Column(datafusion::common::Column::new(Some(scan.clone()), name));
                match access {
                    ColumnAccess::Clear => exprs.push(column),
                    ColumnAccess::Hidden => {}
                    ColumnAccess::Masked(PiiMask::Hash) if self.mask.is_some() => {
                        if let Some(udf) = &self.mask {
                            exprs.push(udf.call(vec![column]).alias(name));
                        }
                    }
                    ColumnAccess::Masked(_) => {
                        let field = schema
                            .field_with_unqualified_name(name)
                            .map_err(|e| Error::Internal(format!("column `{name}` of `{label}`: {e}")))?;
                        exprs.push(cast(lit(ScalarValue::Null), field.data_type().clone()).alias(name));
                    }
                }
            }
            builder = builder.project(exprs).map_err(internal(label))?;
        }
        builder.build().map_err(internal(label))
    }

    async fn audit_table(
        &self,
        ctx: &SessionContext,
        principal: &Principal,
    ) -> Result<(String, Arc<dyn TableProvider>)> {
        if !principal.admin {
            return Err(Error::NotPermitted {
                principal: principal.name.clone(),
                action: "read the audit".into(),
                hint: "the audit is for admins (role `admin`, or a role with `admin = true` in trib.toml)",
            });
        }
        // Entries of this very session are committed first, so the audit is current.
        self.auditor.flush().await?;
        let url = self.lake.system_url(AUDIT_TABLE);
        let table = match trib_lake::ProductTable::open_url(&self.lake, url, "_trib.audit").await {
            Ok(t) => t,
            Err(_) => trib_lake::ProductTable::open_or_create_system(&self.lake, AUDIT_TABLE, crate::audit_schema())
                .await?
                .delta()
                .clone(),
        };
        Ok(("_trib.audit".into(), scan(ctx, &table, "_trib.audit").await?))
    }

    /// One of the platform's own tables (quality results, SLO measurements,
    /// certifications, incidents, alert deliveries), read like a product by admins.
    async fn system_table(
        &self,
        ctx: &SessionContext,
        principal: &Principal,
        name: &str,
    ) -> Result<(String, Arc<dyn TableProvider>)> {
        let label = format!("_trib.{name}");
        if !principal.admin {
            return Err(Error::NotPermitted {
                principal: principal.name.clone(),
                action: format!("read `{label}`"),
                hint: "the platform's own tables are for admins (role `admin`, or a role with `admin = true` in trib.toml)",
            });
        }
        let table = trib_lake::ProductTable::open_url(&self.lake, self.lake.system_url(name), &label)
            .await
            .map_err(|_| Error::NoSystemTable { table: label.clone() })?;
        Ok((label.clone(), scan(ctx, &table, &label).await?))
    }

    /// The scan of `table`, the newest snapshot of product version `key`: the one made
    /// for the same table version before, if any.
    async fn newest_scan(
        &self,
        ctx: &SessionContext,
        key: (String, u64),
        table: &DeltaTable,
        label: &str,
    ) -> Result<Arc<dyn TableProvider>> {
        let version = table.version();
        let cached = self
            .providers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .filter(|(v, _)| *v == version)
            .map(|(_, p)| Arc::clone(p));
        if let Some(provider) = cached {
            // The provider registers its store with each session it scans for; delta-rs's
            // needs it registered here.
            table
                .update_datafusion_session(&ctx.state())
                .map_err(|e| Error::Internal(format!("registering `{label}`: {e}")))?;
            return Ok(trib_lake::for_one_query(&provider));
        }
        let provider = scan(ctx, table, label).await?;
        self.providers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, (version, Arc::clone(&provider)));
        Ok(trib_lake::for_one_query(&provider))
    }

    /// The product's table at its newest version, opened once and then brought up to date.
    async fn table(&self, product: &str, major: u64) -> Result<DeltaTable> {
        let mut tables = self.tables.lock().await;
        let key = (product.to_string(), major);
        if let Some(t) = tables.get_mut(&key) {
            // Asking for the next commit's file is one request; listing the log to learn
            // that nothing changed is a listing of every commit kept.
            let next = Path::from(format!("_delta_log/{:020}.json", t.version().map_or(0, |v| v + 1)));
            if !matches!(
                t.log_store().object_store(None).head(&next).await,
                Err(ObjectStoreError::NotFound { .. })
            ) {
                t.update_incremental(None)
                    .await
                    .map_err(|e| Error::Internal(format!("refreshing `{product}@v{major}`: {e}")))?;
            }
            return Ok(t.clone());
        }
        let name: trib_spec::ProductName = product
            .parse()
            .map_err(|_| Error::Internal(format!("`{product}` has a contract but no valid name")))?;
        let url = self.lake.product_url(&name, major);
        let table = trib_lake::ProductTable::open_url(&self.lake, url, product)
            .await
            .map_err(|_| Error::NoData {
                product: format!("{product}@v{major}"),
            })?;
        tables.insert(key, table.clone());
        Ok(table)
    }

    fn unknown(&self, r: &Relation) -> Error {
        let name = match r.major {
            Some(m) => format!("{}@v{m}", r.product),
            None => r.product.clone(),
        };
        let majors: Vec<String> = self
            .contracts
            .keys()
            .filter(|(p, _)| *p == r.product)
            .map(|(p, m)| format!("`{p}@v{m}`"))
            .collect();
        let hint = if !majors.is_empty() {
            format!("the versions served are {}", majors.join(", "))
        } else {
            let names: Vec<&str> = self.contracts.keys().map(|(p, _)| p.as_str()).collect();
            match trib_core::diagnostic::did_you_mean(&r.product, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "`trib show` lists the products".into(),
            }
        };
        Error::UnknownProduct { name, hint }
    }

    fn execution_error(&self, principal: &Principal, e: DataFusionError) -> Error {
        if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) {
            return Error::MemoryLimit {
                limit_mb: self.settings.access.query_memory_mb,
            };
        }
        if principal.admin {
            return Error::Plan { message: e.to_string() };
        }
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        tracing::warn!(error_id = %id, principal = %principal.name, error = %e, "query failed while running");
        Error::Execution { id }
    }
}

fn internal(label: &str) -> impl Fn(DataFusionError) -> Error + '_ {
    move |e| Error::Internal(format!("secured view of `{label}`: {e}"))
}

/// Planning errors are about the query the caller wrote, over the views it may see.
fn plan_error(e: DataFusionError) -> Error {
    Error::Plan { message: e.to_string() }
}

/// The scan of `table` for `ctx`: DataFusion's Parquet scan of the snapshot's files
/// when the table allows it, else delta-rs's, its pushed filters re-applied above it.
async fn scan(ctx: &SessionContext, table: &DeltaTable, label: &str) -> Result<Arc<dyn TableProvider>> {
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| Error::Internal(format!("registering `{label}`: {e}")))?;
    trib_lake::snapshot_provider(table)
        .await
        .map_err(|e| Error::Internal(format!("reading `{label}`: {e}")))
}

/// Registers a view under the name the query uses: `domain.name` in a schema per
/// domain, anything else (majors, points in time) as one quoted name.
fn register(ctx: &SessionContext, reference: &TableReference, provider: Arc<dyn TableProvider>) -> Result<()> {
    if let TableReference::Partial { schema, .. } = reference {
        let catalog = ctx
            .catalog("datafusion")
            .ok_or_else(|| Error::Internal("the default catalog is missing".into()))?;
        if catalog.schema(schema).is_none() {
            catalog
                .register_schema(schema, Arc::new(MemorySchemaProvider::new()))
                .map_err(|e| Error::Internal(format!("schema `{schema}`: {e}")))?;
        }
    }
    ctx.register_table(reference.clone(), provider)
        .map_err(|e| Error::Internal(format!("registering `{reference}`: {e}")))?;
    Ok(())
}

/// Adds to `out` `label.column` for every column `plan` reads from storage, once each.
fn scanned_columns(plan: &LogicalPlan, out: &mut Vec<String>) {
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && !datafusion::datasource::source_as_provider(&scan.source)
                .is_ok_and(|p| p.downcast_ref::<crate::shared::SharedCte>().is_some())
        {
            for f in scan.projected_schema.fields() {
                let c = format!("{}.{}", scan.table_name.table(), f.name());
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// DataFusion's options for every query: the partitions, then `[access.engine]`.
///
/// With two parts or fewer, joins are not repartitioned by their keys: each builds one
/// hash table that every part probes, as when the build side is small. On 2 cores,
/// hashing both sides of every join into two parts took longer than it gained
/// (TPC-H, `bench/query/`: 1 to 4% less time at scale factor 0.1, 5 to 7% at 1; q7 30%
/// less). `"datafusion.optimizer.repartition_joins" = true` restores DataFusion's own.
fn engine_config(settings: &Settings) -> Result<SessionConfig> {
    let partitions = settings.access.partitions();
    let mut config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_repartition_joins(partitions > 2);
    for (key, value) in &settings.access.engine {
        if !trib_core::settings::ENGINE_OPTION_PREFIXES
            .iter()
            .any(|p| key.starts_with(p))
        {
            return Err(Error::EngineOption {
                message: format!("`{key}` is not an option queries may set"),
                hint: format!(
                    "options under {} set how queries are planned and run; see DataFusion's configuration reference",
                    trib_core::settings::ENGINE_OPTION_PREFIXES
                        .map(|p| format!("`{p}`"))
                        .join(" and ")
                ),
            });
        }
        config.options_mut().set(key, &value.to_string()).map_err(|e| Error::EngineOption {
            message: format!("`{key} = {value}`: {e}"),
            hint: "names and values are DataFusion's, as in its configuration reference (`SHOW ALL` in datafusion-cli lists them)".into(),
        })?;
    }
    Ok(config)
}
