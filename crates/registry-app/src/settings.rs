//! Typed deployment settings, read from the deployment's variables when an operation needs
//! them; a malformed one is a 500 naming it.

use crate::deployment::Ctx;
use crate::error::{AppError, Result};
use registry_store::blobs::DigestAlgorithm;

/// The content digest chosen for the deployment (`digest_algorithm`: blake3 or sha256).
pub fn digest_algorithm(ctx: &Ctx) -> Result<DigestAlgorithm> {
    let name = ctx.variable("digest_algorithm");
    DigestAlgorithm::parse(&name).ok_or_else(|| {
        AppError::new(
            500,
            format!("server misconfigured: digest_algorithm {name:?} is not blake3 or sha256"),
        )
    })
}

/// A numeric variable; unset means `default`, anything else must be a whole number.
pub fn number(ctx: &Ctx, name: &str, default: u64) -> Result<u64> {
    let text = ctx.variable(name);
    if text.trim().is_empty() {
        return Ok(default);
    }
    text.trim().parse().map_err(|_| {
        AppError::new(
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
    pub fn load(ctx: &Ctx) -> Result<Self> {
        Ok(Self {
            max_upload_bytes: number(ctx, "max_upload_bytes", 50 << 30)?,
            stale_after_seconds: number(ctx, "upload_stale_seconds", 900)?,
        })
    }
}
