//! Owning teams hear first: incidents open once per product and SLO (no storm of
//! repeats while a breach lasts) and close on recovery; certification changes are
//! announced too. Each alert is POSTed as JSON to the team's webhook, signed with
//! HMAC-SHA256 (`X-Trib-Signature: sha256=<hex>` over the body), retried with
//! exponential backoff, and every attempt is logged in `_trib.alert_deliveries`.

use crate::Result;
use crate::store::{SystemTable, lit, micros, millis, texts, utc};
use arrow::array::{
    BooleanBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder,
    UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;
use trib_core::Clock;
use trib_core::settings::{AlertSettings, TeamSettings};
use trib_lake::Lake;

pub const INCIDENTS: &str = "incidents";
pub const DELIVERIES: &str = "alert_deliveries";
/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "x-trib-signature";

/// What an alert announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    IncidentOpened,
    IncidentResolved,
    CertificationChanged,
    /// A newer major version supersedes the one a consumer reads; it is served until
    /// its deprecation date.
    VersionDeprecated,
    /// A product version is no longer served.
    VersionRetired,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::IncidentOpened => "incident.opened",
            AlertKind::IncidentResolved => "incident.resolved",
            AlertKind::CertificationChanged => "certification.changed",
            AlertKind::VersionDeprecated => "version.deprecated",
            AlertKind::VersionRetired => "version.retired",
        }
    }
}

/// One alert to an owning team.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: String,
    pub kind: AlertKind,
    pub product: String,
    pub major: u64,
    pub team: String,
    /// The contract's own webhook (`contact.webhook`), which takes precedence over the
    /// team's in the settings.
    pub webhook: Option<String>,
    pub at_ms: i64,
    pub message: String,
    /// The incident it opens or closes.
    pub incident: Option<String>,
    pub slo: Option<String>,
    pub measured: Option<f64>,
    pub target: Option<f64>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// What else the receiver needs, by kind (a deprecation's date, changes and successor).
    pub details: Option<serde_json::Value>,
}

impl Alert {
    pub fn body(&self) -> String {
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(self.at_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        serde_json::json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "product": self.product,
            "major": self.major,
            "team": self.team,
            "at": at,
            "message": self.message,
            "incident": self.incident,
            "slo": self.slo,
            "measured": self.measured.filter(|v| v.is_finite()),
            "target": self.target,
            "from": self.from,
            "to": self.to,
            "details": self.details,
        })
        .to_string()
    }
}

/// `sha256=<hex>` of the body under `key`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

// ---------------------------------------------------------------------------------------
// Incidents

pub fn incidents_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, utc()), false),
        Field::new("incident", DataType::Utf8, false),
        Field::new("product", DataType::Utf8, false),
        Field::new("major", DataType::UInt64, false),
        Field::new("slo", DataType::Utf8, false),
        Field::new("event", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
    ]))
}

pub struct Incidents {
    table: SystemTable,
}

impl Incidents {
    pub async fn open(lake: &Lake) -> Result<Self> {
        Ok(Self {
            table: SystemTable::open(lake, INCIDENTS, incidents_schema()).await?,
        })
    }

    /// Open incidents of a product: SLO → incident id.
    pub async fn open_of(&mut self, product: &str, major: u64) -> Result<BTreeMap<String, String>> {
        let sql = format!(
            "SELECT incident, slo, event FROM t WHERE product = {} AND major = {major} ORDER BY at",
            lit(product)
        );
        let mut open = BTreeMap::new();
        for b in self.table.query(&sql).await? {
            let id = texts(b.column(0))?;
            let slo = texts(b.column(1))?;
            let event = texts(b.column(2))?;
            for i in 0..b.num_rows() {
                if event.value(i) == "opened" {
                    open.insert(slo.value(i).to_string(), id.value(i).to_string());
                } else {
                    open.remove(slo.value(i));
                }
            }
        }
        Ok(open)
    }

    /// Records incidents opened or resolved: (incident, product, major, slo, event, message).
    pub async fn record(&mut self, at_ms: i64, events: &[(String, String, u64, String, &str, String)]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut id = StringBuilder::new();
        let mut product = StringBuilder::new();
        let mut major = UInt64Builder::new();
        let mut slo = StringBuilder::new();
        let mut event = StringBuilder::new();
        let mut message = StringBuilder::new();
        for (i, p, m, s, e, msg) in events {
            at.append_value(micros(at_ms));
            id.append_value(i);
            product.append_value(p);
            major.append_value(*m);
            slo.append_value(s);
            event.append_value(e);
            message.append_value(msg);
        }
        let batch = RecordBatch::try_new(
            incidents_schema(),
            vec![
                Arc::new(at.finish()),
                Arc::new(id.finish()),
                Arc::new(product.finish()),
                Arc::new(major.finish()),
                Arc::new(slo.finish()),
                Arc::new(event.finish()),
                Arc::new(message.finish()),
            ],
        )?;
        self.table.append(&batch, None).await
    }
}

// ---------------------------------------------------------------------------------------
// Deliveries

pub fn deliveries_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, utc()), false),
        Field::new("alert", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("product", DataType::Utf8, false),
        Field::new("team", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, true),
        Field::new("attempt", DataType::UInt32, false),
        Field::new("status", DataType::UInt16, true),
        Field::new("delivered", DataType::Boolean, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("body", DataType::Utf8, false),
    ]))
}

/// How one alert's delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub alert: Alert,
    pub attempts: u32,
    pub delivered: bool,
    pub error: Option<String>,
}

