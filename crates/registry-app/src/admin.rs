//! API tokens and the audit trail, for the admin scope; and who the caller is, for anyone.
//! Token changes are writes: the prod token is needed in production, and each is recorded in
//! the audit trail in its own transaction.

use crate::caller::{Caller, WriteCleared};
use crate::deployment::Ctx;
use crate::error::{AppError, Result};
use registry_core::access::{self, Scope, TOKEN_RANDOM_BYTES};
use registry_store::audit::{self, AuditAction, AuditQuery, AuditRecord};
use registry_store::sql::transaction;
use registry_store::tokens::{self, TokenRecord};
use serde::Deserialize;
use serde_json::{json, Value};

/// A token lives this long unless its creator says otherwise, and at most [`MAX_DAYS`].
const DEFAULT_DAYS: i64 = 90;
const MAX_DAYS: i64 = 3650;
/// Audit records per answer: by default, and at most.
const DEFAULT_AUDIT_LIMIT: i64 = 100;
const MAX_AUDIT_LIMIT: i64 = 10_000;
/// A token's name: what it is for, shown in listings.
const MAX_NAME_CHARS: usize = 200;

/// Who the caller is, its scope and repositories.
pub fn whoami(caller: &Caller) -> Value {
    let grant = caller.identity.grant();
    json!({
        "identity": caller.identity.name(),
        "scope": grant.scope,
        "repositories": grant.repositories,
    })
}

/// `POST admin/tokens`' body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub scope: String,
    #[serde(default)]
    pub repositories: Option<Vec<String>>,
    #[serde(default)]
    pub expires_in_days: Option<i64>,
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
}

impl NewToken {
    /// How long the token lives, in seconds.
    fn lifetime(&self) -> Result<i64> {
        match (self.expires_in_days, self.expires_in_seconds) {
            (Some(_), Some(_)) => Err(AppError::unprocessable(
                "give expires_in_days or expires_in_seconds, not both",
            )),
            (Some(days), None) if (1..=MAX_DAYS).contains(&days) => Ok(days * 86_400),
            (Some(days), None) => Err(AppError::unprocessable(format!(
                "expires_in_days: {days} is not between 1 and {MAX_DAYS}"
            ))),
            (None, Some(seconds)) if (1..=MAX_DAYS * 86_400).contains(&seconds) => Ok(seconds),
            (None, Some(seconds)) => Err(AppError::unprocessable(format!(
                "expires_in_seconds: {seconds} is not between 1 and {}",
                MAX_DAYS * 86_400
            ))),
            (None, None) => Ok(DEFAULT_DAYS * 86_400),
        }
    }
}

/// Every token's record, never a secret.
pub fn list_tokens(ctx: &Ctx, caller: &Caller) -> Result<Vec<TokenRecord>> {
    caller.require(Scope::Admin, None)?;
    Ok(tokens::list(ctx.db()?)?)
}

/// Makes a token; the answer holds the token itself, once (only its hash is stored).
pub fn create_token(ctx: &Ctx, caller: &Caller, _: &WriteCleared, new: NewToken) -> Result<Value> {
    caller.require(Scope::Admin, None)?;
    let name = new.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::unprocessable(format!(
            "name: say what the token is for, in 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    let scope = Scope::parse(&new.scope)?;
    let repositories = access::token_repositories(new.repositories.clone())?;
    let lifetime = new.lifetime()?;
    let (id, token, hash) = access::new_token(&ctx.random_bytes::<TOKEN_RANDOM_BYTES>());
    let now = ctx.now_unix();
    let record = TokenRecord {
        id: id.clone(),
        name,
        scope,
        repositories,
        created_at: now,
        created_by: caller.identity.name(),
        expires_at: now + lifetime,
        revoked_at: None,
        revoked_by: None,
    };
    let audit_record = AuditRecord {
        detail: Some(token_detail(&record)),
        ..caller.audit(ctx, AuditAction::TokenCreate, id)
    };
    transaction(ctx.db()?, |tx| {
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
    format!(
        "{} ({} in {repositories})",
        record.name,
        record.scope.as_str()
    )
}

/// Revokes a token from the next request on; revoking again changes nothing; an unknown id
/// is a 404.
pub fn revoke_token(ctx: &Ctx, caller: &Caller, _: &WriteCleared, id: &str) -> Result<Value> {
    caller.require(Scope::Admin, None)?;
    let now = ctx.now_unix();
    let identity = caller.identity.name();
    let revoked = transaction(ctx.db()?, |tx| {
        let before = tokens::get(tx, id)?;
        let after = tokens::revoke(tx, id, now, &identity)?;
        if let (Some(before), Some(after)) = (&before, &after) {
            if before.revoked_at.is_none() {
                let record = AuditRecord {
                    detail: Some(token_detail(after)),
                    ..caller.audit(ctx, AuditAction::TokenRevoke, id)
                };
                audit::record(tx, &record)?;
            }
        }
        Ok(after)
    })?;
    let record = revoked.ok_or_else(|| AppError::not_found(format!("no token {id}")))?;
    Ok(json!({ "revoked": true, "token": record }))
}

/// The audit trail's filters, as the query string gives them (`since`/`until` in seconds).
#[derive(Default)]
pub struct AuditAsk {
    pub repository: Option<String>,
    pub identity: Option<String>,
    pub action: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<String>,
}

/// A filter's value as a whole number, if given.
fn number(name: &str, text: &Option<String>) -> Result<Option<i64>> {
    match text.as_deref().filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            AppError::unprocessable(format!("{name}: {text:?} is not a whole number"))
        }),
    }
}

/// Audit records, newest first.
pub fn read_audit(ctx: &Ctx, caller: &Caller, ask: AuditAsk) -> Result<Value> {
    caller.require(Scope::Admin, None)?;
    let limit = number("limit", &ask.limit)?.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        return Err(AppError::unprocessable(format!(
            "limit: {limit} is not between 1 and {MAX_AUDIT_LIMIT}"
        )));
    }
    let seconds_to_micros = |s: Option<i64>| s.map(|s| s.saturating_mul(1_000_000));
    let text = |v: Option<String>| v.filter(|v| !v.is_empty());
    let query = AuditQuery {
        repository: text(ask.repository).map(|r| registry_core::naming::db_normalize(r.trim())),
        identity: text(ask.identity),
        action: text(ask.action),
        since: seconds_to_micros(number("since", &ask.since)?),
        until: seconds_to_micros(number("until", &ask.until)?),
        limit,
    };
    Ok(json!({ "records": audit::list(ctx.db()?, &query)? }))
}
