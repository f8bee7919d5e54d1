//! OpenLineage run events for model runs: START when a run has input to read, then
//! COMPLETE (with the output's row count) or FAIL (with the error), each with the
//! inputs' and the output's schema facets, the model's SQL, and the output's column
//! lineage from [`crate::lineage`]. Where they go is the caller's: a [`LineageSink`].

use crate::lineage::{ColumnLineage, Use};
use serde_json::{Value, json};
use trib_spec::Contract;

pub const PRODUCER: &str = "https://github.com/tributary-data/tributary";
const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const SCHEMA: &str = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const COLUMN_LINEAGE: &str =
    "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
const SQL: &str = "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet";
const ERROR: &str = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const OUTPUT_STATISTICS: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";

/// Where run events go (an HTTP endpoint, a file): implemented by the binary.
pub trait LineageSink: Send + Sync {
    /// Takes one event; delivery failures are the sink's to log, never the run's.
    fn emit(&self, event: Value);
}

/// What a run event says.
pub enum Phase<'a> {
    Start,
    Complete { rows: u64 },
    Fail { error: &'a str },
}

/// The event of one phase of a model run.
pub struct RunEvent<'a> {
    pub namespace: &'a str,
    pub run_id: &'a str,
    pub model: &'a Contract,
    pub inputs: &'a [&'a Contract],
    pub sql: &'a str,
    pub lineage: Option<&'a ColumnLineage>,
}

impl RunEvent<'_> {
    pub fn to_json(&self, phase: Phase<'_>, at: chrono::DateTime<chrono::Utc>) -> Value {
        let facet = |url: &str| json!({ "_producer": PRODUCER, "_schemaURL": url });
        let with = |mut base: Value, extra: Value| {
            if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
                b.extend(e.clone());
            }
            base
        };
        let schema = |c: &Contract| {
            with(
                facet(SCHEMA),
                json!({ "fields": c.schema.iter().map(|col| {
                    let mut f = json!({ "name": col.name.value, "type": col.data_type.value.to_string() });
                    if let Some(d) = &col.description {
                        f["description"] = json!(d);
                    }
                    f
                }).collect::<Vec<_>>() }),
            )
        };
        let (event_type, run_facets) = match &phase {
            Phase::Start => ("START", json!({})),
            Phase::Complete { .. } => ("COMPLETE", json!({})),
            Phase::Fail { error } => (
                "FAIL",
                json!({ "errorMessage": with(facet(ERROR), json!({ "message": error, "programmingLanguage": "SQL" })) }),
            ),
        };
        let mut output = json!({
            "namespace": self.namespace,
            "name": self.model.product.value.to_string(),
            "facets": { "schema": schema(self.model) },
        });
        if let Some(l) = self.lineage {
            output["facets"]["columnLineage"] = with(facet(COLUMN_LINEAGE), self.column_lineage(l));
        }
        if let Phase::Complete { rows } = phase {
            output["outputFacets"] =
                json!({ "outputStatistics": with(facet(OUTPUT_STATISTICS), json!({ "rowCount": rows })) });
        }
        json!({
            "eventType": event_type,
            "eventTime": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT,
            "run": { "runId": self.run_id, "facets": run_facets },
            "job": {
                "namespace": self.namespace,
                "name": self.model.product.value.to_string(),
                "facets": { "sql": with(facet(SQL), json!({ "query": self.sql })) },
            },
            "inputs": self.inputs.iter().map(|c| json!({
                "namespace": self.namespace,
                "name": c.product.value.to_string(),
                "facets": { "schema": schema(c) },
            })).collect::<Vec<_>>(),
            "outputs": [output],
        })
    }

    fn column_lineage(&self, l: &ColumnLineage) -> Value {
        let field = |(product, column): &(String, String), kind: &str, subtype: &str| {
            json!({
                "namespace": self.namespace,
                "name": product,
                "field": column,
                "transformations": [{ "type": kind, "subtype": subtype }],
            })
        };
        let fields: serde_json::Map<String, Value> = l
            .columns
            .iter()
            .map(|(out, sources)| {
                let inputs: Vec<Value> = sources
                    .iter()
                    .map(|(src, how)| {
                        let subtype = match how {
                            Use::Copied => "IDENTITY",
                            Use::Transformed => "TRANSFORMATION",
                            Use::Aggregated => "AGGREGATION",
                        };
                        field(src, "DIRECT", subtype)
                    })
                    .collect();
                (out.clone(), json!({ "inputFields": inputs }))
            })
            .collect();
        let dataset: Vec<Value> = l
            .filtered_on
            .iter()
            .map(|s| field(s, "INDIRECT", "FILTER"))
            .chain(l.grouped_by.iter().map(|s| field(s, "INDIRECT", "GROUP_BY")))
            .collect();
        json!({ "fields": fields, "dataset": dataset })
    }
}
