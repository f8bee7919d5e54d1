//! Certification of one product major version, a state machine driven by its SLOs:
//!
//! ```text
//!  draft ──(contract active)──► candidate ──(every SLO met for the probation)──► certified
//!                                  ▲                                               │ ▲
//!                                  │                                     (a breach)│ │(recovered)
//!                        (recovered)                                               ▼ │
//!                             decertified ◄──────(error budget exhausted)────── degraded
//! ```
//!
//! A certified product whose budget is already exhausted goes straight to decertified,
//! and a candidate is certified only once its budget over the window is not spent.
//! Every transition is stored in `_trib.certifications` with its evidence.

use crate::Result;
use crate::store::{SystemTable, lit, micros, millis, texts, utc};
use arrow::array::{RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;
use trib_lake::Lake;

pub const TABLE: &str = "certifications";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CertState {
    Draft,
    Candidate,
    Certified,
    Degraded,
    Decertified,
}

impl CertState {
    pub const ALL: [CertState; 5] = [
        CertState::Draft,
        CertState::Candidate,
        CertState::Certified,
        CertState::Degraded,
        CertState::Decertified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CertState::Draft => "draft",
            CertState::Candidate => "candidate",
            CertState::Certified => "certified",
            CertState::Degraded => "degraded",
            CertState::Decertified => "decertified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for CertState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the state machine looks at.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The contract's `status` is `draft`.
    pub draft: bool,
    /// How many SLOs the product declares: none means it cannot be certified.
    pub slos: usize,
    /// SLOs whose latest measurement misses, with what was measured.
    pub breaches: Vec<String>,
    /// SLOs whose error budget over the window is spent.
    pub exhausted: Vec<String>,
    /// Since when every SLO has held (the later of the last breach, the first
    /// measurement and entering the current state).
    pub clean_since_ms: Option<i64>,
    pub now_ms: i64,
    pub probation_ms: i64,
}

/// The next state, and why, or `None` to stay.
pub fn next(current: Option<CertState>, i: &Inputs) -> Option<(CertState, String)> {
    use CertState::*;
    let breaching = !i.breaches.is_empty();
    let state = current.unwrap_or(Candidate);
    let step = match state {
        _ if i.draft => (state != Draft).then(|| (Draft, "the contract is a draft".to_string())),
        Draft => Some((Candidate, "the contract is active".into())),
        Candidate => {
            let clean_for = i.clean_since_ms.map(|t| i.now_ms - t);
            if i.slos == 0 {
                None
            } else if !breaching && i.exhausted.is_empty() && clean_for.is_some_and(|c| c >= i.probation_ms) {
                Some((
                    Certified,
                    format!(
                        "every SLO met for {}",
                        trib_core::duration::human((clean_for.unwrap_or(0) / 1000) as u64)
                    ),
                ))
            } else {
                None
            }
        }
        Certified if !i.exhausted.is_empty() => Some((
            Decertified,
            format!("error budget exhausted: {}", i.exhausted.join("; ")),
        )),
        Certified if breaching => Some((Degraded, format!("SLO breached: {}", i.breaches.join("; ")))),
        Certified => None,
        Degraded if !i.exhausted.is_empty() => Some((
            Decertified,
            format!("error budget exhausted: {}", i.exhausted.join("; ")),
        )),
        Degraded if !breaching => Some((Certified, "recovered: every SLO met again".into())),
        Degraded => None,
        Decertified if !breaching => Some((
            Candidate,
            "recovered: every SLO met again; probation starts over".into(),
        )),
        Decertified => None,
    };
    match (current, step) {
        // The first evaluation records where the product starts.
        (None, None) => Some((state, "first evaluation".into())),
        (_, s) => s,
    }
}

/// One stored transition.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub product: String,
    pub major: u64,
    pub from: Option<CertState>,
    pub to: CertState,
    pub at_ms: i64,
    pub reason: String,
    /// The measurements behind it, as JSON.
    pub evidence: String,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, utc()), false),
        Field::new("product", DataType::Utf8, false),
        Field::new("major", DataType::UInt64, false),
        Field::new("from_state", DataType::Utf8, true),
        Field::new("to_state", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("evidence", DataType::Utf8, false),
    ]))
}

