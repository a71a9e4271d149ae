//! Run metrics: recorded (a write: the prod token in production), in one transaction with one
//! audit record per run, and read per run. A run's metrics belong to the repository of its run
//! card; the client records them before it registers that card, so for a run without a card
//! the scope alone decides.

use crate::caller::{Caller, WriteCleared};
use crate::cards::StoredCard;
use crate::deployment::Ctx;
use crate::error::Result;
use registry_core::access::Scope;
use registry_core::RegistryType;
use registry_store::audit::{self, AuditAction, AuditRecord};
use registry_store::cards;
use registry_store::metrics::{self, Metric};
use registry_store::sql::transaction;
use serde::Deserialize;
use serde_json::{json, Value};

/// Allows `need` on a run's metrics; returns the run's card, if it is registered.
fn require_on_run(
    ctx: &Ctx,
    caller: &Caller,
    need: Scope,
    run_uid: &str,
) -> Result<Option<StoredCard>> {
    let Some(fields) = cards::get(ctx.db()?, RegistryType::Run, run_uid)? else {
        caller.require_somewhere(need)?;
        return Ok(None);
    };
    let run = StoredCard {
        registry: RegistryType::Run,
        fields,
    };
    caller.require(need, Some(run.repository()))?;
    Ok(Some(run))
}

/// `PUT metrics`' body.
#[derive(Deserialize)]
pub struct MetricsPut {
    pub metric: Vec<Metric>,
}

/// `POST metrics`' body.
#[derive(Deserialize)]
pub struct MetricsAsk {
    pub run_uid: String,
    #[serde(default)]
    pub name: Option<Vec<String>>,
    #[serde(default)]
    pub names_only: bool,
}

pub fn record(ctx: &Ctx, caller: &Caller, _: &WriteCleared, put: MetricsPut) -> Result<()> {
    let mut runs: Vec<&str> = put.metric.iter().map(|m| m.run_uid.as_str()).collect();
    runs.sort_unstable();
    runs.dedup();
    let mut records = Vec::with_capacity(runs.len());
    for run in runs {
        let card = require_on_run(ctx, caller, Scope::Write, run)?;
        let count = put.metric.iter().filter(|m| m.run_uid == run).count();
        let text = |field: fn(&StoredCard) -> &str| card.as_ref().map(|c| field(c).to_string());
        records.push(AuditRecord {
            registry: Some(RegistryType::Run.as_str().to_string()),
            repository: text(StoredCard::repository),
            name: text(StoredCard::name),
            version: text(StoredCard::version),
            detail: Some(format!("{count} metrics")),
            ..caller.audit(ctx, AuditAction::MetricsInsert, run)
        });
    }
    transaction(ctx.db()?, |tx| {
        metrics::insert(tx, &put.metric)?;
        records
            .iter()
            .try_for_each(|record| audit::record(tx, record))
    })?;
    Ok(())
}

/// A run's metrics (or their names); `null` rather than an empty list when it has none, as
/// the reference answers.
pub fn read(ctx: &Ctx, caller: &Caller, ask: MetricsAsk) -> Result<Value> {
    require_on_run(ctx, caller, Scope::Read, &ask.run_uid)?;
    let db = ctx.db()?;
    let found = if ask.names_only {
        json!(metrics::names(db, &ask.run_uid)?)
    } else {
        json!(metrics::get(db, &ask.run_uid, ask.name.as_deref())?)
    };
    let empty = found.as_array().is_some_and(Vec::is_empty);
    Ok(json!({ "metric": if empty { Value::Null } else { found } }))
}

/// Every metric of a run the caller may read (the pages' charts).
pub fn of_run(ctx: &Ctx, caller: &Caller, run: &StoredCard) -> Result<Vec<Metric>> {
    caller.require(Scope::Read, Some(run.repository()))?;
    Ok(metrics::get(ctx.db()?, run.uid(), None)?)
}
