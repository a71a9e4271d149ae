//! The opsml routes, one function per component: who the caller is, which operation the path
//! and method name, and its input from the query, headers and body, in the order the reference
//! keeps (a write is cleared before its body is read). A component calls one of these with
//! its request and writes the answer.

use crate::admin::{self, AuditAsk};
use crate::auth::{self, authenticate};
use crate::deployment::Ctx;
use crate::error::{AppError, Result};
use crate::request::{json_body, Answer, Body, Head, Method, ResponseSink};
use crate::{cards, files, metrics, models};
use registry_core::access::Scope;
use registry_core::RegistryType;
use serde::Deserialize;
use serde_json::json;

/// A route that answers from the request's body.
pub type Route = fn(&Ctx, &Head, &mut dyn Body) -> Result<Answer>;
/// A route that may stream its answer (downloads).
pub type StreamingRoute = fn(&Ctx, &Head, &mut dyn ResponseSink) -> Result<Answer>;

fn not_found() -> AppError {
    AppError::not_found("Not Found")
}

/// `get-card`: health, registry tables and every card read.
pub fn card_reads(ctx: &Ctx, head: &Head, body: &mut dyn Body) -> Result<Answer> {
    let caller = authenticate(ctx, head)?;
    let registry = || -> Result<RegistryType> {
        Ok(RegistryType::parse(&head.required_query("registry_type")?)?)
    };
    match head.path.as_str() {
        "/opsml/healthcheck" => {
            head.expect_method(&[Method::Get])?;
            Answer::json(json!({ "is_alive": true }))
        }
        "/opsml/registry/table" => {
            head.expect_method(&[Method::Get])?;
            let table = cards::registry_table(&head.required_query("registry_type")?)?;
            Answer::json(json!({ "table_name": table }))
        }
        "/opsml/cards/uid" => {
            head.expect_method(&[Method::Post])?;
            #[derive(Deserialize)]
            struct UidAsk {
                uid: String,
                #[serde(flatten)]
                registry: cards::RegistryName,
            }
            let ask: UidAsk = json_body(body)?;
            let exists = cards::uid_exists(ctx, &caller, ask.registry.resolve()?, &ask.uid)?;
            Answer::json(json!({ "uid_exists": exists }))
        }
        "/opsml/cards/list" => {
            head.expect_method(&[Method::Post])?;
            Answer::json(cards::list(ctx, &caller, json_body(body)?)?)
        }
        "/opsml/cards/repositories" => {
            head.expect_method(&[Method::Get])?;
            let repositories = cards::repositories(ctx, &caller, registry()?)?;
            Answer::json(json!({ "repositories": repositories }))
        }
        "/opsml/cards/names" => {
            head.expect_method(&[Method::Get])?;
            let repository = head.query_param("repository");
            let names = cards::names(ctx, &caller, registry()?, repository.as_deref())?;
            Answer::json(json!({ "names": names }))
        }
        "/opsml/projects/id" => {
            head.expect_method(&[Method::Get])?;
            let name = head.required_query("project_name")?;
            let repository = head.required_query("repository")?;
            let id = cards::project_id(ctx, &caller, &name, &repository)?;
            Answer::json(json!({ "project_id": id }))
        }
        _ => Err(not_found()),
    }
}

/// `create-card`: the next version, create, update and delete.
pub fn card_writes(ctx: &Ctx, head: &Head, body: &mut dyn Body) -> Result<Answer> {
    let caller = authenticate(ctx, head)?;
    head.expect_method(&[Method::Post])?;
    match head.path.as_str() {
        "/opsml/cards/version" => {
            let version = cards::next(ctx, &caller, json_body(body)?)?;
            Answer::json(json!({ "version": version }))
        }
        "/opsml/cards/create" => {
            let cleared = caller.clear_write(ctx)?;
            cards::create(ctx, &caller, &cleared, json_body(body)?)?;
            Answer::json(json!({ "registered": true }))
        }
        "/opsml/cards/update" => {
            let cleared = caller.clear_write(ctx)?;
            let updated = cards::update(ctx, &caller, &cleared, json_body(body)?)?;
            Answer::json(json!({ "updated": updated }))
        }
        "/opsml/cards/delete" => {
            let cleared = caller.clear_write(ctx)?;
            cards::delete(ctx, &caller, &cleared, json_body(body)?)?;
            Answer::json(json!({ "deleted": true }))
        }
        _ => Err(not_found()),
    }
}

/// `upload`: file uploads and deletes.
pub fn file_writes(ctx: &Ctx, head: &Head, body: &mut dyn Body) -> Result<Answer> {
    let caller = authenticate(ctx, head)?;
    match head.path.as_str() {
        "/opsml/files/upload" => {
            head.expect_method(&[Method::Post])?;
            let cleared = caller.clear_write(ctx)?;
            let ask = files::UploadAsk {
                write_path: head.header("write_path"),
                content_type: head.header("content-type").unwrap_or_default(),
                content_length: head
                    .header("content-length")
                    .and_then(|v| v.trim().parse().ok()),
            };
            let uri = files::upload(ctx, &caller, &cleared, ask, body)?;
            Answer::json(json!({ "storage_uri": uri }))
        }
        "/opsml/files/delete" => {
            head.expect_method(&[Method::Get])?;
            let cleared = caller.clear_write(ctx)?;
            files::delete(ctx, &caller, &cleared, head.query_param("path"))?;
            Answer::json(json!({ "deleted": true }))
        }
        _ => Err(not_found()),
    }
}

