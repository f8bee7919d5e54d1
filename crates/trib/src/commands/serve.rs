use crate::Outcome;
use crate::cli::{GlobalArgs, ServeArgs};
use anyhow::{Context, Result};
use trib_ingest::kafka::KafkaConsumer;
use trib_server::{IngestHub, ServerSettings};

pub fn run(g: &GlobalArgs, args: &ServeArgs) -> Result<Outcome> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    if project.diagnostics.has_errors() {
        eprint!("{}", crate::render::snippets(&project.diagnostics, &project.sources));
        anyhow::bail!("the project has errors; hint: fix what `trib check` reports, then serve");
    }
    let lake = super::lake(&project)?;
    let mut settings = ServerSettings {
        max_body_bytes: args.max_body_bytes,
        group_commit_records: args.group_commit_records,
        group_commit_latency: std::time::Duration::from_millis(args.group_commit_ms),
        queue: args.queue,
        background: None,
    };
    // Newest major of each product; older majors keep their tables but take no events.
    let mut latest: Vec<trib_spec::Contract> = Vec::new();
    for c in project.contracts() {
        if project.latest(&c.product.value).is_some_and(|l| l.major() == c.major()) {
            latest.push(c.clone());
        }
    }
    let kafka = project.settings.kafka.clone();
    let group = kafka.group(&project.settings.project.name);
    // Model runs, checks and SLO measurements are DataFusion work that can hold a thread
    // for a while: on a runtime of their own, so that HTTP requests and group commits
    // never wait behind them for a worker (the OS shares the cores between the two).
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("trib-background")
        .thread_stack_size(super::THREAD_STACK)
        .enable_all()
        .build()?;
    let spawner = background.handle().clone();
    settings.background = Some(spawner.clone());
    let result = super::runtime()?.block_on(async move {
        trib_server::metrics::handle();
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let consumers = start_consumers(&lake, &latest, &kafka, &group)?;
        let (stop_models, stopping) = tokio::sync::watch::channel(false);
        let trust = std::sync::Arc::new(
            trib_quality::Trust::open(
                lake.clone(),
                std::sync::Arc::new(project.clone()),
                std::sync::Arc::new(trib_core::SystemClock),
            )
            .await?
            .with_background_delivery(),
        );
        let gate = std::sync::Arc::new(trib_quality::Gate::new(trust.checker().clone()));
        let models = if args.models_poll_ms > 0 {
            let engine = crate::lineage_sink::engine(
                trib_engine::Engine::new(lake.clone(), &project).with_gate(gate.clone()),
                &project,
            )?;
            Some(spawner.spawn(run_models(
                engine,
                std::time::Duration::from_millis(args.models_poll_ms),
                stopping.clone(),
            )))
        } else {
            None
        };
        let trust_task = spawner.spawn(run_trust(
            trust.clone(),
            latest.clone(),
            project.settings.certification.clone(),
            stopping,
        ));
        let gateway = trib_access::Gateway::new(lake.clone(), &project)?.with_certification(trust.board().clone());
        // Only a server on loopback answers requests without a token, as the local
        // identity (the same as the CLI's); anywhere else every request needs a token.
        let anonymous = addr
            .ip()
            .is_loopback()
            .then(|| trib_access::Principal::local(&project.settings));
        if anonymous.is_none() {
            eprintln!("listening beyond loopback: every request needs `Authorization: Bearer <token>`");
        }
        super::catalog::refresh(&gateway, &project).await;
        let mut reads = trib_server::Reads::new(gateway, trib_access::TokenStore::open(&project.dir), anonymous)?;
        match trib_catalog::Catalog::open(&project.settings.catalog.url, &project.dir).await {
            Ok(c) => reads = reads.with_catalog(c),
            Err(e) => eprintln!("warning: catalog search is off: {e}"),
        }
        let reads = std::sync::Arc::new(reads);
        // Approvals made meanwhile (`trib consumers approve`) take effect within seconds.
        let consumers_task = {
            let (reads, project, mut stopping) = (reads.clone(), project.clone(), stop_models.subscribe());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                        _ = stopping.changed() => return,
                    }
                    super::catalog::refresh(reads.gateway(), &project).await;
                }
            })
        };
        let pg = match args.pg_listen.as_str() {
            "off" | "" => None,
            addr => {
                let addr: std::net::SocketAddr = addr
                    .parse()
                    .with_context(|| format!("`--pg-listen {addr}` is not an address such as 127.0.0.1:5433 (or `off`)"))?;
                Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("cannot listen on {addr} for the Postgres protocol (`--pg-listen off` turns it off)"))?,
                )
            }
        };
        let hub = IngestHub::start(lake, latest, &settings);
        // One stop signal for both listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let pg_addr = pg.as_ref().map(tokio::net::TcpListener::local_addr).transpose()?;
        let pg_task = pg.map(|listener| tokio::spawn(trib_server::serve_pg(listener, reads.clone(), until_stopped(stopped.clone()))));
        // The addresses on stdout, so scripts and tests can find ephemeral ports; the
        // HTTP line comes last and nothing follows it (a reader may stop there).
        if let Some(a) = pg_addr {
            println!("postgres on {a}");
            eprintln!(
                "postgres protocol: psql \"host={} port={} user=you\" with an API token as the password",
                a.ip(),
                a.port()
            );
        }
        println!("listening on http://{addr}");
        eprintln!(
            "serving {} products; POST /v1/products/{{product}}/events, GET /v1/products/{{product}}/v{{major}}/rows, POST /v1/sql, GET /metrics; Ctrl-C stops",
            hub.products().len()
        );
        let served = trib_server::serve(listener, hub, Some(reads), settings, until_stopped(stopped)).await;
        if let Some(t) = pg_task {
            let _ = t.await;
        }
        // A model run in flight finishes (its commit is atomic either way); aborting it
        // mid-read would tear down table loads under the runtime's feet.
        let _ = stop_models.send(true);
        if let Some(m) = models {
            let _ = m.await;
        }
        let _ = trust_task.await;
        let _ = consumers_task.await;
        if let Err(e) = gate.finish().await {
            eprintln!("warning: check results could not be written: {e}");
        }
        // Consumers commit what they hold and leave the group, so that the others
        // take their partitions over at once.
        tokio::task::spawn_blocking(move || consumers.into_iter().for_each(KafkaConsumer::stop)).await?;
        served.context("server failed")?;
        anyhow::Ok(())
    });
    background.shutdown_timeout(std::time::Duration::from_secs(10));
    result?;
    Ok(Outcome::Ok)
}

