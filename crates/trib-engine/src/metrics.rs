//! Metrics of model runs, named once. The server's recorder renders them at `/metrics`.

/// Seconds from the start of a model run to its commit.
pub const MODEL_RUN_SECONDS: &str = "trib_model_run_seconds";
/// Rows written by model runs.
pub const MODEL_ROWS_WRITTEN: &str = "trib_model_rows_written_total";
/// Input rows later than a model's watermark (label `policy`: `dead_letter` or `merge`).
pub const MODEL_LATE_ROWS: &str = "trib_model_late_rows_total";
/// Input rows dropped as repeats of an event id inside the watermark horizon.
pub const MODEL_DUPLICATES: &str = "trib_model_duplicates_dropped_total";
/// Closed windows an incremental model recomputed because late input touched them.
pub const MODEL_LATE_WINDOWS: &str = "trib_model_late_windows_total";
