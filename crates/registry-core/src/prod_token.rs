//! The production write guard (`X-Prod-Token`).
//!
//! Reference (opsml 2.2.4): when `APP_ENV == "production"` (exact match), write routes
//! (`cards/create`, `cards/update`, `cards/delete`, `files/upload`, `files/delete`) demand an
//! `X-Prod-Token` header equal to `OPSML_PROD_TOKEN`, else 401 "Cannot perform write operation
//! on prod resource without token". Reads are never guarded. Its token silently defaults to
//! `"staging"`, so an unconfigured production server accepts a guessable token.
//!
//! Policy here:
//! * production is recognised case-insensitively and ignoring surrounding whitespace, so that a
//!   deployment spelled `Production` is not silently left open;
//! * no token configured (absent or empty) in production fails closed: every write is refused;
//! * an absent or empty header is "missing", anything else that differs is "wrong";
//! * the comparison does not stop at the first differing byte.

use std::fmt;

use crate::error::{HttpError, Status};

/// The request header carrying the token.
pub const PROD_TOKEN_HEADER: &str = "X-Prod-Token";

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// Production without a configured token: writes are disabled altogether.
    NoTokenConfigured,
    /// The request carries no (or an empty) token.
    MissingToken,
    /// The request's token is not the configured one.
    WrongToken,
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DenyReason::NoTokenConfigured => {
                "writes are disabled: APP_ENV=production but no prod token is configured"
            }
            DenyReason::MissingToken => {
                "Cannot perform write operation on prod resource without token: the X-Prod-Token header is missing"
            }
            DenyReason::WrongToken => {
                "Cannot perform write operation on prod resource without token: the X-Prod-Token header is not the prod token"
            }
        })
    }
}

impl std::error::Error for DenyReason {}

impl HttpError for DenyReason {
    /// 401 as in the reference when the caller could fix it with the right token; 403 when no
    /// token could help.
    fn status(&self) -> Status {
        match self {
            DenyReason::NoTokenConfigured => Status::Forbidden,
            DenyReason::MissingToken | DenyReason::WrongToken => Status::Unauthorized,
        }
    }
}

/// The outcome of [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Deny(DenyReason),
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }

    /// `Ok(())` or the reason, for `?` in handlers.
    pub fn into_result(self) -> Result<(), DenyReason> {
        match self {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(reason),
        }
    }
}

/// Whether `APP_ENV` means production (trimmed, ASCII case-insensitive).
pub fn is_production(app_env: &str) -> bool {
    app_env.trim().eq_ignore_ascii_case("production")
}

/// Byte equality whose running time depends only on the longer input's length, not on where
/// the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    // Fold the length difference in so that a prefix never compares equal.
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// Decides whether a request may proceed.
///
/// `configured` is `OPSML_PROD_TOKEN` (empty counts as not configured), `presented` the
/// `X-Prod-Token` header value, `is_write` whether the route modifies anything.
pub fn check(
    app_env: &str,
    configured: Option<&str>,
    presented: Option<&str>,
    is_write: bool,
) -> Decision {
    if !is_write || !is_production(app_env) {
        return Decision::Allow;
    }
    let Some(expected) = configured.filter(|t| !t.is_empty()) else {
        return Decision::Deny(DenyReason::NoTokenConfigured);
    };
    let Some(given) = presented.filter(|t| !t.is_empty()) else {
        return Decision::Deny(DenyReason::MissingToken);
    };
    if constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        Decision::Allow
    } else {
        Decision::Deny(DenyReason::WrongToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        use Decision::*;
        use DenyReason::*;
        // (app_env, configured, presented, is_write, expected)
        type Row<'a> = (&'a str, Option<&'a str>, Option<&'a str>, bool, Decision);
        let table: &[Row] = &[
            ("development", None, None, true, Allow),
            ("staging", Some("t"), Some("wrong"), true, Allow),
            ("", None, None, true, Allow),
            ("productionx", None, None, true, Allow),
            ("production", Some("secret"), None, false, Allow),
            ("production", None, None, false, Allow),
            ("production", Some("secret"), Some("secret"), true, Allow),
            ("Production", Some("secret"), Some("secret"), true, Allow),
            (
                "production",
                None,
                Some("staging"),
                true,
                Deny(NoTokenConfigured),
            ),
            (
                "production",
                Some(""),
                Some(""),
                true,
                Deny(NoTokenConfigured),
            ),
            (" PRODUCTION\n", None, None, true, Deny(NoTokenConfigured)),
            ("production", Some("secret"), None, true, Deny(MissingToken)),
            (
                "production",
                Some("secret"),
                Some(""),
                true,
                Deny(MissingToken),
            ),
            (
                "production",
                Some("secret"),
                Some("Secret"),
                true,
                Deny(WrongToken),
            ),
            (
                "production",
                Some("secret"),
                Some("secre"),
                true,
                Deny(WrongToken),
            ),
            (
                "production",
                Some("secret"),
                Some("secret "),
                true,
                Deny(WrongToken),
            ),
            (
                "production",
                Some("secret"),
                Some("secretsecret"),
                true,
                Deny(WrongToken),
            ),
        ];
        for (app_env, configured, presented, is_write, expected) in table {
            assert_eq!(
                check(app_env, *configured, *presented, *is_write),
                *expected,
                "{app_env:?} {configured:?} {presented:?} {is_write}"
            );
        }
    }

    #[test]
    fn constant_time_eq_is_equality() {
        let table: &[(&[u8], &[u8], bool)] = &[
            (b"", b"", true),
            (b"a", b"a", true),
            (b"abc", b"abc", true),
            (b"abc", b"abd", false),
            (b"abc", b"ab", false),
            (b"ab", b"abc", false),
            (b"", b"\0", false),
            (b"\0", b"", false),
            (b"a\0", b"a", false),
        ];
        for (a, b, expected) in table {
            assert_eq!(constant_time_eq(a, b), *expected, "{a:?} {b:?}");
        }
    }

    #[test]
    fn reasons_and_statuses() {
        assert_eq!(
            DenyReason::NoTokenConfigured.to_string(),
            "writes are disabled: APP_ENV=production but no prod token is configured"
        );
        assert_eq!(DenyReason::NoTokenConfigured.status().code(), 403);
        assert_eq!(DenyReason::MissingToken.status().code(), 401);
        assert_eq!(DenyReason::WrongToken.status().code(), 401);
        assert_ne!(
            DenyReason::MissingToken.to_string(),
            DenyReason::WrongToken.to_string()
        );
        assert_eq!(Decision::Allow.into_result(), Ok(()));
        assert_eq!(
            Decision::Deny(DenyReason::WrongToken).into_result(),
            Err(DenyReason::WrongToken)
        );
        assert!(Decision::Allow.is_allowed());
    }
}
