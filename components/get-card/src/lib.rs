//! `get-card`: health, registry tables and every card read (uid, list, repositories, names,
//! project ids). A caller limited to some repositories sees only those: a read that names
//! another is refused (403), and listings leave the others out.

use registry_core::access::Scope;
use registry_core::card;
use registry_core::RegistryType;
use registry_spin::http::{json_body, send_error, send_result, RequestHead};
use registry_spin::settings::{authenticate, Caller};
use registry_spin::storage::open_database;
use registry_spin::ApiError;
use registry_store::cards;
use registry_store::list_request::ListRequest;
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
    if head.path == "/opsml/cards/list" {
        // The one answer that is not built as a `Value`: cards go out as stored.
        return send_result(out, list(&head, req, &caller).await).await;
    }
    send_result(out, route(&head, req, &caller).await).await;
}

async fn route(
    head: &RequestHead,
    req: IncomingRequest,
    caller: &Caller,
) -> Result<Value, ApiError> {
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
            // Whether a uid is taken (the client asks before it registers) says nothing of
            // any repository.
            caller.require_scope(Scope::Read)?;
            uid_exists(json_body(req).await?)
        }
        "/opsml/cards/repositories" => {
            head.expect_method(&[Method::Get])?;
            let registry = RegistryType::parse(&required_query(head, "registry_type")?)?;
            let db = open_database()?;
            let mut repositories = cards::repositories(&db, registry)?;
            if let Some(readable) = caller.identity.readable_repositories() {
                repositories.retain(|r| readable.contains(r));
            }
            Ok(json!({ "repositories": repositories }))
        }
        "/opsml/cards/names" => {
            head.expect_method(&[Method::Get])?;
            let registry = RegistryType::parse(&required_query(head, "registry_type")?)?;
            let repository = head
                .query_param("repository")
                .filter(|r| !r.is_empty())
                .map(|r| card::normalize(registry, &r));
            let db = open_database()?;
            let names = match (repository, caller.identity.readable_repositories()) {
                (Some(repository), _) => {
                    caller.require(Scope::Read, Some(&repository))?;
                    cards::names(&db, registry, Some(&repository))?
                }
                (None, None) => cards::names(&db, registry, None)?,
                (None, Some(readable)) => {
                    let mut names = Vec::new();
                    for repository in readable {
                        names.extend(cards::names(&db, registry, Some(&repository))?);
                    }
                    names.sort();
                    names.dedup();
                    names
                }
            };
            Ok(json!({ "names": names }))
        }
        "/opsml/projects/id" => {
            head.expect_method(&[Method::Get])?;
            let name = required_query(head, "project_name")?;
            let repository = required_query(head, "repository")?;
            caller.require(Scope::Read, Some(&repository))?;
            let db = open_database()?;
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
    let db = open_database()?;
    Ok(json!({ "uid_exists": cards::get(&db, registry, &body.uid)?.is_some() }))
}

async fn list(
    head: &RequestHead,
    req: IncomingRequest,
    caller: &Caller,
) -> Result<cards::CardList, ApiError> {
    head.expect_method(&[Method::Post])?;
    let body: ListRequest = json_body(req).await?;
    let (registry, mut query) = body.into_query()?;
    caller.restrict(&mut query)?;
    let db = open_database()?;
    Ok(cards::CardList {
        cards: cards::list_stored(&db, registry, &query)?,
    })
}
