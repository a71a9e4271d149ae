//! One error shape for every rule in this crate.
//!
//! Components answer errors the way the reference server does: an HTTP status and a JSON body
//! `{"detail": "..."}`. Each module keeps its own precise error enum (so callers can match on
//! it), and each of those implements [`HttpError`] so that any of them converts into
//! [`CoreError`] with the right status without the component knowing the rule that failed.

use std::fmt;

use serde::Serialize;

/// The HTTP statuses this crate's rules can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Malformed request that is not a field-validation failure.
    BadRequest,
    /// Credentials (the prod token) missing or wrong; the reference answers 401 here.
    Unauthorized,
    /// The operation is refused whatever the caller sends (writes disabled by configuration).
    Forbidden,
    /// The addressed thing does not exist.
    NotFound,
    /// The request clashes with stored state (e.g. a version that already exists).
    Conflict,
    /// A field failed validation; the reference (FastAPI/pydantic) uses 422 for these.
    UnprocessableEntity,
    /// The request body is larger than the deployment allows.
    PayloadTooLarge,
    /// The client failed too often lately (logins); it may retry later.
    TooManyRequests,
    /// Stored data breaks an invariant (e.g. an unparsable version in the database).
    InternalServerError,
    /// A backing service (database, blob store) failed or is unreachable.
    ServiceUnavailable,
}

impl Status {
    /// The numeric HTTP status code.
    pub fn code(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::Conflict => 409,
            Status::UnprocessableEntity => 422,
            Status::PayloadTooLarge => 413,
            Status::TooManyRequests => 429,
            Status::InternalServerError => 500,
            Status::ServiceUnavailable => 503,
        }
    }
}

/// Implemented by every error of this crate: how it should be answered over HTTP.
pub trait HttpError: fmt::Display {
    /// The status to answer with.
    fn status(&self) -> Status;

    /// The `detail` text; by default the error's `Display`.
    fn detail(&self) -> String {
        self.to_string()
    }
}

/// A status plus a `detail` message, ready to be sent as `{"detail": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreError {
    status: Status,
    detail: String,
}

/// The JSON body the reference uses for errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub detail: String,
}

impl CoreError {
    /// Builds an error directly, for components that detect a condition themselves.
    pub fn new(status: Status, detail: impl Into<String>) -> Self {
        CoreError {
            status,
            detail: detail.into(),
        }
    }

    /// Converts any error of this crate.
    pub fn from_http_error<E: HttpError + ?Sized>(err: &E) -> Self {
        CoreError::new(err.status(), err.detail())
    }

    /// Prepends context the way the reference's routes do (`"Error listing cards. <cause>"`).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.detail = format!("{prefix}{}", self.detail);
        self
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Shorthand for `status().code()`.
    pub fn status_code(&self) -> u16 {
        self.status.code()
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The `{"detail": ...}` body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            detail: self.detail.clone(),
        }
    }

    /// The body serialised as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.body()).expect("a struct with one string field serialises")
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.code(), self.detail)
    }
}

impl std::error::Error for CoreError {}

impl HttpError for CoreError {
    fn status(&self) -> Status {
        self.status
    }

    fn detail(&self) -> String {
        self.detail.clone()
    }
}

/// Implements `From<$ty> for CoreError` for the per-module error types.
macro_rules! into_core_error {
    ($($ty:ty),* $(,)?) => {
        $(
            impl From<$ty> for CoreError {
                fn from(err: $ty) -> Self {
                    CoreError::from_http_error(&err)
                }
            }
        )*
    };
}

into_core_error!(
    crate::registry::RegistryError,
    crate::naming::NamingError,
    crate::semver::VersionError,
    crate::filter::FilterError,
    crate::write_path::PathError,
    crate::prod_token::DenyReason,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        let table = [
            (Status::BadRequest, 400),
            (Status::Unauthorized, 401),
            (Status::Forbidden, 403),
            (Status::NotFound, 404),
            (Status::Conflict, 409),
            (Status::UnprocessableEntity, 422),
            (Status::TooManyRequests, 429),
            (Status::InternalServerError, 500),
        ];
        for (status, code) in table {
            assert_eq!(status.code(), code);
        }
    }

    #[test]
    fn body_is_detail_json() {
        let err = CoreError::new(Status::NotFound, "Card \"x\" not found");
        assert_eq!(err.to_json(), r#"{"detail":"Card \"x\" not found"}"#);
        assert_eq!(err.status_code(), 404);
    }

    #[test]
    fn prefix_like_reference_routes() {
        let err = CoreError::new(Status::UnprocessableEntity, "boom")
            .with_prefix("Error listing cards. ");
        assert_eq!(err.detail(), "Error listing cards. boom");
    }

    #[test]
    fn module_errors_convert_with_their_status() {
        let cases: Vec<(CoreError, u16)> = vec![
            (
                crate::registry::RegistryType::parse("nope")
                    .unwrap_err()
                    .into(),
                422,
            ),
            (
                crate::naming::validate_name_repository("a", "-b")
                    .unwrap_err()
                    .into(),
                422,
            ),
            (
                crate::semver::Version::parse("1.0").unwrap_err().into(),
                422,
            ),
            (
                crate::filter::VersionFilter::parse("^1.*")
                    .unwrap_err()
                    .into(),
                422,
            ),
            (
                crate::write_path::validate_write_path("/etc/passwd")
                    .unwrap_err()
                    .into(),
                422,
            ),
            (crate::prod_token::DenyReason::MissingToken.into(), 401),
            (crate::prod_token::DenyReason::WrongToken.into(), 401),
            (crate::prod_token::DenyReason::NoTokenConfigured.into(), 403),
        ];
        for (err, code) in cases {
            assert_eq!(err.status_code(), code, "{err}");
            assert!(!err.detail().is_empty());
        }
    }
}
