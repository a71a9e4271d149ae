//! The S3 REST requests the registry makes (path-style addressing: `/{bucket}/{key}`), built
//! and signed without I/O, and the XML answers read back.

use crate::sigv4::{self, Credentials, Scope};
use sha2::{Digest, Sha256};

/// Where blobs go: `s3://bucket/prefix` (`OPSML_STORAGE_URI`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageUri {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl StorageUri {
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri
            .trim()
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{uri:?} is not an s3://bucket/prefix URI"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // The rules S3 gives bucket names: 3–63 of a-z, 0-9, '.', '-'.
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid {
            return Err(format!(
                "{uri:?}: {bucket:?} is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')"
            ));
        }
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// The service address (`OPSML_S3_ENDPOINT`): `http(s)://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    /// `host[:port]` as written: sent as the `Host` header and signed as such.
    pub authority: String,
}

impl Endpoint {
    pub fn parse(endpoint: &str) -> Result<Self, String> {
        let endpoint = endpoint.trim().trim_end_matches('/');
        let (https, authority) = if let Some(a) = endpoint.strip_prefix("https://") {
            (true, a)
        } else if let Some(a) = endpoint.strip_prefix("http://") {
            (false, a)
        } else {
            return Err(format!(
                "{endpoint:?} must start with http:// or https:// (e.g. https://s3.eu-west-1.amazonaws.com)"
            ));
        };
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "{endpoint:?} must be scheme://host[:port], without a path or credentials"
            ));
        }
        Ok(Self {
            https,
            authority: authority.to_string(),
        })
    }
}

/// A checksum of each body that the store verifies itself, so that bytes changed on the way
/// (or in the component's memory) are refused rather than stored; set by `s3_checksum`.
/// AWS S3 and MinIO verify both; GCS's XML API verifies `Content-MD5` only; s3s-fs verifies
/// both on single `PUT`s (not on multipart parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// `x-amz-checksum-crc32c` (cheap: a table lookup per byte).
    Crc32c,
    /// `Content-MD5`.
    Md5,
    None,
}

impl Checksum {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "crc32c" => Ok(Self::Crc32c),
            "md5" | "content-md5" => Ok(Self::Md5),
            "none" => Ok(Self::None),
            other => Err(format!("{other:?}: expected crc32c, md5 or none")),
        }
    }
}

/// Everything needed to talk to one bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: Endpoint,
    pub region: String,
    pub location: StorageUri,
    pub credentials: Credentials,
    pub checksum: Checksum,
}

/// A request ready to send: path (with query) and headers, the `Authorization` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub method: &'static str,
    pub path_with_query: String,
    pub headers: Vec<(String, String)>,
}

impl S3Config {
    /// The object key of a blob.
    pub fn blob_key(&self, blob_id: &str) -> String {
        if self.location.prefix.is_empty() {
            format!("blobs/{blob_id}")
        } else {
            format!("{}/blobs/{blob_id}", self.location.prefix)
        }
    }

    /// Signs `method` on `key` (or on the bucket itself when `None`). The body's SHA-256 is
    /// signed over plain HTTP; over HTTPS, TLS already protects it and the payload is not
    /// hashed, as the AWS SDKs do for streamed uploads.
    pub fn sign(
        &self,
        method: &'static str,
        key: Option<&str>,
        query: &[(&str, &str)],
        body: &[u8],
        unix_now: i64,
    ) -> SignedRequest {
        let mut payload = self.payload_hasher();
        payload.update(body);
        self.sign_hashed(method, key, query, &payload.finish(), &[], unix_now)
    }

    /// What digests a body for [`Self::sign_hashed`] piece by piece, as it is gathered.
    pub fn payload_hasher(&self) -> PayloadHasher {
        PayloadHasher {
            sha256: (!self.endpoint.https).then(Sha256::new),
            checksum: match self.checksum {
                Checksum::Crc32c => Running::Crc32c(0),
                Checksum::Md5 => Running::Md5(md5::Md5::new()),
                Checksum::None => Running::None,
            },
        }
    }

    /// The header that asks a multipart upload's store to expect each part's checksum, for
    /// `CreateMultipartUpload` (none for `Content-MD5`, which is per request).
    pub fn multipart_checksum_header(&self) -> Option<(&'static str, String)> {
        (self.checksum == Checksum::Crc32c)
            .then(|| ("x-amz-checksum-algorithm", "CRC32C".to_string()))
    }

