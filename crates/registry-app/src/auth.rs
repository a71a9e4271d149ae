//! Who a request is (see `registry_core::access`): decided before anything else, the body
//! unread. With a login or `admin_token` configured, a client address whose failures reached
//! `max_login_failures` within a minute is refused (429) until that minute ends, even with
//! good credentials, so that guessing goes no faster than that from one address.

use crate::caller::Caller;
use crate::deployment::Ctx;
use crate::error::{AppError, Result};
use crate::request::Head;
use crate::settings;
use registry_core::access::{self, AccessConfig, Authenticated, Failures, Grant, Identity, Scope};
use registry_core::login::LoginRefusal;
use registry_core::presigned;
use registry_core::prod_token::PROD_TOKEN_HEADER;
use registry_core::validate_prefix;
use registry_store::tokens;

pub fn authenticate(ctx: &Ctx, head: &Head) -> Result<Caller> {
    let (username, password, admin_token) = (
        ctx.variable("username"),
        ctx.variable("password"),
        ctx.variable("admin_token"),
    );
    let config = AccessConfig {
        username: &username,
        password: &password,
        admin_token: &admin_token,
    };
    let caller = |identity| Caller {
        identity,
        request_id: ctx.new_id(),
        prod_token: head.header(PROD_TOKEN_HEADER),
    };
    let authorization = head.header("authorization");
    let first = access::authenticate(&config, authorization.as_deref());
    match &first {
        Ok(Authenticated::Identity(Identity::Open)) => return Ok(caller(Identity::Open)),
        Err(LoginRefusal::HalfConfigured | LoginRefusal::WeakAdminToken) => {
            return Err(refused(first.unwrap_err()))
        }
        _ => {}
    }
    let max_failures = settings::number(
        ctx,
        "max_login_failures",
        access::DEFAULT_MAX_LOGIN_FAILURES as u64,
    )? as i64;
    let db = ctx.db()?;
    let client = client_address(head);
    let now = ctx.now_unix();
    let failures = tokens::failures(db, &client)?;
    let identity = match first {
        Ok(Authenticated::Identity(identity)) => Ok(identity),
        Ok(Authenticated::LookUp(token)) => {
            access::accept_token(&token, tokens::find(db, &token.id)?, now)
        }
        Err(refusal) => Err(refusal),
    };
    match identity {
        Ok(identity) => {
            Failures::check(failures, now, max_failures).map_err(refused)?;
            Ok(caller(identity))
        }
        // Asking without credentials guesses nothing.
        Err(LoginRefusal::Missing) => Err(refused(LoginRefusal::Missing)),
        Err(refusal) => {
            let counted = Failures::after_failure(failures, now);
            tokens::record_failures(db, &client, counted)?;
            Failures::check(Some(counted), now, max_failures).map_err(refused)?;
            Err(refused(refusal))
        }
    }
}

/// A refusal as an answer: a 401 challenges for Basic credentials, a 429 says when to retry.
fn refused(refusal: LoginRefusal) -> AppError {
    let mut error = AppError::from(refusal);
    match refusal {
        LoginRefusal::TooManyFailures { retry_after } => error.retry_after = Some(retry_after),
        _ if error.status == 401 => error.challenge = Some(registry_core::login::CHALLENGE),
        _ => {}
    }
    error
}

/// The client's IP address, without its port (`spin-client-addr`, set by Spin and by
/// opsml-host: the peer of the connection, so a proxy in front is one client).
fn client_address(head: &Head) -> String {
    let addr = head.header("spin-client-addr").unwrap_or_default();
    match addr.parse::<std::net::SocketAddr>() {
        Ok(socket) => socket.ip().to_string(),
        Err(_) => addr,
    }
}

/// The caller of a download that carries a signed URL's `signature` (see
/// `registry_core::presigned`): allowed to read that one path, nothing else; `None` for a
/// request without one.
pub fn signed_download(ctx: &Ctx, head: &Head) -> Result<Option<Caller>> {
    let Some(signature) = head.query_param("signature") else {
        return Ok(None);
    };
    if head.path != "/opsml/files/download" {
        return Err(AppError::new(
            403,
            "a signed URL opens only the download of its own path",
        ));
    }
    let path = head.required_query("path")?;
    let expires = head.required_query("expires")?;
    presigned::verify(
        &ctx.variable("presigned_url_secret"),
        &path,
        &expires,
        &signature,
        ctx.now_unix(),
    )?;
    let key = validate_prefix(&path)?;
    Ok(Some(Caller {
        identity: Identity::Token {
            id: "signed-url".into(),
            grant: Grant {
                scope: Scope::Read,
                repositories: Some(key.repository().map(str::to_string).into_iter().collect()),
            },
        },
        request_id: ctx.new_id(),
        prod_token: None,
    }))
}
