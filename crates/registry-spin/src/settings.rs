//! Deployment settings, read from Spin variables (filled per environment by the
//! runtime-config's providers: `APP_ENV` → `env`, `OPSML_PROD_TOKEN` → `prod_token`, …).

use crate::http::RequestHead;
use crate::ApiError;
use registry_store::blobs::DigestAlgorithm;
use spin_sdk::variables;

/// A variable the component declares; absent or undefined counts as empty.
pub(crate) fn variable(name: &str) -> String {
    variables::get(name).unwrap_or_default()
}

/// `env` and `prod_token`: what decides whether a write needs the prod token.
pub struct WritePolicy {
    pub app_env: String,
    pub prod_token: String,
}

impl WritePolicy {
    pub fn load() -> Self {
        Self {
            app_env: variable("env"),
            prod_token: variable("prod_token"),
        }
    }

    /// Refuses a write in production unless the request carries the prod token.
    pub fn authorize(&self, head: &RequestHead) -> Result<(), ApiError> {
        let presented = head.header(registry_core::prod_token::PROD_TOKEN_HEADER);
        registry_core::prod_token::check(
            &self.app_env,
            Some(&self.prod_token),
            presented.as_deref(),
            true,
        )
        .into_result()?;
        Ok(())
    }

    /// The `app_env` recorded on new cards.
    pub fn app_env_or_default(&self) -> String {
        if self.app_env.trim().is_empty() {
            "development".to_string()
        } else {
            self.app_env.trim().to_string()
        }
    }
}

/// The login every request needs when `username` and `password` are set (HTTP Basic, as the
/// opsml 2.2.4 server with its login on; see `registry_core::login`). Checked before anything
/// else, the body unread.
pub fn authenticate(head: &RequestHead) -> Result<(), ApiError> {
    let authorization = head.header("authorization");
    registry_core::login::check(
        &variable("username"),
        &variable("password"),
        authorization.as_deref(),
    )
    .map_err(|refusal| {
        let mut error = ApiError::from(refusal);
        if error.status == 401 {
            error.challenge = Some(registry_core::login::CHALLENGE);
        }
        error
    })
}

/// The content digest chosen for the deployment (`digest_algorithm`: blake3 or sha256).
pub fn digest_algorithm() -> Result<DigestAlgorithm, ApiError> {
    let name = variable("digest_algorithm");
    DigestAlgorithm::parse(&name).ok_or_else(|| {
        ApiError::new(
            500,
            format!("server misconfigured: digest_algorithm {name:?} is not blake3 or sha256"),
        )
    })
}

/// A numeric variable; unset means `default`, anything else must be a number.
fn number_variable(name: &str, default: u64) -> Result<u64, ApiError> {
    let text = variable(name);
    if text.trim().is_empty() {
        return Ok(default);
    }
    text.trim().parse().map_err(|_| {
        ApiError::new(
            500,
            format!("server misconfigured: {name} {text:?} is not a whole number"),
        )
    })
}

/// How large an upload may be and when an unfinished one counts as dead.
pub struct UploadLimits {
    /// `max_upload_bytes`: larger files are refused with 413 (default 50 GiB, as the reference).
    pub max_upload_bytes: u64,
    /// `upload_stale_seconds`: an upload that stored nothing for this long is collected
    /// (default 900).
    pub stale_after_seconds: u64,
}

impl UploadLimits {
    pub fn load() -> Result<Self, ApiError> {
        Ok(Self {
            max_upload_bytes: number_variable("max_upload_bytes", 50 << 30)?,
            stale_after_seconds: number_variable("upload_stale_seconds", 900)?,
        })
    }
}
