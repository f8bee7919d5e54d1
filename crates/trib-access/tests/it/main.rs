//! The read path on the example project's real Delta tables: what each role sees of
//! `orders.orders` (masked, hidden, filtered), the escape attempts the sandbox refuses,
//! time travel, and the audit of it all.

use arrow::array::{Array, AsArray, RecordBatch};
use std::collections::BTreeSet;
use std::path::Path;
use trib_access::{Error, Gateway, Principal, QueryPath};
use trib_engine::Engine;
use trib_ingest::dead_letter::Provenance;
use trib_ingest::{Format, Ingestor};
use trib_lake::Lake;
use trib_spec::Project;

const COUNTRIES: [&str; 6] = ["DE", "FR", "US", "GB", "NL", "JP"];
const EU: [&str; 5] = ["DE", "FR", "NL", "ES", "IT"];

/// Order `i`: its country cycles through [`COUNTRIES`]; customer `i % 7` has one email.
fn order(i: usize) -> String {
    format!(
        r#"{{"order_id":"o-{i:03}","customer_id":"c-{}","customer_email":"c{}@example.com","country":"{}","status":"placed","amount":"{}.50","currency":"EUR","ordered_at":"2026-03-15T10:{:02}:00Z","updated_at":"2026-03-15T10:{:02}:00Z"}}"#,
        i % 7,
        i % 7,
        COUNTRIES[i % COUNTRIES.len()],
        10 + i,
        i % 60,
        i % 60
    )
}

async fn ingest(lake: &Lake, project: &Project, orders: std::ops::Range<usize>) {
    let c = project
        .contracts()
        .find(|c| c.product.value.to_string() == "orders.orders_raw")
        .expect("orders_raw");
    let mut ing = Ingestor::open(lake, c).await.expect("ingestor");
    let body: String = orders.clone().map(|i| order(i) + "\n").collect();
    let p = Provenance {
        received_at_micros: 0,
        source: "test".into(),
        batch_id: format!("b{}", orders.start),
    };
    let r = ing
        .ingest(Format::Ndjson, body.as_bytes(), &p, None)
        .await
        .expect("ingest");
    assert_eq!(r.accepted as usize, orders.len(), "{r:?}");
}

/// 60 orders in bronze (two commits) and carried to silver.
async fn setup(edit: impl Fn(String) -> String) -> (tempfile::TempDir, Project, Gateway) {
    let (tmp, project) = trib_test::example(edit);
    let lake = Lake::from_settings(&project.settings.storage, &project.dir).expect("lake");
    ingest(&lake, &project, 0..40).await;
    ingest(&lake, &project, 40..60).await;
    Engine::new(lake.clone(), &project)
        .run(&("orders.orders".to_string(), 1))
        .await
        .expect("run");
    let gateway = Gateway::new(lake, &project).expect("gateway");
    (tmp, project, gateway)
}

fn principal(project: &Project, role: &str) -> Principal {
    Principal::with_roles(format!("test:{role}"), [role.to_string()], &project.settings)
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let Some(col) = b.column_by_name(column) else {
            panic!("no column `{column}` in {:?}", b.schema())
        };
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).expect("text");
        let col = col.as_string::<i32>();
        out.extend((0..col.len()).map(|i| col.is_valid(i).then(|| col.value(i).to_string())));
    }
    out
}

/// The text of an `EXPLAIN`'s plans, one line each.
fn plan_text(batches: &[RecordBatch]) -> String {
    strings(batches, "plan")
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
}

