//! `trib serve` killed with SIGKILL at random moments while a producer sends batches
//! with idempotency keys and retries until each is acknowledged: in the end, bronze
//! holds every acknowledged record exactly once.

use crate::Example;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn start(ex: &Example, port: u16) -> Child {
    let listen = format!("127.0.0.1:{port}");
    crate::serve(&ex.dir, &["--listen", &listen, "--group-commit-ms", "5"], Stdio::null())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn acknowledged_records_survive_sigkill_exactly_once() {
    let ex = Example::init();
    let port = free_port();
    let mut server = start(&ex, port);
    let url = format!("http://127.0.0.1:{port}/v1/products/iot.sensor_readings/events");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    let batches = 60usize;
    let per_batch = 10usize;
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next_kill = Instant::now() + Duration::from_millis(150);
    let mut kills = 0;
    for b in 0..batches {
        let body: String = (0..per_batch)
            .map(|i| format!("{{\"device_id\":\"b{b}-r{i}\",\"site\":\"north\",\"reading_at\":\"2026-03-15T14:00:{:02}Z\",\"temperature_c\":20.5}}\n", i))
            .collect();
        // Retry until acknowledged, killing the server at random moments meanwhile.
        loop {
            if Instant::now() >= next_kill && kills < 8 {
                let _ = server.kill(); // SIGKILL
                let _ = server.wait();
                kills += 1;
                server = start(&ex, port);
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                next_kill = Instant::now() + Duration::from_millis(50 + (seed >> 33) % 400);
            }
            let sent = rt.block_on(
                client
                    .post(&url)
                    .header("idempotency-key", format!("batch-{b}"))
                    .body(body.clone())
                    .send(),
            );
            match sent {
                Ok(r) if r.status() == 200 => break,
                Ok(r) if r.status() == 503 || r.status() == 429 => std::thread::sleep(Duration::from_millis(20)),
                Ok(r) => panic!("unexpected status {}", r.status()),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(kills >= 3, "the server was killed {kills} times");

    let lake = trib_lake::Lake::new(".trib/lake", &ex.dir).expect("lake");
    let (rows, distinct) = rt.block_on(async {
        let t =
            trib_lake::ProductTable::open_url(&lake, lake.root().join("iot/sensor_readings/v1/").expect("url"), "t")
                .await
                .expect("table");
        let ctx = deltalake::datafusion::prelude::SessionContext::new();
        t.update_datafusion_session(&ctx.state()).expect("session");
        ctx.register_table("t", t.table_provider().await.expect("provider"))
            .expect("register");
        let b = ctx
            .sql("SELECT count(*), count(DISTINCT device_id) FROM t")
            .await
            .expect("sql")
            .collect()
            .await
            .expect("collect");
        let get = |i: usize| deltalake::arrow::util::display::array_value_to_string(b[0].column(i), 0).expect("value");
        (get(0), get(1))
    });
    let expected = (batches * per_batch).to_string();
    assert_eq!((rows, distinct), (expected.clone(), expected), "after {kills} kills");
}
