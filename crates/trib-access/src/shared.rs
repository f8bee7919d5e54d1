//! Common table expressions computed once per query.
//!
//! DataFusion plans a CTE as a copy of its plan at each place the query names it, and
//! runs every copy. TPC-H's q15 names its revenue CTE twice (to join it and to take its
//! maximum), and BI tools write the same shape. Like PostgreSQL (since 12) and DuckDB,
//! the gateway computes such a CTE once and lets each reference read its rows:
//!
//! ```text
//!   WITH r AS (SELECT k, sum(v) AS s FROM t GROUP BY k)
//!   SELECT … FROM r WHERE s = (SELECT max(s) FROM r)
//!
//!   SubqueryAlias r ─► Aggregate ─► t        TableScan r ─┐
//!   SubqueryAlias r ─► Aggregate ─► t   ⇒    TableScan r ─┴► CteExec r (runs the
//!                                                              aggregate once)
//! ```
//!
//! Which CTEs: those of the statement's top-level, non-recursive `WITH` that the plan
//! holds at least twice, with the same plan each time, and that aggregate (GROUP BY, an
//! aggregate function or DISTINCT), so that what is held is usually small. A CTE with a
//! volatile function (`random()`), a parameter or a reference to an outer query stays
//! inline. (PostgreSQL's `AS [NOT] MATERIALIZED` hints are not part of the query
//! dialect.) The rows are held in memory, counted against the
//! query's memory limit; a CTE whose rows do not fit fails the query with the memory
//! error, as any operator would.
//!
//! The CTE's plan is made from the plan the query was secured with: its products are
//! the views with the caller's masks and row filters, as everywhere else.
//!
//! As with PostgreSQL's materialized CTEs, a filter on one reference is not pushed into
//! the CTE: the CTE is computed whole, once, and each reference filters its rows.
//! `EXPLAIN` shows a shared CTE as one `CteExec` line per reference, without its plan.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::utils::memory::get_record_batch_memory_size;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::{TableType, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SessionState, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, ReplaceChildrenOptions};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use futures::{StreamExt as _, TryStreamExt as _};
use sqlparser::ast::{Ident, Statement};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The CTEs of `statement`'s top-level `WITH` (under an `EXPLAIN` too) that may be
/// computed once, by the name DataFusion gives them. None for `WITH RECURSIVE`.
pub(crate) fn ctes(statement: &Statement) -> HashSet<String> {
    let query = match statement {
        Statement::Query(q) => q,
        Statement::Explain { statement, .. } => match statement.as_ref() {
            Statement::Query(q) => q,
            _ => return HashSet::new(),
        },
        _ => return HashSet::new(),
    };
    let Some(with) = query.with.as_ref().filter(|w| !w.recursive) else {
        return HashSet::new();
    };
    with.cte_tables.iter().map(|c| normalized(&c.alias.name)).collect()
}