fn columns(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .first()
        .map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn each_role_sees_what_its_grants_allow() {
    let (_tmp, project, gateway) = setup(|s| s).await;
    let sql = "SELECT * FROM orders.orders ORDER BY order_id";
    let all_emails: Vec<Option<String>> = (0..60).map(|i| Some(format!("c{}@example.com", i % 7))).collect();

    // Admin (the local identity) and the owning team: everything.
    for who in [
        Principal::local(&project.settings),
        principal(&project, "orders-data-team"),
    ] {
        let r = gateway.query(&who, sql, QueryPath::Cli).await.expect("full read");
        assert_eq!(r.rows, 60, "{}", who.name);
        assert_eq!(strings(&r.batches, "customer_email"), all_emails, "{}", who.name);
    }
    // PII clearance: emails in clear.
    let care = gateway
        .query(&principal(&project, "customer-care"), sql, QueryPath::Cli)
        .await
        .expect("customer-care");
    assert_eq!(strings(&care.batches, "customer_email"), all_emails);
    assert!(care.warnings.is_empty(), "{:?}", care.warnings);

    // Cleared for confidential columns but not PII: the column is there, masked.
    let analysts = gateway
        .query(&principal(&project, "orders-analysts"), sql, QueryPath::Cli)
        .await
        .expect("orders-analysts");
    assert_eq!(analysts.rows, 60);
    assert!(strings(&analysts.batches, "customer_email").iter().all(Option::is_none));
    assert_eq!(strings(&analysts.batches, "customer_id"), {
        (0..60).map(|i| Some(format!("c-{}", i % 7))).collect::<Vec<_>>()
    });
    assert!(
        analysts.warnings.iter().any(|w| w.contains("masked")),
        "{:?}",
        analysts.warnings
    );

    // Internal clearance and a row filter: no email column, European rows only.
    let eu = gateway
        .query(&principal(&project, "eu-analysts"), sql, QueryPath::Cli)
        .await
        .expect("eu-analysts");
    assert!(!columns(&eu.batches).contains(&"customer_email".to_string()));
    let want: Vec<Option<String>> = (0..60)
        .filter(|i| EU.contains(&COUNTRIES[i % COUNTRIES.len()]))
        .map(|i| Some(format!("o-{i:03}")))
        .collect();
    assert_eq!(strings(&eu.batches, "order_id"), want);
    // Aggregates see the filtered rows only, too.
    let counted = gateway
        .query(
            &principal(&project, "eu-analysts"),
            "SELECT country, count(*) AS n FROM orders.orders GROUP BY country ORDER BY country",
            QueryPath::Cli,
        )
        .await
        .expect("count");
    let countries: BTreeSet<String> = strings(&counted.batches, "country").into_iter().flatten().collect();
    assert_eq!(countries, ["DE", "FR", "NL"].map(String::from).into_iter().collect());

    // No grant at all.
    let err = gateway
        .query(&principal(&project, "marketing"), sql, QueryPath::Cli)
        .await
        .expect_err("marketing has no grant");
    assert!(matches!(err, Error::Forbidden { .. }), "{err}");
    assert!(
        err.to_string().contains("orders-data-team"),
        "names the owner to ask: {err}"
    );
}

#[tokio::test]
async fn hashed_masks_keep_joins_and_hide_values() {
    let (_tmp, project, gateway) = setup(|s| s.replace("pii_mask = \"null\"", "pii_mask = \"hash\"")).await;
    let r = gateway
        .query(
            &principal(&project, "orders-analysts"),
            "SELECT order_id, customer_id, customer_email FROM orders.orders ORDER BY order_id",
            QueryPath::Cli,
        )
        .await
        .expect("masked read");
    let ids = strings(&r.batches, "customer_id");
    let masked = strings(&r.batches, "customer_email");
    for (id, m) in ids.iter().zip(&masked) {
        let m = m.as_deref().expect("hashed, not null");
        assert_eq!(m.len(), 32, "{m}");
        assert!(!m.contains('@'), "{m}");
        // Same customer, same email, same hash; another customer, another hash.
        for (id2, m2) in ids.iter().zip(&masked) {
            assert_eq!(id == id2, Some(m) == m2.as_deref());
        }
    }
    // The mask function is not callable by name.
    let err = gateway
        .query(
            &principal(&project, "orders-analysts"),
            "SELECT mask(customer_id) FROM orders.orders",
            QueryPath::Cli,
        )
        .await
        .expect_err("mask is not a function");
    assert!(matches!(err, Error::Plan { .. }), "{err}");
}

#[tokio::test]
async fn escape_attempts_are_refused() {
    let (_tmp, project, gateway) = setup(|s| s).await;
    let analyst = principal(&project, "orders-analysts");
    let eu = principal(&project, "eu-analysts");
    let attempts: &[(&Principal, &str)] = &[
        (&analyst, "DROP TABLE orders.orders"),
        (&analyst, "DELETE FROM orders.orders"),
        (&analyst, "INSERT INTO orders.orders (order_id) VALUES ('x')"),
        (&analyst, "UPDATE orders.orders SET status = 'x'"),
        (&analyst, "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'"),
        (&analyst, "CREATE TABLE t AS SELECT * FROM orders.orders"),
        (&analyst, "CREATE VIEW v AS SELECT * FROM orders.orders"),
        (&analyst, "COPY orders.orders TO '/tmp/leak.csv'"),
        (&analyst, "COPY (SELECT * FROM orders.orders) TO '/tmp/leak.parquet'"),
        (&analyst, "SET datafusion.execution.batch_size = 1"),
        (&analyst, "EXPLAIN SELECT * FROM orders.orders"),
        (&analyst, "SELECT 1; DROP TABLE orders.orders"),
        (&analyst, "SELECT * FROM '/etc/passwd'"),
        (&analyst, "SELECT * FROM \"/etc/passwd\""),
        (&analyst, "SELECT * FROM read_csv('/etc/passwd')"),
        (&analyst, "SELECT * FROM read_parquet('x.parquet')"),
        (&analyst, "SELECT * FROM generate_series(1, 3)"),
        (
            &analyst,
            "SELECT * FROM information_schema.tables t JOIN orders.orders o ON true",
        ),
        (&analyst, "SELECT * FROM datafusion.orders.orders"),
        (&analyst, "SELECT * FROM _trib.audit"),
        // Products the analyst has no grant for, however they are written.
        (&analyst, "SELECT * FROM web.clicks"),
        (&analyst, "SELECT * FROM \"web\".\"clicks\""),
        (&analyst, "SELECT * FROM WEB.CLICKS"),
        (
            &analyst,
            "SELECT o.order_id FROM orders.orders o JOIN web.clicks c ON o.customer_id = c.user_id",
        ),
        (
            &analyst,
            "SELECT order_id FROM orders.orders /* web.clicks */ UNION ALL SELECT url FROM web.clicks",
        ),
        (
            &analyst,
            "SELECT * FROM orders.orders WHERE order_id IN (SELECT user_id FROM web.clicks_raw)",
        ),
        (&analyst, "WITH c AS (SELECT * FROM web.clicks) SELECT * FROM c"),
        (&analyst, "SELECT * FROM finance.monthly_revenue"),
        // A column the role may not see is not there, under any spelling.
        (&eu, "SELECT customer_email FROM orders.orders"),
        (&eu, "SELECT \"customer_email\" FROM orders.orders"),
        (&eu, "SELECT o.customer_email FROM orders.orders o"),
        (
            &eu,
            "SELECT count(*) FROM orders.orders WHERE customer_email LIKE 'c1%'",
        ),
    ];
    for (who, sql) in attempts {
        let err = gateway
            .query(who, sql, QueryPath::Cli)
            .await
            .expect_err(&format!("must be refused: {sql}"));
        let text = err.to_string();
        assert!(
            err.is_user_error() || err.is_denied(),
            "{sql}: refused as a fault: {text}"
        );
        assert!(!text.contains("@example.com"), "{sql}: leaks an email: {text}");
        assert!(!text.is_empty(), "{sql}");
    }
    // Nothing was written anywhere.
    assert!(!Path::new("/tmp/leak.csv").exists() && !Path::new("/tmp/leak.parquet").exists());

    // Errors do not quote rows the caller may not see: casting the country to a number
    // fails on the first row; the message must not name a country outside the filter.
    let err = gateway
        .query(&eu, "SELECT CAST(country AS INT) FROM orders.orders", QueryPath::Cli)
        .await
        .expect_err("cast fails");
    let text = err.to_string();
    for c in COUNTRIES {
        assert!(!text.contains(&format!("'{c}'")), "{text}");
    }
    assert!(matches!(err, Error::Execution { .. }), "{err}");
    // The filter still holds when the caller filters on the same column.
    let r = gateway
        .query(
            &eu,
            "SELECT order_id FROM orders.orders WHERE country = 'US'",
            QueryPath::Cli,
        )
        .await
        .expect("query");
    assert_eq!(r.rows, 0);
}

#[tokio::test]
async fn time_travel_by_version_time_and_major() {
    let (_tmp, project, gateway) = setup(|s| s).await;
    let admin = Principal::local(&project.settings);
    let count = |sql: &'static str| {
        let gateway = &gateway;
        let admin = &admin;
        async move {
            let r = gateway
                .query(admin, sql, QueryPath::Cli)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            strings(&r.batches, "n")[0]
                .clone()
                .expect("count")
                .parse::<u64>()
                .expect("number")
        }
    };
    // Version 0 creates the table; 1 and 2 are the two ingests.
    assert_eq!(
        count("SELECT count(*) AS n FROM orders.orders_raw VERSION AS OF 1").await,
        40
    );
    assert_eq!(
        count("SELECT count(*) AS n FROM orders.orders_raw VERSION AS OF 2").await,
        60
    );
    assert_eq!(count("SELECT count(*) AS n FROM \"orders.orders_raw@v1@1\"").await, 40);
    assert_eq!(count("SELECT count(*) AS n FROM orders.orders_raw@v1").await, 60);
    // A time after the last commit reads the newest version; one before the first fails.
    assert_eq!(
        count("SELECT count(*) AS n FROM orders.orders_raw FOR SYSTEM_TIME AS OF '2100-01-01T00:00:00Z'").await,
        60
    );
    assert_eq!(
        count("SELECT count(*) AS n FROM orders.orders_raw TIMESTAMP AS OF '2100-01-01 00:00:00'").await,
        60
    );
    let err = gateway
        .query(
            &admin,
            "SELECT * FROM orders.orders_raw FOR SYSTEM_TIME AS OF '2001-01-01T00:00:00Z'",
            QueryPath::Cli,
        )
        .await
        .expect_err("before the table existed");
    assert!(matches!(err, Error::TimeTravel { .. }), "{err}");
    let err = gateway
        .query(
            &admin,
            "SELECT * FROM orders.orders_raw VERSION AS OF 99",
            QueryPath::Cli,
        )
        .await
        .expect_err("no such version");
    assert!(matches!(err, Error::TimeTravel { .. }), "{err}");
    let err = gateway
        .query(&admin, "SELECT * FROM orders.orders_raw@v7", QueryPath::Cli)
        .await
        .expect_err("no such major");
    assert!(err.to_string().contains("orders.orders_raw@v1"), "{err}");
    // Masks and filters hold in the past too.
    let r = gateway
        .query(
            &principal(&project, "orders-analysts"),
            "SELECT customer_email FROM orders.orders_raw VERSION AS OF 1",
            QueryPath::Cli,
        )
        .await
        .expect("past read");
    assert_eq!(r.rows, 40);
    assert!(strings(&r.batches, "customer_email").iter().all(Option::is_none));
}

