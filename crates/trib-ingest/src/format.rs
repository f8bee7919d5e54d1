//! Wire formats of incoming bodies and files.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// One JSON array of objects.
    JsonArray,
    /// CSV with a header row.
    Csv,
    /// Debezium change events, one JSON envelope per line (with or without the Connect
    /// `schema` part), for CDC products.
    Debezium,
    /// An Apache Parquet file.
    Parquet,
}

impl Format {
    /// From an HTTP `Content-Type` (parameters ignored).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(Self::Ndjson),
            "application/json" => Some(Self::JsonArray),
            "text/csv" | "application/csv" => Some(Self::Csv),
            "application/vnd.apache.parquet" | "application/x-parquet" => Some(Self::Parquet),
            // Debezium has no media type of its own; a vendor type keeps change events
            // apart from plain JSON.
            "application/vnd.debezium+json" | "application/vnd.debezium+x-ndjson" => Some(Self::Debezium),
            _ => None,
        }
    }

    /// From a file name's extension.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            "json" => Some(Self::JsonArray),
            "csv" => Some(Self::Csv),
            "parquet" => Some(Self::Parquet),
            _ => None,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            "json" => Some(Self::JsonArray),
            "csv" => Some(Self::Csv),
            "debezium" => Some(Self::Debezium),
            "parquet" => Some(Self::Parquet),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Ndjson => "NDJSON",
            Format::JsonArray => "JSON",
            Format::Csv => "CSV",
            Format::Debezium => "Debezium JSON",
            Format::Parquet => "Parquet",
        })
    }
}
