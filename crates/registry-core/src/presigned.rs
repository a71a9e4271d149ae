//! Short-lived download URLs (`GET /opsml/files/presigned`, which opsml-cli 0.5 and later ask
//! for before each download): the URL names one stored path and an expiry, and with access
//! control on it carries an HMAC-SHA256 of both under the deployment's secret, so that whoever
//! holds it may read that one path, without credentials, until it expires, and nothing else.

use crate::error::{HttpError, Status};
use crate::prod_token::constant_time_eq;
use sha2::{Digest, Sha256};
use std::fmt;

/// How long a URL stays valid.
pub const LIFETIME_SECONDS: i64 = 15 * 60;
/// The shortest secret accepted: shorter is a misconfiguration, not a secret.
pub const MIN_SECRET_CHARS: usize = 32;

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The signature of a URL for `path` (as the client sends it) valid until `expires` (seconds
/// since the epoch): hex HMAC-SHA256 under `secret`.
pub fn sign(secret: &str, path: &str, expires: i64) -> String {
    let message = format!("GET\n{path}\n{expires}");
    hmac_sha256(secret.as_bytes(), message.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a signed URL does not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresignError {
    /// The signature is not that of this path and expiry under this deployment's secret.
    Mismatch,
    Expired {
        expires: i64,
    },
    Malformed(&'static str),
    /// Signed URLs are asked for but the deployment has no (or too short a) secret.
    NoSecret,
}

impl fmt::Display for PresignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresignError::Mismatch => f.write_str(
                "this download URL's signature does not match its path and expiry: ask for a new one",
            ),
            PresignError::Expired { expires } => write!(
                f,
                "this download URL expired at {expires} (seconds since the epoch): ask for a new one"
            ),
            PresignError::Malformed(what) => write!(f, "this download URL is malformed: {what}"),
            PresignError::NoSecret => write!(
                f,
                "server misconfigured: presigned_url_secret must be set, at least \
                 {MIN_SECRET_CHARS} characters, to sign download URLs while access control is on"
            ),
        }
    }
}

impl std::error::Error for PresignError {}

impl HttpError for PresignError {
    fn status(&self) -> Status {
        match self {
            PresignError::NoSecret => Status::InternalServerError,
            _ => Status::Forbidden,
        }
    }
}

/// Checks a signed URL's `path`, `expires` and `signature` at `now`.
pub fn verify(
    secret: &str,
    path: &str,
    expires: &str,
    signature: &str,
    now: i64,
) -> Result<(), PresignError> {
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(PresignError::NoSecret);
    }
    let expires: i64 = expires
        .parse()
        .map_err(|_| PresignError::Malformed("expires is not a whole number"))?;
    if !constant_time_eq(sign(secret, path, expires).as_bytes(), signature.as_bytes()) {
        return Err(PresignError::Mismatch);
    }
    if now > expires {
        return Err(PresignError::Expired { expires });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-secret-of-at-least-thirty-two-characters";

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_url_opens_its_path_until_it_expires_and_nothing_else() {
        let path = "opsml-root:/OPSML_MODEL_REGISTRY/r/m/v1.0.0/model.onnx";
        let signature = sign(SECRET, path, 1_000);
        assert_eq!(verify(SECRET, path, "1000", &signature, 1_000), Ok(()));
        assert_eq!(
            verify(SECRET, path, "1000", &signature, 1_001),
            Err(PresignError::Expired { expires: 1_000 })
        );
        let other = "opsml-root:/OPSML_MODEL_REGISTRY/r/m/v1.0.0/other.bin";
        assert_eq!(
            verify(SECRET, other, "1000", &signature, 0),
            Err(PresignError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, path, "2000", &signature, 0),
            Err(PresignError::Mismatch),
            "a later expiry is not the one signed"
        );
        assert_eq!(
            verify(
                "another-secret-of-at-least-32-characters",
                path,
                "1000",
                &signature,
                0
            ),
            Err(PresignError::Mismatch)
        );
        assert_eq!(
            verify("short", path, "1000", &signature, 0),
            Err(PresignError::NoSecret)
        );
        assert!(matches!(
            verify(SECRET, path, "soon", &signature, 0),
            Err(PresignError::Malformed(_))
        ));
        assert_eq!(PresignError::Mismatch.status(), Status::Forbidden);
    }
}