#[tokio::test]
async fn every_read_is_audited_and_only_admins_read_the_audit() {
    let (_tmp, project, gateway) = setup(|s| s).await;
    let analyst = principal(&project, "orders-analysts");
    gateway
        .query(&analyst, "SELECT order_id, status FROM orders.orders", QueryPath::Http)
        .await
        .expect("read");
    gateway
        .query(&analyst, "SELECT * FROM web.clicks", QueryPath::Postgres)
        .await
        .expect_err("denied");
    let admin = Principal::local(&project.settings);
    let r = gateway
        .query(
            &admin,
            "SELECT principal, path, outcome, rows, products, columns, query FROM _trib.audit \
             WHERE principal = 'test:orders-analysts' ORDER BY at",
            QueryPath::Cli,
        )
        .await
        .expect("admin reads the audit");
    assert_eq!(
        strings(&r.batches, "outcome"),
        [Some("ok".into()), Some("denied".into())]
    );
    assert_eq!(
        strings(&r.batches, "path"),
        [Some("http".into()), Some("postgres".into())]
    );
    assert_eq!(strings(&r.batches, "rows")[0].as_deref(), Some("60"));
    let list = |name: &str| -> Vec<String> {
        let column = r.batches[0].column_by_name(name).expect("list column");
        let values = column.as_list::<i32>().value(0);
        let values = arrow::compute::cast(&values, &arrow::datatypes::DataType::Utf8).expect("text");
        values.as_string::<i32>().iter().flatten().map(String::from).collect()
    };
    assert_eq!(list("products"), ["orders.orders@v1"]);
    let cols = list("columns");
    let cols: BTreeSet<&str> = cols.iter().map(String::as_str).collect();
    assert_eq!(
        cols,
        ["orders.orders@v1.order_id", "orders.orders@v1.status"]
            .into_iter()
            .collect()
    );
    let err = gateway
        .query(&analyst, "SELECT * FROM _trib.audit", QueryPath::Cli)
        .await
        .expect_err("not an admin");
    assert!(matches!(err, Error::NotPermitted { .. }), "{err}");
    // Acting as a role is for admins, and then sees what the role sees.
    assert!(analyst.act_as("customer-care", &project.settings).is_err());
    let as_care = admin.act_as("customer-care", &project.settings).expect("admin acts");
    assert!(!as_care.admin);
}

