//! The catalog on both databases: SQLite in a temporary directory, and PostgreSQL on
//! the throwaway server `scripts/test.sh` starts (`TRIB_TEST_PG_URL`; under `CI=true`
//! its absence fails the test).

use trib_catalog::{Catalog, ProductRecord};

/// The example project's contracts as records.
fn records() -> Vec<ProductRecord> {
    let (_tmp, project) = trib_test::example(|s| s);
    project
        .files
        .iter()
        .filter_map(|f| {
            f.contract
                .as_ref()
                .map(|c| ProductRecord::of(c, &f.source.text, Some("abc123".into())))
        })
        .collect()
}

async fn exercise(catalog: &Catalog) {
    let records = records();
    assert_eq!(records.len(), 10);
    for r in &records {
        catalog.register(r).await.expect("register");
    }
    assert_eq!(catalog.count().await.expect("count"), 10);

    // Exact names first, then by relevance; every word a prefix.
    let hits = catalog.search("orders.orders", 10).await.expect("search");
    assert_eq!(hits[0].product, "orders.orders", "{hits:?}");
    assert!(hits[0].exact);
    let hits = catalog.search("revenue", 10).await.expect("search");
    let found: Vec<&str> = hits.iter().map(|h| h.product.as_str()).collect();
    assert!(
        found.contains(&"orders.daily_revenue") && found.contains(&"finance.monthly_revenue"),
        "{found:?}"
    );
    // A column name, by one of its words.
    let hits = catalog.search("customer", 10).await.expect("search");
    assert!(hits.iter().any(|h| h.product == "orders.orders"), "{hits:?}");
    assert!(hits.iter().all(|h| !h.exact));
    // An owner, a prefix, and two words that must both match.
    assert!(
        catalog
            .search("plant-data", 10)
            .await
            .expect("search")
            .iter()
            .any(|h| h.product == "iot.sensor_readings")
    );
    assert!(!catalog.search("sens", 10).await.expect("search").is_empty());
    assert!(catalog.search("customer sensor", 10).await.expect("search").is_empty());
    assert!(catalog.search("nothing-like-it", 10).await.expect("search").is_empty());
    assert!(
        catalog
            .search("\"'; DROP TABLE products; --", 10)
            .await
            .expect("search")
            .is_empty()
    );

    // A new version of one product: the record changes, the history keeps both.
    let mut changed = records
        .iter()
        .find(|r| r.product == "orders.orders")
        .expect("orders")
        .clone();
    changed.version = "1.1.0".into();
    changed.contract_hash = "changed".into();
    changed.description = Some("Orders, latest state, with their channel.".into());
    catalog.register(&changed).await.expect("register");
    let now = catalog.get("orders.orders", 1).await.expect("get").expect("there");
    assert_eq!(now.version, "1.1.0");
    assert_eq!(catalog.history("orders.orders").await.expect("history").len(), 2);
    let counts = catalog.apply_counts().await.expect("counts");
    assert_eq!(counts.len(), 10);
    assert!(counts.contains(&("orders.orders".to_string(), 1, 2)), "{counts:?}");
    assert!(counts.contains(&("web.clicks".to_string(), 1, 1)), "{counts:?}");
    assert_eq!(catalog.count().await.expect("count"), 10);
    assert!(
        catalog
            .search("channel", 10)
            .await
            .expect("search")
            .iter()
            .any(|h| h.product == "orders.orders")
    );

    // Consumers: a request, then the owner's approval.
    let req = catalog
        .request_access(
            "orders.orders",
            1,
            "bi-dashboard",
            "bi@example.com",
            "weekly revenue report",
            Some("http://127.0.0.1:9/hook"),
        )
        .await
        .expect("request");
    assert_eq!(req.status, "requested");
    let approved = catalog.approve(&req.id, "orders-data-team").await.expect("approve");
    assert_eq!(approved.status, "approved");
    assert_eq!(approved.decided_by.as_deref(), Some("orders-data-team"));
    assert!(catalog.approve("no-such-id", "x").await.is_err());
    assert_eq!(catalog.consumers(Some("orders.orders")).await.expect("list").len(), 1);
    assert!(catalog.consumers(Some("web.clicks")).await.expect("list").is_empty());
    assert_eq!(approved.webhook.as_deref(), Some("http://127.0.0.1:9/hook"));

    // Lifecycle: deprecated by a newer major, kept so when its contract is applied
    // again saying `active`, then retired; the summary tells all of it.
    assert!(
        catalog
            .deprecate("orders.orders", 1, Some(2), "2027-02-20")
            .await
            .expect("deprecate")
    );
    // Deprecating again keeps the first date.
    assert!(
        !catalog
            .deprecate("orders.orders", 1, Some(3), "2099-01-01")
            .await
            .expect("deprecate")
    );
    let mut again = changed.clone();
    again.version = "1.1.1".into();
    catalog.register(&again).await.expect("register");
    let held = catalog.get("orders.orders", 1).await.expect("get").expect("there");
    assert_eq!(held.status, "deprecated");
    assert_eq!(held.version, "1.1.1");
    assert_eq!(held.sunset.as_deref(), Some("2027-02-20"));
    assert_eq!(held.superseded_by, Some(2));
    assert!(held.deprecated_at.is_some() && held.is_served());
    assert!(catalog.retire("orders.orders", 1).await.expect("retire"));
    assert!(!catalog.retire("orders.orders", 1).await.expect("retire"));
    catalog.register(&again).await.expect("register");
    let summaries = catalog.summaries(None).await.expect("summaries");
    assert_eq!(summaries.len(), 10);
    let s = summaries.iter().find(|s| s.product == "orders.orders").expect("orders");
    assert_eq!(
        (s.status.as_str(), s.sunset.as_deref()),
        ("retired", Some("2027-02-20"))
    );
    let held = catalog.get("orders.orders", 1).await.expect("get").expect("there");
    assert!(!held.is_served() && held.retired_at.is_some());
    // The others are untouched.
    assert!(
        summaries
            .iter()
            .filter(|s| s.product != "orders.orders")
            .all(|s| s.status == "active")
    );
}

#[tokio::test]
async fn sqlite_catalog() {
    let dir = tempfile::tempdir().expect("tmp");
    let catalog = Catalog::open("sqlite://.trib/catalog.db", dir.path())
        .await
        .expect("open");
    exercise(&catalog).await;
    // Reopened: the schema is already there, the rows too.
    let again = Catalog::open("sqlite://.trib/catalog.db", dir.path())
        .await
        .expect("reopen");
    assert_eq!(again.count().await.expect("count"), 10);
    assert!(dir.path().join(".trib/catalog.db").exists());
}

#[tokio::test]
async fn postgres_catalog() {
    let Ok(url) = std::env::var("TRIB_TEST_PG_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "TRIB_TEST_PG_URL is not set under CI: scripts/test.sh starts the PostgreSQL server"
        );
        eprintln!("skipped: no TRIB_TEST_PG_URL (scripts/test.sh starts a PostgreSQL server)");
        return;
    };
    // A database of its own, so that runs do not see each other's rows.
    let db = format!("catalog_{}", std::process::id());
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&admin)
        .await
        .expect("create database");
    let (base, _) = url.rsplit_once('/').expect("url with a database");
    let catalog = Catalog::open(&format!("{base}/{db}"), std::path::Path::new("."))
        .await
        .expect("open");
    assert!(catalog.is_postgres());
    exercise(&catalog).await;
    let again = Catalog::open(&format!("{base}/{db}"), std::path::Path::new("."))
        .await
        .expect("reopen");
    assert_eq!(again.count().await.expect("count"), 10);
}
