//! Deployment settings, read from Spin variables (filled per environment by the
//! runtime-config's providers: `APP_ENV` → `env`, `OPSML_PROD_TOKEN` → `prod_token`, …).

use crate::http::RequestHead;
use crate::ApiError;
use registry_store::blobs::DigestAlgorithm;
use spin_sdk::variables;

/// A variable the component declares; absent or undefined counts as empty.
fn variable(name: &str) -> String {
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