#[tokio::test]
async fn admins_explain_plans_through_the_same_views() {
    let (_tmp, project, gateway) = setup(|s| s).await;
    let admin = Principal::local(&project.settings);
    let sql = "EXPLAIN SELECT order_id, customer_email FROM orders.orders WHERE amount > 20";
    let plan = |batches: &[RecordBatch]| {
        strings(batches, "plan")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n")
    };

    let own = gateway
        .query(&admin, sql, QueryPath::Cli)
        .await
        .expect("admin explains");
    assert_eq!(
        strings(&own.batches, "plan_type")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        ["logical_plan", "physical_plan"]
    );
    let own = plan(&own.batches);
    assert!(own.contains("customer_email") && !own.contains("country IN"), "{own}");

    // Acting as a role, the plan is the role's: its row filter, its masked column.
    let as_eu = admin.act_as("eu-analysts", &project.settings).expect("acts");
    let err = gateway
        .query(&as_eu, sql, QueryPath::Cli)
        .await
        .expect_err("the column is hidden");
    assert!(err.to_string().contains("customer_email"), "{err}");
    let eu = gateway
        .query(&as_eu, "EXPLAIN SELECT order_id FROM orders.orders", QueryPath::Cli)
        .await
        .expect("explained as the role");
    let eu = plan(&eu.batches);
    assert!(eu.contains("country"), "the row filter is in the plan: {eu}");
    let as_analysts = admin.act_as("orders-analysts", &project.settings).expect("acts");
    let masked = gateway
        .query(&as_analysts, sql, QueryPath::Cli)
        .await
        .expect("explained");
    let masked = plan(&masked.batches);
    assert!(masked.contains("NULL"), "the mask is in the plan: {masked}");

    // EXPLAIN ANALYZE runs the query and reports what it did.
    let analyzed = gateway
        .query(
            &admin,
            "EXPLAIN ANALYZE SELECT count(*) FROM orders.orders",
            QueryPath::Cli,
        )
        .await
        .expect("analyze");
    let analyzed = plan(&analyzed.batches);
    assert!(analyzed.contains("output_rows"), "{analyzed}");

    // Only a query can be explained, and only by admins.
    for (who, sql) in [
        (&admin, "EXPLAIN DROP TABLE orders.orders"),
        (&admin, "EXPLAIN SELECT * FROM web.clicks_missing"),
        (&principal(&project, "orders-analysts"), "EXPLAIN ANALYZE SELECT 1"),
    ] {
        let err = gateway.query(who, sql, QueryPath::Cli).await.expect_err(sql);
        assert!(err.is_user_error() || err.is_denied(), "{sql}: {err}");
    }
}