/// `download`: downloads, listings, existence, and readiness (open without credentials).
pub fn file_reads(ctx: &Ctx, head: &Head, sink: &mut dyn ResponseSink) -> Result<Answer> {
    if head.path == "/opsml/readyz" {
        return files::readiness(ctx);
    }
    let caller = match auth::signed_download(ctx, head)? {
        Some(caller) => caller,
        None => authenticate(ctx, head)?,
    };
    // Every route reads under `path`: `read` in its repository.
    let path = head.query_param("path");
    files::require_at(&caller, Scope::Read, path.as_deref())?;
    head.expect_method(&[Method::Get])?;
    match head.path.as_str() {
        "/opsml/files/download" => files::download(ctx, &caller, head, sink),
        "/opsml/files/download/ui" => files::download_folder(ctx, &caller, head, sink),
        "/opsml/files/list" => Answer::json(files::list_paths(ctx, &caller, path)?),
        "/opsml/files/list/info" => Answer::json(files::list_info(ctx, &caller, path)?),
        "/opsml/files/exists" => {
            Answer::json(json!({ "exists": files::exists(ctx, &caller, path)? }))
        }
        "/opsml/files/presigned" => Answer::json(files::presign(ctx, &caller, head)?),
        _ => Err(not_found()),
    }
}

/// `metrics`: `PUT` records run metrics, `POST` reads them.
pub fn run_metrics(ctx: &Ctx, head: &Head, body: &mut dyn Body) -> Result<Answer> {
    let caller = authenticate(ctx, head)?;
    head.expect_method(&[Method::Put, Method::Post])?;
    if head.method == Method::Put {
        let cleared = caller.clear_write(ctx)?;
        metrics::record(ctx, &caller, &cleared, json_body(body)?)?;
        return Answer::json(json!({ "complete": true }));
    }
    Answer::json(metrics::read(ctx, &caller, json_body(body)?)?)
}

/// `models`: metadata, metric comparisons and registration.
pub fn model_routes(ctx: &Ctx, head: &Head, body: &mut dyn Body) -> Result<Answer> {
    let caller = authenticate(ctx, head)?;
    head.expect_method(&[Method::Post])?;
    match head.path.as_str() {
        "/opsml/models/metadata" => Answer::json(models::metadata(ctx, &caller, json_body(body)?)?),
        "/opsml/models/compare_metrics" => {
            Answer::json(models::compare(ctx, &caller, json_body(body)?)?)
        }
        "/opsml/models/metrics" => {
            Answer::json(models::run_metrics(ctx, &caller, json_body(body)?)?)
        }
        "/opsml/models/register" => {
            // It writes to storage: the prod token is needed in production.
            let cleared = caller.clear_write(ctx)?;
            Answer::json(models::register(ctx, &caller, &cleared, json_body(body)?)?)
        }
        _ => Err(not_found()),
    }
}

/// `admin`: tokens and the audit trail (admin scope), and `whoami` for anyone.
pub fn admin_routes(ctx: &Ctx, head: &Head, body: &mut dyn Body) -> Result<Answer> {
    let caller = authenticate(ctx, head)?;
    if head.path == "/opsml/admin/whoami" {
        head.expect_method(&[Method::Get])?;
        return Answer::json(admin::whoami(&caller));
    }
    // Nothing of the admin API is said to anyone else, not even which methods it has.
    caller.require(Scope::Admin, None)?;
    match head.path.as_str() {
        "/opsml/admin/tokens" => {
            head.expect_method(&[Method::Get, Method::Post])?;
            if head.method == Method::Get {
                return Answer::json(json!({ "tokens": admin::list_tokens(ctx, &caller)? }));
            }
            let cleared = caller.clear_write(ctx)?;
            Answer::json(admin::create_token(
                ctx,
                &caller,
                &cleared,
                json_body(body)?,
            )?)
        }
        "/opsml/admin/audit" => {
            head.expect_method(&[Method::Get])?;
            let ask = AuditAsk {
                repository: head.query_param("repository"),
                identity: head.query_param("identity"),
                action: head.query_param("action"),
                since: head.query_param("since"),
                until: head.query_param("until"),
                limit: head.query_param("limit"),
            };
            Answer::json(admin::read_audit(ctx, &caller, ask)?)
        }
        path => match path.strip_prefix("/opsml/admin/tokens/") {
            Some(id) if !id.is_empty() && !id.contains('/') => {
                head.expect_method(&[Method::Delete])?;
                let cleared = caller.clear_write(ctx)?;
                Answer::json(admin::revoke_token(ctx, &caller, &cleared, id)?)
            }
            _ => Err(not_found()),
        },
    }
}
