//! Reads an NDJSON file of `iot.sensor_readings` through the column path and prints
//! lines per second, single-threaded: `cargo run --release -p trib-json --example
//! chunk_bench -- FILE [ROUNDS]`.

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use std::sync::Arc;
use trib_json::columns::{Column, Kind, Plan, chunk};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: chunk_bench FILE [ROUNDS]");
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    let body = std::fs::read(&path).expect("readable file");
    let cols = [
        ("device_id", Kind::Str, DataType::Utf8, true),
        ("site", Kind::Str, DataType::Utf8, true),
        (
            "reading_at",
            Kind::Ts,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        ("temperature_c", Kind::F64, DataType::Float64, false),
        ("humidity_pct", Kind::F64, DataType::Float64, false),
        ("battery_v", Kind::F32, DataType::Float32, false),
    ];
    let plan = Plan {
        columns: cols
            .iter()
            .map(|(n, k, _, r)| Column {
                name: (*n).into(),
                kind: *k,
                required: *r,
            })
            .collect(),
        schema: Arc::new(Schema::new(
            cols.iter()
                .map(|(n, _, t, r)| Field::new(*n, t.clone(), !*r))
                .collect::<Vec<_>>(),
        )),
    };
    for _ in 0..rounds {
        let mut fallbacks = 0u64;
        let mut fallback = |_: &[u8], _: u64, _: &mut std::collections::BTreeMap<String, u64>| {
            fallbacks += 1;
            None
        };
        let started = std::time::Instant::now();
        let c = chunk(&plan, &body, 0, body.len(), &mut fallback).expect("a batch");
        let s = started.elapsed().as_secs_f64();
        println!(
            "{} rows, {fallbacks} to the fallback, {:.3} s, {:.0} MB/s, {:.0} ns/line",
            c.batch.num_rows(),
            s,
            body.len() as f64 / s / 1e6,
            s * 1e9 / c.batch.num_rows().max(1) as f64
        );
    }
}