#[tokio::test]
async fn queries_are_split_into_the_configured_number_of_parts() {
    let sql = "EXPLAIN SELECT status, count(*) FROM orders.orders GROUP BY status";
    let plan = |gateway: Gateway, project: Project| async move {
        let admin = Principal::local(&project.settings);
        let r = gateway.query(&admin, sql, QueryPath::Cli).await.expect("explain");
        strings(&r.batches, "plan")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (_tmp, project, gateway) =
        setup(|s| s.replace("query_timeout_s = 300", "query_timeout_s = 300\nquery_partitions = 3")).await;
    assert_eq!(project.settings.access.query_partitions, Some(3));
    let three = plan(gateway, project).await;
    assert!(three.contains("Hash([status@0], 3)"), "{three}");

    // Unset, one per core.
    let (_tmp, project, gateway) = setup(|s| s).await;
    let parts = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(project.settings.access.partitions(), parts);
    let default = plan(gateway, project).await;
    assert!(default.contains(&format!("Hash([status@0], {parts})")), "{default}");

    // DataFusion's own options, from `[access.engine]`: aggregations not repartitioned.
    let (_tmp, project, gateway) = setup(|s| {
        s.replace("query_timeout_s = 300", "query_timeout_s = 300\nquery_partitions = 3")
            + "\n[access.engine]\n\"datafusion.optimizer.repartition_aggregations\" = false\n"
    })
    .await;
    let whole = plan(gateway, project).await;
    assert!(
        !whole.contains("Hash([status@0]") && whole.contains("AggregateExec"),
        "{whole}"
    );
}

#[tokio::test]
async fn joins_split_by_key_only_with_more_than_two_parts_unless_set() {
    let sql = "EXPLAIN SELECT r.status, count(*) FROM orders.orders o \
               JOIN orders.orders_raw r ON o.order_id = r.order_id GROUP BY r.status";
    // DataFusion collects a small build side whatever the setting; with no threshold,
    // only the setting decides.
    let engine = "\n[access.engine]\n\"datafusion.optimizer.hash_join_single_partition_threshold\" = 0\n\
                  \"datafusion.optimizer.hash_join_single_partition_threshold_rows\" = 0\n";
    for (partitions, extra, mode) in [
        (2, "", "mode=CollectLeft"),
        (3, "", "mode=Partitioned"),
        (
            2,
            "\"datafusion.optimizer.repartition_joins\" = true\n",
            "mode=Partitioned",
        ),
    ] {
        let (_tmp, project, gateway) = setup(|s| {
            s.replace(
                "query_timeout_s = 300",
                &format!("query_timeout_s = 300\nquery_partitions = {partitions}"),
            ) + engine
                + extra
        })
        .await;
        let admin = Principal::local(&project.settings);
        let r = gateway.query(&admin, sql, QueryPath::Cli).await.expect("explain");
        let plan = strings(&r.batches, "plan")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
        assert!(plan.contains(mode), "{partitions} parts {extra}: {plan}");
        let answer = gateway
            .query(&admin, sql.trim_start_matches("EXPLAIN "), QueryPath::Cli)
            .await
            .expect("query");
        assert_eq!(answer.rows, 1, "every order is placed");
    }
}

#[tokio::test]
async fn engine_options_outside_planning_and_running_or_unknown_are_refused_at_start() {
    for (option, said) in [
        (
            "\"datafusion.catalog.information_schema\" = true",
            "not an option queries may set",
        ),
        ("\"datafusion.optimizer.no_such_option\" = 1", "no_such_option"),
        ("\"datafusion.execution.batch_size\" = \"many\"", "batch_size = many"),
    ] {
        let (tmp, project) = trib_test::example(|s| s + "\n[access.engine]\n" + option + "\n");
        let lake = Lake::from_settings(&project.settings.storage, &project.dir).expect("lake");
        let err = Gateway::new(lake, &project)
            .err()
            .unwrap_or_else(|| panic!("{option} accepted"));
        let text = err.to_string();
        assert!(
            text.contains("[access.engine]") && text.contains(said) && text.contains("hint:"),
            "{text}"
        );
        drop(tmp);
    }
}

#[tokio::test]
async fn the_next_query_sees_each_new_commit() {
    let (_tmp, project, gateway) = setup(|s| s).await;
    let admin = Principal::local(&project.settings);
    let lake = Lake::from_settings(&project.settings.storage, &project.dir).expect("lake");
    let count = || async {
        let r = gateway
            .query(&admin, "SELECT count(*) AS n FROM orders.orders_raw", QueryPath::Cli)
            .await
            .expect("count");
        strings(&r.batches, "n")[0].clone().expect("n")
    };
    // Twice without a commit between (the second reuses what the first read), then
    // after each of two commits.
    assert_eq!(count().await, "60");
    assert_eq!(count().await, "60");
    ingest(&lake, &project, 60..75).await;
    assert_eq!(count().await, "75");
    ingest(&lake, &project, 75..76).await;
    assert_eq!(count().await, "76");
    assert_eq!(count().await, "76");
}

#[tokio::test]
async fn the_catalog_lists_only_what_the_caller_may_read() {
    let (_tmp, project, gateway) = setup(|s| s).await;
    let tables = |who: Principal| {
        let gateway = &gateway;
        async move {
            let r = gateway
                .query(
                    &who,
                    "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables \
                     WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY t",
                    QueryPath::Postgres,
                )
                .await
                .expect("catalog");
            strings(&r.batches, "t").into_iter().flatten().collect::<Vec<_>>()
        }
    };
    assert_eq!(tables(principal(&project, "eu-analysts")).await, ["orders.orders"]);
    assert_eq!(
        tables(principal(&project, "marketing")).await,
        ["web.clicks", "web.clicks_raw", "web.page_views_hourly"]
    );
    let all = tables(Principal::local(&project.settings)).await;
    assert_eq!(all.len(), project.contracts().count(), "{all:?}");

    // Columns as the caller sees them: hidden ones are not listed.
    let columns = gateway
        .query(
            &principal(&project, "eu-analysts"),
            "SELECT column_name FROM information_schema.columns \
             WHERE table_schema = 'orders' AND table_name = 'orders' ORDER BY ordinal_position",
            QueryPath::Http,
        )
        .await
        .expect("columns");
    let names: Vec<String> = strings(&columns.batches, "column_name").into_iter().flatten().collect();
    assert!(
        names.contains(&"order_id".to_string()) && !names.contains(&"customer_email".to_string()),
        "{names:?}"
    );

    // psql's `\\dt`, as it sends it.
    let dt = "SELECT n.nspname as \"Schema\", c.relname as \"Name\", \
        CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' END as \"Type\", \
        pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\" \
        FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
        LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam \
        WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' \
        AND n.nspname <> 'information_schema' AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2;";
    let r = gateway
        .query(&principal(&project, "orders-analysts"), dt, QueryPath::Postgres)
        .await
        .expect("\\dt");
    let names: Vec<String> = strings(&r.batches, "Name").into_iter().flatten().collect();
    assert_eq!(names, ["daily_revenue", "orders", "orders_raw"]);
    assert!(
        strings(&r.batches, "Owner")
            .iter()
            .all(|o| o.as_deref() == Some("orders-data-team"))
    );
}

#[tokio::test]
async fn queries_run_under_a_memory_limit() {
    let (_tmp, project, gateway) = setup(|s| s.replace("query_memory_mb = 2048", "query_memory_mb = 1")).await;
    // Collecting every order id into one list per row of a cross join cannot spill.
    let err = gateway
        .query(
            &Principal::local(&project.settings),
            "SELECT a.order_id, array_agg(b.order_id || c.order_id) FROM orders.orders a, orders.orders b, orders.orders c GROUP BY a.order_id",
            QueryPath::Cli,
        )
        .await
        .expect_err("over the limit");
    assert!(matches!(err, Error::MemoryLimit { limit_mb: 1 }), "{err}");
}

#[tokio::test]
async fn queries_stop_at_their_time_limit() {
    let (_tmp, project, gateway) = setup(|s| s.replace("query_timeout_s = 300", "query_timeout_s = 1")).await;
    let started = std::time::Instant::now();
    // 60^5 rows of a cross join: far more than a second's work.
    let err = gateway
        .query(
            &Principal::local(&project.settings),
            "SELECT count(*) FROM orders.orders a, orders.orders b, orders.orders c, orders.orders d, orders.orders e \
             WHERE a.amount + b.amount + c.amount + d.amount + e.amount > 0",
            QueryPath::Cli,
        )
        .await
        .expect_err("over the time limit");
    assert!(matches!(err, Error::Timeout { seconds: 1 }), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn filters_without_columns_are_not_dropped() {
    // delta-rs takes a filter that names no column as one it applies itself; it does not.
    let (_tmp, project, gateway) = setup(|s| s).await;
    let count = |who: Principal, sql: &'static str| {
        let gateway = &gateway;
        async move {
            let r = gateway
                .query(&who, sql, QueryPath::Cli)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            strings(&r.batches, "n")[0]
                .clone()
                .expect("count")
                .parse::<u64>()
                .expect("number")
        }
    };
    let admin = || Principal::local(&project.settings);
    assert_eq!(
        count(
            admin(),
            "SELECT count(*) AS n FROM orders.orders WHERE amount > 0 AND NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            admin(),
            "SELECT count(*) AS n FROM orders.orders_raw WHERE amount > 0 AND NULL"
        )
        .await,
        0
    );
    // A comparison on a masked column compares NULL: no row matches, none is revealed.
    let analyst = || principal(&project, "orders-analysts");
    assert_eq!(
        count(
            analyst(),
            "SELECT count(*) AS n FROM orders.orders WHERE customer_email = 'c1@example.com'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            analyst(),
            "SELECT count(*) AS n FROM orders.orders WHERE customer_email IS NULL"
        )
        .await,
        60
    );
}

#[tokio::test]
async fn a_row_filter_the_files_statistics_decide_is_applied_by_the_files_read() {
    // Bronze readable by eu-analysts with a row filter on the amount. Orders 0 to 39
    // (amounts 10.50 to 49.50) and 40 to 59 (50.50 to 69.50) land in a file each, so
    // the log's ranges show the filter false for every row of the first and true for
    // every row of the second.
    let (tmp, _) = trib_test::example(|s| s);
    let contract = tmp.path().join("products/orders/orders_raw.yaml");
    let text = std::fs::read_to_string(&contract).expect("contract");
    let text = text.replace(
        "  - { role: customer-care, level: read }\n",
        "  - { role: customer-care, level: read }\n  - { role: eu-analysts, level: read, row_filter: \"amount >= 50\" }\n",
    );
    std::fs::write(&contract, text).expect("contract");
    let project = trib_spec::load_project(tmp.path()).expect("project");
    assert!(!project.diagnostics.has_errors(), "{:?}", project.diagnostics);
    let lake = Lake::from_settings(&project.settings.storage, &project.dir).expect("lake");
    ingest(&lake, &project, 0..40).await;
    ingest(&lake, &project, 40..60).await;
    let gateway = Gateway::new(lake, &project).expect("gateway");
    let eu = principal(&project, "eu-analysts");

    let r = gateway
        .query(&eu, "SELECT order_id FROM orders.orders_raw ORDER BY 1", QueryPath::Cli)
        .await
        .expect("read");
    let want: Vec<Option<String>> = (40..60).map(|i| Some(format!("o-{i:03}"))).collect();
    assert_eq!(strings(&r.batches, "order_id"), want);
    for (sql, rows) in [
        ("SELECT count(*) AS n FROM orders.orders_raw", 20),
        // A filter of the reader's own cannot widen it, decided or not.
        ("SELECT count(*) AS n FROM orders.orders_raw WHERE amount < 60", 10),
        ("SELECT count(*) AS n FROM orders.orders_raw WHERE amount >= 0", 20),
        (
            "SELECT count(*) AS n FROM orders.orders_raw WHERE NOT (amount >= 50)",
            0,
        ),
    ] {
        let r = gateway.query(&eu, sql, QueryPath::Cli).await.expect(sql);
        let n = r.batches[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0);
        assert_eq!(n, rows, "{sql}");
    }

    // The role's plan reads the second file only and filters no rows.
    let as_eu = Principal::local(&project.settings)
        .act_as("eu-analysts", &project.settings)
        .expect("acts");
    let explained = gateway
        .query(&as_eu, "EXPLAIN SELECT order_id FROM orders.orders_raw", QueryPath::Cli)
        .await
        .expect("explained");
    let plan = plan_text(&explained.batches);
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(scan.matches(".parquet").count(), 1, "{plan}");
    assert!(!plan.contains("FilterExec"), "{plan}");
    // With a filter the files do not decide, the rows are filtered as before.
    let explained = gateway
        .query(
            &as_eu,
            "EXPLAIN SELECT order_id FROM orders.orders_raw WHERE amount < 60",
            QueryPath::Cli,
        )
        .await
        .expect("explained");
    let plan = plan_text(&explained.batches);
    assert!(plan.contains("FilterExec"), "{plan}");
}

#[tokio::test]
async fn a_cte_named_twice_is_computed_once_through_the_callers_views() {
    let (_tmp, project, gateway) = setup(|s| s).await;
    let admin = Principal::local(&project.settings);
    // The countries with the largest total, by a CTE named twice.
    let shared = "WITH per AS (SELECT country, sum(amount) AS total, count(*) AS n FROM orders.orders GROUP BY country) \
                  SELECT p.country, p.total, p.n FROM per p WHERE p.total = (SELECT max(total) FROM per) ORDER BY 1";
    // The same question without a CTE, which is planned as it is written.
    let inline = "SELECT country, sum(amount) AS total, count(*) AS n FROM orders.orders GROUP BY country \
                  HAVING sum(amount) = (SELECT max(t) FROM (SELECT sum(amount) AS t FROM orders.orders GROUP BY country)) \
                  ORDER BY 1";
    let explain = |who: Principal, sql: String| {
        let gateway = &gateway;
        async move {
            plan_text(
                &gateway
                    .query(&who, &format!("EXPLAIN {sql}"), QueryPath::Cli)
                    .await
                    .expect("explain")
                    .batches,
            )
        }
    };
    let plan = explain(admin.clone(), shared.into()).await;
    assert!(plan.contains("CteExec: per, computed once for 2 references"), "{plan}");
    // The orders are read inside the CTE only: no scan of them is left in the plan.
    assert!(!plan.contains("DataSourceExec"), "{plan}");
    let plan = explain(admin.clone(), inline.into()).await;
    assert_eq!(plan.matches("DataSourceExec").count(), 2, "{plan}");

    let rows = |r: &trib_access::QueryResult| ["country", "total", "n"].map(|c| strings(&r.batches, c));
    // Orders 0..60 cycle through six countries; the amounts grow with the order, so
    // the last country in the cycle (JP: orders 5, 11, …, 59) has the largest total.
    for who in [admin.clone(), principal(&project, "eu-analysts")] {
        let got = gateway.query(&who, shared, QueryPath::Cli).await.expect("shared");
        let want = gateway.query(&who, inline, QueryPath::Cli).await.expect("inline");
        assert_eq!(rows(&got), rows(&want), "{}", who.name);
        assert_eq!(got.rows, 1, "{}", who.name);
    }
    let jp = gateway.query(&admin, shared, QueryPath::Cli).await.expect("admin");
    assert_eq!(strings(&jp.batches, "country"), [Some("JP".into())]);
    // The row filter holds inside the CTE: the European country with the largest total.
    let eu = gateway
        .query(&principal(&project, "eu-analysts"), shared, QueryPath::Cli)
        .await
        .expect("eu");
    assert_eq!(strings(&eu.batches, "country"), [Some("NL".into())]);
    // And so does the mask: a CTE of emails, named twice, holds no email in clear.
    let emails = "WITH e AS (SELECT customer_email, count(*) AS n FROM orders.orders GROUP BY customer_email) \
                  SELECT a.customer_email, b.n FROM e a JOIN e b ON a.n = b.n";
    let analysts = principal(&project, "orders-analysts");
    let masked = gateway.query(&analysts, emails, QueryPath::Cli).await.expect("masked");
    assert!(masked.rows > 0);
    assert!(strings(&masked.batches, "customer_email").iter().all(Option::is_none));
    let as_analysts = admin.act_as("orders-analysts", &project.settings).expect("acts");
    assert!(explain(as_analysts, emails.into()).await.contains("CteExec: e"));

    // Not shared: a CTE named once, one that does not aggregate, one with a volatile
    // function.
    for sql in [
        "WITH per AS (SELECT country, sum(amount) AS total FROM orders.orders GROUP BY country) SELECT * FROM per",
        "WITH o AS (SELECT order_id, amount FROM orders.orders) SELECT a.order_id FROM o a JOIN o b ON a.order_id = b.order_id",
        "WITH r AS (SELECT country, sum(amount) * random() AS total FROM orders.orders GROUP BY country) \
         SELECT a.country FROM r a JOIN r b ON a.country = b.country",
    ] {
        let plan = explain(admin.clone(), sql.into()).await;
        assert!(!plan.contains("CteExec"), "{sql}: {plan}");
    }

    // A UNION's types are settled after planning: such a CTE is shared only if the
    // rows it computes have the columns its references were planned with.
    let union = gateway
        .query(
            &admin,
            "WITH r AS (SELECT 1 AS x UNION SELECT 2.5) SELECT a.x FROM r a JOIN r b ON a.x = b.x ORDER BY 1",
            QueryPath::Cli,
        )
        .await
        .expect("union");
    assert_eq!(strings(&union.batches, "x"), [Some("1.0".into()), Some("2.5".into())]);

    // The audit names the columns the CTE read, not the names it gave them, and keeps
    // those of a product whose domain the CTE is named after.
    let audited = |query: &'static str| {
        let (gateway, admin, analysts) = (&gateway, &admin, &analysts);
        async move {
            gateway.query(analysts, query, QueryPath::Http).await.expect("read");
            let audit = gateway
                .query(
                    admin,
                    &format!(
                        "SELECT columns FROM _trib.audit WHERE principal = 'test:orders-analysts' AND query = '{}'",
                        query.replace('\'', "''")
                    ),
                    QueryPath::Cli,
                )
                .await
                .expect("audit");
            let column = audit.batches[0].column_by_name("columns").expect("columns");
            let values = column.as_list::<i32>().value(0);
            let values = arrow::compute::cast(&values, &arrow::datatypes::DataType::Utf8).expect("text");
            values
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(String::from)
                .collect::<BTreeSet<String>>()
        }
    };
    let want = |cols: &[&str]| {
        cols.iter()
            .map(|c| format!("orders.orders@v1.{c}"))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(audited(shared).await, want(&["amount", "country"]));
    let named_like_the_domain = "WITH orders AS (SELECT country, count(*) AS n FROM orders.orders GROUP BY country) \
         SELECT o.order_id FROM orders.orders o JOIN orders a ON a.country = o.country JOIN orders b ON b.country = o.country";
    assert!(
        explain(admin.clone(), named_like_the_domain.into())
            .await
            .contains("CteExec: orders")
    );
    assert_eq!(audited(named_like_the_domain).await, want(&["country", "order_id"]));
}
