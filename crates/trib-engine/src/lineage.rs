//! Column lineage of a model, read off the DataFusion logical plan of its SQL: for each
//! output column, the input columns it comes from and how (copied, transformed,
//! aggregated), and the input columns the model filters, joins or groups on.
//!
//! The inputs are planned as empty tables with their contracts' schemas, so no data
//! is read. Plan nodes pass each column's sources up: a scan gives a column itself, a
//! projection or window the columns its expression reads, an aggregate its groups and
//! aggregates, a join both sides, a union every branch.

use crate::dag::{Dag, Node};
use crate::{Error, Result};
use datafusion::common::DFSchema;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::SessionContext;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How an output column uses an input column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Use {
    Copied,
    Transformed,
    Aggregated,
}

impl Use {
    pub fn as_str(self) -> &'static str {
        match self {
            Use::Copied => "copied",
            Use::Transformed => "transformed",
            Use::Aggregated => "aggregated",
        }
    }

    /// The weaker of two uses along a path (a copy of an aggregate is an aggregate).
    fn then(self, other: Use) -> Use {
        self.max(other)
    }
}

/// An input column: `(input address, column)`.
pub type Source = (String, String);

/// The lineage of one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnLineage {
    /// Output column → the input columns it comes from, each with how.
    pub columns: BTreeMap<String, BTreeMap<Source, Use>>,
    /// Input columns the model filters on (`WHERE`, `HAVING`, join conditions).
    pub filtered_on: BTreeSet<Source>,
    /// Input columns it groups by.
    pub grouped_by: BTreeSet<Source>,
}

type Sources = BTreeMap<Source, Use>;

/// The column lineage of `model` (a product with inputs and a transform), planned
/// against its inputs' schemas.
pub async fn columns(dag: &Dag, project_dir: &std::path::Path, model: &Node) -> Result<ColumnLineage> {
    let contract = dag
        .contract(model)
        .ok_or_else(|| Error::UnknownProduct(model.0.clone()))?;
    let trib_spec::Source::Model(m) = &contract.source else {
        return Err(Error::NotAModel(model.0.clone()));
    };
    let sql = m.read_sql(project_dir).map_err(|source| Error::Io {
        path: project_dir.join(&m.transform.value),
        source,
    })?;
    let ctx = SessionContext::new();
    crate::functions::register(&ctx);
    for input in dag.inputs(model) {
        let c = dag
            .contract(input)
            .ok_or_else(|| Error::UnknownProduct(input.0.clone()))?;
        let schema = Arc::new(c.data_schema());
        let table = MemTable::try_new(schema, vec![vec![]]).map_err(|e| Error::sql(&input.0, e))?;
        crate::run::register_input(&ctx, input, Arc::new(table))?;
    }
    let plan = ctx
        .state()
        .create_logical_plan(&sql)
        .await
        .map_err(|e| Error::sql(&model.0, e))?;
    let mut out = ColumnLineage::default();
    let per_field = walk(&plan, &mut out);
    for (field, sources) in plan.schema().fields().iter().zip(per_field) {
        out.columns.insert(field.name().clone(), sources);
    }
    Ok(out)
}

