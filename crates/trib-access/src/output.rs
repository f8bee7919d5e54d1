//! Query results as bytes: a text table, JSON, NDJSON, CSV, Parquet or an Arrow IPC
//! stream. The same encoders serve the CLI and the HTTP API.

use crate::{Error, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Ndjson,
    Csv,
    Parquet,
    Arrow,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Table,
        Format::Json,
        Format::Ndjson,
        Format::Csv,
        Format::Parquet,
        Format::Arrow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Arrow => "arrow",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Table => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    /// The format an HTTP `Accept` header asks for; JSON when it names none we know.
    pub fn from_accept(accept: &str) -> Format {
        for part in accept.split(',') {
            let media = part.split(';').next().unwrap_or("").trim();
            let found = match media {
                "application/json" => Some(Format::Json),
                "application/x-ndjson" | "application/ndjson" => Some(Format::Ndjson),
                "text/csv" => Some(Format::Csv),
                "application/vnd.apache.parquet" | "application/x-parquet" => Some(Format::Parquet),
                "application/vnd.apache.arrow.stream" => Some(Format::Arrow),
                "text/plain" => Some(Format::Table),
                _ => None,
            };
            if let Some(f) = found {
                return f;
            }
        }
        Format::Json
    }

    /// Whether the bytes are text a terminal can show.
    pub fn is_text(self) -> bool {
        !matches!(self, Format::Parquet | Format::Arrow)
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format `{s}`; use table, json, ndjson, csv, parquet or arrow"))
    }
}

/// Encodes `batches` (all of `schema`) in `format`.
pub fn encode(schema: &SchemaRef, batches: &[RecordBatch], format: Format) -> Result<Vec<u8>> {
    let err = |e: &dyn std::fmt::Display| Error::Internal(format!("encoding {}: {e}", format.name()));
    let mut out = Vec::new();
    match format {
        Format::Table => {
            let table = datafusion::arrow::util::pretty::pretty_format_batches(batches).map_err(|e| err(&e))?;
            out.extend_from_slice(table.to_string().as_bytes());
            out.push(b'\n');
        }
        Format::Json => {
            // Explicit nulls: a masked column is there, as null, not absent.
            let mut w = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut out);
            for b in batches {
                w.write(b).map_err(|e| err(&e))?;
            }
            w.finish().map_err(|e| err(&e))?;
            if out.is_empty() {
                out.extend_from_slice(b"[]");
            }
            out.push(b'\n');
        }
        Format::Ndjson => {
            let mut w = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut out);
            for b in batches {
                w.write(b).map_err(|e| err(&e))?;
            }
            w.finish().map_err(|e| err(&e))?;
        }
        Format::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if batches.is_empty() {
                // The header alone still says which columns there are.
                w.write(&RecordBatch::new_empty(schema.clone())).map_err(|e| err(&e))?;
            }
            for b in batches {
                w.write(b).map_err(|e| err(&e))?;
            }
        }
        Format::Parquet => {
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema.clone(), None).map_err(|e| err(&e))?;
            for b in batches {
                w.write(b).map_err(|e| err(&e))?;
            }
            w.close().map_err(|e| err(&e))?;
        }
        Format::Arrow => {
            let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut out, schema).map_err(|e| err(&e))?;
            for b in batches {
                w.write(b).map_err(|e| err(&e))?;
            }
            w.finish().map_err(|e| err(&e))?;
        }
    }
    Ok(out)
}
