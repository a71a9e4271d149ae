//! `get-card`: health, registry tables and every card read (uid, list, repositories, names,
//! project ids).

use registry_core::card::{self, card_fields};
use registry_core::filter::default_list_limit;
use registry_core::{RegistryType, VersionFilter};
use registry_spin::http::{json_body, send_result, RequestHead};
use registry_spin::storage::SpinSqlite;
use registry_spin::ApiError;
use registry_store::cards::{self, ListQuery};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::of(&req);
    send_result(out, route(&head, req).await).await;
}

async fn route(head: &RequestHead, req: IncomingRequest) -> Result<Value, ApiError> {
    match head.path.as_str() {
        "/opsml/healthcheck" => {
            head.expect_method(&[Method::Get])?;
            Ok(json!({ "is_alive": true }))
        }
        "/opsml/registry/table" => {
            head.expect_method(&[Method::Get])?;
            table(&required_query(head, "registry_type")?)
        }
        "/opsml/cards/uid" => {
            head.expect_method(&[Method::Post])?;
            uid_exists(json_body(req).await?)
        }
        "/opsml/cards/list" => {
            head.expect_method(&[Method::Post])?;
            list(json_body(req).await?)
        }
        "/opsml/cards/repositories" => {
            head.expect_method(&[Method::Get])?;
            let registry = RegistryType::parse(&required_query(head, "registry_type")?)?;
            let db = SpinSqlite::open_default()?;
            Ok(json!({ "repositories": cards::repositories(&db, registry)? }))
        }
        "/opsml/cards/names" => {
            head.expect_method(&[Method::Get])?;
            let registry = RegistryType::parse(&required_query(head, "registry_type")?)?;
            let repository = head
                .query_param("repository")
                .filter(|r| !r.is_empty())
                .map(|r| card::normalize(registry, &r));
            let db = SpinSqlite::open_default()?;
            Ok(json!({ "names": cards::names(&db, registry, repository.as_deref())? }))
        }
        "/opsml/projects/id" => {
            head.expect_method(&[Method::Get])?;
            let name = required_query(head, "project_name")?;
            let repository = required_query(head, "repository")?;
            let db = SpinSqlite::open_default()?;
            Ok(json!({ "project_id": cards::project_id(&db, &name, &repository)? }))
        }
        _ => Err(ApiError::not_found("Not Found")),
    }
}

fn required_query(head: &RequestHead, name: &str) -> Result<String, ApiError> {
    head.query_param(name)
        .ok_or_else(|| ApiError::unprocessable(format!("query parameter {name:?} is required")))
}

/// The table behind a registry type; also the two tables that are not card registries.
fn table(registry_type: &str) -> Result<Value, ApiError> {
    let table_name = match registry_type.trim().to_ascii_lowercase().as_str() {
        "base" => "OPSML_BASE_REGISTRY",
        "metrics" => "OPSML_RUN_METRICS",
        _ => RegistryType::parse(registry_type)
            .map_err(|_| {
                ApiError::unprocessable(format!("Registry type {registry_type} does not exist"))
            })?
            .table_name(),
    };
    Ok(json!({ "table_name": table_name }))
}

#[derive(Deserialize)]
struct UidBody {
    uid: String,
    #[serde(default)]
    registry_type: Option<String>,
    #[serde(default)]
    table_name: Option<String>,
}

fn uid_exists(body: UidBody) -> Result<Value, ApiError> {
    let registry =
        RegistryType::resolve(body.table_name.as_deref(), body.registry_type.as_deref())?;
    let db = SpinSqlite::open_default()?;
    Ok(json!({ "uid_exists": cards::get(&db, registry, &body.uid)?.is_some() }))
}

#[derive(Deserialize)]
struct ListBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    max_date: Option<String>,
    #[serde(default, deserialize_with = "integer_or_numeric_string")]
    limit: Option<i64>,
    #[serde(default)]
    tags: Option<Map<String, Value>>,
    #[serde(default)]
    ignore_release_candidates: Option<bool>,
    /// Accepted for compatibility; the reference ignores it too.
    #[serde(default)]
    #[allow(dead_code)]
    project_id: Option<Value>,
    #[serde(default)]
    registry_type: Option<String>,
    #[serde(default)]
    table_name: Option<String>,
    #[serde(default)]
    query_terms: Option<Map<String, Value>>,
    #[serde(default)]
    sort_by_timestamp: Option<bool>,
}

/// `limit` as a number or a numeric string (`"2"`), as the reference accepts it.
fn integer_or_numeric_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Limit {
        Number(i64),
        Text(String),
    }
    match Option::<Limit>::deserialize(d)? {
        None => Ok(None),
        Some(Limit::Number(n)) => Ok(Some(n)),
        Some(Limit::Text(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{t:?} is not an integer"))),
    }
}

fn list(body: ListBody) -> Result<Value, ApiError> {
    let registry =
        RegistryType::resolve(body.table_name.as_deref(), body.registry_type.as_deref())?;
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let name = non_empty(body.name).map(|n| card::normalize(registry, &n));
    let repository = non_empty(body.repository).map(|r| card::normalize(registry, &r));
    let limit = match default_list_limit(name.as_deref(), repository.as_deref(), body.limit) {
        Some(l) if l < 0 => return Err(ApiError::unprocessable("limit must not be negative")),
        Some(0) | None => None,
        Some(l) => Some(l as u64),
    };
    let max_timestamp = match &body.max_date {
        Some(date) => Some(card::end_of_day_micros(date).ok_or_else(|| {
            ApiError::unprocessable(format!("max_date {date:?} must be a date as YYYY-MM-DD"))
        })?),
        None => None,
    };
    let query_terms = body.query_terms.unwrap_or_default();
    let fields = card_fields(registry);
    if let Some(term) = query_terms.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(ApiError::unprocessable(format!(
            "query_terms: {term:?} is not a field of {registry} cards"
        )));
    }
    let query = ListQuery {
        name,
        repository,
        uid: non_empty(body.uid),
        version: non_empty(body.version)
            .map(|v| VersionFilter::parse(&v))
            .transpose()?,
        max_timestamp,
        limit,
        tags: body.tags.unwrap_or_default(),
        query_terms,
        ignore_release_candidates: body.ignore_release_candidates.unwrap_or(false),
        sort_by_timestamp: body.sort_by_timestamp.unwrap_or(false),
    };
    let db = SpinSqlite::open_default()?;
    Ok(json!({ "cards": cards::list(&db, registry, &query)? }))
}
