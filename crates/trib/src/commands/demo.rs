//! `trib demo`: builds the example project and runs every capability on it, printing
//! what it did. It grows with each capability Tributary gains.

use crate::Outcome;
use crate::cli::{DemoArgs, GlobalArgs};
use anyhow::{Context, Result, bail};
use std::path::Path;

const MARKER: &str = ".trib-demo";

pub fn run(_g: &GlobalArgs, args: &DemoArgs) -> Result<Outcome> {
    let dir = &args.dir;
    prepare(dir)?;
    let name = "demo";
    let files = crate::template::write(dir, name)?;
    std::fs::write(
        dir.join(MARKER),
        "created by `trib demo`; the next `trib demo` replaces this directory\n",
    )?;
    println!("== 1. project");
    println!(
        "created `{}` with {files} files: e-commerce (orders, clickstream), IoT and finance domains",
        dir.display()
    );

    println!("\n== 2. contracts, models and policies (trib check)");
    let report = match super::run_checks(dir, None, false)? {
        Ok(r) => r,
        Err(d) => return Err(super::fatal(*d)),
    };
    if report.diagnostics.has_errors() {
        eprint!(
            "{}",
            crate::render::snippets(&report.diagnostics, &report.project.sources)
        );
        bail!("the example project does not pass its own checks");
    }
    let project = &report.project;
    println!(
        "{} products, {} SQL models, {} policies: {}",
        project.contracts().count(),
        project.models.len(),
        report.policies,
        crate::render::summary(&report.diagnostics)
    );
    for layer in [
        trib_spec::Layer::Bronze,
        trib_spec::Layer::Silver,
        trib_spec::Layer::Gold,
        trib_spec::Layer::View,
    ] {
        let names: Vec<String> = project
            .contracts()
            .filter(|c| c.layer == layer)
            .map(|c| c.product.value.to_string())
            .collect();
        if !names.is_empty() {
            println!("  {:<7} {}", layer.to_string(), names.join(", "));
        }
    }

    println!("\n== 3. lineage (inputs of each model)");
    for c in project.contracts() {
        if !c.inputs().is_empty() {
            let inputs: Vec<String> = c.inputs().iter().map(|i| i.value.to_string()).collect();
            println!("  {} ← {}", c.product.value, inputs.join(", "));
        }
    }

    println!("\n== 4. one product (trib show orders.orders)");
    let orders: trib_spec::ProductName = "orders.orders".parse()?;
    let contract = project
        .latest(&orders)
        .context("the example has `orders.orders`")?
        .clone();
    print!("{}", super::show::describe(project, &contract));

    println!("\n== 5. mistakes in a contract, all reported in one run");
    let orders_path = dir.join("products/orders/orders.yaml");
    let orders_text = std::fs::read_to_string(&orders_path)?;
    let typo = orders_text
        .replace("sequence_by: updated_at", "sequense_by: updated_at")
        .replace(
            "{ name: amount, type: \"decimal(12,2)\"",
            "{ name: amount, type: \"decimal(12 2)\"",
        )
        .replace("key: [order_id]", "key: [order_no]");
    std::fs::write(&orders_path, &typo)?;
    let found = match super::run_checks(dir, None, false)? {
        Ok(r) => r,
        Err(d) => return Err(super::fatal(*d)),
    };
    std::fs::write(&orders_path, &orders_text)?;
    if found.diagnostics.error_count() < 3 {
        bail!("the three mistakes were not all reported: {:?}", found.diagnostics);
    }
    for line in crate::render::snippets(&found.diagnostics, &found.project.sources).lines() {
        println!("  {line}");
    }

    println!("\n== 6. governance: a PII product without access roles");
    let raw_path = dir.join("products/orders/orders_raw.yaml");
    let original = std::fs::read_to_string(&raw_path)?;
    let without_access = strip_block(&original, "access:");
    std::fs::write(&raw_path, &without_access)?;
    let caught = match super::run_checks(dir, None, false)? {
        Ok(r) => r.diagnostics,
        Err(d) => return Err(super::fatal(*d)),
    };
    std::fs::write(&raw_path, &original)?;
    let policy_hits: Vec<_> = caught.iter().filter(|d| d.code.starts_with("policy::")).collect();
    if policy_hits.is_empty() {
        bail!("the PII policy did not catch a product without access roles");
    }
    for d in &policy_hits {
        let at = d
            .location
            .as_ref()
            .map(|l| format!("{}:{}: ", l.file, l.line))
            .unwrap_or_default();
        println!("  caught: {at}[{}] {}", d.code, d.message);
    }

    println!("\n== 7. breaking change detection (trib diff)");
    let old = super::diff::load_contract(
        "orders.yaml@1.0.0",
        std::fs::read_to_string(dir.join("products/orders/orders.yaml"))?,
    )?;
    let changed_text = old
        .text
        .replace(
            "  - { name: customer_email, type: string, pii: true, classification: confidential }\n",
            "",
        )
        .replace(
            "{ name: country, type: string }",
            "{ name: country, type: string, required: true }",
        )
        .replace(
            "{ name: currency, type: string }",
            "{ name: currency, type: string }\n  - { name: channel, type: string }",
        )
        .replace("version: 1.0.0", "version: 1.1.0");
    let new = super::diff::load_contract("orders.yaml@1.1.0", changed_text)?;
    let changes = trib_spec::diff::diff(&old.contract, &new.contract);
    let problem = trib_spec::diff::version_problem(&old.contract, &new.contract, &changes);
    for line in super::diff::report(&old, &new, &changes, problem.as_deref()).lines() {
        println!("  {line}");
    }

    println!("\n== 8. ODCS v3.1 interchange (trib contract export / import)");
    let odcs_dir = dir.join("odcs");
    std::fs::create_dir_all(&odcs_dir)?;
    let mut round_trips = 0;
    let mut total = 0;
    for c in project.contracts() {
        total += 1;
        let doc = trib_spec::odcs::export(c);
        let text = trib_spec::odcs::to_yaml(&doc);
        let path = odcs_dir.join(format!("{}.odcs.yaml", c.product.value));
        std::fs::write(&path, &text)?;
        let back = trib_spec::odcs::import(&trib_spec::yaml::Source::new(path.display().to_string(), text))
            .map_err(|d| super::fatal(*d))?;
        if back.contract.as_ref() == Some(c) {
            round_trips += 1;
        }
    }
    println!(
        "  exported {total} contracts to `{}`; {round_trips}/{total} import back unchanged",
        odcs_dir.display()
    );

    println!("\n== 9. ingest into bronze (trib ingest), bad records to dead letters");
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let files = [
        (
            "orders.orders_raw",
            "orders.ndjson",
            crate::generate::orders(20_000, 20, 1),
        ),
        (
            "web.clicks_raw",
            "clicks.ndjson",
            crate::generate::clicks(50_000, 10, 2),
        ),
        (
            "iot.sensor_readings",
            "readings.ndjson",
            crate::generate::readings(100_000, 5, 3),
        ),
    ];
    let lake = super::lake(project)?;
    let rt = super::runtime()?;
    let mut law_holds = true;
    println!(
        "  {:<22} {:>9} {:>9} {:>13}  dead letters by reason",
        "product", "received", "bronze", "dead letters"
    );
    for (product, file, body) in &files {
        let path = data.join(file);
        std::fs::write(&path, body)?;
        let contract = super::ingest::bronze_contract(project, product)?;
        let (report, bronze, dead) = rt.block_on(async {
            let content = trib_ingest::file::ContentId::of(&path);
            let mut ing = trib_ingest::Ingestor::open(&lake, &contract).await?;
            let r = super::ingest::ingest_file(&mut ing, &contract, &path, content, trib_ingest::Format::Ndjson, 5_000)
                .await?;
            ing.settle().await?;
            anyhow::Ok((r, ing.bronze().count().await?, ing.dead_letters().count().await?))
        })?;
        let lines = body.lines().count() as u64;
        law_holds &= lines == bronze + dead && report.total.received == lines;
        let reasons: Vec<String> = report.total.by_reason.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "  {product:<22} {lines:>9} {bronze:>9} {dead:>13}  {}",
            reasons.join(", ")
        );
    }
    println!(
        "  received = bronze + dead letters for every product: {}",
        if law_holds { "yes" } else { "NO" }
    );
    let (product, file, _) = &files[0];
    let contract = super::ingest::bronze_contract(project, product)?;
    let again = rt.block_on(async {
        let path = data.join(file);
        let content = trib_ingest::file::ContentId::of(&path);
        let mut ing = trib_ingest::Ingestor::open(&lake, &contract).await?;
        super::ingest::ingest_file(&mut ing, &contract, &path, content, trib_ingest::Format::Ndjson, 5_000).await
    })?;
    println!(
        "  ingesting `{file}` again: {} of {} batches recognised as already committed, {} new rows",
        again.skipped_batches, again.batches, again.total.accepted
    );
    let (latest, first_rows) = rt.block_on(async {
        let t = trib_lake::ProductTable::open_or_create(&lake, &contract, trib_lake::TableKind::Data).await?;
        let v1 = t.at_version(1).await?;
        let rows: usize = v1
            .snapshot()?
            .log_data()
            .iter()
            .map(|f| f.num_records().unwrap_or(0))
            .sum();
        anyhow::Ok((t.version().unwrap_or_default(), rows))
    })?;
    println!("  time travel: `{product}` is at table version {latest}; version 1 held {first_rows} rows");
    println!("  tables are under `{}`", lake.root());

    println!("\n== 10. HTTP ingest (trib serve): group commit, idempotency keys, metrics");
    let contracts: Vec<trib_spec::Contract> = project.contracts().cloned().collect();
    let http = rt.block_on(http_demo(lake.clone(), contracts))?;
    for line in http {
        println!("  {line}");
    }

    println!("\n== 11. models: bronze → silver → gold (trib run), incremental");
    let engine = trib_engine::Engine::new(lake.clone(), project);
    let order = engine.dag().order(&engine.dag().select(&[])?);
    rt.block_on(async {
        for round in ["first run", "second run, nothing new"] {
            let mut line = Vec::new();
            for node in &order {
                let r = engine.run(node).await?;
                line.push(match r.outcome {
                    trib_engine::Outcome::Committed { rows, .. } => format!("{} {rows} rows", r.product),
                    trib_engine::Outcome::UpToDate => format!("{} up to date", r.product),
                    trib_engine::Outcome::View => format!("{} view", r.product),
                });
            }
            println!("  {round}:");
            for l in line {
                println!("    {l}");
            }
        }
        let gold = project
            .contracts()
            .find(|c| c.product.value.to_string() == "orders.daily_revenue")
            .context("the example has orders.daily_revenue")?;
        let t = trib_lake::ProductTable::open_or_create(&lake, gold, trib_lake::TableKind::Data).await?;
        let rows = t
            .query("SELECT day, country, orders, revenue FROM t ORDER BY day, revenue DESC LIMIT 6")
            .await?;
        println!("  orders.daily_revenue (gold), first rows:");
        for line in deltalake_pretty(&rows)?.lines() {
            println!("    {line}");
        }
        anyhow::Ok(())
    })?;

    println!("\n== 12. serving: the same product read by four roles (trib query --as ROLE)");
    rt.block_on(async {
        let gateway = trib_access::Gateway::new(lake.clone(), project)?;
        let with_email =
            "SELECT order_id, country, customer_email, amount FROM orders.orders ORDER BY order_id LIMIT 4";
        let without = "SELECT order_id, country, amount FROM orders.orders ORDER BY order_id LIMIT 4";
        for (role, why, sql) in [
            ("customer-care", "PII clearance", with_email),
            ("orders-analysts", "no PII clearance: masked", with_email),
            (
                "eu-analysts",
                "row filter; customer_email is above its clearance",
                without,
            ),
            ("marketing", "no grant", without),
        ] {
            let who = trib_access::Principal::with_roles(role, [role.to_string()], &project.settings);
            println!("  as {role} ({why}): {sql}");
            match gateway.query(&who, sql, trib_access::QueryPath::Cli).await {
                Ok(r) => {
                    for line in deltalake_pretty(&r.batches)?.lines() {
                        println!("    {line}");
                    }
                }
                Err(e) => println!("    refused: {}", e.to_string().lines().next().unwrap_or_default()),
            }
        }
        let audited = gateway.auditor().flush().await?;
        println!("  {audited} reads recorded in _trib.audit (admins: trib query \"SELECT * FROM _trib.audit\")");
        anyhow::Ok(())
    })?;

    println!("\n== 13. trust: checks, SLOs and certification over simulated days (trib quality, trib slo)");
    for line in rt.block_on(trust_demo(dir, project, lake.clone()))? {
        println!("  {line}");
    }

    println!(
        "\n== 14. catalog: apply, search, a consumer, a breaking change and a new major version (trib apply, trib consumers, trib docs)"
    );
    for line in catalog_demo(dir)? {
        println!("  {line}");
    }

    println!(
        "\ndone. explore with: cd {} && trib check && trib show web.clicks",
        dir.display()
    );
    if !law_holds {
        bail!("records were lost or duplicated between bronze and the dead letters");
    }
    Ok(if round_trips == total {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// Makes `dir` ready: absent, empty, or an earlier demo (replaced).
fn prepare(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
    if empty {
        return Ok(());
    }
    if dir.join(MARKER).exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot remove the earlier demo in `{}`", dir.display()))?;
        return Ok(());
    }
    bail!(
        "`{}` exists and was not made by `trib demo`; hint: pass `--dir` with another directory",
        dir.display()
    )
}

/// Removes a top-level YAML block (`key:` and its indented lines).
fn strip_block(text: &str, key: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with(key) {
            skipping = true;
            continue;
        }
        if skipping && (line.starts_with(' ') || line.starts_with('-')) {
            continue;
        }
        skipping = false;
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Starts the HTTP API on an ephemeral loopback port, sends events from concurrent
/// producers (one request retried), and reports what came back.
async fn http_demo(lake: trib_lake::Lake, contracts: Vec<trib_spec::Contract>) -> Result<Vec<String>> {
    let settings = trib_server::ServerSettings::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let hub = trib_server::IngestHub::start(lake, contracts, &settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(trib_server::serve(listener, hub, None, settings, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/products/iot.sensor_readings/events");
    let mut out = vec![format!("listening on {base}")];
    let mut sends = Vec::new();
    for p in 0..8usize {
        let (client, url) = (client.clone(), url.clone());
        // The day after the file's readings: on time for the watermark.
        let body = crate::generate::readings_from(500, 10, 100 + p as u64, 86_400);
        sends.push(tokio::spawn(async move {
            let r = client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .header("idempotency-key", format!("demo-producer-{p}"))
                .body(body)
                .send()
                .await?;
            anyhow::Ok(r.json::<serde_json::Value>().await?)
        }));
    }
    let (mut accepted, mut dead) = (0, 0);
    for s in sends {
        let doc = s.await??;
        accepted += doc["accepted"].as_u64().unwrap_or(0);
        dead += doc["dead_lettered"].as_u64().unwrap_or(0);
    }
    out.push(format!(
        "8 producers x 500 events: {accepted} accepted, {dead} dead-lettered, each answered after its commit"
    ));
    let retry = client
        .post(&url)
        .header("idempotency-key", "demo-producer-0")
        .body(crate::generate::readings_from(500, 10, 100, 86_400))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    out.push(format!(
        "a retry with the same Idempotency-Key: duplicate = {}, nothing stored twice",
        retry["duplicate"]
    ));
    let refused = client
        .post(format!("{base}/v1/products/orders.orders/events"))
        .body("{}")
        .send()
        .await?;
    out.push(format!(
        "events for a silver product: HTTP {}",
        refused.status().as_u16()
    ));
    let metrics = client.get(format!("{base}/metrics")).send().await?.text().await?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("trib_ingest_records_total") || l.starts_with("trib_ingest_group_requests_count"))
    {
        out.push(format!("metric: {line}"));
    }
    let _ = stop.send(());
    let _ = server.await;
    Ok(out)
}

fn deltalake_pretty(batches: &[arrow::array::RecordBatch]) -> Result<String> {
    Ok(arrow::util::pretty::pretty_format_batches(batches)?.to_string())
}

/// The trust loop on simulated days: both streams get fresh, valid events every day
/// and earn certification after the probation; then the clickstream gets bad data,
/// is degraded and loses its certificate, and its team's webhook (a receiver started
/// here on loopback) gets signed alerts.
async fn trust_demo(dir: &Path, project: &trib_spec::Project, lake: trib_lake::Lake) -> Result<Vec<String>> {
    use std::sync::{Arc, Mutex};
    use trib_core::Clock as _;
    let mut out = Vec::new();
    // The whole-product checks of a silver product built by step 11.
    let project = Arc::new(project.clone());
    let checker = trib_quality::Checker::open(lake.clone(), project.clone(), Arc::new(trib_core::SystemClock)).await?;
    let orders: trib_spec::ProductName = "orders.orders".parse()?;
    let contract = project.latest(&orders).context("the example has `orders.orders`")?;
    let run = checker.check_product(contract).await?;
    let failed: Vec<String> = run.failed().map(|r| format!("{}: {}", r.check, r.message)).collect();
    out.push(format!(
        "checks of orders.orders (trib quality): {} passed, {} did not{}",
        run.results.len() - failed.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", failed.join("; "))
        }
    ));

    // A webhook receiver standing in for the web team's incident channel.
    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let sig = headers
                    .get(trib_quality::alerts::SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((sig, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut project = (*project).clone();
    for t in &mut project.settings.teams {
        t.webhook = Some(url.clone());
        t.secret_env = Some("DEMO_WEBHOOK_SECRET".into());
    }
    // Simulated days run short: a 5-day probation, error budgets over 3 days (so that
    // the bad records of step 9, measured on day 0, leave the window by day 4).
    project.settings.certification.probation = trib_core::Duration::from_secs(5 * 86_400);
    project.settings.certification.budget_window = trib_core::Duration::from_secs(3 * 86_400);
    out.push(format!("the owning teams' webhook: a receiver on {url}"));
    out.push("simulated days; probation 5 days, error budgets over 3 days".into());
    const KEY: &str = "demo-signing-key";
    let project = Arc::new(project);
    let day_ms = 86_400_000;
    let clock = Arc::new(trib_core::ManualClock::at(chrono::Utc::now().timestamp_millis()));
    let trust = trib_quality::Trust::open(lake.clone(), project.clone(), clock.clone())
        .await?
        .with_secrets(Arc::new(|name| {
            (name == "DEMO_WEBHOOK_SECRET").then(|| KEY.to_string())
        }));
    let readings_name: trib_spec::ProductName = "iot.sensor_readings".parse()?;
    let clicks_name: trib_spec::ProductName = "web.clicks_raw".parse()?;
    let readings = project.latest(&readings_name).context("readings")?.clone();
    let clicks = project.latest(&clicks_name).context("clicks")?.clone();
    let mut readings_in = trib_ingest::Ingestor::open(&lake, &readings).await?;
    let mut clicks_in = trib_ingest::Ingestor::open(&lake, &clicks).await?;
    out.push(format!(
        "{:<4} {:<22} {:<22} what happened",
        "day", "iot.sensor_readings", "web.clicks_raw"
    ));
    for day in 0..10 {
        let now = clock.now_millis();
        let at = |s: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now - s * 1000)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        };
        let body: String = (0..200)
            .map(|i| {
                format!(
                    "{{\"device_id\":\"d-{}\",\"site\":\"plant-north\",\"reading_at\":\"{}\",\"temperature_c\":21.5,\"humidity_pct\":40,\"battery_v\":3.7}}\n",
                    i % 20,
                    at(i % 30)
                )
            })
            .collect();
        // Day 6: 2% of the clicks are broken (no session); day 7: half of them.
        let broken_per_200 = match day {
            6 => 4,
            7 => 100,
            _ => 0,
        };
        let clicks_body: String = (0..200)
            .map(|i| {
                let session = if i < broken_per_200 { String::new() } else { format!("\"session_id\":\"s-{}\",", i % 40) };
                format!(
                    "{{\"event_id\":\"e-{day}-{i}\",{session}\"event_type\":\"page_view\",\"url\":\"/p/{i}\",\"occurred_at\":\"{}\"}}\n",
                    at(i % 60)
                )
            })
            .collect();
        let provenance = |s: &str| trib_ingest::dead_letter::Provenance {
            received_at_micros: now * 1000,
            source: s.into(),
            batch_id: format!("demo-day-{day}"),
        };
        readings_in
            .ingest(trib_ingest::Format::Ndjson, body.as_bytes(), &provenance("demo"), None)
            .await?;
        let r = clicks_in
            .ingest(
                trib_ingest::Format::Ndjson,
                clicks_body.as_bytes(),
                &provenance("demo"),
                None,
            )
            .await?;
        for c in [&readings, &clicks] {
            trust.checker().check_new(c).await?;
        }
        let a = trust.evaluate_product(&readings, false).await?;
        let b = trust.evaluate_product(&clicks, false).await?;
        let mut what: Vec<String> = Vec::new();
        for e in [&a, &b] {
            if let Some(t) = e.transition.as_ref().filter(|t| t.from.is_some()) {
                what.push(format!("{}: {}", e.product, t.reason));
            }
        }
        if r.dead_lettered > 0 {
            what.insert(0, format!("{} of 200 clicks dead-lettered", r.dead_lettered));
        }
        out.push(format!(
            "{day:<4} {:<22} {:<22} {}",
            a.state.as_str(),
            b.state.as_str(),
            what.join("; ")
        ));
        clock.advance(day_ms);
    }
    let got = got.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let verified = got
        .iter()
        .filter(|(sig, body)| *sig == trib_quality::alerts::sign(KEY.as_bytes(), body.as_bytes()))
        .count();
    out.push(format!(
        "the teams received {} alerts, {verified} with a valid HMAC-SHA256 signature:",
        got.len()
    ));
    for (_, body) in &got {
        let v: serde_json::Value = serde_json::from_str(body)?;
        out.push(format!(
            "  {:<19} {:<22} {}",
            v["team"].as_str().unwrap_or_default(),
            v["type"].as_str().unwrap_or_default(),
            v["message"].as_str().unwrap_or_default()
        ));
    }
    if let Some((_, body)) = got
        .iter()
        .find(|(_, b)| b.contains("incident.opened") && b.contains("web.clicks_raw"))
    {
        out.push(format!("one delivery as sent: {body}"));
    }
    let standing = trust.standing(&clicks).await?;
    for line in super::quality::render_standing(&standing).lines() {
        out.push(line.to_string());
    }
    out.push(format!(
        "(`{}`: `trib slo`, `trib quality`; results in _trib.quality_results, _trib.slo_measurements, _trib.certifications)",
        dir.display()
    ));
    server.abort();
    Ok(out)
}

/// Registers the products in the catalog, searches it, registers a consumer of
/// orders.orders@v1, then proposes a breaking change to it and prints whom it hurts.
fn catalog_demo(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let project = match super::project(dir) {
        Ok(p) => p,
        Err(d) => return Err(super::fatal(*d)),
    };
    let rt = super::runtime()?;
    let catalog = rt.block_on(trib_catalog::Catalog::open(&project.settings.catalog.url, &project.dir))?;
    let plan = super::apply::plan(&project, &catalog, &rt, None)?;
    let mut applied = 0;
    for (record, _, step) in &plan.steps {
        if matches!(step, super::apply::Step::Add | super::apply::Step::Change { .. }) {
            rt.block_on(catalog.register(record))?;
            applied += 1;
        }
    }
    out.push(format!(
        "registered {applied} product versions in `{}` (each with its contract hash, owner and address)",
        project.settings.catalog.url
    ));
    for q in ["revenue", "customer"] {
        let hits = rt.block_on(catalog.search(q, 5))?;
        let names: Vec<String> = hits.iter().map(|h| format!("{}@v{}", h.product, h.major)).collect();
        out.push(format!("search `{q}`: {}", names.join(", ")));
    }
    let req = rt.block_on(catalog.request_access(
        "orders.orders",
        1,
        "bi-dashboard",
        "bi-team@example.com",
        "weekly revenue report",
        None,
    ))?;
    rt.block_on(catalog.approve(&req.id, "orders-data-team"))?;
    out.push("consumer `bi-dashboard` requested orders.orders@v1 and orders-data-team approved it".into());
    // The breaking change: a column removed within v1.
    let path = dir.join("products/orders/orders.yaml");
    let original = std::fs::read_to_string(&path)?;
    std::fs::write(
        &path,
        original.replace(
            "  - { name: customer_email, type: string, pii: true, classification: confidential }\n",
            "",
        ),
    )?;
    let changed = super::project(dir).map_err(|d| super::fatal(*d));
    std::fs::write(&path, &original)?;
    let changed = changed?;
    let plan = super::apply::plan(&changed, &catalog, &rt, None)?;
    out.push("proposed: `customer_email` removed from orders.orders, still version 1.0.0; trib apply says:".into());
    for line in super::apply::render_plan(&plan).lines() {
        out.push(format!("  {line}"));
    }
    drop(catalog);
    out.extend(new_major_demo(dir, &rt)?);
    // The catalog's site, from the demo project itself.
    let site = super::docs::Site::gather_blocking(&project, &rt)?;
    let pages = super::docs::write_site(&project, &site, &dir.join(".trib/docs"))?;
    out.push(format!(
        "trib docs: {pages} product pages, search and lineage graphs; open {}",
        dir.join(".trib/docs/index.html").display()
    ));
    Ok(out)
}

/// The breaking change done right, as a new major version, in a scratch copy of the
/// project (the demo project keeps v1 as its newest): v1 is deprecated with a date and
/// its consumer's webhook is told.
fn new_major_demo(dir: &Path, rt: &tokio::runtime::Runtime) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let copy = dir.join(".trib/scratch-v2");
    let _ = std::fs::remove_dir_all(&copy);
    for part in ["products", "models", "policies"] {
        copy_tree(&dir.join(part), &copy.join(part))?;
    }
    std::fs::copy(dir.join("trib.toml"), copy.join("trib.toml"))?;
    let project = super::project(&copy).map_err(|d| super::fatal(*d))?;
    let catalog = rt.block_on(trib_catalog::Catalog::open(&project.settings.catalog.url, &project.dir))?;
    for (record, _, _) in &super::apply::plan(&project, &catalog, rt, None)?.steps {
        rt.block_on(catalog.register(record))?;
    }
    // bi-dashboard's webhook: a receiver on loopback.
    let got: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}/bi", listener.local_addr()?);
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/bi",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(body);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let server = rt.spawn(async move { axum::serve(listener, app).await });
    let req = rt.block_on(catalog.request_access(
        "orders.orders",
        1,
        "bi-dashboard",
        "bi-team@example.com",
        "weekly revenue report",
        Some(&url),
    ))?;
    rt.block_on(catalog.approve(&req.id, "orders-data-team"))?;
    let v1 = std::fs::read_to_string(copy.join("products/orders/orders.yaml"))?;
    std::fs::write(
        copy.join("products/orders/orders_v2.yaml"),
        v1.replace("version: 1.0.0", "version: 2.0.0").replace(
            "  - { name: customer_email, type: string, pii: true, classification: confidential }\n",
            "",
        ),
    )?;
    let project = super::project(&copy).map_err(|d| super::fatal(*d))?;
    let plan = super::apply::plan(&project, &catalog, rt, None)?;
    out.push(
        "done right: the same change as orders.orders v2 (products/orders/orders_v2.yaml); trib apply says:".into(),
    );
    for line in super::apply::render_plan(&plan).lines() {
        out.push(format!("  {line}"));
    }
    for (record, _, step) in &plan.steps {
        if matches!(step, super::apply::Step::Add | super::apply::Step::Change { .. }) {
            rt.block_on(catalog.register(record))?;
        }
    }
    out.extend(rt.block_on(super::lifecycle::apply(&project, &catalog, &plan.lifecycle))?);
    server.abort();
    for body in got.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
        let n: serde_json::Value = serde_json::from_str(body)?;
        out.push(format!(
            "bi-dashboard's webhook received {}: {}",
            n["type"].as_str().unwrap_or_default(),
            n["message"].as_str().unwrap_or_default()
        ));
    }
    drop(catalog);
    let _ = std::fs::remove_dir_all(&copy);
    Ok(out)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