/// Where a team's signing key is found (the environment, by default).
pub type SecretSource = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Sends alerts to owning teams' webhooks.
pub struct Notifier {
    client: reqwest::Client,
    teams: Vec<TeamSettings>,
    settings: AlertSettings,
    secrets: SecretSource,
    clock: Arc<dyn Clock>,
    log: tokio::sync::Mutex<SystemTable>,
}

impl Notifier {
    pub async fn open(
        lake: &Lake,
        teams: Vec<TeamSettings>,
        settings: AlertSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(settings.timeout_ms))
            .build()
            .unwrap_or_default();
        Ok(Self {
            client,
            teams,
            settings,
            secrets: Arc::new(|name| std::env::var(name).ok()),
            clock,
            log: tokio::sync::Mutex::new(SystemTable::open(lake, DELIVERIES, deliveries_schema()).await?),
        })
    }

    /// Reads signing keys from `secrets` instead of the environment.
    pub fn set_secrets(&mut self, secrets: SecretSource) {
        self.secrets = secrets;
    }

    /// Delivers one alert, retrying failures with backoff; every attempt is logged.
    pub async fn deliver(&self, alert: Alert) -> Result<Delivery> {
        let body = alert.body();
        let team = self.teams.iter().find(|t| t.name == alert.team);
        let Some(url) = alert.webhook.clone().or_else(|| team.and_then(|t| t.webhook.clone())) else {
            let error = format!(
                "team `{}` has no webhook; hint: add `[[teams]] name = \"{}\"` with `webhook` to trib.toml, or `contact: {{ webhook: … }}` to the contract",
                alert.team, alert.team
            );
            tracing::warn!(product = %alert.product, team = %alert.team, kind = alert.kind.as_str(), "alert not sent: no webhook");
            self.log_attempt(&alert, None, 0, None, false, Some(&error), &body)
                .await?;
            return Ok(Delivery {
                alert,
                attempts: 0,
                delivered: false,
                error: Some(error),
            });
        };
        let key = team
            .and_then(|t| t.secret_env.as_deref())
            .and_then(|name| (self.secrets)(name));
        let mut attempt = 0;
        let mut backoff = std::time::Duration::from_millis(self.settings.backoff_ms);
        loop {
            attempt += 1;
            let mut req = self
                .client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-trib-event", alert.kind.as_str())
                .header("x-trib-delivery", &alert.id)
                .body(body.clone());
            if let Some(k) = &key {
                req = req.header(SIGNATURE_HEADER, sign(k.as_bytes(), body.as_bytes()));
            }
            let (status, error, retry) = match req.send().await {
                Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None, false),
                Ok(r) => {
                    let s = r.status();
                    // A receiver that refuses the request will refuse it again, except
                    // for time-outs and rate limits.
                    let retry = s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429;
                    (Some(s.as_u16()), Some(format!("HTTP {s}")), retry)
                }
                Err(e) => (None, Some(e.to_string()), true),
            };
            let delivered = error.is_none();
            self.log_attempt(&alert, Some(&url), attempt, status, delivered, error.as_deref(), &body)
                .await?;
            crate::metrics::alert_attempt(alert.kind.as_str(), delivered);
            if delivered || !retry || attempt >= self.settings.max_attempts {
                if !delivered {
                    tracing::warn!(product = %alert.product, team = %alert.team, attempts = attempt, error = ?error, "alert delivery failed");
                }
                return Ok(Delivery {
                    alert,
                    attempts: attempt,
                    delivered,
                    error,
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn log_attempt(
        &self,
        alert: &Alert,
        url: Option<&str>,
        attempt: u32,
        status: Option<u16>,
        delivered: bool,
        error: Option<&str>,
        body: &str,
    ) -> Result<()> {
        let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        at.append_value(micros(self.clock.now_millis()));
        let s = |v: &str| {
            let mut b = StringBuilder::new();
            b.append_value(v);
            Arc::new(b.finish())
        };
        let mut u = StringBuilder::new();
        u.append_option(url);
        let mut a = UInt32Builder::new();
        a.append_value(attempt);
        let mut st = UInt16Builder::new();
        st.append_option(status);
        let mut d = BooleanBuilder::new();
        d.append_value(delivered);
        let mut e = StringBuilder::new();
        e.append_option(error);
        let batch = RecordBatch::try_new(
            deliveries_schema(),
            vec![
                Arc::new(at.finish()),
                s(&alert.id),
                s(alert.kind.as_str()),
                s(&alert.product),
                s(&alert.team),
                Arc::new(u.finish()),
                Arc::new(a.finish()),
                Arc::new(st.finish()),
                Arc::new(d.finish()),
                Arc::new(e.finish()),
                s(body),
            ],
        )?;
        self.log.lock().await.append(&batch, None).await
    }

    /// Delivery attempts of a product, oldest first: (alert type, attempt, delivered).
    pub async fn log_of(&self, product: &str) -> Result<Vec<(String, u32, bool, i64)>> {
        let sql = format!(
            "SELECT type, attempt, delivered, at FROM t WHERE product = {} ORDER BY at, attempt",
            lit(product)
        );
        let mut out = Vec::new();
        for b in self.log.lock().await.query(&sql).await? {
            let kind = texts(b.column(0))?;
            let attempt = crate::store::numbers(b.column(1))?;
            let delivered = arrow::compute::cast(b.column(2), &DataType::Boolean)?;
            let delivered = arrow::array::AsArray::as_boolean(&delivered).clone();
            let at = millis(b.column(3))?;
            for i in 0..b.num_rows() {
                out.push((
                    kind.value(i).to_string(),
                    attempt.value(i) as u32,
                    delivered.value(i),
                    at.value(i),
                ));
            }
        }
        Ok(out)
    }
}
