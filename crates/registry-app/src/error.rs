//! The one error of every operation, and the one place a failure gets its HTTP status: every
//! rule's error (registry-core's [`HttpError`]s) and every store's ([`StoreError`]) converts
//! here, so an adapter only writes `{"detail": ...}` with the status it is given.

use registry_core::HttpError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: u16,
    pub detail: String,
    /// `WWW-Authenticate`, sent with a login refusal.
    pub challenge: Option<&'static str>,
    /// `Retry-After` (seconds), sent with a 429.
    pub retry_after: Option<i64>,
}

impl AppError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            challenge: None,
            retry_after: None,
        }
    }
    /// 400: a request that cannot be read (not a field that fails validation).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }
    pub fn method_not_allowed() -> Self {
        Self::new(405, "Method Not Allowed")
    }
    /// 422: a field that fails validation (the reference's pydantic status).
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(422, detail)
    }
    /// 500: this deployment's settings are wrong; `setting` names the one to fix.
    pub fn misconfigured(setting: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(500, format!("server misconfigured: {setting}: {problem}"))
    }
    /// 503: the database or the blob store failed.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, detail)
    }
}

/// Every rule's and every store's error knows its status.
impl<E: HttpError> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError::new(e.status().code(), e.detail())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.detail)
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;
