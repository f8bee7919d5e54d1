//! `trib query` and `trib token` as a user runs them: the same product read as the
//! local admin, as roles, and with tokens; refusals; formats; the audit.

use crate::Example;

const COUNTRIES: [&str; 3] = ["DE", "US", "FR"];

/// The example project with 9 orders carried to silver.
pub(crate) fn orders() -> Example {
    let ex = Example::init();
    let body: String = (0..9)
        .map(|i| {
            format!(
                "{{\"order_id\":\"o-{i}\",\"customer_id\":\"c-{i}\",\"customer_email\":\"c{i}@example.com\",\"country\":\"{}\",\"status\":\"paid\",\"amount\":\"1{i}.00\",\"currency\":\"EUR\",\"ordered_at\":\"2026-03-15T10:0{i}:00Z\",\"updated_at\":\"2026-03-15T10:0{i}:00Z\"}}\n",
                COUNTRIES[i % 3]
            )
        })
        .collect();
    std::fs::write(ex.path("orders.ndjson"), body).expect("write");
    let run = ex.trib(&["ingest", "orders.orders_raw", "orders.ndjson"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = ex.trib(&["run", "--select", "orders.orders"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    ex
}

fn json(stdout: &str) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
        .as_array()
        .expect("array")
        .clone()
}

#[test]
fn roles_tokens_formats_and_refusals() {
    let ex = orders();
    let sql = "SELECT order_id, country, customer_email FROM orders.orders ORDER BY order_id";

    // The local identity is admin by default: everything, in clear.
    let run = ex.trib(&["query", sql, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json(&run.stdout);
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[0]["customer_email"], "c0@example.com");

    // As a role without PII clearance: the column is there, null, with a warning.
    let run = ex.trib(&["query", sql, "--format", "json", "--as", "orders-analysts"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json(&run.stdout);
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r["customer_email"].is_null()), "{rows:?}");
    assert!(run.stderr.contains("masked"), "{}", run.stderr);

    // As a filtered role, the hidden column is not there at all.
    let run = ex.trib(&["query", sql, "--as", "eu-analysts"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("customer_email"), "{}", run.stderr);
    assert!(!run.stderr.contains("@example.com"), "{}", run.stderr);
    let run = ex.trib(&[
        "query",
        "SELECT order_id, country FROM orders.orders ORDER BY order_id",
        "--format",
        "csv",
        "--as",
        "eu-analysts",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "order_id,country\no-0,DE\no-2,FR\no-3,DE\no-5,FR\no-6,DE\no-8,FR\n"
    );

    // No grant.
    let run = ex.trib(&["query", sql, "--as", "marketing"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("may not read `orders.orders`"), "{}", run.stderr);
    // Not a read.
    let run = ex.trib(&["query", "DROP TABLE orders.orders"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("read-only"), "{}", run.stderr);

    // Tokens: created once, stored hashed, used, revoked.
    let run = ex.trib(&["token", "create", "bi", "--role", "eu-analysts", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = serde_json::from_str::<serde_json::Value>(&run.stdout).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(!ex.read(".trib/tokens.json").contains(&token));
    let count = "SELECT count(*) AS n FROM orders.orders";
    let run = ex.trib(&["query", count, "--format", "json", "--token", &token]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(json(&run.stdout)[0]["n"], 6);
    let run = ex.trib(&["token", "list", "--format", "json"]);
    assert!(
        run.stdout.contains("\"bi\"") && !run.stdout.contains(&token),
        "{}",
        run.stdout
    );
    let run = ex.trib(&["token", "create", "x", "--role", "eu-analyst"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("did you mean `eu-analysts`"), "{}", run.stderr);
    assert_eq!(ex.trib(&["token", "revoke", "bi"]).code, 0);
    let run = ex.trib(&["query", count, "--token", &token]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);

    // Binary formats go to files, not terminals; here stdout is a pipe.
    let run = ex.trib(&["query", count, "--format", "parquet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("PAR1"));

    // The audit holds every query above, refused ones too; only admins read it.
    let run = ex.trib(&[
        "query",
        "SELECT outcome, count(*) AS n FROM _trib.audit GROUP BY outcome ORDER BY outcome",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcomes = json(&run.stdout);
    let n = |o: &str| {
        outcomes
            .iter()
            .find(|r| r["outcome"] == o)
            .and_then(|r| r["n"].as_u64())
            .unwrap_or(0)
    };
    // Five answered, one refused for want of a grant, two mistakes (a hidden column,
    // DROP); the revoked token never reached the gateway.
    assert_eq!((n("ok"), n("denied"), n("error")), (5, 1, 2), "{outcomes:?}");

    // A non-admin local identity cannot act as another role, nor read the audit.
    ex.edit(
        "trib.toml",
        "# local_roles = [\"orders-analysts\"]",
        "local_roles = [\"orders-analysts\"]",
    );
    let run = ex.trib(&["query", count, "--as", "customer-care"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("act as role"), "{}", run.stderr);
    let run = ex.trib(&["query", "SELECT * FROM _trib.audit"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("may not read the audit"), "{}", run.stderr);
}
