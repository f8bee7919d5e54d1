//! Metrics of the ingest sources, named once. The server's recorder renders them at
//! `/metrics`.

/// Records consumed from Kafka and committed, by product and outcome.
pub const KAFKA_RECORDS: &str = "trib_kafka_records_total";
/// Seconds from the start of a Kafka batch's commit to its end.
pub const KAFKA_COMMIT_SECONDS: &str = "trib_kafka_commit_seconds";
/// Records in a partition not yet in the table, after the last commit.
pub const KAFKA_LAG: &str = "trib_kafka_lag_records";
/// Rebalances seen by a product's consumer.
pub const KAFKA_REBALANCES: &str = "trib_kafka_rebalances_total";
/// Partitions paused because a `fail` expectation refused their records.
pub const KAFKA_PAUSED: &str = "trib_kafka_paused_partitions_total";
