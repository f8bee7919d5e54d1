//! One matrix over every door to the data: the CLI, HTTP SQL, HTTP rows, `psql` and
//! psycopg over the Postgres protocol, each as the owning team, a reader without PII
//! clearance, a reader with a row filter, and a stranger. Every door must show each
//! role exactly the same columns and rows.

use crate::Example;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

/// A result reduced to what the matrix compares: the column names, and per row the
/// text of the columns that matter (absent when the column is absent).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Rows {
        columns: BTreeSet<String>,
        rows: Vec<BTreeMap<String, Option<String>>>,
    },
    Refused(String),
}

const COMPARED: [&str; 4] = ["order_id", "country", "customer_email", "amount"];

fn reduce(columns: Vec<String>, rows: Vec<BTreeMap<String, Option<String>>>) -> Seen {
    let rows = rows
        .into_iter()
        .map(|r| r.into_iter().filter(|(k, _)| COMPARED.contains(&k.as_str())).collect())
        .collect();
    Seen::Rows {
        columns: columns.into_iter().collect(),
        rows,
    }
}

fn from_json_rows(rows: &[serde_json::Value]) -> (Vec<String>, Vec<BTreeMap<String, Option<String>>>) {
    let mut columns = Vec::new();
    let mut out = Vec::new();
    for r in rows {
        let o = r.as_object().expect("row object");
        if columns.is_empty() {
            columns = o.keys().cloned().collect();
        }
        out.push(
            o.iter()
                .map(|(k, v)| {
                    let text = match v {
                        serde_json::Value::Null => None,
                        serde_json::Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    };
                    (k.clone(), text)
                })
                .collect(),
        );
    }
    (columns, out)
}

