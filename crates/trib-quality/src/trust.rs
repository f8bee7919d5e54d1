//! One evaluation of a project's products: scheduled checks, SLO measurements, the
//! certification step, incidents and alerts. `trib serve` runs it every
//! `[certification] evaluate_every`; `trib slo --evaluate` runs it once.

use crate::Result;
use crate::alerts::{Alert, AlertKind, Delivery, Incidents, Notifier, SecretSource};
use crate::certify::{self, CertState, Certifications, Transition};
use crate::checks::{CheckRun, Checker};
use crate::slo::{Attainment, Measurement, SloKind, Slos};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Mutex;
use trib_core::Clock;
use trib_core::settings::CertificationSettings;
use trib_lake::{Lake, TableKind};
use trib_spec::{Contract, Layer, Project, Status as ContractStatus};

/// What one evaluation did to one product.
#[derive(Debug, Clone)]
pub struct ProductEvaluation {
    pub product: String,
    pub major: u64,
    pub checks: Option<CheckRun>,
    pub measurements: Vec<Measurement>,
    pub state: CertState,
    pub transition: Option<Transition>,
    pub opened: Vec<String>,
    pub resolved: Vec<String>,
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub products: Vec<ProductEvaluation>,
}

/// Where a product stands, for `trib slo` and the API.
#[derive(Debug, Clone)]
pub struct Standing {
    pub product: String,
    pub major: u64,
    /// The error-budget window, as people say it (`28d`).
    pub budget_window: String,
    pub state: Option<(CertState, i64)>,
    pub slos: Vec<SloStanding>,
    pub transitions: Vec<Transition>,
}

#[derive(Debug, Clone)]
pub struct SloStanding {
    pub slo: SloKind,
    pub target: f64,
    /// The newest measurement: met, what was seen, the value.
    pub latest: Option<(bool, String, Option<f64>)>,
    /// Attainment over the last day, 7 days and the budget window (labelled `budget`).
    pub windows: Vec<(&'static str, Attainment)>,
    /// Share of measurements met per day, oldest first, over the chart's days.
    pub daily: Vec<Option<f64>>,
}

/// Days shown in the terminal chart.
pub const CHART_DAYS: i64 = 14;
const DAY_MS: i64 = 86_400_000;

pub struct Trust {
    lake: Lake,
    project: Arc<Project>,
    clock: Arc<dyn Clock>,
    settings: CertificationSettings,
    checker: Arc<Checker>,
    slos: Mutex<Slos>,
    certs: Mutex<Certifications>,
    incidents: Mutex<Incidents>,
    notifier: Arc<Notifier>,
    board: Arc<certify::Board>,
    /// Deliver alerts on their own tasks rather than within the evaluation.
    background: bool,
}

impl Trust {
    pub async fn open(lake: Lake, project: Arc<Project>, clock: Arc<dyn Clock>) -> Result<Self> {
        let settings = project.settings.certification.clone();
        let checker = Arc::new(Checker::open(lake.clone(), project.clone(), clock.clone()).await?);
        let notifier = Notifier::open(
            &lake,
            project.settings.teams.clone(),
            project.settings.alerts.clone(),
            clock.clone(),
        )
        .await?;
        let mut certs = Certifications::open(&lake).await?;
        let board = Arc::new(certify::Board::default());
        board.reload(&mut certs).await?;
        Ok(Self {
            slos: Mutex::new(Slos::open(&lake, settings.clone()).await?),
            certs: Mutex::new(certs),
            board,
            background: false,
            incidents: Mutex::new(Incidents::open(&lake).await?),
            notifier: Arc::new(notifier),
            lake,
            project,
            clock,
            settings,
            checker,
        })
    }

    /// Alerts are delivered on their own tasks, so that a slow or failing receiver
    /// (retried with backoff) does not hold up the next products' evaluation; the
    /// deliveries of an evaluation are then not in its report but in the delivery log.
    pub fn with_background_delivery(mut self) -> Self {
        self.background = true;
        self
    }

    /// Signing keys come from `secrets` instead of the environment.
    pub fn with_secrets(mut self, secrets: SecretSource) -> Self {
        if let Some(n) = Arc::get_mut(&mut self.notifier) {
            n.set_secrets(secrets);
        }
        self
    }

    /// Current states, kept up to date by each evaluation, for the read path.
    pub fn board(&self) -> &Arc<certify::Board> {
        &self.board
    }

    pub fn checker(&self) -> &Arc<Checker> {
        &self.checker
    }

    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    /// Every product with a table (views excluded), newest major of each first.
    pub fn products(&self) -> Vec<&Contract> {
        self.project.contracts().filter(|c| c.layer != Layer::View).collect()
    }

    /// Evaluates every product; with `scheduled_checks`, runs their checks over the
    /// whole product first.
    pub async fn evaluate(&self, scheduled_checks: bool) -> Result<Evaluation> {
        let mut out = Evaluation::default();
        for c in self.products() {
            out.products.push(self.evaluate_product(c, scheduled_checks).await?);
        }
        Ok(out)
    }