/// The sources of each output field of `plan`, in schema order.
fn walk(plan: &LogicalPlan, out: &mut ColumnLineage) -> Vec<Sources> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let table = scan.table_name.to_string();
            scan.projected_schema
                .fields()
                .iter()
                .map(|f| Sources::from([((table.clone(), f.name().clone()), Use::Copied)]))
                .collect()
        }
        LogicalPlan::Projection(p) => {
            let input = walk(&p.input, out);
            p.expr
                .iter()
                .map(|e| expr_sources(e, p.input.schema(), &input, None))
                .collect()
        }
        LogicalPlan::Window(w) => {
            let mut input = walk(&w.input, out);
            let base = input.clone();
            for e in &w.window_expr {
                input.push(expr_sources(e, w.input.schema(), &base, Some(Use::Aggregated)));
            }
            input
        }
        LogicalPlan::Aggregate(a) => {
            let input = walk(&a.input, out);
            let mut fields = Vec::new();
            for e in &a.group_expr {
                let s = expr_sources(e, a.input.schema(), &input, None);
                out.grouped_by.extend(s.keys().cloned());
                fields.push(s);
            }
            for e in &a.aggr_expr {
                fields.push(expr_sources(e, a.input.schema(), &input, Some(Use::Aggregated)));
            }
            fields
        }
        LogicalPlan::Filter(f) => {
            let input = walk(&f.input, out);
            let used = expr_sources(&f.predicate, f.input.schema(), &input, None);
            out.filtered_on.extend(used.into_keys());
            input
        }
        LogicalPlan::Join(j) => {
            let left = walk(&j.left, out);
            let right = walk(&j.right, out);
            // The join's conditions read both sides: resolved against the join's own
            // (left then right) columns.
            let both: Vec<Sources> = left.iter().chain(right.iter()).cloned().collect();
            let schema = join_input_schema(&j.left, &j.right);
            for (l, r) in &j.on {
                for e in [l, r] {
                    out.filtered_on
                        .extend(expr_sources(e, &schema, &both, None).into_keys());
                }
            }
            if let Some(f) = &j.filter {
                out.filtered_on
                    .extend(expr_sources(f, &schema, &both, None).into_keys());
            }
            let n = j.schema.fields().len();
            let mut fields = both;
            fields.truncate(n);
            fields
        }
        LogicalPlan::Union(u) => {
            let branches: Vec<Vec<Sources>> = u.inputs.iter().map(|i| walk(i, out)).collect();
            let n = u.schema.fields().len();
            (0..n)
                .map(|i| {
                    let mut s = Sources::new();
                    for b in &branches {
                        if let Some(x) = b.get(i) {
                            merge(&mut s, x.clone());
                        }
                    }
                    s
                })
                .collect()
        }
        // Nodes that keep their input's columns as they are.
        other => {
            let inputs = other.inputs();
            match inputs.as_slice() {
                [one] => {
                    let fields = walk(one, out);
                    if fields.len() == other.schema().fields().len() {
                        fields
                    } else {
                        // Unknown shape: every output column from every input column.
                        let all = fields.into_iter().fold(Sources::new(), |mut acc, s| {
                            merge(&mut acc, s);
                            acc
                        });
                        vec![all; other.schema().fields().len()]
                    }
                }
                _ => {
                    let mut all = Sources::new();
                    for i in inputs {
                        for s in walk(i, out) {
                            merge(&mut all, s);
                        }
                    }
                    vec![all; other.schema().fields().len()]
                }
            }
        }
    }
}

fn join_input_schema(left: &LogicalPlan, right: &LogicalPlan) -> DFSchema {
    let mut s = left.schema().as_ref().clone();
    s.merge(right.schema());
    s
}

/// What an expression over `schema` (whose fields have `input` sources) reads, and how.
fn expr_sources(e: &Expr, schema: &DFSchema, input: &[Sources], forced: Option<Use>) -> Sources {
    let direct = matches!(strip_alias(e), Expr::Column(_));
    let how = forced.unwrap_or(if direct { Use::Copied } else { Use::Transformed });
    let mut out = Sources::new();
    for c in e.column_refs() {
        if let Some(i) = schema.maybe_index_of_column(c)
            && let Some(sources) = input.get(i)
        {
            for (src, u) in sources {
                let u = u.then(how);
                out.entry(src.clone()).and_modify(|x| *x = (*x).max(u)).or_insert(u);
            }
        }
    }
    out
}

fn strip_alias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => strip_alias(&a.expr),
        other => other,
    }
}

fn merge(into: &mut Sources, from: Sources) {
    for (k, u) in from {
        into.entry(k).and_modify(|x| *x = (*x).max(u)).or_insert(u);
    }
}
