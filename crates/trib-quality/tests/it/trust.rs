//! A product walked through candidate → certified → degraded → decertified → candidate
//! → certified with an injected clock, the alerts it sent received by a real HTTP
//! server on loopback, signed, and retried when the receiver fails.

use super::*;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use trib_quality::CertState;

const SECRET: &str = "s3cret-key";

/// Requests received: the signature header and the body.
type Received = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// A webhook receiver: records every request, fails the first `fail` of them with 503.
#[derive(Clone, Default)]
struct Receiver {
    got: Received,
    fail: Arc<AtomicUsize>,
}

async fn receiver() -> (Receiver, String) {
    use axum::routing::post;
    let r = Receiver::default();
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hooks",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let state = state.clone();
            async move {
                let sig = headers
                    .get(trib_quality::alerts::SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if state
                    .fail
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                state.got.lock().expect("lock").push((sig, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

fn settings(url: &str) -> String {
    format!(
        r#"[project]
name = "q"

[certification]
probation = "3d"
freshness_objective = 50.0

[[teams]]
name = "shop-team"
webhook = "{url}"
secret_env = "SHOP_WEBHOOK_SECRET"

[alerts]
max_attempts = 3
backoff_ms = 10
"#
    )
}

const EVENTS: &str = r#"
product: shop.events
version: 1.0.0
owner: shop-team
description: Events.
status: active
layer: bronze
source: { kind: http, format: json }
event_time: at
schema:
  - { name: id, type: long, required: true }
  - { name: at, type: timestamp, required: true }
sla:
  freshness: 1h
  validity: 90%
"#;

const T0: i64 = 1_773_532_800_000;

async fn open(project: &Arc<Project>, lake: &Lake, clock: Arc<trib_core::ManualClock>) -> trib_quality::Trust {
    trib_quality::Trust::open(lake.clone(), project.clone(), clock)
        .await
        .expect("trust")
        .with_secrets(Arc::new(|name| {
            (name == "SHOP_WEBHOOK_SECRET").then(|| SECRET.to_string())
        }))
}

fn event(id: i64, at: i64) -> String {
    serde_json::json!({ "id": id, "at": iso(at) }).to_string()
}

#[tokio::test]
async fn a_product_earns_loses_and_regains_certification() {
    let (hooks, url) = receiver().await;
    let (_tmp, project, lake) = project(&[("trib.toml", &settings(&url)), ("products/shop/events.yaml", EVENTS)]);
    let c = contract(&project, "shop.events");
    let clock = ManualClock::at(T0);
    let trust = open(&project, &lake, clock.clone()).await;
    let mut states = Vec::new();
    let day = |fresh: bool| {
        let clock = clock.clone();
        let lake = lake.clone();
        let trust = &trust;
        async move {
            if fresh {
                let now = clock.now_millis();
                ingest(&lake, c, &[event(now, now - 60_000)]).await;
            }
            let e = trust.evaluate_product(c, true).await.expect("evaluate");
            clock.advance(DAY);
            (e.state, e.opened, e.resolved)
        }
    };
    // Fresh data every day: candidate, then certified after the 3-day probation.
    for _ in 0..4 {
        states.push(day(true).await);
    }
    // Four days without data: degraded, then decertified when the budget is spent.
    for _ in 0..4 {
        states.push(day(false).await);
    }
    // Data again: a candidate again, certified after another probation.
    for _ in 0..4 {
        states.push(day(true).await);
    }
    let seen: Vec<CertState> = states.iter().map(|s| s.0).collect();
    use CertState::*;
    assert_eq!(
        seen,
        vec![
            Candidate,
            Candidate,
            Candidate,
            Certified, // probation
            Degraded,
            Degraded,
            Degraded,
            Decertified, // 4 of 8 fresh: the 50% budget is spent
            Candidate,
            Candidate,
            Candidate,
            Certified, // recovered, probation again
        ]
    );
    // One incident for the whole outage, closed on recovery.
    let opened: Vec<usize> = states
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.1.is_empty())
        .map(|(i, _)| i)
        .collect();
    let resolved: Vec<usize> = states
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.2.is_empty())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(opened, vec![4]);
    assert_eq!(resolved, vec![8]);

    // The team heard every step, signed.
    let got = hooks.got.lock().expect("lock").clone();
    let mut kinds = Vec::new();
    for (sig, body) in &got {
        assert_eq!(
            sig.as_deref(),
            Some(trib_quality::alerts::sign(SECRET.as_bytes(), body.as_bytes()).as_str()),
            "signature of {body}"
        );
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["product"], "shop.events");
        assert_eq!(v["team"], "shop-team");
        kinds.push(match v["type"].as_str().expect("type") {
            "certification.changed" => format!(
                "{}→{}",
                v["from"].as_str().unwrap_or("?"),
                v["to"].as_str().unwrap_or("?")
            ),
            other => format!("{other}:{}", v["slo"].as_str().unwrap_or("?")),
        });
    }
    assert_eq!(
        kinds,
        vec![
            "candidate→certified",
            "certified→degraded",
            "incident.opened:freshness",
            "degraded→decertified",
            "decertified→candidate",
            "incident.resolved:freshness",
            "candidate→certified",
        ]
    );

    // Every transition is stored with its evidence.
    let standing = trust.standing(c).await.expect("standing");
    assert_eq!(standing.state.map(|s| s.0), Some(Certified));
    assert_eq!(standing.transitions.len(), 6, "{:?}", standing.transitions);
    let decertified = &standing.transitions[3];
    assert_eq!(decertified.to, Decertified);
    assert!(
        decertified.reason.contains("error budget exhausted: freshness"),
        "{}",
        decertified.reason
    );
    assert!(
        decertified.evidence.contains("\"budget_left\""),
        "{}",
        decertified.evidence
    );
    let freshness = standing
        .slos
        .iter()
        .find(|s| s.slo == trib_quality::SloKind::Freshness)
        .expect("freshness");
    assert_eq!(
        freshness.daily.iter().filter(|d| **d == Some(0.0)).count(),
        4,
        "{:?}",
        freshness.daily
    );
}

#[tokio::test]
async fn validity_counts_dead_letters_and_alerts_are_retried() {
    let (hooks, url) = receiver().await;
    let (_tmp, project, lake) = project(&[("trib.toml", &settings(&url)), ("products/shop/events.yaml", EVENTS)]);
    let c = contract(&project, "shop.events");
    let clock = ManualClock::at(T0);
    let trust = open(&project, &lake, clock.clone()).await;
    // 9 good and 1 without its required time: 90%, the target.
    let mut lines: Vec<String> = (0..9).map(|i| event(i, T0)).collect();
    lines.push(r#"{"id": 9}"#.into());
    assert_eq!(ingest(&lake, c, &lines).await, (9, 1));
    let e = trust.evaluate_product(c, false).await.expect("evaluate");
    let validity = e
        .measurements
        .iter()
        .find(|m| m.slo == trib_quality::SloKind::Validity)
        .expect("validity");
    assert_eq!((validity.good, validity.total, validity.met), (9.0, 10.0, true));
    // Then half of a batch is bad: a breach, and its alert meets a failing receiver.
    clock.advance(HOUR / 2);
    let mut lines: Vec<String> = (10..15).map(|i| event(i, T0)).collect();
    lines.extend((0..5).map(|_| r#"{"id": "x"}"#.to_string()));
    assert_eq!(ingest(&lake, c, &lines).await, (5, 5));
    hooks.fail.store(2, Ordering::SeqCst);
    let e = trust.evaluate_product(c, false).await.expect("evaluate");
    let validity = e
        .measurements
        .iter()
        .find(|m| m.slo == trib_quality::SloKind::Validity)
        .expect("validity");
    assert_eq!(
        (validity.good, validity.total, validity.met),
        (5.0, 10.0, false),
        "only what arrived since"
    );
    assert_eq!(e.opened, vec!["validity".to_string()]);
    let d = e
        .deliveries
        .iter()
        .find(|d| d.alert.slo.as_deref() == Some("validity"))
        .expect("delivery");
    assert!(d.delivered && d.attempts == 3, "{d:?}");
    let log = trust.notifier().log_of("shop.events").await.expect("log");
    let attempts: Vec<(u32, bool)> = log
        .iter()
        .filter(|l| l.0 == "incident.opened")
        .map(|l| (l.1, l.2))
        .collect();
    assert_eq!(attempts, vec![(1, false), (2, false), (3, true)]);
    assert_eq!(hooks.got.lock().expect("lock").len(), 1);
}

const RAW: &str = r#"
product: shop.raw
version: 1.0.0
owner: shop-team
description: Raw events without SLOs, so never certified.
status: active
layer: bronze
source: { kind: http, format: json }
event_time: at
schema:
  - { name: id, type: long, required: true }
  - { name: at, type: timestamp, required: true }
"#;

const CLEAN: &str = r#"
product: shop.clean
version: 1.0.0
owner: shop-team
description: Clean events.
status: active
layer: silver
source:
  inputs: [shop.raw]
  transform: models/clean.sql
  materialized: append
event_time: at
schema:
  - { name: id, type: long, required: true }
  - { name: at, type: timestamp, required: true }
sla:
  freshness: 1h
"#;

/// The governance rule `require_certified_inputs`: a model meeting its own SLOs stays a
/// candidate while an input is not certified.
#[tokio::test]
async fn certified_models_need_certified_inputs_when_required() {
    for required in [false, true] {
        let settings = format!(
            "[project]\nname = \"q\"\n\n[certification]\nprobation = \"2d\"\nrequire_certified_inputs = {required}\n"
        );
        let (_tmp, project, lake) = project(&[
            ("trib.toml", &settings),
            ("products/shop/raw.yaml", RAW),
            ("products/shop/clean.yaml", CLEAN),
            ("models/clean.sql", "SELECT id, at FROM shop.raw"),
        ]);
        let (raw, clean) = (contract(&project, "shop.raw"), contract(&project, "shop.clean"));
        let clock = ManualClock::at(T0);
        let trust = open(&project, &lake, clock.clone()).await;
        let engine = trib_engine::Engine::new(lake.clone(), &project);
        let node = engine.dag().latest("shop.clean").expect("node");
        let mut last = None;
        for day in 0..4 {
            let now = clock.now_millis();
            ingest(&lake, raw, &[event(day, now - 60_000)]).await;
            engine.run(&node).await.expect("run");
            trust.evaluate_product(raw, false).await.expect("raw");
            let e = trust.evaluate_product(clean, false).await.expect("clean");
            last = Some(e.state);
            clock.advance(DAY);
        }
        let expected = if required {
            CertState::Candidate
        } else {
            CertState::Certified
        };
        assert_eq!(last, Some(expected), "require_certified_inputs = {required}");
        if required {
            let standing = trust.standing(clean).await.expect("standing");
            assert_eq!(standing.transitions.len(), 1, "{:?}", standing.transitions);
        }
    }
}
