//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for requests to S3-compatible services.
//!
//! The canonical request is: method, URI-encoded path, sorted and encoded query, lower-case
//! sorted headers with trimmed values, the signed header names, and the payload hash. Its
//! SHA-256 goes into the string to sign with the time and the scope
//! (`date/region/service/aws4_request`), which is signed with a key derived from the secret
//! by HMAC chaining over the same four parts.

use registry_core::presigned::hmac_sha256;
use sha2::{Digest, Sha256};

/// The payload hash of an empty body.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The payload hash to send when the body is not hashed (streamed uploads over TLS).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// What is signed: everything that goes on the wire except the body itself.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent, already percent-encoded (`/bucket/key%20name`).
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to sign; must include `host` (and the `x-amz-*` ones being sent).
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, [`EMPTY_PAYLOAD_SHA256`] or [`UNSIGNED_PAYLOAD`].
    pub payload_hash: &'a str,
}

/// `YYYYMMDDTHHMMSSZ`, the `x-amz-date` of the request.
pub struct Scope<'a> {
    pub datetime: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// RFC 3986 percent-encoding of everything but unreserved characters; `/` is kept when
/// encoding a path.
pub fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn canonical_request(request: &Request<'_>) -> (String, String) {
    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let signed = signed.join(";");
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let path = if request.path.is_empty() {
        "/"
    } else {
        request.path
    };
    (
        format!(
            "{}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{}",
            request.method, request.payload_hash
        ),
        signed,
    )
}

/// The `Authorization` header value for `request`.
pub fn authorization(
    request: &Request<'_>,
    scope: &Scope<'_>,
    credentials: &Credentials,
) -> String {
    let (canonical, signed_headers) = canonical_request(request);
    let date = &scope.datetime[..8.min(scope.datetime.len())];
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{credential_scope}\n{}",
        scope.datetime,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(
        format!("AWS4{}", credentials.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [scope.region, scope.service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(authorization: &str) -> &str {
        authorization.rsplit("Signature=").next().unwrap()
    }

    fn s3_example_credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    const S3_SCOPE: Scope<'static> = Scope {
        datetime: "20130524T000000Z",
        region: "us-east-1",
        service: "s3",
    };

    /// AWS S3 documentation, "Example: GET Object" (Authenticating requests, SigV4).
    #[test]
    fn s3_get_object_with_range() {
        let auth = authorization(
            &Request {
                method: "GET",
                path: "/test.txt",
                query: &[],
                headers: &[
                    ("Host", "examplebucket.s3.amazonaws.com"),
                    ("Range", "bytes=0-9"),
                    ("x-amz-content-sha256", EMPTY_PAYLOAD_SHA256),
                    ("x-amz-date", "20130524T000000Z"),
                ],
                payload_hash: EMPTY_PAYLOAD_SHA256,
            },
            &S3_SCOPE,
            &s3_example_credentials(),
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// AWS S3 documentation, "Example: GET Bucket (List Objects)": query sorting and encoding.
    #[test]
    fn s3_list_objects() {
        let auth = authorization(
            &Request {
                method: "GET",
                path: "/",
                query: &[("prefix", "J"), ("max-keys", "2")],
                headers: &[
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("x-amz-content-sha256", EMPTY_PAYLOAD_SHA256),
                    ("x-amz-date", "20130524T000000Z"),
                ],
                payload_hash: EMPTY_PAYLOAD_SHA256,
            },
            &S3_SCOPE,
            &s3_example_credentials(),
        );
        assert_eq!(
            signature(&auth),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    /// AWS S3 documentation, "Example: PUT Object": a signed payload hash and extra headers.
    #[test]
    fn s3_put_object() {
        let payload = "Welcome to Amazon S3.";
        let hash = hex::encode(Sha256::digest(payload));
        let auth = authorization(
            &Request {
                method: "PUT",
                path: &uri_encode("/test$file.text", true),
                query: &[],
                headers: &[
                    ("Host", "examplebucket.s3.amazonaws.com"),
                    ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                    ("x-amz-date", "20130524T000000Z"),
                    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                    ("x-amz-content-sha256", &hash),
                ],
                payload_hash: &hash,
            },
            &S3_SCOPE,
            &s3_example_credentials(),
        );
        assert_eq!(
            signature(&auth),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    /// The AWS SigV4 test suite, `get-vanilla`.
    #[test]
    fn sigv4_suite_get_vanilla() {
        let auth = authorization(
            &Request {
                method: "GET",
                path: "/",
                query: &[],
                headers: &[
                    ("Host", "example.amazonaws.com"),
                    ("X-Amz-Date", "20150830T123600Z"),
                ],
                payload_hash: EMPTY_PAYLOAD_SHA256,
            },
            &Scope {
                datetime: "20150830T123600Z",
                region: "us-east-1",
                service: "service",
            },
            &Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            },
        );
        assert_eq!(
            signature(&auth),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn encoding_and_redaction() {
        assert_eq!(uri_encode("a b/ü~", true), "a%20b/%C3%BC~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        let shown = format!("{:?}", s3_example_credentials());
        assert!(!shown.contains("EXAMPLEKEY"), "{shown}");
    }
}
