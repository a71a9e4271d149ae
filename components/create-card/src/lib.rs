//! `create-card`: the card writes — next version, create, update, delete.
//! Create, update and delete need the prod token in production; `cards/version` only reads.

use registry_core::card::{self, Card, CardDefaults};
use registry_core::{next_version, RegistryType, VersionRequest, VersionType};
use registry_spin::http::{json_body, send_error, send_result, RequestHead};
use registry_spin::settings::{authenticate, WritePolicy};
use registry_spin::storage::{new_id, now_unix, open_database};
use registry_spin::ApiError;
use registry_store::cards;
use serde::Deserialize;
use serde_json::{json, Map, Value};
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

async fn route(head: &RequestHead, req: IncomingRequest) -> Result<Value, ApiError> {
    head.expect_method(&[Method::Post])?;
    let policy = WritePolicy::load();
    match head.path.as_str() {
        "/opsml/cards/version" => version(json_body(req).await?),
        "/opsml/cards/create" => {
            // The token is checked before the body is read, as in the reference.
            policy.authorize(head)?;
            create(json_body(req).await?, &policy)
        }
        "/opsml/cards/update" => {
            policy.authorize(head)?;
            update(json_body(req).await?, &policy)
        }
        "/opsml/cards/delete" => {
            policy.authorize(head)?;
            delete(json_body(req).await?)
        }
        _ => Err(ApiError::not_found("Not Found")),
    }
}

fn registry(
    table_name: &Option<String>,
    registry_type: &Option<String>,
) -> Result<RegistryType, ApiError> {
    Ok(RegistryType::resolve(
        table_name.as_deref(),
        registry_type.as_deref(),
    )?)
}

#[derive(Deserialize)]
struct SuppliedVersion {
    version: String,
}

#[derive(Deserialize)]
struct VersionBody {
    name: String,
    repository: String,
    #[serde(default)]
    version: Option<SuppliedVersion>,
    version_type: String,
    #[serde(default)]
    registry_type: Option<String>,
    #[serde(default)]
    table_name: Option<String>,
    #[serde(default)]
    pre_tag: Option<String>,
    #[serde(default)]
    build_tag: Option<String>,
}

fn version(body: VersionBody) -> Result<Value, ApiError> {
    let registry = registry(&body.table_name, &body.registry_type)?;
    let mut request = VersionRequest::new(VersionType::parse(&body.version_type)?);
    if let Some(supplied) = body.version {
        request = request.with_version(supplied.version);
    }
    if let Some(tag) = body.pre_tag {
        request = request.with_pre_tag(tag);
    }
    if let Some(tag) = body.build_tag {
        request = request.with_build_tag(tag);
    }
    let db = open_database()?;
    let existing = cards::versions_for_next(
        &db,
        registry,
        &card::normalize(registry, &body.name),
        &card::normalize(registry, &body.repository),
        &request.scope()?,
    )?;
    let next = next_version(&existing, &request)?;
    Ok(json!({ "version": next.to_string() }))
}

#[derive(Deserialize)]
struct CardBody {
    card: Map<String, Value>,
    #[serde(default)]
    registry_type: Option<String>,
    #[serde(default)]
    table_name: Option<String>,
}

fn defaults(policy: &WritePolicy) -> CardDefaults {
    let now = now_unix();
    CardDefaults {
        uid: new_id(),
        date: card::utc_date(now),
        app_env: policy.app_env_or_default(),
        timestamp: now * 1_000_000,
    }
}

fn create(body: CardBody, policy: &WritePolicy) -> Result<Value, ApiError> {
    let registry = registry(&body.table_name, &body.registry_type)?;
    let mut card = Card::from_fields(registry, body.card, &defaults(policy))?;
    let db = open_database()?;
    if registry == RegistryType::Project && card.record["project_id"].is_null() {
        let id = cards::project_id(&db, &card.name, &card.repository)?;
        card.record.insert("project_id".into(), json!(id));
    }
    cards::insert(&db, &card)?;
    Ok(json!({ "registered": true }))
}

fn uid_of(card: &Map<String, Value>) -> Result<String, ApiError> {
    match card.get("uid") {
        Some(Value::String(uid)) if !uid.is_empty() => Ok(uid.clone()),
        _ => Err(ApiError::unprocessable(
            "card field \"uid\" (a string) is required",
        )),
    }
}

/// Changes the given fields of an existing card; `updated` is false if there is no such card.
fn update(body: CardBody, policy: &WritePolicy) -> Result<Value, ApiError> {
    let registry = registry(&body.table_name, &body.registry_type)?;
    let uid = uid_of(&body.card)?;
    let db = open_database()?;
    let Some(mut fields) = cards::get(&db, registry, &uid)? else {
        return Ok(json!({ "updated": false }));
    };
    fields.extend(body.card);
    let card = Card::from_fields(registry, fields, &defaults(policy))?;
    Ok(json!({ "updated": cards::update(&db, &card)? }))
}

/// Deletes a card by uid; `deleted` is true once it is gone (also if it never existed).
fn delete(body: CardBody) -> Result<Value, ApiError> {
    let registry = registry(&body.table_name, &body.registry_type)?;
    let uid = uid_of(&body.card)?;
    cards::delete(&open_database()?, registry, &uid)?;
    Ok(json!({ "deleted": true }))
}
