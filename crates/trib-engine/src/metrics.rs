//! Metrics of model runs, named once. The server's recorder renders them at `/metrics`.

/// Seconds from the start of a model run to its commit.
pub const MODEL_RUN_SECONDS: &str = "trib_model_run_seconds";
/// Rows written by model runs.
pub const MODEL_ROWS_WRITTEN: &str = "trib_model_rows_written_total";