    /// [`Self::sign`] for a body whose digests a [`PayloadHasher`] already made; `extra`
    /// headers are signed and sent too.
    pub fn sign_hashed(
        &self,
        method: &'static str,
        key: Option<&str>,
        query: &[(&str, &str)],
        digest: &PayloadDigest,
        extra: &[(&'static str, String)],
        unix_now: i64,
    ) -> SignedRequest {
        let payload_hash = digest.hash.as_str();
        let path = match key {
            Some(key) => format!("/{}/{}", self.location.bucket, sigv4::uri_encode(key, true)),
            None => format!("/{}", self.location.bucket),
        };
        let datetime = amz_datetime(unix_now);
        let mut signed_headers = vec![
            ("host", self.endpoint.authority.as_str()),
            ("x-amz-content-sha256", payload_hash),
            ("x-amz-date", datetime.as_str()),
        ];
        if let Some((name, value)) = &digest.checksum {
            signed_headers.push((name, value.as_str()));
        }
        signed_headers.extend(extra.iter().map(|(name, value)| (*name, value.as_str())));
        let authorization = sigv4::authorization(
            &sigv4::Request {
                method,
                path: &path,
                query,
                headers: &signed_headers,
                payload_hash,
            },
            &Scope {
                datetime: &datetime,
                region: &self.region,
                service: "s3",
            },
            &self.credentials,
        );
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    sigv4::uri_encode(k, false),
                    sigv4::uri_encode(v, false)
                )
            })
            .collect();
        let path_with_query = if query.is_empty() {
            path
        } else {
            format!("{path}?{}", query.join("&"))
        };
        let mut headers: Vec<(String, String)> = signed_headers[1..]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        headers.push(("authorization".into(), authorization));
        SignedRequest {
            method,
            path_with_query,
            headers,
        }
    }
}

/// What a body is signed and checked with: SigV4's payload hash (the hex SHA-256 of the body
/// over plain HTTP, `UNSIGNED-PAYLOAD` over HTTPS: see [`S3Config::sign`]) and the
/// [`Checksum`] header the store verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadDigest {
    pub hash: String,
    pub checksum: Option<(&'static str, String)>,
}

pub struct PayloadHasher {
    sha256: Option<Sha256>,
    checksum: Running,
}

enum Running {
    Crc32c(u32),
    Md5(md5::Md5),
    None,
}

impl PayloadHasher {
    pub fn update(&mut self, data: &[u8]) {
        if let Some(hasher) = &mut self.sha256 {
            hasher.update(data);
        }
        match &mut self.checksum {
            Running::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            Running::Md5(hasher) => hasher.update(data),
            Running::None => {}
        }
    }

    /// The digests of what was fed since the last call; the hasher starts over.
    pub fn finish(&mut self) -> PayloadDigest {
        let hash = match &mut self.sha256 {
            Some(hasher) => hex::encode(hasher.finalize_reset()),
            None => sigv4::UNSIGNED_PAYLOAD.to_string(),
        };
        let checksum = match &mut self.checksum {
            Running::Crc32c(crc) => Some((
                "x-amz-checksum-crc32c",
                base64(&std::mem::take(crc).to_be_bytes()),
            )),
            Running::Md5(hasher) => Some(("content-md5", base64(&hasher.finalize_reset()))),
            Running::None => None,
        };
        PayloadDigest { hash, checksum }
    }
}

