//! `metrics`: run metrics. `PUT /opsml/metrics` records metrics (a write: the prod token is
//! needed in production); `POST /opsml/metrics` reads a run's metrics or their names.

use registry_spin::http::{json_body, send_error, send_result, RequestHead};
use registry_spin::settings::{authenticate, WritePolicy};
use registry_spin::storage::open_database;
use registry_spin::ApiError;
use registry_store::metrics::{self, Metric};
use serde::Deserialize;
use serde_json::{json, Value};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::of(&req);
    if let Err(e) = authenticate(&head) {
        return send_error(out, &e).await;
    }
    send_result(out, route(&head, req).await).await;
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

async fn route(head: &RequestHead, req: IncomingRequest) -> Result<Value, ApiError> {
    head.expect_method(&[Method::Put, Method::Post])?;
    if head.method == Method::Put {
        WritePolicy::load().authorize(head)?;
        let body: PutBody = json_body(req).await?;
        metrics::insert(&open_database()?, &body.metric)?;
        return Ok(json!({ "complete": true }));
    }
    let body: GetBody = json_body(req).await?;
    let db = open_database()?;
    // The reference answers `null` rather than an empty list when a run has no metrics.
    let found = if body.names_only {
        json!(metrics::names(&db, &body.run_uid)?)
    } else {
        json!(metrics::get(&db, &body.run_uid, body.name.as_deref())?)
    };
    let empty = found.as_array().is_some_and(Vec::is_empty);
    Ok(json!({ "metric": if empty { Value::Null } else { found } }))
}
