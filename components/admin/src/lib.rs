//! `admin`: API tokens and the audit trail, for the admin scope; and `whoami` for anyone.
//!
//! * `POST /opsml/admin/tokens` `{"name", "scope", "repositories"?, "expires_in_days"?}` (or
//!   `"expires_in_seconds"`) makes a token and answers it once (only its hash is stored);
//! * `GET /opsml/admin/tokens` lists them (never a secret);
//! * `DELETE /opsml/admin/tokens/<id>` revokes one, from the next request on;
//! * `GET /opsml/admin/audit?repository=&identity=&action=&since=&until=&limit=` reads the
//!   audit trail, newest first (`since`/`until` in seconds since the epoch);
//! * `GET /opsml/admin/whoami` says who the caller is and what it may do.
//!
//! Token changes are writes: the prod token is needed in production, and each is recorded in
//! the audit trail in its own transaction.

use registry_core::access::{self, Scope, TOKEN_RANDOM_BYTES};
use registry_spin::http::{json_body, send_error, send_result, RequestHead};
use registry_spin::settings::{authenticate, Caller, WritePolicy};
use registry_spin::storage::{now_unix, open_database, random_bytes};
use registry_spin::ApiError;
use registry_store::audit::{self, AuditQuery};
use registry_store::sql::transaction;
use registry_store::tokens::{self, TokenRecord};
use serde::Deserialize;
use serde_json::{json, Value};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;

/// A token lives this long unless its creator says otherwise, and at most [`MAX_DAYS`].
const DEFAULT_DAYS: i64 = 90;
const MAX_DAYS: i64 = 3650;
/// Audit records per answer: by default, and at most.
const DEFAULT_AUDIT_LIMIT: i64 = 100;
const MAX_AUDIT_LIMIT: i64 = 10_000;
/// A token's name: what it is for, shown in listings.
const MAX_NAME_CHARS: usize = 200;

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
    if head.path == "/opsml/admin/whoami" {
        head.expect_method(&[Method::Get])?;
        return Ok(whoami(caller));
    }
    caller.require(Scope::Admin, None)?;
    match head.path.as_str() {
        "/opsml/admin/tokens" => {
            head.expect_method(&[Method::Get, Method::Post])?;
            if head.method == Method::Get {
                return Ok(json!({ "tokens": tokens::list(&open_database()?)? }));
            }
            WritePolicy::load().authorize(head)?;
            create(json_body(req).await?, caller)
        }
        "/opsml/admin/audit" => {
            head.expect_method(&[Method::Get])?;
            read_audit(head)
        }
        path => match path.strip_prefix("/opsml/admin/tokens/") {
            Some(id) if !id.is_empty() && !id.contains('/') => {
                head.expect_method(&[Method::Delete])?;
                WritePolicy::load().authorize(head)?;
                revoke(id, caller)
            }
            _ => Err(ApiError::not_found("Not Found")),
        },
    }
}

fn whoami(caller: &Caller) -> Value {
    let grant = caller.identity.grant();
    json!({
        "identity": caller.identity.name(),
        "scope": grant.scope.as_str(),
        "repositories": grant.repositories,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    scope: String,
    #[serde(default)]
    repositories: Option<Vec<String>>,
    #[serde(default)]
    expires_in_days: Option<i64>,
    #[serde(default)]
    expires_in_seconds: Option<i64>,
}

fn create(body: NewToken, caller: &Caller) -> Result<Value, ApiError> {
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::unprocessable(format!(
            "name: say what the token is for, in 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    let scope = Scope::parse(&body.scope)?;
    let repositories = access::token_repositories(body.repositories)?;
    let lifetime = match (body.expires_in_days, body.expires_in_seconds) {
        (Some(_), Some(_)) => {
            return Err(ApiError::unprocessable(
                "give expires_in_days or expires_in_seconds, not both",
            ))
        }
        (Some(days), None) if (1..=MAX_DAYS).contains(&days) => days * 86_400,
        (Some(days), None) => {
            return Err(ApiError::unprocessable(format!(
                "expires_in_days: {days} is not between 1 and {MAX_DAYS}"
            )))
        }
        (None, Some(seconds)) if (1..=MAX_DAYS * 86_400).contains(&seconds) => seconds,
        (None, Some(seconds)) => {
            return Err(ApiError::unprocessable(format!(
                "expires_in_seconds: {seconds} is not between 1 and {}",
                MAX_DAYS * 86_400
            )))
        }
        (None, None) => DEFAULT_DAYS * 86_400,
    };
    let (id, token, hash) = access::new_token(&random_bytes::<TOKEN_RANDOM_BYTES>());
    let now = now_unix();
    let record = TokenRecord {
        id: id.clone(),
        name,
        scope: scope.as_str(),
        repositories,
        created_at: now,
        created_by: caller.identity.name(),
        expires_at: now + lifetime,
        revoked_at: None,
        revoked_by: None,
    };
    let audit_record = audit::AuditRecord {
        detail: Some(token_detail(&record)),
        ..caller.audit("token.create", id)
    };
    transaction(&open_database()?, |tx| {
        tokens::insert(tx, &record, &hash)?;
        audit::record(tx, &audit_record)
    })?;
    let mut answer = serde_json::to_value(&record).expect("a token record serializes");
    answer["token"] = Value::String(token);
    Ok(answer)
}

/// What the audit trail says of a token: its name, scope and repositories.
fn token_detail(record: &TokenRecord) -> String {
    let repositories = record
        .repositories
        .as_ref()
        .map_or("every repository".to_string(), |r| r.join(", "));
    format!("{} ({} in {repositories})", record.name, record.scope)
}

fn revoke(id: &str, caller: &Caller) -> Result<Value, ApiError> {
    let db = open_database()?;
    let now = now_unix();
    let identity = caller.identity.name();
    let revoked = transaction(&db, |tx| {
        let before = tokens::get(tx, id)?;
        let after = tokens::revoke(tx, id, now, &identity)?;
        if let (Some(before), Some(after)) = (&before, &after) {
            if before.revoked_at.is_none() {
                let record = audit::AuditRecord {
                    detail: Some(token_detail(after)),
                    ..caller.audit("token.revoke", id)
                };
                audit::record(tx, &record)?;
            }
        }
        Ok(after)
    })?;
    let record = revoked.ok_or_else(|| ApiError::not_found(format!("no token {id}")))?;
    Ok(json!({ "revoked": true, "token": record }))
}

/// A query parameter as a whole number, if given.
fn number(head: &RequestHead, name: &str) -> Result<Option<i64>, ApiError> {
    match head.query_param(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::unprocessable(format!("{name}: {text:?} is not a whole number"))
        }),
    }
}

fn read_audit(head: &RequestHead) -> Result<Value, ApiError> {
    let text = |name: &str| head.query_param(name).filter(|v| !v.is_empty());
    let limit = number(head, "limit")?.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit: {limit} is not between 1 and {MAX_AUDIT_LIMIT}"
        )));
    }
    let seconds_to_micros = |s: Option<i64>| s.map(|s| s.saturating_mul(1_000_000));
    let query = AuditQuery {
        repository: text("repository").map(|r| registry_core::naming::db_normalize(r.trim())),
        identity: text("identity"),
        action: text("action"),
        since: seconds_to_micros(number(head, "since")?),
        until: seconds_to_micros(number(head, "until")?),
        limit,
    };
    Ok(json!({ "records": audit::list(&open_database()?, &query)? }))
}
