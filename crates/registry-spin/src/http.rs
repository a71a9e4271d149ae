//! Request parsing and responses. Every failure becomes `{"detail": "..."}` with a status
//! that says whose fault it is: 4xx for the request, 5xx for the registry's storage.

use registry_core::HttpError;
use serde::de::DeserializeOwned;
use spin_sdk::http::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasi::io::streams::{OutputStream, StreamError};

/// JSON request bodies above this are refused (413): cards and queries are small.
pub const MAX_JSON_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub detail: String,
    /// `WWW-Authenticate`, sent with a login refusal.
    pub challenge: Option<&'static str>,
    /// `Retry-After` (seconds), sent with a 429.
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            challenge: None,
            retry_after: None,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(422, detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, detail)
    }
}

/// Every rule's and every store's error knows its status.
impl<E: HttpError> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError::new(e.status().code(), e.detail())
    }
}

/// The request line and headers a handler needs, read before the body is consumed.
pub struct RequestHead {
    pub method: Method,
    pub path: String,
    pub query: String,
    headers: Vec<(String, Vec<u8>)>,
}

impl RequestHead {
    pub fn of(req: &IncomingRequest) -> Self {
        let path_with_query = req.path_with_query().unwrap_or_default();
        let (path, query) = match path_with_query.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (path_with_query, String::new()),
        };
        Self {
            method: req.method(),
            path,
            query,
            headers: req.headers().entries(),
        }
    }

    /// A header's value (names are case-insensitive); `None` if absent or not UTF-8.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| String::from_utf8(v.clone()).ok())
    }

    /// A query parameter, percent-decoded (`+` is a space, as in forms).
    pub fn query_param(&self, name: &str) -> Option<String> {
        registry_core::query::first(&self.query, name)
    }

    /// Refuses a method the route does not serve, naming the one it does.
    pub fn expect_method(&self, allowed: &[Method]) -> Result<(), ApiError> {
        if allowed.contains(&self.method) {
            Ok(())
        } else {
            Err(ApiError::new(405, "Method Not Allowed"))
        }
    }
}

pub use registry_core::query::percent_decode;

