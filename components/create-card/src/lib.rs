//! `create-card`: the card writes — next version, create, update, delete.
//! Create, update and delete need the `write` scope in the card's repository (and the prod
//! token in production), and each is recorded in the audit trail in its own transaction;
//! `cards/version` only reads.

use registry_core::access::Scope;
use registry_core::card::{self, Card, CardDefaults};
use registry_core::{next_version, RegistryType, VersionRequest, VersionType};
use registry_spin::http::{json_body, send_error, send_result, RequestHead};
use registry_spin::settings::{authenticate, Caller, WritePolicy};
use registry_spin::storage::{new_id, now_unix, open_database};
use registry_spin::ApiError;
use registry_store::audit::{self, AuditRecord};
use registry_store::cards;
use registry_store::sql::transaction;
use serde::Deserialize;
use serde_json::{json, Map, Value};
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

async fn route(
    head: &RequestHead,
    req: IncomingRequest,
    caller: &Caller,
) -> Result<Value, ApiError> {
    head.expect_method(&[Method::Post])?;
    let policy = WritePolicy::load();
    match head.path.as_str() {
        "/opsml/cards/version" => version(json_body(req).await?, caller),
        "/opsml/cards/create" => {
            // The token is checked before the body is read, as in the reference.
            policy.authorize(head)?;
            create(json_body(req).await?, &policy, caller)
        }
        "/opsml/cards/update" => {
            policy.authorize(head)?;
            update(json_body(req).await?, &policy, caller)
        }
        "/opsml/cards/delete" => {
            policy.authorize(head)?;
            delete(json_body(req).await?, caller)
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

fn version(body: VersionBody, caller: &Caller) -> Result<Value, ApiError> {
    let registry = registry(&body.table_name, &body.registry_type)?;
    let repository = card::normalize(registry, &body.repository);
    caller.require(Scope::Read, Some(&repository))?;
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
        &repository,
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

/// The audit record of a write to `card`.
fn card_audit(caller: &Caller, action: &str, card: &Card) -> AuditRecord {
    caller.audit(action, card.uid.clone()).about_card(card)
}

fn create(body: CardBody, policy: &WritePolicy, caller: &Caller) -> Result<Value, ApiError> {
    let registry = registry(&body.table_name, &body.registry_type)?;
    let mut card = Card::from_fields(registry, body.card, &defaults(policy))?;
    caller.require(Scope::Write, Some(&card.repository))?;
    let db = open_database()?;
    if registry == RegistryType::Project && card.record["project_id"].is_null() {
        let id = cards::project_id(&db, &card.name, &card.repository)?;
        card.record.insert("project_id".into(), json!(id));
    }
    let record = card_audit(caller, "card.create", &card);
    transaction(&db, |tx| {
        cards::insert(tx, &card)?;
        audit::record(tx, &record)
    })?;
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

/// The repository a stored card is in.
fn repository_of(card: &Map<String, Value>) -> &str {
    card.get("repository")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Changes the given fields of an existing card; `updated` is false if there is no such card.
/// Moving a card to another repository needs `write` in both.
fn update(body: CardBody, policy: &WritePolicy, caller: &Caller) -> Result<Value, ApiError> {
    let registry = registry(&body.table_name, &body.registry_type)?;
    let uid = uid_of(&body.card)?;
    let db = open_database()?;
    let Some(mut fields) = cards::get(&db, registry, &uid)? else {
        caller.require_scope(Scope::Write)?;
        return Ok(json!({ "updated": false }));
    };
    caller.require(Scope::Write, Some(repository_of(&fields)))?;
    fields.extend(body.card);
    let card = Card::from_fields(registry, fields, &defaults(policy))?;
    caller.require(Scope::Write, Some(&card.repository))?;
    let record = card_audit(caller, "card.update", &card);
    let updated = transaction(&db, |tx| {
        let updated = cards::update(tx, &card)?;
        if updated {
            audit::record(tx, &record)?;
        }
        Ok(updated)
    })?;
    Ok(json!({ "updated": updated }))
}

/// Deletes a card by uid; `deleted` is true once it is gone (also if it never existed).
fn delete(body: CardBody, caller: &Caller) -> Result<Value, ApiError> {
    let registry = registry(&body.table_name, &body.registry_type)?;
    let uid = uid_of(&body.card)?;
    let db = open_database()?;
    let Some(existing) = cards::get(&db, registry, &uid)? else {
        caller.require_scope(Scope::Write)?;
        return Ok(json!({ "deleted": true }));
    };
    let repository = repository_of(&existing).to_string();
    caller.require(Scope::Write, Some(&repository))?;
    let text = |key: &str| {
        existing
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let record = AuditRecord {
        registry: Some(registry.as_str().to_string()),
        repository: Some(repository),
        name: text("name"),
        version: text("version"),
        ..caller.audit("card.delete", uid.clone())
    };
    transaction(&db, |tx| {
        if cards::delete(tx, registry, &uid)?.is_some() {
            audit::record(tx, &record)?;
        }
        Ok(())
    })?;
    Ok(json!({ "deleted": true }))
}
