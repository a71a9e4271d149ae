//! The login every request needs when the deployment sets one (opsml 2.2.4 parity).
//!
//! Reference (opsml 2.2.4, `opsml/app/core/login.py`, its server started with `login=True`):
//! FastAPI's `HTTPBasic` on every route; a missing or non-Basic `Authorization` header is 401
//! "Not authenticated", undecodable credentials 401 "Invalid authentication credentials", and a
//! username or password that differs from `OPSML_USERNAME` / `OPSML_PASSWORD` 401 "Incorrect
//! username or password", each with `WWW-Authenticate: Basic`. The 2.x client sends the same
//! two variables as Basic credentials.
//!
//! Policy here (the decision itself, with API tokens, is [`crate::access::authenticate`]):
//! * both unset (or empty): no login, as before;
//! * only one set: a misconfiguration that fails closed (every request refused), where the
//!   reference would let any credentials in;
//! * both compared without stopping at the first differing byte, and both always compared;
//! * a Bearer token, or a Basic password that is an API token or `admin_token`, is accepted
//!   too (see [`crate::access`]).

use std::fmt;

use base64::Engine;

use crate::error::{HttpError, Status};
use crate::prod_token::constant_time_eq;

/// The value of `WWW-Authenticate` on every refusal.
pub const CHALLENGE: &str = "Basic";

/// Why a request was refused before any operation ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginRefusal {
    /// Only one of username and password is configured.
    HalfConfigured,
    /// `admin_token` is set but too short to be a secret.
    WeakAdminToken,
    /// No `Authorization` header, or one of another scheme.
    Missing,
    /// An `Authorization` header whose credentials cannot be read.
    Malformed(&'static str),
    /// The username or the password (or the token) is not one this registry knows.
    Wrong,
    /// A token past its expiry.
    Expired,
    /// A revoked token.
    Revoked,
    /// The client failed to log in too often lately; it may try again after this many seconds.
    TooManyFailures { retry_after: i64 },
}

impl fmt::Display for LoginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginRefusal::HalfConfigured => f.write_str(
                "server misconfigured: OPSML_USERNAME and OPSML_PASSWORD must be set together \
                 (or both left unset for no login)",
            ),
            LoginRefusal::WeakAdminToken => write!(
                f,
                "server misconfigured: admin_token must be at least {} characters",
                crate::access::MIN_ADMIN_TOKEN_CHARS
            ),
            LoginRefusal::Missing => f.write_str(
                "Not authenticated: this registry needs a login (HTTP Basic: the opsml client \
                 sends OPSML_USERNAME and OPSML_PASSWORD) or a token (Authorization: Bearer)",
            ),
            LoginRefusal::Malformed(why) => {
                write!(f, "Invalid authentication credentials: {why}")
            }
            LoginRefusal::Wrong => f.write_str("Incorrect username or password"),
            LoginRefusal::Expired => {
                f.write_str("Invalid authentication credentials: the token has expired")
            }
            LoginRefusal::Revoked => {
                f.write_str("Invalid authentication credentials: the token was revoked")
            }
            LoginRefusal::TooManyFailures { retry_after } => write!(
                f,
                "Too many failed logins from this address: try again in {retry_after} s"
            ),
        }
    }
}

impl std::error::Error for LoginRefusal {}

impl HttpError for LoginRefusal {
    fn status(&self) -> Status {
        match self {
            LoginRefusal::HalfConfigured | LoginRefusal::WeakAdminToken => {
                Status::InternalServerError
            }
            LoginRefusal::TooManyFailures { .. } => Status::TooManyRequests,
            _ => Status::Unauthorized,
        }
    }
}

/// What a request presents in its `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// HTTP Basic: the opsml client's `OPSML_USERNAME` and `OPSML_PASSWORD`.
    Basic { username: String, password: String },
    /// `Bearer <token>`.
    Bearer(String),
}

/// Reads an `Authorization` header (scheme case-insensitive, surrounding spaces ignored).
pub fn presented(authorization: Option<&str>) -> Result<Presented, LoginRefusal> {
    let header = authorization.map(str::trim).unwrap_or_default();
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = credentials.trim();
        if token.is_empty() {
            return Err(LoginRefusal::Malformed("the Bearer token is empty"));
        }
        return Ok(Presented::Bearer(token.to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(LoginRefusal::Missing);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .map_err(|_| LoginRefusal::Malformed("the Basic credentials are not base64"))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| LoginRefusal::Malformed("the Basic credentials are not UTF-8"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or(LoginRefusal::Malformed("the Basic credentials have no ':'"))?;
    Ok(Presented::Basic {
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// Whether `username:password` is the configured login; both compared, whichever differs.
pub fn is_login(username: &str, password: &str, login: (&str, &str)) -> bool {
    let user_ok = constant_time_eq(username.as_bytes(), login.0.as_bytes());
    let password_ok = constant_time_eq(password.as_bytes(), login.1.as_bytes());
    user_ok & password_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_as_basic_or_bearer() {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("a:b:c")
        );
        assert_eq!(
            presented(Some(&basic)),
            Ok(Presented::Basic {
                username: "a".into(),
                password: "b:c".into()
            })
        );
        assert_eq!(
            presented(Some(" bearer  tok ")),
            Ok(Presented::Bearer("tok".into()))
        );
        assert_eq!(presented(Some("Token x")), Err(LoginRefusal::Missing));
    }

    #[test]
    fn statuses() {
        assert_eq!(LoginRefusal::Wrong.status(), Status::Unauthorized);
        assert_eq!(LoginRefusal::Revoked.status(), Status::Unauthorized);
        assert_eq!(
            LoginRefusal::TooManyFailures { retry_after: 3 }.status(),
            Status::TooManyRequests
        );
    }
}