/// A name as DataFusion's planner keeps it: unquoted names in lower case.
fn normalized(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// `plan` with each CTE of `ctes` that it holds at least twice, and that may be shared
/// (see the module docs), read from one computation; and those computations, for the
/// audit's columns once the plan has run.
pub(crate) fn share(
    plan: LogicalPlan,
    ctes: &HashSet<String>,
    state: &SessionState,
) -> Result<(LogicalPlan, Vec<Arc<SharedCte>>)> {
    let mut made = Vec::new();
    if ctes.is_empty() {
        return Ok((plan, Vec::new()));
    }
    let plan = rewrite(plan, ctes, state, &mut made)?;
    Ok((plan, made.into_iter().map(|(_, s)| s).collect()))
}

fn rewrite(
    plan: LogicalPlan,
    ctes: &HashSet<String>,
    state: &SessionState,
    made: &mut Vec<(LogicalPlan, Arc<SharedCte>)>,
) -> Result<LogicalPlan> {
    // How often each CTE's plan appears, subqueries included.
    let mut seen: Vec<(LogicalPlan, usize)> = Vec::new();
    plan.apply_with_subqueries(|node| {
        if is_cte(node, ctes) {
            match seen.iter_mut().find(|(p, _)| p == node) {
                Some((_, n)) => *n += 1,
                None => seen.push((node.clone(), 1)),
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let chosen: Vec<LogicalPlan> = seen
        .into_iter()
        .filter(|(node, n)| *n >= 2 && shareable(node))
        .map(|(node, _)| node)
        .collect();
    if chosen.is_empty() {
        return Ok(plan);
    }
    plan.transform_down_with_subqueries(|node| {
        if !chosen.contains(&node) {
            return Ok(Transformed::no(node));
        }
        let LogicalPlan::SubqueryAlias(alias) = &node else {
            return Ok(Transformed::no(node));
        };
        let shared = match made.iter().find(|(p, _)| *p == node) {
            Some((_, s)) => Arc::clone(s),
            None => {
                // A CTE inside this one that its own plan names twice is shared in turn.
                let body = rewrite(alias.input.as_ref().clone(), ctes, state, made)?;
                // The analyzer may still change the body's types (a UNION takes its
                // first input's until it is coerced): the rows computed must have the
                // columns the references were planned with, or the CTE stays inline.
                let analyzed = state
                    .analyzer()
                    .execute_and_check(body, state.config_options(), |_, _| {})?;
                if !same_columns(&analyzed, &alias.input) {
                    return Ok(Transformed::no(node));
                }
                let shared = Arc::new(SharedCte::new(alias.alias.table().to_string(), analyzed));
                made.push((node.clone(), Arc::clone(&shared)));
                shared
            }
        };
        let provider = Arc::clone(&shared) as Arc<dyn TableProvider>;
        match LogicalPlanBuilder::scan(alias.alias.clone(), provider_as_source(provider), None).and_then(|b| b.build())
        {
            // The scan's columns carry the CTE's name, as the alias's did.
            Ok(scan) if same_columns(&scan, &node) => {
                shared.references.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Transformed::new(scan, true, TreeNodeRecursion::Jump))
            }
            _ => Ok(Transformed::no(node)),
        }
    })
    .map(|t| t.data)
}

/// Whether `a` and `b` have the same columns under the same qualifiers.
fn same_columns(a: &LogicalPlan, b: &LogicalPlan) -> bool {
    let (a, b) = (a.schema(), b.schema());
    a.fields().len() == b.fields().len() && a.iter().zip(b.iter()).all(|(x, y)| x == y)
}

/// Whether `node` is the plan of one of `ctes`.
fn is_cte(node: &LogicalPlan, ctes: &HashSet<String>) -> bool {
    matches!(node, LogicalPlan::SubqueryAlias(a) if a.alias.schema().is_none() && ctes.contains(a.alias.table()))
}

/// Whether the CTE planned as `node` may be computed once: when it aggregates, and has
/// no volatile function, parameter or outer reference.
fn shareable(node: &LogicalPlan) -> bool {
    if node.contains_outer_reference() {
        return false;
    }
    let mut aggregates = false;
    let mut fixed = true;
    let _ = node.apply_with_subqueries(|n| {
        if matches!(n, LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_)) {
            aggregates = true;
        }
        n.apply_expressions(|e| {
            let _ = e.apply(|e| {
                if e.is_volatile_node() || matches!(e, Expr::Placeholder(_) | Expr::OuterReferenceColumn(..)) {
                    fixed = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            });
            Ok(if fixed {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Stop
            })
        })
    });
    fixed && aggregates
}

/// A CTE computed once: the table its references read.
#[derive(Debug)]
pub(crate) struct SharedCte {
    name: String,
    schema: SchemaRef,
    body: LogicalPlan,
    /// The body optimised and planned, by the first reference's scan.
    planned: OnceCell<(LogicalPlan, Arc<dyn ExecutionPlan>)>,
    /// The body's rows, or why there are none, by the first reference that runs.
    rows: Arc<OnceCell<Computed>>,
    references: std::sync::atomic::AtomicUsize,
}

/// A CTE's rows once computed, or the error that stopped it: every reference gets the
/// same, and the body runs once either way.
type Computed = std::result::Result<Spooled, Arc<DataFusionError>>;

struct Spooled {
    batches: Vec<RecordBatch>,
    _reservation: MemoryReservation,
}

impl fmt::Debug for Spooled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} batches", self.batches.len())
    }
}

/// Runs `body` to the end, its rows counted against the query's memory pool as they come.
async fn compute(
    body: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
    full: SchemaRef,
    name: &str,
) -> Result<Spooled> {
    let reservation = MemoryConsumer::new(format!("CTE `{name}`")).register(context.memory_pool());
    let mut stream = datafusion::physical_plan::execute_stream(body, context)?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        reservation.try_grow(get_record_batch_memory_size(&batch))?;
        // With the columns its references were planned with.
        batches.push(RecordBatch::try_new(Arc::clone(&full), batch.columns().to_vec())?);
    }
    Ok(Spooled {
        batches,
        _reservation: reservation,
    })
}