/// Continuous mode: models run as soon as one of their inputs has a new commit, inputs
/// first. A run that finds nothing new is cheap (it reads the tables' logs only); a run
/// that fails is retried at the next tick and logged once per distinct error.
async fn run_models(
    engine: trib_engine::Engine,
    every: std::time::Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(selected) = engine.dag().select(&[]) else { return };
    let order = engine.dag().order(&selected);
    let mut last_error: std::collections::HashMap<trib_engine::Node, String> = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Models run when an input has a new version, not on every tick: a tick costs a
    // listing of each input's log.
    let mut watcher = trib_engine::Watcher::new();
    let mut runs: std::collections::HashMap<trib_engine::Node, u64> = std::collections::HashMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.changed() => return,
        }
        for node in &order {
            if *stopping.borrow() {
                return;
            }
            let versions = match watcher.changed(&engine, node).await {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(e) => {
                    let text = e.to_string();
                    if last_error.get(node) != Some(&text) {
                        tracing::error!(product = %node.0, major = node.1, error = %text, "cannot read the model's inputs; retrying");
                        last_error.insert(node.clone(), text);
                    }
                    continue;
                }
            };
            match engine.run(node).await {
                Ok(report) => {
                    watcher.ran(node, versions);
                    last_error.remove(node);
                    if matches!(report.outcome, trib_engine::Outcome::Committed { .. }) {
                        let n = runs.entry(node.clone()).or_default();
                        *n += 1;
                        if n.is_multiple_of(COMPACT_EVERY_RUNS) {
                            compact_model(&engine, node).await;
                        }
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    if last_error.get(node) != Some(&text) {
                        tracing::error!(product = %node.0, major = node.1, error = %text, "model run failed; retrying");
                        last_error.insert(node.clone(), text);
                    }
                }
            }
        }
    }
}