pub struct Certifications {
    table: SystemTable,
}

impl Certifications {
    pub async fn open(lake: &Lake) -> Result<Self> {
        Ok(Self {
            table: SystemTable::open(lake, TABLE, schema()).await?,
        })
    }

    pub async fn record(&mut self, t: &Transition) -> Result<()> {
        let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        at.append_value(micros(t.at_ms));
        let mut product = StringBuilder::new();
        product.append_value(&t.product);
        let mut major = UInt64Builder::new();
        major.append_value(t.major);
        let mut from = StringBuilder::new();
        from.append_option(t.from.map(CertState::as_str));
        let mut to = StringBuilder::new();
        to.append_value(t.to.as_str());
        let mut reason = StringBuilder::new();
        reason.append_value(&t.reason);
        let mut evidence = StringBuilder::new();
        evidence.append_value(&t.evidence);
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(at.finish()),
                Arc::new(product.finish()),
                Arc::new(major.finish()),
                Arc::new(from.finish()),
                Arc::new(to.finish()),
                Arc::new(reason.finish()),
                Arc::new(evidence.finish()),
            ],
        )?;
        self.table.append(&batch, None).await
    }

    /// The newest state of every product major: ((product, major), (state, since)).
    pub async fn all_current(&mut self) -> Result<Vec<((String, u64), (CertState, i64))>> {
        let sql = "SELECT product, major, last_value(to_state ORDER BY at) AS state, max(at) AS since FROM t GROUP BY product, major";
        let mut out = Vec::new();
        for b in self.table.query(sql).await? {
            let product = texts(b.column(0))?;
            let major = crate::store::numbers(b.column(1))?;
            let state = texts(b.column(2))?;
            let since = millis(b.column(3))?;
            for i in 0..b.num_rows() {
                if let Some(s) = CertState::parse(state.value(i)) {
                    out.push((
                        (product.value(i).to_string(), major.value(i) as u64),
                        (s, since.value(i)),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The product's state and since when, from its newest transition.
    pub async fn current(&mut self, product: &str, major: u64) -> Result<Option<(CertState, i64)>> {
        Ok(self.history(product, major).await?.last().map(|t| (t.to, t.at_ms)))
    }

    /// Every transition of a product, oldest first.
    pub async fn history(&mut self, product: &str, major: u64) -> Result<Vec<Transition>> {
        let sql = format!(
            "SELECT at, from_state, to_state, reason, evidence FROM t WHERE product = {} AND major = {major} ORDER BY at",
            lit(product)
        );
        let mut out = Vec::new();
        for b in self.table.query(&sql).await? {
            let at = millis(b.column(0))?;
            let from = texts(b.column(1))?;
            let to = texts(b.column(2))?;
            let reason = texts(b.column(3))?;
            let evidence = texts(b.column(4))?;
            for i in 0..b.num_rows() {
                let Some(to_state) = CertState::parse(to.value(i)) else {
                    continue;
                };
                out.push(Transition {
                    product: product.to_string(),
                    major,
                    from: arrow::array::Array::is_valid(&from, i)
                        .then(|| CertState::parse(from.value(i)))
                        .flatten(),
                    to: to_state,
                    at_ms: at.value(i),
                    reason: reason.value(i).to_string(),
                    evidence: evidence.value(i).to_string(),
                });
            }
        }
        Ok(out)
    }
}

/// The current certification of every product, in memory for the read path: loaded
/// from `_trib.certifications` and kept up to date by [`crate::Trust`].
#[derive(Debug, Default)]
pub struct Board {
    states: std::sync::RwLock<std::collections::HashMap<(String, u64), (CertState, i64)>>,
}

impl Board {
    /// The states recorded so far; empty (and nothing created) before any evaluation.
    pub async fn load(lake: &Lake) -> Result<Self> {
        let board = Self::default();
        let name = format!("_trib.{TABLE}");
        if trib_lake::ProductTable::open_url(lake, lake.system_url(TABLE), &name)
            .await
            .is_err()
        {
            return Ok(board);
        }
        board.reload(&mut Certifications::open(lake).await?).await?;
        Ok(board)
    }

    pub(crate) async fn reload(&self, certs: &mut Certifications) -> Result<()> {
        let all = certs.all_current().await?;
        let mut states = self.states.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        states.clear();
        states.extend(all);
        Ok(())
    }

    pub(crate) fn set(&self, product: &str, major: u64, state: CertState, since: i64) {
        self.states
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((product.to_string(), major), (state, since));
    }

    pub fn get(&self, product: &str, major: u64) -> Option<(CertState, i64)> {
        self.states
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(product.to_string(), major))
            .copied()
    }
}

impl trib_core::CertificationStatus for Board {
    fn state(&self, product: &str, major: u64) -> Option<String> {
        self.get(product, major).map(|s| s.0.as_str().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CertState::*;

    const DAY: i64 = 86_400_000;

    fn inputs(breaches: &[&str], exhausted: &[&str], clean_days: Option<i64>) -> Inputs {
        let now = 100 * DAY;
        Inputs {
            draft: false,
            slos: 2,
            breaches: breaches.iter().map(|s| s.to_string()).collect(),
            exhausted: exhausted.iter().map(|s| s.to_string()).collect(),
            clean_since_ms: clean_days.map(|d| now - d * DAY),
            now_ms: now,
            probation_ms: 7 * DAY,
        }
    }

    #[test]
    fn the_whole_cycle() {
        assert_eq!(next(None, &inputs(&[], &[], Some(0))).map(|s| s.0), Some(Candidate));
        assert_eq!(next(Some(Candidate), &inputs(&[], &[], Some(6))), None);
        assert_eq!(
            next(Some(Candidate), &inputs(&[], &[], Some(7))).map(|s| s.0),
            Some(Certified)
        );
        assert_eq!(next(Some(Certified), &inputs(&[], &[], Some(30))), None);
        assert_eq!(
            next(Some(Certified), &inputs(&["freshness"], &[], None)).map(|s| s.0),
            Some(Degraded)
        );
        assert_eq!(next(Some(Degraded), &inputs(&["freshness"], &[], None)), None);
        assert_eq!(
            next(Some(Degraded), &inputs(&[], &[], Some(0))).map(|s| s.0),
            Some(Certified)
        );
        assert_eq!(
            next(Some(Degraded), &inputs(&["freshness"], &["freshness"], None)).map(|s| s.0),
            Some(Decertified)
        );
        assert_eq!(
            next(Some(Decertified), &inputs(&["freshness"], &["freshness"], None)),
            None
        );
        assert_eq!(
            next(Some(Decertified), &inputs(&[], &["freshness"], Some(0))).map(|s| s.0),
            Some(Candidate)
        );
    }

    #[test]
    fn a_breach_during_probation_keeps_a_candidate() {
        assert_eq!(next(Some(Candidate), &inputs(&["validity"], &[], Some(30))), None);
    }

    #[test]
    fn no_slos_no_certificate_and_drafts_stay_drafts() {
        let mut i = inputs(&[], &[], Some(30));
        i.slos = 0;
        assert_eq!(next(Some(Candidate), &i), None);
        let mut d = inputs(&[], &[], Some(30));
        d.draft = true;
        assert_eq!(next(Some(Certified), &d).map(|s| s.0), Some(Draft));
        assert_eq!(next(None, &d).map(|s| s.0), Some(Draft));
    }

    #[test]
    fn a_spent_budget_keeps_a_candidate_until_it_recovers() {
        assert_eq!(next(Some(Candidate), &inputs(&[], &["freshness"], Some(30))), None);
    }

    #[test]
    fn exhausted_budget_skips_degraded() {
        assert_eq!(
            next(Some(Certified), &inputs(&["checks"], &["checks"], None)).map(|s| s.0),
            Some(Decertified)
        );
    }
}