    pub async fn evaluate_product(&self, contract: &Contract, scheduled_checks: bool) -> Result<ProductEvaluation> {
        let product = contract.product.value.to_string();
        let major = contract.major();
        let now = self.clock.now_millis();
        let exists = trib_lake::open_existing(&self.lake, contract, TableKind::Data)
            .await?
            .is_some();
        let checks = if scheduled_checks && exists && !contract.quality.is_empty() {
            Some(self.checker.check_product(contract).await?)
        } else {
            None
        };

        let (measurements, latest, windows, bounds) = {
            let mut slos = self.slos.lock().await;
            let ms = slos.measure(contract, now).await?;
            slos.record(&ms).await?;
            let latest = slos.latest(contract).await?;
            let window = slos
                .attainment(contract, now - self.settings.budget_window.as_millis() as i64)
                .await?;
            let bounds = slos.history_bounds(contract).await?;
            (ms, latest, window, bounds)
        };
        let declared = crate::slo::declared(contract, &self.settings);
        let breaches: Vec<(SloKind, String)> = declared
            .iter()
            .filter_map(|(k, _)| match latest.get(k) {
                Some((false, detail, _)) => Some((*k, detail.clone())),
                _ => None,
            })
            .collect();
        // The governance rule: a model is certified only on certified inputs.
        let uncertified_inputs: Vec<String> = if self.settings.require_certified_inputs {
            contract
                .inputs()
                .iter()
                .filter_map(|i| {
                    let major = i
                        .value
                        .major
                        .or_else(|| self.project.latest(&i.value.product).map(|c| c.major()))?;
                    let state = self.board.get(&i.value.product.to_string(), major).map(|s| s.0);
                    (state != Some(CertState::Certified)).then(|| {
                        format!(
                            "input `{}@v{major}` is {}",
                            i.value.product,
                            state.map_or("not evaluated", CertState::as_str)
                        )
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let exhausted: Vec<String> = windows
            .iter()
            .filter(|a| a.exhausted())
            .map(|a| {
                format!(
                    "{} at {:.2}% over {} against {}%",
                    a.slo.as_str(),
                    a.percent().unwrap_or(0.0),
                    trib_core::duration::human(self.settings.budget_window.as_secs()),
                    a.target
                )
            })
            .collect();

        let mut certs = self.certs.lock().await;
        let current = certs.current(&product, major).await?;
        let (last_breach, first) = bounds;
        let entered = match current {
            Some((CertState::Candidate, at)) => Some(at),
            _ => None,
        };
        let clean_since = first.map(|f| [Some(f), last_breach, entered].into_iter().flatten().max().unwrap_or(f));
        let inputs = certify::Inputs {
            draft: contract.status == ContractStatus::Draft,
            slos: declared.len(),
            breaches: breaches
                .iter()
                .map(|(k, d)| format!("{}: {d}", k.as_str()))
                .chain(uncertified_inputs.iter().cloned())
                .collect(),
            exhausted,
            clean_since_ms: clean_since,
            now_ms: now,
            probation_ms: self.settings.probation.as_millis() as i64,
        };
        let mut alerts = Vec::new();
        let mut transition = None;
        let mut state = current.map_or(CertState::Candidate, |c| c.0);
        if let Some((to, reason)) = certify::next(current.map(|c| c.0), &inputs) {
            let evidence = serde_json::json!({
                "measurements": latest.iter().map(|(k, (met, detail, value))| serde_json::json!({
                    "slo": k.as_str(), "met": met, "detail": detail, "value": value.filter(|v| v.is_finite()),
                })).collect::<Vec<_>>(),
                "budgets": windows.iter().map(|a| serde_json::json!({
                    "slo": a.slo.as_str(), "target": a.target, "attainment": a.percent(), "budget_left": a.budget_left(),
                })).collect::<Vec<_>>(),
            });
            let t = Transition {
                product: product.clone(),
                major,
                from: current.map(|c| c.0),
                to,
                at_ms: now,
                reason: reason.clone(),
                evidence: evidence.to_string(),
            };
            certs.record(&t).await?;
            self.board.set(&product, major, to, now);
            crate::metrics::transition(&product, to);
            tracing::info!(product = %product, major, from = ?t.from, to = %to, reason = %reason, "certification changed");
            if let Some(from) = t.from {
                alerts.push(self.alert(
                    contract,
                    AlertKind::CertificationChanged,
                    format!("`{product}` v{major} is now {to} (was {from}): {reason}"),
                    None,
                    |a| {
                        a.from = Some(from.as_str().into());
                        a.to = Some(to.as_str().into());
                    },
                ));
            }
            state = to;
            transition = Some(t);
        }
        drop(certs);

        let mut incidents = self.incidents.lock().await;
        let open = incidents.open_of(&product, major).await?;
        let mut events = Vec::new();
        let mut opened = Vec::new();
        let mut resolved = Vec::new();
        let targets: BTreeMap<SloKind, f64> = declared.iter().copied().collect();
        for (k, detail) in &breaches {
            if open.contains_key(k.as_str()) {
                continue;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let message = format!("`{product}` v{major} breaches its {} SLO: {detail}", k.as_str());
            events.push((
                id.clone(),
                product.clone(),
                major,
                k.as_str().to_string(),
                "opened",
                message.clone(),
            ));
            let value = latest.get(k).and_then(|l| l.2);
            alerts.push(
                self.alert(contract, AlertKind::IncidentOpened, message, Some(&id), |a| {
                    a.slo = Some(k.as_str().into());
                    a.measured = value;
                    a.target = targets.get(k).copied();
                }),
            );
            opened.push(k.as_str().to_string());
        }
        for (slo, id) in &open {
            let still = breaches.iter().any(|(k, _)| k.as_str() == slo);
            // An SLO no longer declared closes its incident too.
            if still {
                continue;
            }
            let detail = SloKind::parse(slo)
                .and_then(|k| latest.get(&k))
                .map_or_else(String::new, |l| l.1.clone());
            let message = format!("`{product}` v{major} meets its {slo} SLO again: {detail}");
            events.push((
                id.clone(),
                product.clone(),
                major,
                slo.clone(),
                "resolved",
                message.clone(),
            ));
            alerts.push(
                self.alert(contract, AlertKind::IncidentResolved, message, Some(id), |a| {
                    a.slo = Some(slo.clone());
                }),
            );
            resolved.push(slo.clone());
        }
        incidents.record(now, &events).await?;
        drop(incidents);

        let mut deliveries = Vec::new();
        if self.background {
            let notifier = self.notifier.clone();
            tokio::spawn(async move {
                for a in alerts {
                    if let Err(e) = notifier.deliver(a).await {
                        tracing::warn!(error = %e, "alert delivery could not be logged");
                    }
                }
            });
        } else {
            for a in alerts {
                deliveries.push(self.notifier.deliver(a).await?);
            }
        }
        Ok(ProductEvaluation {
            product,
            major,
            checks,
            measurements,
            state,
            transition,
            opened,
            resolved,
            deliveries,
        })
    }

    fn alert(
        &self,
        contract: &Contract,
        kind: AlertKind,
        message: String,
        incident: Option<&str>,
        fill: impl FnOnce(&mut Alert),
    ) -> Alert {
        let mut a = Alert {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            product: contract.product.value.to_string(),
            major: contract.major(),
            team: contract.owner.clone(),
            webhook: contract.contact.webhook.clone(),
            at_ms: self.clock.now_millis(),
            message,
            incident: incident.map(str::to_string),
            slo: None,
            measured: None,
            target: None,
            from: None,
            to: None,
            details: None,
        };
        fill(&mut a);
        a
    }

    /// Where a product stands now.
    pub async fn standing(&self, contract: &Contract) -> Result<Standing> {
        let product = contract.product.value.to_string();
        let major = contract.major();
        let now = self.clock.now_millis();
        let mut slos = self.slos.lock().await;
        let latest = slos.latest(contract).await?;
        let mut windows: BTreeMap<SloKind, Vec<(&'static str, Attainment)>> = BTreeMap::new();
        let budget_ms = self.settings.budget_window.as_millis() as i64;
        for (label, ms) in [("1d", DAY_MS), ("7d", 7 * DAY_MS), ("budget", budget_ms.max(DAY_MS))] {
            for a in slos.attainment(contract, now - ms).await? {
                windows.entry(a.slo).or_default().push((label, a));
            }
        }
        let series = slos.series(contract, now - CHART_DAYS * DAY_MS).await?;
        drop(slos);
        let mut certs = self.certs.lock().await;
        let transitions = certs.history(&product, major).await?;
        let state = transitions.last().map(|t| (t.to, t.at_ms));
        let slos = crate::slo::declared(contract, &self.settings)
            .into_iter()
            .map(|(slo, target)| {
                let mut daily = vec![(0u32, 0u32); CHART_DAYS as usize];
                for (k, at, met, _) in &series {
                    if *k != slo {
                        continue;
                    }
                    let age_days = (now - at) / DAY_MS;
                    if (0..CHART_DAYS).contains(&age_days) {
                        let d = &mut daily[(CHART_DAYS - 1 - age_days) as usize];
                        d.1 += 1;
                        if *met {
                            d.0 += 1;
                        }
                    }
                }
                SloStanding {
                    slo,
                    target,
                    latest: latest.get(&slo).cloned(),
                    windows: windows.remove(&slo).unwrap_or_default(),
                    daily: daily
                        .into_iter()
                        .map(|(g, t)| (t > 0).then(|| 100.0 * g as f64 / t as f64))
                        .collect(),
                }
            })
            .collect();
        Ok(Standing {
            product,
            major,
            budget_window: trib_core::duration::human(self.settings.budget_window.as_secs()),
            state,
            slos,
            transitions,
        })
    }
}