/// How often new rows of ingested products are checked.
const NEW_ROWS_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Trust, continuously: the new rows of ingested products are checked every few
/// seconds (model commits are checked by the engine's gate), and every
/// `evaluate_every` SLOs are measured, certification stepped and alerts sent, with the
/// checks over whole products every `scheduled_checks_every`.
async fn run_trust(
    trust: std::sync::Arc<trib_quality::Trust>,
    latest: Vec<trib_spec::Contract>,
    settings: trib_core::settings::CertificationSettings,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let streams: Vec<&trib_spec::Contract> = latest
        .iter()
        .filter(|c| matches!(c.source, trib_spec::Source::Stream(_)) && !c.quality.is_empty())
        .collect();
    let evaluate_every = std::time::Duration::from_millis(settings.evaluate_every.as_millis().max(1_000));
    let scheduled_every = std::time::Duration::from_millis(settings.scheduled_checks_every.as_millis().max(1_000));
    let mut tick = tokio::time::interval(NEW_ROWS_CHECK_EVERY.min(evaluate_every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_evaluation: Option<std::time::Instant> = None;
    let mut last_scheduled: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.changed() => return,
        }
        for c in &streams {
            if *stopping.borrow() {
                return;
            }
            match trust.checker().check_new(c).await {
                Ok(Some(run)) => {
                    for r in run.failed() {
                        tracing::warn!(product = %run.product, check = %r.check, status = r.status.as_str(), message = %r.message, "check failed on new rows");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(product = %c.product.value, error = %e, "checks of new rows could not run"),
            }
        }
        if last_evaluation.is_some_and(|t| t.elapsed() < evaluate_every) {
            continue;
        }
        last_evaluation = Some(std::time::Instant::now());
        let scheduled = last_scheduled.is_none_or(|t| t.elapsed() >= scheduled_every);
        if scheduled {
            last_scheduled = Some(std::time::Instant::now());
        }
        for c in trust.products() {
            if *stopping.borrow() {
                return;
            }
            if let Err(e) = trust.evaluate_product(c, scheduled).await {
                tracing::warn!(product = %c.product.value, error = %e, "trust evaluation failed; the next one retries");
            }
        }
    }
}

/// Committed runs of a model between two compactions of its table: each run adds files,
/// and every later run and read costs more with each small file the table has.
const COMPACT_EVERY_RUNS: u64 = 100;

async fn compact_model(engine: &trib_engine::Engine, node: &trib_engine::Node) {
    let Some(contract) = engine.dag().contract(node) else {
        return;
    };
    match trib_lake::compact_product(engine.lake(), contract, None).await {
        Ok(r) => {
            tracing::debug!(product = %node.0, files_removed = r.files_removed, files_added = r.files_added, "model table compacted")
        }
        Err(e) => tracing::warn!(product = %node.0, error = %e, "compaction failed; the next one retries"),
    }
}

/// One consumer per product read from a Kafka topic, when brokers are set.
fn start_consumers(
    lake: &trib_lake::Lake,
    contracts: &[trib_spec::Contract],
    kafka: &trib_core::KafkaSettings,
    group: &str,
) -> Result<Vec<KafkaConsumer>> {
    let mut consumers = Vec::new();
    for c in contracts {
        let Some(topic) = trib_ingest::kafka::topic_of(c) else {
            continue;
        };
        if kafka.brokers.is_none() {
            eprintln!(
                "note: `{}` reads Kafka topic `{topic}`; with no `[kafka] brokers` set it takes events over HTTP only",
                c.product.value
            );
            continue;
        }
        let consumer = KafkaConsumer::start(lake.clone(), c.clone(), kafka, group, tokio::runtime::Handle::current())?;
        eprintln!(
            "consuming Kafka topic `{}` into `{}` (group `{group}`)",
            consumer.topic(),
            consumer.product()
        );
        consumers.push(consumer);
    }
    Ok(consumers)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down after the requests in flight");
}