/// Standard base64 with padding, as S3's checksum headers carry digests.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `YYYYMMDDTHHMMSSZ` (UTC), the form of `x-amz-date`.
pub fn amz_datetime(unix_seconds: i64) -> String {
    let date = registry_core::card::utc_date(unix_seconds).replace('-', "");
    let secs = unix_seconds.rem_euclid(86_400);
    format!(
        "{date}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// S3's limits on multipart uploads.
pub const MAX_PARTS: u64 = 10_000;
pub const MIN_PART_SIZE: u64 = 8 << 20;
pub const MAX_PART_SIZE: u64 = 64 << 20;

/// The part size for an upload of about `size` bytes: 8 MiB, or more so that 10,000 parts
/// hold it (up to 64 MiB per part, so at most 640,000 MiB in all).
pub fn part_size_for(size: u64) -> Result<usize, String> {
    let needed = size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20);
    if needed > MAX_PART_SIZE {
        return Err(format!(
            "{size} bytes exceed what a multipart upload can hold ({MAX_PARTS} parts of {MAX_PART_SIZE} bytes)"
        ));
    }
    Ok(needed.max(MIN_PART_SIZE) as usize)
}

/// The body of `CompleteMultipartUpload`: each part's number, `ETag` and, when the upload
/// declared one, its CRC32C (`x-amz-checksum-crc32c` as sent), in order.
pub fn complete_multipart_body(parts: &[(String, Option<String>)]) -> String {
    let mut body = String::from("<CompleteMultipartUpload>");
    for (i, (etag, crc32c)) in parts.iter().enumerate() {
        let checksum = crc32c
            .as_ref()
            .map(|c| format!("<ChecksumCRC32C>{}</ChecksumCRC32C>", xml_escape(c)))
            .unwrap_or_default();
        body.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag>{checksum}</Part>",
            i + 1,
            xml_escape(etag)
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

/// The text of every `<tag>…</tag>` element in `xml`, in order (S3's answers are flat enough
/// for this: no element nests one of the same name).
pub fn xml_texts(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(xml_unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    out
}

pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    xml_texts(xml, tag).into_iter().next()
}

/// An S3 error answer: its `Code` and `Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl S3Error {
    /// From an error status and its body (which HEAD answers and some servers leave empty).
    pub fn from_response(status: u16, body: &str) -> Self {
        let code = xml_text(body, "Code").unwrap_or_else(|| match status {
            403 => "AccessDenied".into(),
            404 => "NotFound".into(),
            _ => format!("HTTP {status}"),
        });
        Self {
            status,
            message: xml_text(body, "Message").unwrap_or_default(),
            code,
        }
    }

    /// A `200 OK` that carries an `<Error>` (`CompleteMultipartUpload` may answer so).
    pub fn in_ok_body(body: &str) -> Option<Self> {
        body.contains("<Error>")
            .then(|| Self::from_response(200, body))
    }

    /// The settings an operator should look at for this error.
    pub fn setting_hint(&self) -> &'static str {
        match self.code.as_str() {
            // NotSignedUp: what some S3-compatible servers answer for an unknown key.
            "InvalidAccessKeyId" | "NotSignedUp" => "check OPSML_S3_ACCESS_KEY_ID",
            "SignatureDoesNotMatch" => "check OPSML_S3_SECRET_ACCESS_KEY (and OPSML_S3_REGION)",
            "AuthorizationHeaderMalformed" | "AuthorizationQueryParametersError" => {
                "check OPSML_S3_REGION"
            }
            "AccessDenied" => "the credentials lack permission on this bucket",
            "NoSuchBucket" => "check the bucket in OPSML_STORAGE_URI",
            "PermanentRedirect" | "IllegalLocationConstraintException" => {
                "the bucket is in another region: check OPSML_S3_REGION and OPSML_S3_ENDPOINT"
            }
            _ if self.status == 403 => {
                "check OPSML_S3_ACCESS_KEY_ID and OPSML_S3_SECRET_ACCESS_KEY"
            }
            _ => "",
        }
    }
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {})", self.code, self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        let hint = self.setting_hint();
        if !hint.is_empty() {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// One page of `ListObjectsV2`: keys with sizes, and the token of the next page.
pub fn list_page(xml: &str) -> (Vec<(String, u64)>, Option<String>) {
    let objects = xml_texts(xml, "Contents")
        .iter()
        .filter_map(|entry| {
            let key = xml_text(entry, "Key")?;
            let size = xml_text(entry, "Size")?.parse().ok()?;
            Some((key, size))
        })
        .collect();
    let truncated = xml_text(xml, "IsTruncated").as_deref() == Some("true");
    let next = truncated
        .then(|| xml_text(xml, "NextContinuationToken"))
        .flatten();
    (objects, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, prefix: &str) -> S3Config {
        S3Config {
            endpoint: Endpoint::parse(endpoint).unwrap(),
            region: "us-east-1".into(),
            location: StorageUri::parse(&format!("s3://examplebucket/{prefix}")).unwrap(),
            credentials: Credentials {
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            },
            checksum: Checksum::None,
        }
    }

    #[test]
    fn storage_uris_and_endpoints() {
        assert_eq!(
            StorageUri::parse("s3://my-bucket/opsml/prod/").unwrap(),
            StorageUri {
                bucket: "my-bucket".into(),
                prefix: "opsml/prod".into()
            }
        );
        assert_eq!(StorageUri::parse("s3://abc").unwrap().prefix, "");
        assert!(StorageUri::parse("gs://abc/x").is_err());
        assert!(StorageUri::parse("s3://Upper/x").is_err());
        assert!(StorageUri::parse("s3://ab").is_err());
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:9000/").unwrap(),
            Endpoint {
                https: false,
                authority: "127.0.0.1:9000".into()
            }
        );
        assert!(Endpoint::parse("s3.amazonaws.com").is_err());
        assert!(Endpoint::parse("https://u:p@s3.amazonaws.com").is_err());
        assert!(Endpoint::parse("https://s3.amazonaws.com/bucket").is_err());
    }

    #[test]
    fn datetimes_are_in_amz_form() {
        assert_eq!(amz_datetime(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_datetime(1_440_938_160), "20150830T123600Z");
    }

    /// A body hashed piece by piece as it is gathered signs as the whole body does; over HTTPS
    /// no payload is hashed.
    #[test]
    fn a_payload_hashed_in_pieces_signs_as_the_whole_body() {
        let cfg = config("http://127.0.0.1:9000", "");
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let whole = cfg.sign("PUT", Some("k"), &[], &body, 1_369_353_600);
        let mut hasher = cfg.payload_hasher();
        for piece in body.chunks(777) {
            hasher.update(piece);
        }
        let pieces = cfg.sign_hashed("PUT", Some("k"), &[], &hasher.finish(), &[], 1_369_353_600);
        assert_eq!(whole.headers, pieces.headers);
        // The hasher starts over: an empty part hashes as an empty body.
        assert_eq!(hasher.finish().hash, sigv4::EMPTY_PAYLOAD_SHA256);

        let tls = config("https://s3.example.com", "");
        let mut hasher = tls.payload_hasher();
        hasher.update(&body);
        assert_eq!(hasher.finish().hash, sigv4::UNSIGNED_PAYLOAD);
    }

    /// The signature itself is checked against AWS's examples in `sigv4`; here, what `sign`
    /// feeds it: the path-style path, the encoded key, the scope and the signed headers.
    #[test]
    fn signed_requests_carry_the_scope_and_headers() {
        let cfg = config("http://examplebucket.s3.amazonaws.com", "");
        let req = cfg.sign("GET", Some("a b/c.txt"), &[], b"", 1_369_353_600);
        assert_eq!(req.path_with_query, "/examplebucket/a%20b/c.txt");
        let names: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["x-amz-content-sha256", "x-amz-date", "authorization"]
        );
        assert_eq!(req.headers[0].1, sigv4::EMPTY_PAYLOAD_SHA256);
        assert_eq!(req.headers[1].1, "20130524T000000Z");
        assert!(req.headers[2].1.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
        ));
    }

    #[test]
    fn payloads_are_hashed_over_http_only() {
        let http = config("http://127.0.0.1:9000", "p").sign(
            "PUT",
            Some("p/blobs/x"),
            &[("partNumber", "1"), ("uploadId", "a/b=")],
            b"abc",
            0,
        );
        assert_eq!(
            http.headers[0].1,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            http.path_with_query,
            "/examplebucket/p/blobs/x?partNumber=1&uploadId=a%2Fb%3D"
        );
        let https = config("https://s3.amazonaws.com", "p").sign("PUT", None, &[], b"abc", 0);
        assert_eq!(https.headers[0].1, "UNSIGNED-PAYLOAD");
        assert_eq!(https.path_with_query, "/examplebucket");
    }

    /// Checksums in the forms S3 takes: CRC32C of RFC 3720's 32 zero bytes (0x8A9136AA) and
    /// MD5 of "abc", both as base64 of their big-endian bytes; signed with the request.
    #[test]
    fn checksums_are_sent_signed_in_the_form_s3_checks() {
        let with = |checksum: Checksum| {
            let mut cfg = config("https://s3.example.com", "");
            cfg.checksum = checksum;
            cfg
        };
        let mut crc = with(Checksum::Crc32c).payload_hasher();
        crc.update(&[0u8; 20]);
        crc.update(&[0u8; 12]);
        let digest = crc.finish();
        let expected = base64(&0x8A91_36AAu32.to_be_bytes());
        assert_eq!(
            digest.checksum,
            Some(("x-amz-checksum-crc32c", expected.clone()))
        );
        assert_eq!(expected, "ipE2qg==");
        let signed = with(Checksum::Crc32c).sign_hashed("PUT", Some("k"), &[], &digest, &[], 0);
        assert!(signed
            .headers
            .contains(&("x-amz-checksum-crc32c".to_string(), expected)));
        let authorization = &signed.headers.last().unwrap().1;
        assert!(
            authorization.contains(
                "SignedHeaders=host;x-amz-checksum-crc32c;x-amz-content-sha256;x-amz-date"
            ),
            "{authorization}"
        );
        let mut md5 = with(Checksum::Md5).payload_hasher();
        md5.update(b"abc");
        assert_eq!(
            md5.finish().checksum,
            Some(("content-md5", "kAFQmDzST7DWlj99KOF/cg==".to_string()))
        );
        assert_eq!(
            with(Checksum::None).payload_hasher().finish().checksum,
            None
        );
        assert_eq!(Checksum::parse(""), Ok(Checksum::Crc32c));
        assert!(Checksum::parse("sha1").is_err());
        let body = complete_multipart_body(&[("\"e1\"".into(), Some("ipE2qg==".into()))]);
        assert!(
            body.contains("<ETag>&quot;e1&quot;</ETag><ChecksumCRC32C>ipE2qg==</ChecksumCRC32C>"),
            "{body}"
        );
    }

    #[test]
    fn blob_keys_sit_under_the_prefix() {
        assert_eq!(config("http://h", "").blob_key("b1"), "blobs/b1");
        assert_eq!(
            config("http://h", "opsml/dev").blob_key("b1"),
            "opsml/dev/blobs/b1"
        );
    }

    #[test]
    fn part_sizes_keep_under_ten_thousand_parts() {
        assert_eq!(part_size_for(0).unwrap(), 8 << 20);
        assert_eq!(part_size_for(50 << 30).unwrap(), 8 << 20);
        // 100 GiB needs parts of at least 10.24 MiB: rounded up to 11 MiB.
        assert_eq!(part_size_for(100 << 30).unwrap(), 11 << 20);
        assert!(part_size_for(64 << 20).is_ok());
        assert!(part_size_for(700_000 << 20).is_err());
    }

    #[test]
    fn xml_answers_are_read() {
        let created = "<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE&amp;x</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(xml_text(created, "UploadId").unwrap(), "VXBsb2FkIElE&x");
        let body = complete_multipart_body(&[("\"e1\"".into(), None), ("\"e2\"".into(), None)]);
        assert_eq!(
            body,
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag></Part><Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag></Part></CompleteMultipartUpload>"
        );
        let error = "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>";
        let e = S3Error::from_response(403, error);
        assert_eq!(e.code, "SignatureDoesNotMatch");
        assert!(e.to_string().contains("OPSML_S3_SECRET_ACCESS_KEY"), "{e}");
        assert_eq!(S3Error::from_response(404, "").code, "NotFound");
        let unknown = S3Error::from_response(403, "<Error><Code>UnknownRefusal</Code></Error>");
        assert!(unknown
            .to_string()
            .contains("OPSML_S3_ACCESS_KEY_ID and OPSML_S3_SECRET_ACCESS_KEY"));
        assert!(S3Error::in_ok_body(error).is_some());
        assert!(S3Error::in_ok_body(created).is_none());
        let page = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>p/blobs/a</Key><Size>5</Size></Contents><Contents><Key>p/blobs/b</Key><Size>0</Size></Contents><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
        assert_eq!(
            list_page(page),
            (
                vec![("p/blobs/a".into(), 5), ("p/blobs/b".into(), 0)],
                Some("t1".into())
            )
        );
    }
}