/// Reads the whole body, refusing more than `limit` bytes with 413 before buffering them.
pub async fn read_body(req: IncomingRequest, limit: usize) -> Result<Vec<u8>, ApiError> {
    use futures::TryStreamExt;
    let mut stream = req.into_body_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?
    {
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                413,
                format!("request body is larger than the {limit}-byte limit"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses a JSON body into `T`; the error names the field that is wrong and why.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::unprocessable(
            "request body is empty; a JSON object is required",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = e.path().to_string();
        if field == "." {
            ApiError::unprocessable(format!("invalid request body: {}", e.inner()))
        } else {
            ApiError::unprocessable(format!(
                "invalid request body: field {field}: {}",
                e.inner()
            ))
        }
    })
}

/// Reads and parses a JSON request body of at most [`MAX_JSON_BODY_BYTES`].
pub async fn json_body<T: DeserializeOwned>(req: IncomingRequest) -> Result<T, ApiError> {
    parse_json(&read_body(req, MAX_JSON_BODY_BYTES).await?)
}

pub fn response(status: u16, headers: &[(&str, String)]) -> OutgoingResponse {
    let fields = Fields::new();
    for (name, value) in headers {
        // Header values built here are ASCII; an invalid one is a bug worth a trap.
        fields
            .append(name, value.as_bytes())
            .expect("valid response header");
    }
    let response = OutgoingResponse::new(fields);
    response.set_status_code(status).expect("valid status code");
    response
}

/// Sends a complete body with `headers` and its `Content-Length`.
pub async fn send_bytes(
    out: ResponseOutparam,
    status: u16,
    headers: &[(&str, String)],
    body: Vec<u8>,
) {
    let mut all = headers.to_vec();
    all.push(("content-length", body.len().to_string()));
    let mut writer = start_stream(out, status, &all);
    // The client may have gone; there is nobody left to tell.
    writer.write(body).await;
}

/// Writes `data` to a `wasi:io` output stream as the host makes room, then flushes it.
pub(crate) fn write_all(stream: &OutputStream, mut data: &[u8]) -> Result<(), StreamError> {
    while !data.is_empty() {
        let permitted = loop {
            let n = stream.check_write()?;
            if n > 0 {
                break usize::try_from(n).unwrap_or(usize::MAX);
            }
            stream.subscribe().block();
        };
        let n = permitted.min(data.len());
        stream.write(&data[..n])?;
        data = &data[n..];
    }
    stream.blocking_flush()
}

pub async fn send_json(out: ResponseOutparam, status: u16, value: &impl serde::Serialize) {
    let body = serde_json::to_vec(value).expect("answers serialize to JSON");
    send_bytes(
        out,
        status,
        &[("content-type", "application/json".to_string())],
        body,
    )
    .await;
}

pub async fn send_error(out: ResponseOutparam, error: &ApiError) {
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(challenge) = error.challenge {
        headers.push(("www-authenticate", challenge.to_string()));
    }
    if let Some(seconds) = error.retry_after {
        headers.push(("retry-after", seconds.to_string()));
    }
    let body = serde_json::to_vec(&serde_json::json!({ "detail": error.detail }))
        .expect("answers serialize to JSON");
    send_bytes(out, error.status, &headers, body).await;
}

/// Sends `result` as JSON (200) or as its error.
pub async fn send_result(out: ResponseOutparam, result: Result<impl serde::Serialize, ApiError>) {
    match result {
        Ok(value) => send_json(out, 200, &value).await,
        Err(e) => send_error(out, &e).await,
    }
}

/// A response's body, written as it comes. The response itself is handed to the host with the
/// first chunk, after as much of that chunk as the host takes without waiting: then the head
/// and a small body leave in one write. Spin 3.x leaves Nagle's algorithm on, and a body
/// written after its head waits for the client's delayed ACK (about 40 ms) whenever the
/// client sends one request at a time. Dropping the writer ends the body (cut short if fewer
/// bytes than its `Content-Length` were written, which tells the client).
pub struct BodyWriter {
    /// Until the first write: the response and where it goes.
    pending: Option<(ResponseOutparam, OutgoingResponse)>,
    /// The body's stream (its child resource, so dropped first) and the body.
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
}

impl BodyWriter {
    /// Returns false once the client has gone away (stop producing then).
    pub async fn write(&mut self, chunk: Vec<u8>) -> bool {
        let Some(stream) = &self.stream else {
            return false;
        };
        let mut rest: &[u8] = &chunk;
        if let Some((out, response)) = self.pending.take() {
            let early = match stream.check_write() {
                Ok(permitted) => rest
                    .len()
                    .min(usize::try_from(permitted).unwrap_or(usize::MAX)),
                Err(_) => 0,
            };
            let written = early == 0 || stream.write(&rest[..early]).is_ok();
            out.set(response);
            if !written {
                return false;
            }
            rest = &rest[early..];
        }
        write_all(stream, rest).is_ok()
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        if let Some((out, response)) = self.pending.take() {
            out.set(response);
        }
        drop(self.stream.take());
        if let Some(body) = self.body.take() {
            let _ = OutgoingBody::finish(body, None);
        }
    }
}

/// Starts a response; the returned writer sends its body (see [`BodyWriter`]).
pub fn start_stream(out: ResponseOutparam, status: u16, headers: &[(&str, String)]) -> BodyWriter {
    let response = response(status, headers);
    let body = response.body().expect("a new response has its body");
    let stream = body.write().expect("a new body has its stream");
    BodyWriter {
        pending: Some((out, response)),
        stream: Some(stream),
        body: Some(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        #[serde(default)]
        limit: Option<i64>,
        card: Option<std::collections::BTreeMap<String, i64>>,
    }

    #[test]
    fn json_errors_name_the_field() {
        let detail = |body: &[u8]| parse_json::<Body>(body).unwrap_err().detail;
        assert!(detail(br#"{"limit":"x"}"#).contains("field limit: invalid type"));
        assert!(detail(br#"{"card":{"a":"b"}}"#).contains("field card.a"));
        let array = detail(b"[1]");
        assert!(array.starts_with("invalid request body: "), "{array}");
        assert!(detail(b"{").contains("EOF"));
        assert_eq!(parse_json::<Body>(b"").unwrap_err().status, 422);
    }
}
