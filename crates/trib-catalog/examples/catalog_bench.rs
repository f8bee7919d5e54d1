//! Catalog speed with many products: search, what `trib show` reads, and registering
//! one changed product, on SQLite or PostgreSQL. Run by `bench/catalog/run.sh`.
//!
//!   catalog_bench URL PRODUCTS

use std::time::Instant;
use trib_catalog::{Catalog, ProductRecord};

const DOMAINS: [&str; 8] = ["orders", "web", "iot", "finance", "crm", "logistics", "marketing", "hr"];
const WORDS: [&str; 12] = [
    "customer",
    "revenue",
    "session",
    "device",
    "invoice",
    "shipment",
    "campaign",
    "employee",
    "payment",
    "refund",
    "inventory",
    "click",
];

fn record(i: usize) -> ProductRecord {
    let domain = DOMAINS[i % DOMAINS.len()];
    let w1 = WORDS[i % WORDS.len()];
    let w2 = WORDS[(i / WORDS.len()) % WORDS.len()];
    let name = format!("{w1}_{w2}_{i}");
    let product = format!("{domain}.{name}");
    ProductRecord {
        address: format!("/v1/products/{product}/v1"),
        product,
        major: 1,
        version: "1.0.0".into(),
        domain: domain.into(),
        name,
        owner: format!("{domain}-team-{}", i % 50),
        status: "active".into(),
        layer: ["bronze", "silver", "gold"][i % 3].into(),
        description: Some(format!(
            "The {w1} and {w2} facts of the {domain} domain, product number {i}."
        )),
        contract_hash: format!("{i:064x}"),
        git_commit: None,
        contract: format!("product: {domain}.{w1}_{w2}_{i}\nversion: 1.0.0\n"),
        columns: format!("{w1}_id {w2}_id amount created_at updated_at status note_{}", i % 100),
        tags: format!("{domain} {w1}"),
        applied_at: "2026-11-22T00:00:00.000Z".into(),
        deprecated_at: None,
        sunset: None,
        superseded_by: None,
        retired_at: None,
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).cloned().unwrap_or_else(|| "sqlite://catalog.db".into());
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let dir = std::env::current_dir().expect("cwd");
    let catalog = Catalog::open(&url, &dir).await.expect("open");
    let started = Instant::now();
    if catalog.count().await.expect("count") < n as i64 {
        for i in 0..n {
            catalog.register(&record(i)).await.expect("register");
        }
    }
    let load_s = started.elapsed().as_secs_f64();

    let mut search = Vec::new();
    let mut results = 0;
    for i in 0..300 {
        let q = match i % 4 {
            0 => WORDS[i % WORDS.len()].to_string(),
            1 => format!("{} {}", WORDS[i % WORDS.len()], DOMAINS[i % DOMAINS.len()]),
            2 => record((i * 37) % n).product,
            _ => format!("{}-team", DOMAINS[i % DOMAINS.len()]),
        };
        let t = Instant::now();
        results += catalog.search(&q, 20).await.expect("search").len();
        search.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut show = Vec::new();
    for i in 0..300 {
        let r = record((i * 7919) % n);
        let t = Instant::now();
        let got = catalog.get(&r.product, 1).await.expect("get");
        catalog.history(&r.product).await.expect("history");
        catalog.consumers(Some(&r.product)).await.expect("consumers");
        show.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(got.is_some());
    }
    let mut changed = record(n / 2);
    changed.version = "1.1.0".into();
    changed.description = Some("Changed.".into());
    let t = Instant::now();
    catalog.register(&changed).await.expect("register");
    let apply_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "{}\t{n}\t{load_s:.1}\t{:.2}\t{:.2}\t{:.2}\t{:.2}\t{apply_ms:.2}\t{:.1}",
        if catalog.is_postgres() { "postgresql" } else { "sqlite" },
        percentile(&mut search.clone(), 0.5),
        percentile(&mut search, 0.99),
        percentile(&mut show.clone(), 0.5),
        percentile(&mut show, 0.99),
        results as f64 / 300.0
    );
}
