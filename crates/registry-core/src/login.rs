//! The login every request needs when the deployment sets one (opsml 2.2.4 parity).
//!
//! Reference (opsml 2.2.4, `opsml/app/core/login.py`, its server started with `login=True`):
//! FastAPI's `HTTPBasic` on every route; a missing or non-Basic `Authorization` header is 401
//! "Not authenticated", undecodable credentials 401 "Invalid authentication credentials", and a
//! username or password that differs from `OPSML_USERNAME` / `OPSML_PASSWORD` 401 "Incorrect
//! username or password", each with `WWW-Authenticate: Basic`. The 2.x client sends the same
//! two variables as Basic credentials.
//!
//! Policy here:
//! * both unset (or empty): no login, as before;
//! * only one set: a misconfiguration that fails closed (every request refused), where the
//!   reference would let any credentials in;
//! * both compared without stopping at the first differing byte, and both always compared.

use std::fmt;

use base64::Engine;

use crate::error::{HttpError, Status};
use crate::prod_token::constant_time_eq;

/// The value of `WWW-Authenticate` on every refusal.
pub const CHALLENGE: &str = "Basic";

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginRefusal {
    /// Only one of username and password is configured.
    HalfConfigured,
    /// No `Authorization` header, or one of another scheme.
    Missing,
    /// A Basic header whose credentials cannot be read.
    Malformed(&'static str),
    /// The username or the password is not the configured one.
    Wrong,
}

impl fmt::Display for LoginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginRefusal::HalfConfigured => f.write_str(
                "server misconfigured: OPSML_USERNAME and OPSML_PASSWORD must be set together \
                 (or both left unset for no login)",
            ),
            LoginRefusal::Missing => f.write_str(
                "Not authenticated: this registry needs a login (HTTP Basic: the opsml client \
                 sends OPSML_USERNAME and OPSML_PASSWORD)",
            ),
            LoginRefusal::Malformed(why) => {
                write!(f, "Invalid authentication credentials: {why}")
            }
            LoginRefusal::Wrong => f.write_str("Incorrect username or password"),
        }
    }
}

impl std::error::Error for LoginRefusal {}

impl HttpError for LoginRefusal {
    fn status(&self) -> Status {
        match self {
            LoginRefusal::HalfConfigured => Status::InternalServerError,
            _ => Status::Unauthorized,
        }
    }
}

/// Checks a request's `Authorization` header against the configured login (`username` and
/// `password`, empty meaning unset).
pub fn check(
    username: &str,
    password: &str,
    authorization: Option<&str>,
) -> Result<(), LoginRefusal> {
    match (username.is_empty(), password.is_empty()) {
        (true, true) => return Ok(()),
        (false, false) => {}
        _ => return Err(LoginRefusal::HalfConfigured),
    }
    let header = authorization.map(str::trim).unwrap_or_default();
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(LoginRefusal::Missing);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .map_err(|_| LoginRefusal::Malformed("the Basic credentials are not base64"))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| LoginRefusal::Malformed("the Basic credentials are not UTF-8"))?;
    let (given_user, given_password) = decoded
        .split_once(':')
        .ok_or(LoginRefusal::Malformed("the Basic credentials have no ':'"))?;
    // Both compared, whichever differs.
    let user_ok = constant_time_eq(given_user.as_bytes(), username.as_bytes());
    let password_ok = constant_time_eq(given_password.as_bytes(), password.as_bytes());
    if user_ok & password_ok {
        Ok(())
    } else {
        Err(LoginRefusal::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    #[test]
    fn no_login_configured_lets_every_request_in() {
        assert_eq!(check("", "", None), Ok(()));
        assert_eq!(check("", "", Some("Basic garbage")), Ok(()));
    }

    #[test]
    fn half_a_login_refuses_everything() {
        for (user, password) in [("alice", ""), ("", "secret")] {
            let refusal = check(user, password, Some(&basic("alice:secret"))).unwrap_err();
            assert_eq!(refusal, LoginRefusal::HalfConfigured);
            assert_eq!(refusal.status(), Status::InternalServerError);
        }
    }

    #[test]
    fn only_the_configured_credentials_pass() {
        let check = |header: Option<&str>| check("alice", "s3cret:x", header);
        assert_eq!(check(Some(&basic("alice:s3cret:x"))), Ok(()));
        // The scheme is case-insensitive and surrounding spaces are ignored.
        let lower = basic("alice:s3cret:x").replace("Basic", "basic");
        assert_eq!(check(Some(&format!("  {lower} "))), Ok(()));
        for wrong in [
            "alice:s3cret",
            "Alice:s3cret:x",
            "alice:",
            ":s3cret:x",
            "bob:s3cret:x",
        ] {
            assert_eq!(
                check(Some(&basic(wrong))),
                Err(LoginRefusal::Wrong),
                "{wrong}"
            );
        }
        for missing in [None, Some(""), Some("Bearer abc"), Some("Basic")] {
            let expected = if missing == Some("Basic") {
                Err(LoginRefusal::Malformed("the Basic credentials have no ':'"))
            } else {
                Err(LoginRefusal::Missing)
            };
            assert_eq!(check(missing), expected, "{missing:?}");
        }
        assert!(matches!(
            check(Some("Basic !!!notbase64")),
            Err(LoginRefusal::Malformed(_))
        ));
        assert!(matches!(
            check(Some(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode([0xff, b':', b'x'])
            ))),
            Err(LoginRefusal::Malformed(_))
        ));
        assert!(matches!(
            check(Some(&basic("no colon"))),
            Err(LoginRefusal::Malformed(_))
        ));
        for refusal in [LoginRefusal::Missing, LoginRefusal::Wrong] {
            assert_eq!(refusal.status(), Status::Unauthorized);
        }
    }

    #[test]
    fn refusals_never_echo_a_secret() {
        let refusal = check("alice", "hunter2", Some(&basic("alice:hunter3"))).unwrap_err();
        assert!(!refusal.to_string().contains("hunter"));
    }
}
