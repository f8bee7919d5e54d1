//! Delta tables as DataFusion table providers, with every pushed-down filter checked
//! again above the scan.
//!
//! delta-rs 1.1 declares a filter that names no column (what `WHERE x > 0 AND NULL`
//! leaves after simplification, or any comparison on a column masked to NULL) as one it
//! applies exactly, because "every column it names is a partition column" holds for no
//! columns; DataFusion then drops the filter and the scan returns every row. Declaring
//! every pushed filter inexact keeps DataFusion's own filter above the scan: the scan
//! still prunes files with it, and the answer is right.

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use deltalake::datafusion::common::{Constraints, Result, Statistics};
use deltalake::datafusion::datasource::TableType;
use deltalake::datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use deltalake::datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// `provider` with its filter pushdown made inexact (see the module docs).
pub fn rechecked(provider: Arc<dyn TableProvider>) -> Arc<dyn TableProvider> {
    Arc::new(Rechecked(provider))
}

#[derive(Debug)]
struct Rechecked(Arc<dyn TableProvider>);

#[async_trait::async_trait]
impl TableProvider for Rechecked {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.0.constraints()
    }

    fn table_type(&self) -> TableType {
        self.0.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(&self, state: &dyn Session, args: ScanArgs<'a>) -> Result<ScanResult> {
        self.0.scan_with_args(state, args).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(self
            .0
            .supports_filters_pushdown(filters)?
            .into_iter()
            .map(|p| match p {
                TableProviderFilterPushDown::Exact => TableProviderFilterPushDown::Inexact,
                other => other,
            })
            .collect())
    }

    fn statistics(&self) -> Option<Statistics> {
        self.0.statistics()
    }
}