impl SharedCte {
    fn new(name: String, body: LogicalPlan) -> Self {
        Self {
            name,
            schema: Arc::new(body.schema().as_arrow().clone()),
            body,
            planned: OnceCell::new(),
            rows: Arc::new(OnceCell::new()),
            references: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The body's plan as optimised once a reference has been planned, else as
    /// written: what the audit lists the read columns of.
    pub(crate) fn read(&self) -> &LogicalPlan {
        self.planned.get().map_or(&self.body, |(p, _)| p)
    }
}

#[async_trait::async_trait]
impl TableProvider for SharedCte {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (_, body) = self
            .planned
            .get_or_try_init(|| async {
                match state.as_any().downcast_ref::<SessionState>() {
                    Some(s) => {
                        let optimized = s.optimize(&self.body)?;
                        let physical = s.query_planner().create_physical_plan(&optimized, s).await?;
                        Ok::<_, DataFusionError>((optimized, physical))
                    }
                    None => Ok((self.body.clone(), state.create_physical_plan(&self.body).await?)),
                }
            })
            .await?;
        let statistics = StatisticsContext::new().compute(body.as_ref(), &StatisticsArgs::new())?;
        let projection = projection.cloned();
        let (schema, statistics) = match &projection {
            Some(p) => (
                Arc::new(self.schema.project(p)?),
                Arc::new(statistics.as_ref().clone().project(Some(p))),
            ),
            None => (Arc::clone(&self.schema), statistics),
        };
        Ok(Arc::new(CteExec {
            name: self.name.clone(),
            references: self.references.load(std::sync::atomic::Ordering::Relaxed),
            body: Arc::clone(body),
            full: Arc::clone(&self.schema),
            rows: Arc::clone(&self.rows),
            projection,
            statistics,
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(Arc::clone(&schema)),
                Partitioning::UnknownPartitioning(1),
                EmissionType::Final,
                Boundedness::Bounded,
            )),
        }))
    }
}

/// Reads a shared CTE's rows, computing them when no reference has yet.
#[derive(Debug)]
struct CteExec {
    name: String,
    references: usize,
    body: Arc<dyn ExecutionPlan>,
    /// The CTE's columns, as its references see them.
    full: SchemaRef,
    rows: Arc<OnceCell<Computed>>,
    projection: Option<Vec<usize>>,
    statistics: Arc<Statistics>,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for CteExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "CteExec: {}, computed once for {} references",
                self.name, self.references
            ),
            DisplayFormatType::TreeRender => write!(f, "name={}", self.name),
        }
    }
}

impl ExecutionPlan for CteExec {
    fn name(&self) -> &str {
        "CteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn statistics_from_inputs(&self, _inputs: &[Arc<Statistics>], _args: &StatisticsArgs) -> Result<Arc<Statistics>> {
        Ok(Arc::clone(&self.statistics))
    }

    fn execute(&self, _partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let rows = Arc::clone(&self.rows);
        let body = Arc::clone(&self.body);
        let full = Arc::clone(&self.full);
        let name = self.name.clone();
        let projection = self.projection.clone();
        let batches = futures::stream::once(async move {
            let spooled = rows
                .get_or_init(|| async { compute(body, context, full, &name).await.map_err(Arc::new) })
                .await
                .as_ref()
                .map_err(|e| DataFusionError::Shared(Arc::clone(e)))?;
            let out: Vec<Result<RecordBatch>> = spooled
                .batches
                .iter()
                .map(|b| match &projection {
                    Some(p) => b.project(p).map_err(DataFusionError::from),
                    None => Ok(b.clone()),
                })
                .collect();
            Ok::<_, DataFusionError>(futures::stream::iter(out))
        })
        .try_flatten()
        .boxed();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), batches)))
    }
}
