//! `metrics`: run metrics. `PUT /opsml/metrics` records metrics (a write: the prod token is
//! needed in production), in one transaction with one audit record per run;
//! `POST /opsml/metrics` reads a run's metrics or their names. A run's metrics belong to the
//! repository of its run card; the client records them before it registers that card, so for
//! a run without a card the scope alone decides.

use registry_core::access::Scope;
use registry_core::RegistryType;
use registry_spin::http::{json_body, send_error, send_result, RequestHead};
use registry_spin::settings::{authenticate, Caller, WritePolicy};
use registry_spin::storage::open_database;
use registry_spin::ApiError;
use registry_store::audit::{self, AuditRecord};
use registry_store::metrics::{self, Metric};
use registry_store::sql::transaction;
use registry_store::{cards, Sql};
use serde::Deserialize;
use serde_json::{json, Value};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::of(&req);
    let caller = match authenticate(&head) {
        Ok(caller) => caller,
        Err(e) => return send_error(out, &e).await,
    };
    send_result(out, route(&head, req, &caller).await).await;
}

/// Allows `need` on a run's metrics; returns the audit record's card fields for that run.
fn require_on_run(
    db: &dyn Sql,
    caller: &Caller,
    need: Scope,
    run_uid: &str,
) -> Result<Option<(String, String, String)>, ApiError> {
    let Some(run) = cards::get(db, RegistryType::Run, run_uid)? else {
        caller.require_scope(need)?;
        return Ok(None);
    };
    let text = |key: &str| {
        run.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    caller.require(need, Some(&text("repository")))?;
    Ok(Some((text("repository"), text("name"), text("version"))))
}

#[derive(Deserialize)]
struct PutBody {
    metric: Vec<Metric>,
}

#[derive(Deserialize)]
struct GetBody {
    run_uid: String,
    #[serde(default)]
    name: Option<Vec<String>>,
    #[serde(default)]
    names_only: bool,
}

async fn route(
    head: &RequestHead,
    req: IncomingRequest,
    caller: &Caller,
) -> Result<Value, ApiError> {
    head.expect_method(&[Method::Put, Method::Post])?;
    if head.method == Method::Put {
        WritePolicy::load().authorize(head)?;
        let body: PutBody = json_body(req).await?;
        let db = open_database()?;
        let mut runs: Vec<&str> = body.metric.iter().map(|m| m.run_uid.as_str()).collect();
        runs.sort_unstable();
        runs.dedup();
        let mut records = Vec::with_capacity(runs.len());
        for run in runs {
            let card = require_on_run(&db, caller, Scope::Write, run)?;
            let count = body.metric.iter().filter(|m| m.run_uid == run).count();
            let (repository, name, version) = match card {
                Some((r, n, v)) => (Some(r), Some(n), Some(v)),
                None => (None, None, None),
            };
            records.push(AuditRecord {
                registry: Some(RegistryType::Run.as_str().to_string()),
                repository,
                name,
                version,
                detail: Some(format!("{count} metrics")),
                ..caller.audit("metrics.insert", run)
            });
        }
        transaction(&db, |tx| {
            metrics::insert(tx, &body.metric)?;
            records
                .iter()
                .try_for_each(|record| audit::record(tx, record))
        })?;
        return Ok(json!({ "complete": true }));
    }
    let body: GetBody = json_body(req).await?;
    let db = open_database()?;
    require_on_run(&db, caller, Scope::Read, &body.run_uid)?;
    // The reference answers `null` rather than an empty list when a run has no metrics.
    let found = if body.names_only {
        json!(metrics::names(&db, &body.run_uid)?)
    } else {
        json!(metrics::get(&db, &body.run_uid, body.name.as_deref())?)
    };
    let empty = found.as_array().is_some_and(Vec::is_empty);
    Ok(json!({ "metric": if empty { Value::Null } else { found } }))
}