fn python() -> Option<String> {
    let python = std::env::var("TRIB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import psycopg"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(python)
}

fn have_psql() -> bool {
    Command::new("psql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

const PSYCOPG: &str = r#"
import json, sys, psycopg
host, port, token, sql = sys.argv[1:5]
try:
    with psycopg.connect(host=host, port=int(port), user="matrix", password=token, dbname="tributary", sslmode="disable") as conn:
        cur = conn.execute(sql)
        names = [d.name for d in cur.description]
        rows = [{n: (None if v is None else str(v)) for n, v in zip(names, row)} for row in cur.fetchall()]
        print(json.dumps({"columns": names, "rows": rows}))
except psycopg.Error as e:
    print(json.dumps({"error": e.sqlstate, "message": str(e)}))
"#;

/// The five doors, as one role.
struct Doors<'a> {
    ex: &'a Example,
    http: String,
    pg: (String, String),
    python: String,
    rt: tokio::runtime::Runtime,
}

impl Doors<'_> {
    fn cli(&self, token: &str, sql: &str) -> Seen {
        let run = self.ex.trib(&["query", sql, "--format", "json", "--token", token]);
        if run.code != 0 {
            return Seen::Refused(run.stderr);
        }
        let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("json");
        let (columns, rows) = from_json_rows(&rows);
        reduce(columns, rows)
    }

    /// Sends an HTTP request as `token`: the JSON answer, or what refused it.
    fn http(&self, request: reqwest::RequestBuilder, token: &str) -> Result<serde_json::Value, Seen> {
        let (status, doc) = self.rt.block_on(async {
            let r = request.bearer_auth(token).send().await.expect("send");
            (r.status().as_u16(), r.json::<serde_json::Value>().await.expect("json"))
        });
        if status == 200 {
            Ok(doc)
        } else {
            Err(Seen::Refused(format!("{status} {doc}")))
        }
    }

    fn http_sql(&self, token: &str, sql: &str) -> Seen {
        let request = reqwest::Client::new()
            .post(format!("{}/v1/sql", self.http))
            .body(sql.to_string());
        let doc = match self.http(request, token) {
            Ok(doc) => doc,
            Err(refused) => return refused,
        };
        let columns = doc["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["name"].as_str().expect("name").to_string())
            .collect();
        let (_, rows) = from_json_rows(doc["rows"].as_array().expect("rows"));
        reduce(columns, rows)
    }

    fn http_rows(&self, token: &str) -> Seen {
        let request = reqwest::Client::new().get(format!("{}/v1/products/orders.orders/v1/rows?limit=1000", self.http));
        let doc = match self.http(request, token) {
            Ok(doc) => doc,
            Err(refused) => return refused,
        };
        let (columns, rows) = from_json_rows(doc["rows"].as_array().expect("rows"));
        reduce(columns, rows)
    }

    fn psql(&self, token: &str, sql: &str) -> Seen {
        let out = Command::new("psql")
            .arg(format!(
                "host={} port={} user=matrix dbname=tributary sslmode=disable",
                self.pg.0, self.pg.1
            ))
            .args([
                "-X",
                "-A",
                "-F",
                "\t",
                "-P",
                "footer=off",
                "-P",
                "null=\u{2205}",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", token)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("psql runs");
        if !out.status.success() {
            return Seen::Refused(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let columns: Vec<String> = lines.next().unwrap_or_default().split('\t').map(String::from).collect();
        let rows = lines
            .map(|l| {
                columns
                    .iter()
                    .cloned()
                    .zip(l.split('\t').map(|v| (v != "\u{2205}").then(|| v.to_string())))
                    .collect()
            })
            .collect();
        reduce(columns, rows)
    }

    fn psycopg(&self, token: &str, sql: &str) -> Seen {
        let out = Command::new(&self.python)
            .args(["-c", PSYCOPG, &self.pg.0, &self.pg.1, token, sql])
            .output()
            .expect("python runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        if let Some(code) = doc.get("error") {
            return Seen::Refused(format!("{code} {}", doc["message"]));
        }
        let columns = doc["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c.as_str().expect("name").to_string())
            .collect();
        let (_, rows) = from_json_rows(doc["rows"].as_array().expect("rows"));
        reduce(columns, rows)
    }

    /// What each door shows, by door name.
    fn all(&self, token: &str, sql: &str) -> Vec<(&'static str, Seen)> {
        vec![
            ("cli", self.cli(token, sql)),
            ("http sql", self.http_sql(token, sql)),
            ("http rows", self.http_rows(token)),
            ("psql", self.psql(token, sql)),
            ("psycopg", self.psycopg(token, sql)),
        ]
    }
}

#[test]
fn every_door_shows_each_role_the_same_share() {
    let ci = std::env::var_os("CI").is_some();
    let python = python();
    if !have_psql() || python.is_none() {
        assert!(!ci, "CI needs psql and psycopg (scripts/test.sh installs them)");
        eprintln!("skipping: psql or psycopg missing (scripts/test.sh installs them)");
        return;
    }
    let ex: Example = crate::query::orders();
    let mut tokens = BTreeMap::new();
    for (who, role) in [
        ("owner", "orders-data-team"),
        ("masked", "orders-analysts"),
        ("filtered", "eu-analysts"),
        ("stranger", "marketing"),
    ] {
        let run = ex.trib(&["token", "create", who, "--role", role]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        tokens.insert(who, run.stdout.trim().to_string());
    }
    let (mut server, http, pg) = crate::serve_with_addresses(
        &ex.dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--models-poll-ms",
            "0",
            "--pg-listen",
            "127.0.0.1:0",
        ],
        Stdio::null(),
    );
    let pg = pg.expect("postgres address");
    let (host, port) = pg.rsplit_once(':').expect("host:port");
    let doors = Doors {
        ex: &ex,
        http,
        pg: (host.to_string(), port.to_string()),
        python: python.unwrap_or_default(),
        rt: tokio::runtime::Runtime::new().expect("runtime"),
    };
    let sql = "SELECT * FROM orders.orders ORDER BY order_id";
    let countries = ["DE", "US", "FR"];
    let email = |i: usize| Some(format!("c{i}@example.com"));

    for (who, token) in &tokens {
        let seen = doors.all(token, sql);
        for (door, s) in &seen {
            match (*who, s) {
                ("stranger", Seen::Refused(why)) => {
                    assert!(
                        why.contains("may not read") || why.contains("42501") || why.contains("403"),
                        "{door}: {why}"
                    );
                }
                ("stranger", other) => panic!("{door} showed a stranger {other:?}"),
                (_, Seen::Refused(why)) => panic!("{door} refused {who}: {why}"),
                (_, Seen::Rows { columns, rows }) => {
                    let ids: Vec<String> = rows.iter().filter_map(|r| r["order_id"].clone()).collect();
                    let want: Vec<usize> = match *who {
                        "filtered" => (0..9).filter(|i| countries[i % 3] != "US").collect(),
                        _ => (0..9).collect(),
                    };
                    assert_eq!(
                        ids,
                        want.iter().map(|i| format!("o-{i}")).collect::<Vec<_>>(),
                        "{door} as {who}"
                    );
                    let emails: Vec<Option<String>> = rows
                        .iter()
                        .map(|r| r.get("customer_email").cloned().flatten())
                        .collect();
                    match *who {
                        "owner" => assert_eq!(emails, want.iter().map(|i| email(*i)).collect::<Vec<_>>(), "{door}"),
                        "masked" => {
                            assert!(columns.contains("customer_email"), "{door}: masked, not hidden");
                            assert!(emails.iter().all(Option::is_none), "{door}: {emails:?}");
                        }
                        _ => assert!(!columns.contains("customer_email"), "{door}: hidden for {who}"),
                    }
                    let amounts: Vec<Option<String>> = rows.iter().map(|r| r["amount"].clone()).collect();
                    assert_eq!(
                        amounts,
                        want.iter().map(|i| Some(format!("1{i}.00"))).collect::<Vec<_>>(),
                        "{door} as {who}"
                    );
                }
            }
        }
        // Whatever each door shows a role, every other door shows it too.
        if *who != "stranger" {
            for (door, s) in &seen[1..] {
                assert_eq!(s, &seen[0].1, "{door} differs from the CLI for {who}");
            }
        }
    }

    // Wrong and revoked tokens get nothing through any door.
    // The owner's token with its last character changed (to another one: a token that
    // already ends in `0` would otherwise be "forged" into itself).
    let owner = tokens["owner"].as_str();
    let last = if owner.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &owner[..owner.len() - 1]);
    assert_eq!(ex.trib(&["token", "revoke", "masked"]).code, 0);
    for token in [forged.as_str(), tokens["masked"].as_str(), "nonsense"] {
        for (door, s) in doors.all(token, sql) {
            assert!(matches!(s, Seen::Refused(_)), "{door} let in {token}: {s:?}");
        }
    }

    // psql lists and describes only what the role may read.
    let dt = Command::new("psql")
        .arg(format!(
            "host={host} port={port} user=matrix dbname=tributary sslmode=disable"
        ))
        .args(["-X", "-A", "-c", "\\dt", "-c", "\\d orders.orders"])
        .env("PGPASSWORD", &tokens["filtered"])
        .output()
        .expect("psql");
    let text = String::from_utf8_lossy(&dt.stdout);
    assert!(dt.status.success(), "{}", String::from_utf8_lossy(&dt.stderr));
    assert!(text.contains("orders|orders|table|orders-data-team"), "{text}");
    assert!(!text.contains("orders_raw") && !text.contains("clicks"), "{text}");
    assert!(text.contains("amount|numeric(12,2)"), "{text}");
    assert!(!text.contains("customer_email"), "{text}");

    let _ = server.kill();
    let _ = server.wait();
}
