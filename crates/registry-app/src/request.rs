//! A request as the operations see it, and the answer they give: plain data and two small
//! traits, so that an adapter (a Spin component, a test) only copies its runtime's request in
//! and the answer out. The body is read by the operation, when its rules allow (a write is
//! refused before its body is read).

use crate::error::{AppError, Result};
use serde::de::DeserializeOwned;

/// JSON request bodies above this are refused (413): cards and queries are small.
pub const MAX_JSON_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The most bytes asked of a body per read.
pub const READ_SIZE: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Other,
}

/// The request line and headers.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: Method,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    /// `path_with_query` split at its `?`.
    pub fn new(method: Method, path_with_query: &str, headers: Vec<(String, Vec<u8>)>) -> Self {
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query, ""));
        Self {
            method,
            path: path.to_string(),
            query: query.to_string(),
            headers,
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

    /// A query parameter that must be there (422 naming it otherwise).
    pub fn required_query(&self, name: &str) -> Result<String> {
        self.query_param(name)
            .ok_or_else(|| AppError::unprocessable(format!("query parameter {name:?} is required")))
    }

    /// Refuses a method the route does not serve.
    pub fn expect_method(&self, allowed: &[Method]) -> Result<()> {
        if allowed.contains(&self.method) {
            Ok(())
        } else {
            Err(AppError::method_not_allowed())
        }
    }
}

/// A request body, read as the operation asks for it.
pub trait Body {
    /// The next bytes (at most `max`), or `None` at the end.
    fn read(&mut self, max: u64) -> Result<Option<Vec<u8>>>;
}

/// No body (a test's GET).
impl Body for &[u8] {
    fn read(&mut self, max: u64) -> Result<Option<Vec<u8>>> {
        if self.is_empty() {
            return Ok(None);
        }
        let n = self.len().min(usize::try_from(max).unwrap_or(usize::MAX));
        let (head, rest) = self.split_at(n);
        *self = rest;
        Ok(Some(head.to_vec()))
    }
}

/// The whole body, refusing more than `limit` bytes with 413 before buffering them.
pub fn read_all(body: &mut dyn Body, limit: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.read(READ_SIZE)? {
        if bytes.len() + chunk.len() > limit {
            return Err(AppError::new(
                413,
                format!("request body is larger than the {limit}-byte limit"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Parses a JSON body into `T`; the error names the field that is wrong and why.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    if body.is_empty() {
        return Err(AppError::unprocessable(
            "request body is empty; a JSON object is required",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = e.path().to_string();
        if field == "." {
            AppError::unprocessable(format!("invalid request body: {}", e.inner()))
        } else {
            AppError::unprocessable(format!(
                "invalid request body: field {field}: {}",
                e.inner()
            ))
        }
    })
}

/// Reads and parses a JSON body of at most [`MAX_JSON_BODY_BYTES`].
pub fn json_body<T: DeserializeOwned>(body: &mut dyn Body) -> Result<T> {
    parse_json(&read_all(body, MAX_JSON_BODY_BYTES)?)
}

/// What goes back.
#[derive(Debug)]
pub enum Answer {
    /// A JSON body, serialised once (stored cards go out as stored).
    Json { status: u16, text: String },
    /// A whole body with its own headers (`Content-Length` is added by the adapter).
    Bytes {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Already sent through the [`ResponseSink`] (a download).
    Sent,
}

impl Answer {
    /// `200` with `value` as JSON.
    pub fn json(value: impl serde::Serialize) -> Result<Self> {
        Self::json_status(200, value)
    }

    pub fn json_status(status: u16, value: impl serde::Serialize) -> Result<Self> {
        serde_json::to_string(&value)
            .map(|text| Answer::Json { status, text })
            .map_err(|e| AppError::new(500, format!("the answer cannot be written as JSON: {e}")))
    }
}

/// Where a streamed answer goes: its head once, then its body piece by piece.
pub trait ResponseSink {
    fn start(&mut self, status: u16, headers: &[(&'static str, String)]);
    /// Returns false once the client has gone away (stop producing then).
    fn write(&mut self, piece: Vec<u8>) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Sample {
        #[serde(default)]
        limit: Option<i64>,
        card: Option<std::collections::BTreeMap<String, i64>>,
    }

    #[test]
    fn json_errors_name_the_field() {
        let detail = |body: &[u8]| parse_json::<Sample>(body).unwrap_err().detail;
        assert!(detail(br#"{"limit":"x"}"#).contains("field limit: invalid type"));
        assert!(detail(br#"{"card":{"a":"b"}}"#).contains("field card.a"));
        let array = detail(b"[1]");
        assert!(array.starts_with("invalid request body: "), "{array}");
        assert!(detail(b"{").contains("EOF"));
        assert_eq!(parse_json::<Sample>(b"").unwrap_err().status, 422);
    }

    #[test]
    fn bodies_over_the_limit_are_refused_before_they_are_kept() {
        let mut body: &[u8] = &[7u8; 100];
        assert_eq!(read_all(&mut body, 99).unwrap_err().status, 413);
        let mut body: &[u8] = &[7u8; 100];
        assert_eq!(read_all(&mut body, 100).unwrap().len(), 100);
    }
}
